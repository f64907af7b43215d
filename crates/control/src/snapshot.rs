//! [`ControlSnapshot`] and its versioned byte form, what the live daemon keeps in redb.
//!
//! ```text
//! offset 0   8 bytes   magic "ESHFTCTL"
//! offset 8   2 bytes   format version, little endian (3 today)
//! offset 10  …         postcard of that version's schema (snapshot::v3), nothing after it
//! ```
//!
//! The schema is its own set of plain structs, converted explicitly from and to the node's
//! state ([`ControlNode::snapshot`], [`ControlNode::restore`]); the node's structs can change
//! freely, the schema cannot. A change of the schema is a new version: a new module, an
//! upgrade from the previous version, and [`CURRENT`] raised. Older versions are read and
//! upgraded step by step, so a store written by any release restores.
//!
//! Version 0 is the header-less postcard that the node wrote before (a frozen copy of its
//! structs of then, in `v0`). It can never start with the magic: read as v0, `ESHFT` is
//! 69 services, the first with id `S`, UE `H`, cell `F` and a `T` where an `Option` tag (0
//! or 1) must be.

mod v0;
pub(crate) mod v1;
pub(crate) mod v2;
pub(crate) mod v3;

#[cfg(doc)]
use crate::ControlNode;

/// First bytes of every versioned snapshot.
pub const MAGIC: [u8; 8] = *b"ESHFTCTL";

/// The version [`ControlSnapshot::to_bytes`] writes.
pub const CURRENT: u16 = 3;

const HEADER: usize = MAGIC.len() + 2;

/// Why bytes are not a snapshot this build can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Neither the header nor the legacy header-less form.
    #[error(
        "not a control snapshot: no {:?} header, and not a header-less v0 snapshot either ({legacy})",
        String::from_utf8_lossy(&MAGIC)
    )]
    BadMagic {
        /// Why the bytes are not a v0 snapshot.
        legacy: postcard::Error,
    },
    /// A version this build does not know (written by a newer one).
    #[error(
        "control snapshot version {found}: this build reads versions 0 to {CURRENT}; was it written by a newer edgeshift?"
    )]
    UnknownVersion {
        /// The version in the header.
        found: u16,
    },
    /// The header is there but the body does not decode as its version.
    #[error("control snapshot v{version}: corrupt body ({source})")]
    Corrupt {
        /// The version in the header (0: header-less).
        version: u16,
        /// What the decoder found.
        source: postcard::Error,
    },
    /// The body decoded but bytes follow it.
    #[error("control snapshot v{version}: {extra} unexpected bytes after the body")]
    TrailingBytes {
        /// The version in the header.
        version: u16,
        /// How many.
        extra: usize,
    },
    /// The magic without a complete version after it.
    #[error("control snapshot: truncated header ({len} bytes)")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// The snapshot could not be encoded.
    #[error("control snapshot: cannot encode ({0})")]
    Encode(#[source] postcard::Error),
}

/// Everything a [`ControlNode`] must not forget across a restart (see
/// [`ControlNode::snapshot`]); opaque, with a stable, versioned byte form.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlSnapshot(pub(crate) v3::Snapshot);

impl ControlSnapshot {
    /// The byte form: the header, then the current version's schema (postcard).
    ///
    /// # Errors
    /// Never for snapshots this crate made; [`SnapshotError::Encode`] otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut bytes = Vec::with_capacity(HEADER + 64 * self.0.base.services.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&CURRENT.to_le_bytes());
        postcard::to_extend(&self.0, bytes).map_err(SnapshotError::Encode)
    }

    /// Parses [`ControlSnapshot::to_bytes`] output of this or an earlier version,
    /// including the header-less form of before versions (v0).
    ///
    /// # Errors
    /// [`SnapshotError`]: not a snapshot, an unknown version, or a corrupt body.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let Some(rest) = bytes.strip_prefix(&MAGIC) else {
            let legacy: v0::Snapshot = decode(bytes, 0).map_err(|e| match e {
                SnapshotError::Corrupt { source, .. } => SnapshotError::BadMagic { legacy: source },
                other => other,
            })?;
            return Ok(Self(v2::Snapshot::from(v1::Snapshot::from(legacy)).into()));
        };
        let Some((version, body)) = rest.split_first_chunk::<2>() else {
            return Err(SnapshotError::Truncated { len: bytes.len() });
        };
        match u16::from_le_bytes(*version) {
            1 => Ok(Self(
                v2::Snapshot::from(decode::<v1::Snapshot>(body, 1)?).into(),
            )),
            2 => Ok(Self(decode::<v2::Snapshot>(body, 2)?.into())),
            3 => Ok(Self(decode(body, 3)?)),
            found => Err(SnapshotError::UnknownVersion { found }),
        }
    }

    /// Services in the registry.
    #[must_use]
    pub fn services(&self) -> usize {
        self.0.base.services.len()
    }

    /// This snapshot as a v1 reader would have kept it: without shadow readiness,
    /// declared-dead hosts, peers and what is owed to servers away (to compare with data
    /// written in v1).
    #[must_use]
    pub fn as_v1(&self) -> Self {
        let mut s = self.clone();
        for svc in &mut s.0.base.services {
            svc.ready.clear();
            svc.orphaned = false;
        }
        s.0.base.peers.clear();
        s.0.base.superseded.clear();
        s.0.base.called_off.clear();
        s.0 = v3::Snapshot::from(s.0.base);
        s
    }
}

