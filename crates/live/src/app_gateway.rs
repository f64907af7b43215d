//! The application gateway of a UE daemon: one local application connects over TCP and
//! speaks `docs/app-protocol.md` (each message a 4-byte big-endian length, then that many
//! bytes; every input gets exactly one answer, in order). Its inputs go to the UE role
//! (`UeClient::handle_app_input`), the role's in-order answers come back here.
//!
//! The socket work runs in its own task; the UE agent takes inputs with
//! [`AppGateway::take_inputs`] when [`AppGateway::wake`] fires and hands answers to
//! [`AppGateway::answer`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

/// Largest input an application may send (a service's buffer is smaller anyway).
pub const MAX_MESSAGE: usize = 16 << 20;

const WAITING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSED: u8 = 2;

#[derive(Debug, Default)]
struct Shared {
    inputs: Mutex<VecDeque<Vec<u8>>>,
    state: AtomicU8,
    wake: Arc<Notify>,
}

/// Where the application's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppState {
    /// No application yet.
    Waiting,
    /// Connected.
    Connected,
    /// It closed its connection (or broke the protocol): no more inputs.
    Closed,
}

/// One application's connection to a UE.
#[derive(Debug)]
pub struct AppGateway {
    shared: Arc<Shared>,
    answers: mpsc::UnboundedSender<Vec<u8>>,
    addr: SocketAddr,
}

impl AppGateway {
    /// Listens on `addr` and serves the first application that connects.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn listen(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (answers, rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(listener, shared.clone(), rx));
        info!(%addr, "waiting for the application");
        Ok(Self {
            shared,
            answers,
            addr,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fires when inputs arrive or the connection changes.
    #[must_use]
    pub fn wake(&self) -> Arc<Notify> {
        self.shared.wake.clone()
    }

    /// The connection's state.
    #[must_use]
    pub fn state(&self) -> AppState {
        match self.shared.state.load(Ordering::Acquire) {
            WAITING => AppState::Waiting,
            CONNECTED => AppState::Connected,
            _ => AppState::Closed,
        }
    }

    /// Whether inputs are waiting.
    #[must_use]
    pub fn has_inputs(&self) -> bool {
        !self.lock().is_empty()
    }

    /// The inputs received so far, in order.
    pub fn take_inputs(&self) -> Vec<Vec<u8>> {
        self.lock().drain(..).collect()
    }

    /// Sends the answer to the next input.
    pub fn answer(&self, answer: Vec<u8>) {
        // The writer is gone only with the connection; the answer has nobody to go to.
        let _ = self.answers.send(answer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.shared
            .inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut answers: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let closed = |why: &str| {
        info!("application: {why}");
        shared.state.store(CLOSED, Ordering::Release);
        shared.wake.notify_one();
    };
    let (stream, peer) = match listener.accept().await {
        Ok(s) => s,
        Err(e) => return closed(&format!("accept failed: {e}")),
    };
    drop(listener);
    info!(%peer, "application connected");
    let _ = stream.set_nodelay(true);
    shared.state.store(CONNECTED, Ordering::Release);
    shared.wake.notify_one();
    let (mut rd, wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut wr = BufWriter::new(wr);
        while let Some(a) = answers.recv().await {
            let len = u32::try_from(a.len()).unwrap_or(u32::MAX);
            let ok = wr.write_all(&len.to_be_bytes()).await.is_ok()
                && wr.write_all(&a).await.is_ok()
                && wr.flush().await.is_ok();
            if !ok {
                break;
            }
        }
    });
    // An error reading the length is the end of the stream: the application is done.
    while let Ok(len) = rd.read_u32().await {
        let len = len as usize;
        if len > MAX_MESSAGE {
            warn!(
                len,
                "application sent a message over {MAX_MESSAGE} bytes; closing"
            );
            break;
        }
        let mut payload = vec![0; len];
        if rd.read_exact(&mut payload).await.is_err() {
            warn!("application closed in the middle of a message; that message is dropped");
            break;
        }
        shared
            .inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(payload);
        shared.wake.notify_one();
    }
    closed("closed its connection");
    // Answers still due keep flowing until the agent drops the gateway.
    let _ = writer.await;
}
