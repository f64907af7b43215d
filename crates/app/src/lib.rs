//! A client for the UE's application gateway (`docs/app-protocol.md`): each input is a
//! 4-byte big-endian length and the bytes, each answer likewise; the n-th answer answers
//! the n-th input, exactly once, across handovers and relocations.
//!
//! Blocking ([`Client`]) and async on tokio ([`AsyncClient`]); both can pipeline (send
//! many inputs before reading answers) or [`Client::call`] one at a time.
//!
//! ```no_run
//! use edgeshift_app::Client;
//!
//! let mut app = Client::connect("127.0.0.1:7300")?;
//! let answer = app.call(b"move left")?;
//! app.send(b"move right")?;
//! let next = app.recv()?;
//! let rest = app.finish()?; // answers still due, then the UE closes
//! # let _ = (answer, next, rest);
//! # Ok::<(), edgeshift_app::AppError>(())
//! ```
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest message either side sends.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The connection failed.
    #[error("application gateway: {0}")]
    Io(#[from] std::io::Error),
    /// A message over [`MAX_MESSAGE`].
    #[error("a message of {0} bytes is over the 16 MiB limit")]
    TooLarge(usize),
    /// The UE closed the connection with answers still due.
    #[error("the UE closed the connection with {0} answers still due")]
    Closed(u64),
    /// A call while pipelined inputs still wait for their answers (read them first).
    #[error("{0} earlier inputs are still waiting for their answers; recv them first")]
    Pending(u64),
}

fn header(len: usize) -> Result<[u8; 4], AppError> {
    if len > MAX_MESSAGE {
        return Err(AppError::TooLarge(len));
    }
    Ok(u32::try_from(len)
        .map_err(|_| AppError::TooLarge(len))?
        .to_be_bytes())
}

fn checked_len(h: [u8; 4]) -> Result<usize, AppError> {
    let len = u32::from_be_bytes(h) as usize;
    if len > MAX_MESSAGE {
        return Err(AppError::TooLarge(len));
    }
    Ok(len)
}

/// A blocking connection to a UE's application gateway.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    due: u64,
}

impl Client {
    /// Connects to the gateway at `addr`.
    ///
    /// # Errors
    /// The connection cannot be made.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Self, AppError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, due: 0 })
    }

    /// Sends one input; its answer comes with a later [`Client::recv`].
    ///
    /// # Errors
    /// An input over 16 MiB, or the connection failed.
    pub fn send(&mut self, input: &[u8]) -> Result<(), AppError> {
        let h = header(input.len())?;
        self.stream.write_all(&h)?;
        self.stream.write_all(input)?;
        self.due += 1;
        Ok(())
    }

    /// The answer to the oldest input not answered yet.
    ///
    /// # Errors
    /// The connection closed or failed.
    pub fn recv(&mut self) -> Result<Vec<u8>, AppError> {
        let mut h = [0u8; 4];
        if let Err(e) = self.stream.read_exact(&mut h) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                AppError::Closed(self.due)
            } else {
                e.into()
            });
        }
        let mut answer = vec![0; checked_len(h)?];
        self.stream.read_exact(&mut answer)?;
        self.due = self.due.saturating_sub(1);
        Ok(answer)
    }

    /// Sends `input` and waits for its answer.
    ///
    /// # Errors
    /// [`AppError::Pending`] while pipelined inputs wait for their answers; see also
    /// [`Client::send`] and [`Client::recv`].
    pub fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, AppError> {
        if self.due > 0 {
            return Err(AppError::Pending(self.due));
        }
        self.send(input)?;
        self.recv()
    }

    /// Inputs sent and not answered yet.
    #[must_use]
    pub fn due(&self) -> u64 {
        self.due
    }

    /// Tells the UE there are no more inputs and returns the answers still due; the UE
    /// then ends its run.
    ///
    /// # Errors
    /// The connection failed before every answer arrived.
    pub fn finish(mut self) -> Result<Vec<Vec<u8>>, AppError> {
        self.stream.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        while self.due > 0 {
            rest.push(self.recv()?);
        }
        Ok(rest)
    }
}

