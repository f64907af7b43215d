//! The journal: what each daemon did, as typed records with times in the common time
//! reference. In one process (the demo) records go through a channel; across processes
//! each daemon appends JSON lines to a file (`--journal FILE`) and the demo merges them.
//! Service traffic messages are not journaled (they are counted in metrics); protocol
//! messages, role events, and the [`Observation`]s the run record is built from are.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use edgeshift_record::Observation;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::warn;

/// One handover as the UE saw it (times in Unix nanoseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    /// Source cell.
    pub from: u32,
    /// Target cell.
    pub to: u32,
    /// 2003 received.
    pub detached_at: u64,
    /// Joined the target.
    pub attached_at: Option<u64>,
    /// First answer after joining.
    pub first_answer_at: Option<u64>,
    /// Radio gap (ms).
    pub radio_gap_ms: Option<f64>,
    /// Service gap (ms).
    pub service_gap_ms: Option<f64>,
    /// Service gap beyond the radio gap and the usual round trip (ms).
    pub added_ms: Option<f64>,
    /// The handover failed and the UE re-established (at `to`).
    #[serde(default)]
    pub failed: bool,
}

/// A UE's end-of-run check: every input answered, the live state against the twin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UeSummary {
    /// The UE.
    pub ue: u32,
    /// Inputs it sent.
    pub inputs_sent: u64,
    /// Inputs answered.
    pub inputs_answered: u64,
    /// Last input the live instance applied (None: no live instance answered).
    pub live_last_seq: Option<u64>,
    /// The live state's checksum (hex).
    pub live_checksum: Option<String>,
    /// The checksum of a never-moved twin that applied the same inputs (hex).
    pub twin_checksum: Option<String>,
    /// Live state equals the twin and holds every input exactly once.
    pub final_state_matches_twin: bool,
    /// Handovers.
    pub gaps: Vec<GapRecord>,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// A protocol message was received.
    Msg {
        /// Receipt time.
        at: u64,
        /// Sender.
        from: String,
        /// Receiver.
        to: String,
        /// Type code.
        code: u16,
        /// Type name.
        name: String,
        /// Bytes of state or inputs it carried.
        bulk: usize,
    },
    /// A role event, rendered.
    Event {
        /// When.
        at: u64,
        /// Which node.
        node: String,
        /// What.
        what: String,
    },
    /// A fact for the run record (the simulator's recorder replays these).
    Obs(Observation),
    /// A UE finished.
    Ue(UeSummary),
}

#[derive(Clone)]
enum Sink {
    Off,
    Channel(mpsc::UnboundedSender<Record>),
    File(Arc<Mutex<File>>),
}

/// Where records go.
#[derive(Clone)]
pub struct Journal(Sink);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Sink::Off => "Journal(off)",
            Sink::Channel(_) => "Journal(channel)",
            Sink::File(_) => "Journal(file)",
        })
    }
}

impl Journal {
    /// Records nothing.
    #[must_use]
    pub fn off() -> Self {
        Self(Sink::Off)
    }

    /// Records into a channel.
    #[must_use]
    pub fn channel(tx: mpsc::UnboundedSender<Record>) -> Self {
        Self(Sink::Channel(tx))
    }

    /// Appends JSON lines to `path`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn file(path: &Path) -> std::io::Result<Self> {
        let f = File::options().create(true).append(true).open(path)?;
        Ok(Self(Sink::File(Arc::new(Mutex::new(f)))))
    }

    /// Whether records are kept.
    #[must_use]
    pub fn is_on(&self) -> bool {
        !matches!(self.0, Sink::Off)
    }

    /// Keeps one record.
    pub fn record(&self, r: Record) {
        match &self.0 {
            Sink::Off => {}
            Sink::Channel(tx) => {
                let _ = tx.send(r);
            }
            Sink::File(f) => {
                let Ok(mut line) = serde_json::to_vec(&r) else {
                    return;
                };
                line.push(b'\n');
                // One write per line: a killed daemon leaves whole lines behind.
                let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(e) = f.write_all(&line) {
                    warn!(error = %e, "journal write failed");
                }
            }
        }
    }
}

/// Reads a JSON-lines journal; a torn last line (a killed writer) is skipped.
///
/// # Errors
/// The file cannot be read.
pub fn read_journal(path: &Path) -> std::io::Result<Vec<Record>> {
    let f = File::open(path)?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(e) => warn!(path = %path.display(), error = %e, "skipping a journal line"),
        }
    }
    Ok(out)
}
