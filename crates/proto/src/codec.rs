//! The versioned binary wire format.
//!
//! ```text
//! offset size field
//!      0    2 magic        b"ES"
//!      2    1 version      6
//!      3    1 flags        0 (reserved; receivers reject other values)
//!      4    2 type         message number, big endian (1002 … 2006, 3001 …)
//!      6    4 length       payload length in bytes, big endian, at most MAX_PAYLOAD
//!     10    n payload      the message body in postcard encoding
//! ```
//!
//! Decoding never panics: any byte string yields a message or a [`DecodeError`].

use bytes::Bytes;

use crate::envelope::parse;
use crate::error::DecodeError;
use crate::message::ShadowTransferRef;
use crate::{Message, ShadowTransfer};

/// Frame magic.
pub const MAGIC: [u8; 2] = *b"ES";
/// The codec version this build writes and reads.
pub const VERSION: u8 = 9;
/// Header length in bytes.
pub const HEADER_LEN: usize = 10;
/// Largest accepted payload (64 MiB); state travels in smaller chunks.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// Appends one frame holding `msg` to `out`.
///
/// # Errors
/// Fails only if the payload exceeds [`MAX_PAYLOAD`].
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&msg.type_code().to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    if let Err(e) = msg.encode_payload(out) {
        out.truncate(start); // no half-written frame after the ones before
        return Err(e);
    }
    let len = out.len() - start - HEADER_LEN;
    if len > MAX_PAYLOAD {
        out.truncate(start);
        return Err(DecodeError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    let len32 = u32::try_from(len).map_err(|_| DecodeError::TooLarge {
        len,
        max: MAX_PAYLOAD,
    })?;
    out[start + 6..start + 10].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Encodes one frame.
///
/// # Errors
/// Fails only if the payload exceeds [`MAX_PAYLOAD`].
pub fn encode(msg: &Message) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 128 + msg.bulk_len());
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Length of the frame [`encode`] makes of `msg` (header and payload), computed without
/// encoding it: what a message costs on the wire, for accounting.
#[must_use]
pub fn frame_len(msg: &Message) -> usize {
    HEADER_LEN + msg.payload_len()
}

/// Reads the header at the start of `buf`: the message type and the payload length.
///
/// # Errors
/// [`DecodeError::Incomplete`] if fewer than [`HEADER_LEN`] bytes are present; other
/// variants for a header that is not ours.
pub fn decode_header(buf: &[u8]) -> Result<(u16, usize), DecodeError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(DecodeError::Incomplete {
            needed: HEADER_LEN - buf.len(),
        });
    };
    if h[..2] != MAGIC {
        return Err(DecodeError::BadMagic([h[0], h[1]]));
    }
    if h[2] != VERSION {
        return Err(DecodeError::UnsupportedVersion(h[2]));
    }
    if h[3] != 0 {
        return Err(DecodeError::BadFlags(h[3]));
    }
    let ty = u16::from_be_bytes([h[4], h[5]]);
    let len = u32::from_be_bytes([h[6], h[7], h[8], h[9]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    Ok((ty, len))
}

/// Decodes the frame at the start of `buf`, returning the message and the bytes used.
///
/// # Errors
/// [`DecodeError::Incomplete`] when more bytes are needed (streams: read more and retry);
/// any other variant means the peer sent something that is not a valid frame.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    let (ty, len) = decode_header(buf)?;
    let total = HEADER_LEN + len;
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Err(DecodeError::Incomplete {
            needed: total - buf.len(),
        });
    };
    let msg = Message::decode_payload(ty, payload)?;
    Ok((msg, total))
}

/// Decodes a buffer that must hold exactly one frame, as [`decode_exact`], but without
/// copying state: the chunk of a 1004 is a slice of `frame`, which stays alive as long as
/// the message does. This is how a receiver takes a transfer in at memory speed.
///
/// # Errors
/// As [`decode_exact`].
pub fn decode_shared(frame: &Bytes) -> Result<Message, DecodeError> {
    let (ty, len) = decode_header(frame)?;
    let total = HEADER_LEN + len;
    let Some(payload) = frame.get(HEADER_LEN..total) else {
        return Err(DecodeError::Incomplete {
            needed: total - frame.len(),
        });
    };
    let msg = if ty == ShadowTransfer::TYPE_CODE {
        let m: ShadowTransferRef<'_> = parse(ty, payload)?;
        Message::ShadowTransfer(m.share(frame))
    } else {
        Message::decode_payload(ty, payload)?
    };
    if frame.len() > total {
        return Err(DecodeError::TrailingBytes(frame.len() - total));
    }
    Ok(msg)
}

/// Decodes a buffer that must hold exactly one frame.
///
/// # Errors
/// As [`decode`], plus [`DecodeError::TrailingBytes`].
pub fn decode_exact(buf: &[u8]) -> Result<Message, DecodeError> {
    let (msg, used) = decode(buf)?;
    if used != buf.len() {
        return Err(DecodeError::TrailingBytes(buf.len() - used));
    }
    Ok(msg)
}
