//! Fault injection specs, shared by the simulator (`sim --fault`) and the live demo
//! (`demo --fault`): what happens to which node, when, for how long.
//!
//! ```text
//! kill:NODE@T            the node crashes at T (in the demo with --processes: SIGKILL)
//! restart:NODE@T         the node starts afresh at T (after a kill)
//! stop:NODE@T+D          the node is frozen from T for D (SIGSTOP/SIGCONT): what it is
//!                        sent waits
//! partition:A-B@T+D      every message between A and B is lost from T for D
//! loss:A-B@T+D:P         each packet between A and B is lost with probability P
//! ```
//!
//! Nodes talk over TCP (and TLS), which never hands a stream over with a hole in it: a
//! lossy link delays messages by retransmissions, in order, and loses them only when the
//! connection breaks. [`tcp_delivery`] is that model, shared by both drivers; a partition
//! loses what is sent during it, as a broken connection does.
//!
//! Times are seconds (`5.5`, `5.5s`) or milliseconds (`800ms`) from the start of the run.
//! Node names are the drivers' own (`me1`, `control`, `ran1` …); this module only
//! parses them.
//!
//! ```
//! use edgeshift_world::fault::{Fault, FaultKind};
//! let f: Fault = "partition:me1-me3@7s+3s".parse().unwrap();
//! assert_eq!(f.node, "me1");
//! assert!(matches!(f.kind, FaultKind::Partition { ref peer, .. } if peer == "me3"));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One injected fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// The node it hits (the first of a pair).
    pub node: String,
    /// When, from the start of the run.
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
}

/// What a [`Fault`] does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// The node crashes.
    Kill,
    /// The node starts afresh.
    Restart,
    /// The node is frozen for `dur`.
    Stop {
        /// How long.
        dur: Duration,
    },
    /// Messages between the node and `peer` are lost for `dur`.
    Partition {
        /// The other node.
        peer: String,
        /// How long.
        dur: Duration,
    },
    /// Each message between the node and `peer` is lost with probability `p` for `dur`.
    Loss {
        /// The other node.
        peer: String,
        /// How long.
        dur: Duration,
        /// Loss probability in `[0, 1]`.
        p: f64,
    },
}

/// A fault spec that does not parse.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "fault {spec:?}: {why} (expected kill:NODE@T, restart:NODE@T, stop:NODE@T+D, partition:A-B@T+D or loss:A-B@T+D:P)"
)]
pub struct FaultError {
    /// The spec.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

impl Fault {
    /// The loss probability the fault puts on the link between `a` and `b` (either way)
    /// at `t`, if it is active then.
    #[must_use]
    pub fn cuts(&self, a: &str, b: &str, t: Duration) -> Option<f64> {
        let (peer, dur, p) = match &self.kind {
            FaultKind::Partition { peer, dur } => (peer, *dur, 1.0),
            FaultKind::Loss { peer, dur, p } => (peer, *dur, *p),
            _ => return None,
        };
        let pair = (self.node == a && peer == b) || (self.node == b && peer == a);
        (pair && t >= self.at && t < self.at + dur).then_some(p)
    }