/// The whole of `body` as one `T` of `version`.
fn decode<'a, T: serde::Deserialize<'a>>(body: &'a [u8], version: u16) -> Result<T, SnapshotError> {
    let (value, rest) = postcard::take_from_bytes(body)
        .map_err(|source| SnapshotError::Corrupt { version, source })?;
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes {
            version,
            extra: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> ControlSnapshot {
        let mut s = v3::Snapshot::from(v2::Snapshot {
            services: Vec::new(),
            loads: Vec::new(),
            stats: v1::Stats {
                predictions: 1,
                shadows_requested: 2,
                handovers: 3,
                relocations_triggered: 4,
                relocations_completed: 5,
                relocations_failed: 6,
                skipped_same_server: 7,
                skipped_within_budget: 8,
                mispredicted: 9,
                reactive: 10,
                pingpongs: 11,
                cancelled: 12,
                load_balanced: 13,
            },
            load_check: Some(42),
            peers: vec![v2::Peer {
                server: 3,
                incarnation: 5,
                down: true,
            }],
            superseded: vec![(3, 1)],
            called_off: vec![(3, 2, 7)],
        });
        s.moved.push(v3::Moved {
            service: 4,
            ue: 4,
            region: 1,
            generation: 2,
        });
        s.rejoin_orders.push(v3::RejoinOrder {
            server: 3,
            service: 5,
            order: v3::Order::Abort { epoch: 9 },
        });
        ControlSnapshot(s)
    }

    #[test]
    fn the_header_leads_and_the_body_round_trips() {
        let bytes = empty().to_bytes().expect("encodes");
        assert_eq!(&bytes[..8], b"ESHFTCTL");
        assert_eq!(&bytes[8..10], &[3, 0]);
        assert_eq!(ControlSnapshot::from_bytes(&bytes).ok(), Some(empty()));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let good = empty().to_bytes().expect("encodes");
        let mut newer = good.clone();
        newer[8] = 9;
        let err = ControlSnapshot::from_bytes(&newer).err();
        assert!(matches!(
            err,
            Some(SnapshotError::UnknownVersion { found: 9 })
        ));
        assert!(
            err.map(|e| e.to_string())
                .is_some_and(|m| m.contains("version 9") && m.contains("0 to 3")),
        );
        let cut = &good[..good.len() - 1];
        assert!(matches!(
            ControlSnapshot::from_bytes(cut),
            Err(SnapshotError::Corrupt { version: 3, .. })
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            ControlSnapshot::from_bytes(&longer),
            Err(SnapshotError::TrailingBytes {
                version: 3,
                extra: 1
            })
        ));
        assert!(matches!(
            ControlSnapshot::from_bytes(&good[..9]),
            Err(SnapshotError::Truncated { len: 9 })
        ));
        let garbage = ControlSnapshot::from_bytes(b"{\"services\": []}").err();
        assert!(matches!(garbage, Some(SnapshotError::BadMagic { .. })));
        assert!(
            garbage
                .map(|e| e.to_string())
                .is_some_and(|m| m.contains("not a control snapshot"))
        );
    }

    #[test]
    fn the_magic_is_no_v0_prefix() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 64]);
        assert!(matches!(
            decode::<v0::Snapshot>(&bytes, 0),
            Err(SnapshotError::Corrupt {
                source: postcard::Error::DeserializeBadOption,
                ..
            })
        ));
    }
}
