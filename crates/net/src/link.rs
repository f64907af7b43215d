//! A link emulator in the transport: latency, bandwidth and optional loss on every
//! outgoing connection, so that demos and benchmarks on one machine see a backhaul and a
//! radio hop. Off by default: production runs at the speed of the real network.

use std::time::Duration;

use serde::Deserialize;

/// Emulated link properties, applied by the sender to each (sender, receiver, lane)
/// connection. Bandwidth is a FIFO per connection: a frame leaves when the previous one
/// has been serialised, and arrives `latency` later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkEmulation {
    /// One-way latency in milliseconds.
    pub latency_ms: f64,
    /// Bandwidth in Gbit/s (0 = unlimited).
    pub gbit: f64,
    /// Loss probability of UE service traffic (inputs, answers, probes) on radio hops;
    /// protocol messages ride a reliable transport and are never dropped.
    pub radio_loss: f64,
    /// Seed of the loss draws.
    pub seed: u64,
}

impl LinkEmulation {
    /// Whether anything is emulated.
    #[must_use]
    pub fn is_off(&self) -> bool {
        self.latency_ms <= 0.0 && self.gbit <= 0.0 && self.radio_loss <= 0.0
    }

    /// The one-way latency.
    #[must_use]
    pub fn latency(&self) -> Duration {
        Duration::from_secs_f64(self.latency_ms.max(0.0) / 1e3)
    }

    /// Time to serialise `bytes` onto the link.
    #[must_use]
    pub fn serialisation(&self, bytes: usize) -> Duration {
        if self.gbit > 0.0 {
            Duration::from_secs_f64(bytes as f64 * 8.0 / (self.gbit * 1e9))
        } else {
            Duration::ZERO
        }
    }
}

/// FIFO pacing state of one connection.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    free_at: Option<tokio::time::Instant>,
}

impl Pacer {
    /// When a frame of `bytes` queued at `queued` arrives at the far end.
    pub(crate) fn arrival(
        &mut self,
        emu: &LinkEmulation,
        queued: tokio::time::Instant,
        bytes: usize,
    ) -> tokio::time::Instant {
        let start = self.free_at.map_or(queued, |f| f.max(queued));
        let done = start + emu.serialisation(bytes);
        self.free_at = Some(done);
        done + emu.latency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn frames_queue_behind_each_other_then_fly_for_the_latency() {
        let emu = LinkEmulation {
            latency_ms: 5.0,
            gbit: 1.0,
            ..LinkEmulation::default()
        };
        let mut p = Pacer::default();
        let t0 = tokio::time::Instant::now();
        // 125 kB at 1 Gbit/s is 1 ms on the wire.
        assert_eq!(p.arrival(&emu, t0, 125_000), t0 + Duration::from_millis(6));
        assert_eq!(p.arrival(&emu, t0, 125_000), t0 + Duration::from_millis(7));
        let later = t0 + Duration::from_millis(100);
        assert_eq!(p.arrival(&emu, later, 0), later + Duration::from_millis(5));
        assert!(LinkEmulation::default().is_off());
    }
}