    /// Every node name the fault mentions.
    #[must_use]
    pub fn nodes(&self) -> Vec<&str> {
        match &self.kind {
            FaultKind::Partition { peer, .. } | FaultKind::Loss { peer, .. } => {
                vec![&self.node, peer]
            }
            _ => vec![&self.node],
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.as_secs_f64();
        match &self.kind {
            FaultKind::Kill => write!(f, "kill:{}@{at}s", self.node),
            FaultKind::Restart => write!(f, "restart:{}@{at}s", self.node),
            FaultKind::Stop { dur } => {
                write!(f, "stop:{}@{at}s+{}s", self.node, dur.as_secs_f64())
            }
            FaultKind::Partition { peer, dur } => write!(
                f,
                "partition:{}-{peer}@{at}s+{}s",
                self.node,
                dur.as_secs_f64()
            ),
            FaultKind::Loss { peer, dur, p } => write!(
                f,
                "loss:{}-{peer}@{at}s+{}s:{p}",
                self.node,
                dur.as_secs_f64()
            ),
        }
    }
}

/// TCP's first retransmission timeout (Linux `TCP_RTO_MIN`).
pub const RTO_MIN: Duration = Duration::from_millis(200);
/// TCP's longest retransmission timeout (Linux `TCP_RTO_MAX`).
pub const RTO_MAX: Duration = Duration::from_secs(120);
/// Transmissions of one segment before TCP gives the connection up (Linux
/// `tcp_retries2`).
pub const TCP_RETRIES: u32 = 15;

/// The loss probability of a link under independent faults losing `ps` each.
pub fn combined_loss(ps: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - ps.into_iter().map(|p| 1.0 - p).product::<f64>()
}

/// What a link does to one message sent over TCP at `t`, when a transmission at time `x`
/// is lost with probability `p_at(x)` (`draw` gives uniform numbers in `[0, 1)`):
/// `Some(delay)` until the transmission that gets through, retransmitting after
/// [`RTO_MIN`] doubling up to [`RTO_MAX`]; `None` if the message is lost, which happens
/// when the link is cut (`p_at(t) >= 1`, a partition) or after [`TCP_RETRIES`]
/// transmissions (the connection breaks).
///
/// ```
/// use std::time::Duration;
/// use edgeshift_world::fault::tcp_delivery;
/// let ms = Duration::from_millis;
/// // Lost twice, then through: 200 + 400 ms of retransmission timeouts.
/// let mut draws = [0.1, 0.1, 0.9].into_iter();
/// let d = tcp_delivery(|_| 0.5, ms(0), || draws.next().unwrap_or(0.9));
/// assert_eq!(d, Some(ms(600)));
/// // The fault is over before the first retransmission: through then.
/// let d = tcp_delivery(|t| if t < ms(50) { 0.9 } else { 0.0 }, ms(0), || 0.0);
/// assert_eq!(d, Some(ms(200)));
/// assert_eq!(tcp_delivery(|_| 1.0, ms(0), || 0.0), None);
/// ```
pub fn tcp_delivery(
    p_at: impl Fn(Duration) -> f64,
    t: Duration,
    mut draw: impl FnMut() -> f64,
) -> Option<Duration> {
    if p_at(t) >= 1.0 {
        return None;
    }
    let (mut at, mut rto) = (t, RTO_MIN);
    for _ in 0..TCP_RETRIES {
        let p = p_at(at);
        let lost = p >= 1.0 || (p > 0.0 && draw() < p);
        if !lost {
            return Some(at - t);
        }
        at += rto;
        rto = (rto * 2).min(RTO_MAX);
    }
    None
}

/// Longest time a spec may name (a day): beyond, it is a typo.
const MAX_S: f64 = 86_400.0;

fn duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a time (5.5s, 800ms)"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.0..=MAX_S).contains(&secs) {
        return Err(format!("{s:?} is not a time from 0 to a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn name(s: &str) -> Result<String, String> {
    let ok =
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a node name"))
    }
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<Self, FaultError> {
        let err = |why: String| FaultError {
            spec: spec.to_owned(),
            why,
        };
        let (kind, rest) = spec.split_once(':').ok_or_else(|| err("no kind".into()))?;
        let (who, when) = rest.split_once('@').ok_or_else(|| err("no @time".into()))?;
        let (when, p) = match kind {
            "loss" => {
                let (w, p) = when
                    .rsplit_once(':')
                    .ok_or_else(|| err("no :probability".into()))?;
                let p: f64 = p
                    .parse()
                    .map_err(|_| err(format!("{p:?} is not a probability")))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(err(format!("probability {p} is not in [0, 1]")));
                }
                (w, p)
            }
            _ => (when, 1.0),
        };
        let (at, dur) = match when.split_once('+') {
            Some((a, d)) => (duration(a).map_err(err)?, Some(duration(d).map_err(err)?)),
            None => (duration(when).map_err(err)?, None),
        };
        let need_dur = || dur.ok_or_else(|| err(format!("{kind} needs a duration: @T+D")));
        let pair = || -> Result<(String, String), FaultError> {
            let (a, b) = who
                .split_once('-')
                .ok_or_else(|| err(format!("{kind} needs two nodes: A-B")))?;
            let (a, b) = (name(a).map_err(err)?, name(b).map_err(err)?);
            if a == b {
                return Err(err("a node cannot be cut from itself".into()));
            }
            Ok((a, b))
        };
        let (node, kind) = match kind {
            "kill" | "restart" => {
                if dur.is_some() {
                    return Err(err(format!("{kind} takes no duration")));
                }
                let k = if kind == "kill" {
                    FaultKind::Kill
                } else {
                    FaultKind::Restart
                };
                (name(who).map_err(err)?, k)
            }
            "stop" => (
                name(who).map_err(err)?,
                FaultKind::Stop { dur: need_dur()? },
            ),
            "partition" => {
                let (a, peer) = pair()?;
                let dur = need_dur()?;
                (a, FaultKind::Partition { peer, dur })
            }
            "loss" => {
                let (a, peer) = pair()?;
                let dur = need_dur()?;
                (a, FaultKind::Loss { peer, dur, p })
            }
            other => return Err(err(format!("unknown kind {other:?}"))),
        };
        Ok(Self { node, at, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_and_prints_back() {
        for spec in [
            "kill:me1@5.5s",
            "restart:ran1@6s",
            "stop:me2@5s+2s",
            "partition:me1-me3@7s+3s",
            "loss:me1-control@1s+0.5s:0.25",
        ] {
            let f: Fault = spec.parse().expect(spec);
            assert_eq!(f.to_string(), spec);
        }
        let f: Fault = "kill:me1@800ms".parse().expect("ms");
        assert_eq!(f.at, Duration::from_millis(800));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, why) in [
            ("kill:me1", "no @time"),
            ("zap:me1@1s", "unknown kind"),
            ("partition:me1@1s+2s", "two nodes"),
            ("partition:me1-me1@1s+2s", "itself"),
            ("stop:me1@1s", "needs a duration"),
            ("kill:me1@1s+2s", "takes no duration"),
            ("loss:me1-me2@1s+2s:1.5", "not in [0, 1]"),
            ("kill:me1@-1s", "not a time"),
            ("kill:me1@NaNs", "not a time"),
            ("kill:m e@1s", "not a node name"),
        ] {
            let e = spec.parse::<Fault>().expect_err(spec);
            assert!(e.to_string().contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn a_partition_cuts_both_ways_while_it_lasts() {
        let f: Fault = "partition:me1-me3@7s+3s".parse().expect("spec");
        let s = Duration::from_secs;
        assert_eq!(f.cuts("me3", "me1", s(8)), Some(1.0));
        assert_eq!(f.cuts("me1", "me3", s(10)), None);
        assert_eq!(f.cuts("me1", "me2", s(8)), None);
    }

    #[test]
    fn a_lossy_link_delays_in_rto_steps_and_breaks_after_the_retries() {
        let ms = Duration::from_millis;
        // Lost at 0, 200, 600 ms; the fault ends at 1 s, so the 1,400 ms one gets through.
        let d = tcp_delivery(|t| if t < ms(1000) { 0.5 } else { 0.0 }, ms(0), || 0.0);
        assert_eq!(d, Some(ms(1400)));
        // Nothing lost: no delay, and no draw either.
        assert_eq!(tcp_delivery(|_| 0.0, ms(5), || unreachable!()), Some(ms(0)));
        // A link that loses everything for longer than TCP tries breaks the connection.
        assert_eq!(tcp_delivery(|_| 0.999, ms(0), || 0.0), None);
        // A partition that starts after the send only holds the retransmissions up.
        let d = tcp_delivery(
            |t| {
                if t < ms(100) {
                    0.5
                } else if t < ms(500) {
                    1.0
                } else {
                    0.0
                }
            },
            ms(0),
            || 0.0,
        );
        assert_eq!(d, Some(ms(600)));
    }
}
