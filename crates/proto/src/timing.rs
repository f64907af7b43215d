//! Timing information carried by 1002, 1003, 1005 and 1006 (patent [0077]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Instant;

/// Coarse timing class, for senders that cannot give a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimingClass {
    /// Within about a second.
    Soon,
    /// Within a few seconds.
    Medium,
    /// Later than that.
    Long,
}

impl TimingClass {
    /// The nominal duration a receiver assumes for the class.
    #[must_use]
    pub const fn nominal(self) -> Duration {
        match self {
            Self::Soon => Duration::from_millis(500),
            Self::Medium => Duration::from_secs(3),
            Self::Long => Duration::from_secs(10),
        }
    }
}

/// When something will happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    /// An absolute time in the common time reference.
    At(Instant),
    /// A duration from the moment the message was sent.
    After(Duration),
    /// A coarse class.
    Class(TimingClass),
}

/// Timing information with an optional uncertainty (one standard deviation, or a
/// half-width the sender chose).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The point in time.
    pub when: When,
    /// How far off `when` may be.
    pub uncertainty: Option<Duration>,
}

impl Timing {
    /// An exact absolute time.
    #[must_use]
    pub const fn at(t: Instant) -> Self {
        Self {
            when: When::At(t),
            uncertainty: None,
        }
    }

    /// Absolute time with an uncertainty.
    #[must_use]
    pub const fn at_within(t: Instant, uncertainty: Duration) -> Self {
        Self {
            when: When::At(t),
            uncertainty: Some(uncertainty),
        }
    }

    /// Resolves to an absolute time, given when the message was sent.
    #[must_use]
    pub fn resolve(&self, sent_at: Instant) -> Instant {
        match self.when {
            When::At(t) => t,
            When::After(d) => sent_at + d,
            When::Class(c) => sent_at + c.nominal(),
        }
    }
}
