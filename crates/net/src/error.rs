//! Errors of the network layer.

use std::net::SocketAddr;

use edgeshift_proto::{DecodeError, NodeId};

/// What went wrong on a socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a frame of ours.
    #[error("bad frame: {0}")]
    Frame(#[from] DecodeError),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received of the frame.
        got: usize,
        /// Bytes the frame announced.
        want: usize,
    },
    /// The peer announced a frame larger than it may send now (before its Hello, only a
    /// Hello fits).
    #[error("frame of {len} bytes announced, at most {limit} allowed here")]
    FrameTooLarge {
        /// The announced payload length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer stopped sending in the middle of a frame.
    #[error("no progress within a frame for {0:?}")]
    Stalled(std::time::Duration),
    /// TLS could not be set up, or a peer's handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The peer's certificate does not name the node its Hello claims to be.
    #[error("the peer's certificate is not for {0}")]
    NotCertified(NodeId),
    /// The first frame was not a [`Hello`](edgeshift_proto::Hello).
    #[error("expected a Hello first, got {0}")]
    NoHello(&'static str),
    /// The peer addressed a node this process does not host.
    #[error("{0} is not hosted here")]
    NotHere(NodeId),
    /// The peer sent no Hello in time.
    #[error("no Hello within {0:?}")]
    HelloTimeout(std::time::Duration),
    /// No address is known for a node.
    #[error("no address known for {0}")]
    UnknownPeer(NodeId),
    /// A connection to a port nobody listens on, in the range the kernel picks outgoing
    /// ports from, can connect the socket to itself (TCP simultaneous open).
    #[error("connected to itself at {0} (nothing listens there)")]
    SelfConnect(SocketAddr),
    /// The queue towards a peer holds too much already (the peer is away or too slow);
    /// the message was not queued.
    #[error("queue to {to} is full ({queued} bytes waiting); the peer is away or too slow")]
    Backlog {
        /// The peer.
        to: NodeId,
        /// Bytes waiting.
        queued: u64,
    },
    /// A message could not be encoded.
    #[error("cannot encode {name}: {source}")]
    Encode {
        /// The message type.
        name: &'static str,
        /// Why.
        source: DecodeError,
    },
}
