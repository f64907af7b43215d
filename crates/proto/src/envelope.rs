//! The [`Message`] enum over all message bodies, with type codes and lanes.

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::message::*;

/// Which stream a message travels on. Bulk state never delays control messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Lane {
    /// Small, latency-critical messages.
    Control,
    /// State transfers, deltas and catch-ups.
    Bulk,
}

macro_rules! messages {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// Any message of the protocol.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)] // messages are moved once per hop; boxing buys nothing
        pub enum Message {
            $($(#[$doc])* $variant($variant),)*
        }

        impl Message {
            /// The type code on the wire (the patent's reference sign where it has one).
            #[must_use]
            pub const fn type_code(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $code,)*
                }
            }

            /// A short name for traces.
            #[must_use]
            pub const fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)*
                }
            }

            pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
                match self {
                    $(Self::$variant(m) => append(m, $code, out),)*
                }
            }

            /// Bytes of the payload [`Self::encode_payload`] writes, without writing it.
            pub(crate) fn payload_len(&self) -> usize {
                match self {
                    $(Self::$variant(m) => postcard::experimental::serialized_size(m).unwrap_or(0),)*
                }
            }

            pub(crate) fn decode_payload(ty: u16, payload: &[u8]) -> Result<Self, DecodeError> {
                match ty {
                    $($code => parse::<$variant>(ty, payload).map(Self::$variant),)*
                    other => Err(DecodeError::UnknownType(other)),
                }
            }

            /// Every type code this build knows.
            pub const TYPE_CODES: &'static [u16] = &[$($code,)*];
        }

        $(
            impl From<$variant> for Message {
                fn from(m: $variant) -> Self {
                    Self::$variant(m)
                }
            }

            impl $variant {
                /// Its type code on the wire.
                pub const TYPE_CODE: u16 = $code;
            }
        )*
    };
}

messages! {
    /// 1002
    HandoverPrediction = 1002,
    /// 1003
    PrepareShadow = 1003,
    /// 1004
    ShadowTransfer = 1004,
    /// 1005
    HandoverExecution = 1005,
    /// 1006
    Relocate = 1006,
    /// Shadow sync (no reference sign in the patent)
    ShadowSync = 1010,
    /// 2001
    HandoverRequest = 2001,
    /// 2002
    HandoverRequestAck = 2002,
    /// 2003
    HandoverCommand = 2003,
    /// 2004
    RelocateRequest = 2004,
    /// 2005
    RelocateConfirm = 2005,
    /// 2006
    HandoverConfirm = 2006,
    /// 3001
    UeContextRelease = 3001,
    /// 3002
    HandoverCancel = 3002,
    /// 3003
    Attach = 3003,
    /// 3004
    HandoverComplete = 3004,
    /// 3005
    RadioReport = 3005,
    /// 3006
    Heartbeat = 3006,
    /// 3007
    HeartbeatAck = 3007,
    /// 3010
    ServiceInput = 3010,
    /// 3011
    ServiceOutput = 3011,
    /// 3012
    Probe = 3012,
    /// 3013
    ProbeReply = 3013,
    /// 3014
    Reattach = 3014,
    /// 3015
    ResendFrom = 3015,
    /// 3016
    InputRun = 3016,
    /// 3017
    OutputRun = 3017,
    /// 3020
    RouteUpdate = 3020,
    /// 3021
    RouteQuery = 3021,
    /// 3030
    Deploy = 3030,
    /// 3031
    Instantiate = 3031,
    /// 3032
    ShadowReady = 3032,
    /// 3033
    RelocationDone = 3033,
    /// 3034
    LoadReport = 3034,
    /// 3035
    CatchUp = 3035,
    /// 3036
    SyncAck = 3036,
    /// 3037
    ShadowRefused = 3037,
    /// 3040
    Hello = 3040,
    /// 3050
    ServiceHandoff = 3050,
    /// 3051
    HandoffAck = 3051,
    /// 3052
    ServerStatus = 3052,
    /// 3053
    RejoinOrder = 3053,
    /// 3054
    Relayed = 3054,
}

impl Message {
    /// The lane the message travels on.
    #[must_use]
    pub const fn lane(&self) -> Lane {
        match self {
            Self::ShadowTransfer(_) | Self::CatchUp(_) => Lane::Bulk,
            Self::ShadowSync(s) => match s.body {
                SyncBody::Inputs(_) => Lane::Control,
                SyncBody::Delta(_) => Lane::Bulk,
            },
            _ => Lane::Control,
        }
    }

    /// Bytes of state or input data the message carries (a lower bound of its size).
    #[must_use]
    pub fn bulk_len(&self) -> usize {
        let body = |b: &SyncBody| match b {
            SyncBody::Inputs(v) => v.iter().map(|i| i.payload.len() + 12).sum(),
            SyncBody::Delta(d) => d.chunks.iter().map(|c| c.data.len() + 8).sum(),
        };
        match self {
            Self::ShadowTransfer(m) => m.data.len(),
            Self::ShadowSync(m) => body(&m.body),
            Self::CatchUp(m) => body(&m.body),
            _ => 0,
        }
    }

    /// Whether the message is UE service traffic (inputs, answers, probes): what the radio
    /// may lose, and what traces and journals leave out.
    #[must_use]
    pub const fn is_service_traffic(&self) -> bool {
        matches!(
            self,
            Self::ServiceInput(_)
                | Self::ServiceOutput(_)
                | Self::InputRun(_)
                | Self::OutputRun(_)
                | Self::Probe(_)
                | Self::ProbeReply(_)
                | Self::ResendFrom(_)
        )
    }

    /// Whether the message moves service state (counted as shadow/relocation bytes).
    #[must_use]
    pub const fn is_state_transfer(&self) -> bool {
        matches!(
            self,
            Self::ShadowTransfer(_) | Self::ShadowSync(_) | Self::CatchUp(_)
        )
    }
}

fn append<T: Serialize>(m: &T, ty: u16, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    postcard::serialize_with_flavor(m, Append(out)).map_err(|e| DecodeError::Malformed {
        ty,
        reason: e.to_string(),
    })
}

/// Postcard output appended to a `Vec`: byte strings (payloads, state chunks) go in with
/// one `extend_from_slice`, where postcard's own `Extend` flavor extends from an iterator
/// over their bytes, a loop the compiler may or may not turn into one copy.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(ty: u16, payload: &'a [u8]) -> Result<T, DecodeError> {
    let (v, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| DecodeError::Malformed {
            ty,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellId, ServiceId, UeId};

    /// The flavor writes what postcard's own serializer writes, after what `out` held.
    #[test]
    fn append_writes_the_bytes_postcard_writes() {
        let run = InputRun {
            ue: UeId(7),
            service: ServiceId(7),
            via: CellId(300),
            inputs: (1..=20u8)
                .map(|i| InputRecord {
                    seq: 1_000 * u64::from(i),
                    payload: vec![i; usize::from(i) * 13],
                })
                .collect(),
            answered_below: 12_345,
        };
        let mut out = b"head".to_vec();
        append(&run, InputRun::TYPE_CODE, &mut out).expect("encodes");
        let mut want = b"head".to_vec();
        want.extend(postcard::to_allocvec(&run).expect("encodes"));
        assert_eq!(out, want);
    }
}