/// An async connection to a UE's application gateway, on tokio.
#[derive(Debug)]
pub struct AsyncClient {
    stream: tokio::net::TcpStream,
    due: u64,
}

impl AsyncClient {
    /// Connects to the gateway at `addr`.
    ///
    /// # Errors
    /// The connection cannot be made.
    pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> Result<Self, AppError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, due: 0 })
    }

    /// Sends one input.
    ///
    /// # Errors
    /// An input over 16 MiB, or the connection failed.
    pub async fn send(&mut self, input: &[u8]) -> Result<(), AppError> {
        let h = header(input.len())?;
        self.stream.write_all(&h).await?;
        self.stream.write_all(input).await?;
        self.due += 1;
        Ok(())
    }

    /// The answer to the oldest input not answered yet.
    ///
    /// # Errors
    /// The connection closed or failed.
    pub async fn recv(&mut self) -> Result<Vec<u8>, AppError> {
        let mut h = [0u8; 4];
        if let Err(e) = self.stream.read_exact(&mut h).await {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                AppError::Closed(self.due)
            } else {
                e.into()
            });
        }
        let mut answer = vec![0; checked_len(h)?];
        self.stream.read_exact(&mut answer).await?;
        self.due = self.due.saturating_sub(1);
        Ok(answer)
    }

    /// Sends `input` and waits for its answer.
    ///
    /// # Errors
    /// [`AppError::Pending`] while pipelined inputs wait for their answers; see also
    /// [`AsyncClient::send`] and [`AsyncClient::recv`].
    pub async fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, AppError> {
        if self.due > 0 {
            return Err(AppError::Pending(self.due));
        }
        self.send(input).await?;
        self.recv().await
    }

    /// Ends the inputs and returns the answers still due.
    ///
    /// # Errors
    /// The connection failed before every answer arrived.
    pub async fn finish(mut self) -> Result<Vec<Vec<u8>>, AppError> {
        self.stream.shutdown().await?;
        let mut rest = Vec::new();
        while self.due > 0 {
            rest.push(self.recv().await?);
        }
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway stand-in that answers each input with its reversal.
    fn echo_reversed() -> std::net::SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut h = [0u8; 4];
            while s.read_exact(&mut h).is_ok() {
                let mut m = vec![0; u32::from_be_bytes(h) as usize];
                s.read_exact(&mut m).expect("body");
                m.reverse();
                s.write_all(&h)
                    .and_then(|()| s.write_all(&m))
                    .expect("answer");
            }
        });
        addr
    }

    #[test]
    fn blocking_calls_pipelines_and_finishes() {
        let mut c = Client::connect(echo_reversed()).expect("connects");
        assert_eq!(c.call(b"abc").expect("call"), b"cba");
        for i in 0..10u8 {
            c.send(&[i, 1]).expect("send");
        }
        assert_eq!(c.due(), 10);
        assert_eq!(c.recv().expect("recv"), [1, 0]);
        let rest = c.finish().expect("finish");
        assert_eq!(rest.len(), 9);
        assert_eq!(rest[8], [1, 9]);
        assert!(matches!(
            header(MAX_MESSAGE + 1),
            Err(AppError::TooLarge(_))
        ));
    }

    #[test]
    fn async_calls_and_finishes() {
        let addr = echo_reversed();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut c = AsyncClient::connect(addr).await.expect("connects");
            c.send(b"xy").await.expect("send");
            assert!(matches!(c.call(b"12").await, Err(AppError::Pending(1))));
            assert_eq!(c.recv().await.expect("recv"), b"yx");
            assert_eq!(c.call(b"12").await.expect("call"), b"21");
            c.send(b"pq").await.expect("send");
            assert_eq!(c.finish().await.expect("finish"), [b"qp".to_vec()]);
        });
    }
}
