//! Errors of the codec.

use thiserror::Error;

/// Why bytes could not be decoded into a [`crate::Message`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed to finish the frame.
    #[error("incomplete frame: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes at least.
        needed: usize,
    },
    /// The frame does not start with `ES`.
    #[error("bad magic {0:02x?}, not an edgeshift frame")]
    BadMagic([u8; 2]),
    /// A codec version this build does not speak.
    #[error("unsupported codec version {0} (this build speaks {ours})", ours = crate::codec::VERSION)]
    UnsupportedVersion(u8),
    /// Reserved flag bits set.
    #[error("reserved flags set: {0:#04x}")]
    BadFlags(u8),
    /// Unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u16),
    /// Payload larger than allowed.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced or actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload does not parse as the announced type.
    #[error("malformed payload for message type {ty}: {reason}")]
    Malformed {
        /// Announced type.
        ty: u16,
        /// What the payload decoder said.
        reason: String,
    },
    /// The payload parsed but left bytes over.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
}
