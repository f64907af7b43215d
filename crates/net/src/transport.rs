//! TCP transport: a listener for the local nodes, and one outgoing connection per
//! (sender, receiver, lane), each with its own queue, pacing and reconnect loop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::BufMut;
use edgeshift_proto::{Bytes, Hello, Lane, Message, NodeId, codec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::error::NetError;
use crate::link::{LinkEmulation, Pacer};
use crate::tls::{Tls, certifies, server_name};

/// Where each remote node listens.
pub type AddressBook = BTreeMap<NodeId, SocketAddr>;

/// Messages for the local nodes, in arrival order per connection.
pub type Inbox = mpsc::Receiver<Incoming>;

/// Messages the inbox holds before the connections stop reading: their peers then wait
/// in TCP's flow control instead of this process's memory (at most this many 1 MiB
/// state chunks).
pub const INBOX_CAPACITY: usize = 256;

/// A message that arrived for a local node.
#[derive(Debug)]
pub struct Incoming {
    /// The sending node (from its connection's Hello).
    pub from: NodeId,
    /// The local node it is for.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}

/// Counters of one transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames received from peers.
    pub frames_in: u64,
    /// Frames written to peers.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Peers dropped for bad input (garbage, truncated frames, no Hello).
    pub peer_errors: u64,
    /// Outgoing connections (re)established.
    pub connects: u64,
    /// UE traffic frames dropped by the loss emulator.
    pub emulated_losses: u64,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    peer_errors: AtomicU64,
    connects: AtomicU64,
    emulated_losses: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// How long an accepted connection may take to introduce itself.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest payload before the peer introduced itself: a Hello is a few bytes.
const HELLO_LIMIT: usize = 256;
/// Connections a listener serves at once; more are refused until some close.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends nothing for this long is closed (its sender reconnects when it
/// has something to say).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Inside a frame, each read must make progress within this time.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Room a frame's buffer gets before its payload arrives. Small: an allocator that backs
/// large blocks with 2 MiB pages (mimalloc does) makes the first byte of each announced
/// frame cost a whole page; a 1 MiB state chunk grows to its size in four doublings.
const FIRST_READ: usize = 64 << 10;
const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Default bound of the bytes queued towards one peer on one lane: room for the largest
/// state transfer (1 GiB) twice over, and a bound on what an absent peer costs in memory.
pub const MAX_BACKLOG: u64 = 2 << 30;
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Longest wait between tries of a node with alternates (replicas, one of which leads).
const BACKOFF_ALTERNATES: Duration = Duration::from_millis(100);

struct Outgoing {
    frame: Vec<u8>,
    queued: tokio::time::Instant,
    /// Held up by injected retransmissions.
    delay: Duration,
}

type LinkKey = (NodeId, NodeId, Lane);

/// The sending end of one connection's queue.
struct LinkTx {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicU64>,
}

impl LinkTx {
    fn spawn(inner: &Arc<Inner>, key: LinkKey) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicU64::new(0));
        lock(&inner.tasks).spawn(link_task(inner.clone(), key, rx, queued.clone()));
        Self { tx, queued }
    }
}

struct Inner {
    local: BTreeSet<NodeId>,
    addr: SocketAddr,
    book: Mutex<AddressBook>,
    /// Nodes reachable at one of several addresses (a replicated control node, where only
    /// the leader listens): a connection that fails moves the node's book entry on to the
    /// next one.
    alternates: Mutex<BTreeMap<NodeId, Vec<SocketAddr>>>,
    links: Mutex<BTreeMap<LinkKey, LinkTx>>,
    tasks: Mutex<JoinSet<()>>,
    inbox: mpsc::Sender<Incoming>,
    emu: LinkEmulation,
    rng: Mutex<ChaCha8Rng>,
    counters: Counters,
    closing: watch::Sender<bool>,
    max_backlog: AtomicU64,
    tls: Option<Tls>,
    /// Fault injection: the loss probability of a message from a local node to a peer now.
    /// Set once, read on every send without a lock.
    faults: std::sync::OnceLock<FaultFilter>,
}

/// Fault injection on sends: what happens to a message from local node `from` to `to`
/// sent now, given uniform draws in `[0, 1)`: `None` it is lost (a partition), else the
/// time it is held up (TCP's retransmissions over a lossy link); what follows on the same
/// connection waits behind it.
pub type FaultFilter =
    Arc<dyn Fn(NodeId, NodeId, &mut dyn FnMut() -> f64) -> Option<Duration> + Send + Sync>;

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sockets of one process: cheap to clone, shared by every local node.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("addr", &self.inner.addr)
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Listens on `addr` (port 0 picks a free one) for messages to the `local` nodes and
    /// returns the transport with the inbox of their messages. Must run inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// [`NetError::Bind`] if the address cannot be bound.
    pub async fn bind(
        addr: SocketAddr,
        local: impl IntoIterator<Item = NodeId>,
        book: AddressBook,
        emu: LinkEmulation,
    ) -> Result<(Self, Inbox), NetError> {
        Self::bind_tls(addr, local, book, emu, None).await
    }

    /// [`Transport::bind`] with mutual TLS on every connection (`None`: plaintext): peers
    /// must present a certificate of the deployment's CA naming the node their Hello
    /// claims, and listeners one naming the node a connection is for.
    ///
    /// # Errors
    /// [`NetError::Bind`] if the address cannot be bound.
    pub async fn bind_tls(
        addr: SocketAddr,
        local: impl IntoIterator<Item = NodeId>,
        book: AddressBook,
        emu: LinkEmulation,
        tls: Option<Tls>,
    ) -> Result<(Self, Inbox), NetError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NetError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let (closing, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            local: local.into_iter().collect(),
            addr,
            book: Mutex::new(book),
            alternates: Mutex::new(BTreeMap::new()),
            links: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            inbox: tx,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(emu.seed)),
            emu,
            counters: Counters::default(),
            closing,
            max_backlog: AtomicU64::new(MAX_BACKLOG),
            tls,
            faults: std::sync::OnceLock::new(),
        });
        // Subscribed before the task runs, so an early shutdown is never missed.
        let closing = inner.closing.subscribe();
        tokio::spawn(accept_loop(inner.clone(), listener, closing));
        Ok((Self { inner }, rx))
    }

    /// The address the listener is bound to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The nodes hosted here.
    #[must_use]
    pub fn local_nodes(&self) -> &BTreeSet<NodeId> {
        &self.inner.local
    }

    /// Bounds the bytes queued towards one peer on one lane (default [`MAX_BACKLOG`]);
    /// beyond it [`Transport::send`] fails with [`NetError::Backlog`].
    pub fn set_backlog_limit(&self, bytes: u64) {
        self.inner.max_backlog.store(bytes, Ordering::Relaxed);
    }

    /// Learns (or changes) where `node` listens.
    pub fn add_peer(&self, node: NodeId, addr: SocketAddr) {
        lock(&self.inner.book).insert(node, addr);
    }

    /// `node` listens at one of `addrs` at a time (the leader of replicated control
    /// nodes): connections try them in turn, moving on when one cannot be reached.
    pub fn add_alternates(&self, node: NodeId, addrs: Vec<SocketAddr>) {
        if let Some(first) = addrs.first() {
            lock(&self.inner.book).entry(node).or_insert(*first);
            lock(&self.inner.alternates).insert(node, addrs);
        }
    }

    /// Queues `msg` from local node `from` to `to`. Messages between local nodes skip the
    /// sockets. Never blocks: each connection has its own queue, drained by its own task,
    /// which reconnects with backoff when the peer is away.
    ///
    /// # Errors
    /// [`NetError::UnknownPeer`] if no address is known for `to`;
    /// [`NetError::Encode`] if the message is too large for a frame.
    pub fn send(&self, from: NodeId, to: NodeId, msg: Message) -> Result<(), NetError> {
        let inner = &self.inner;
        if inner.local.contains(&to) {
            // The receiver lives in this process; if it is gone we are shutting down.
            return match inner.inbox.try_send(Incoming { from, to, msg }) {
                Err(mpsc::error::TrySendError::Full(_)) => Err(NetError::Backlog {
                    to,
                    queued: INBOX_CAPACITY as u64,
                }),
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            };
        }
        let mut delay = Duration::ZERO;
        if let Some(f) = inner.faults.get() {
            match f(from, to, &mut || lock(&inner.rng).random::<f64>()) {
                Some(d) => delay = d,
                None => {
                    bump(&inner.counters.emulated_losses, 1);
                    return Ok(());
                }
            }
        }
        if inner.emu.radio_loss > 0.0 && is_radio_traffic(from, to, &msg) {
            let lost = lock(&inner.rng).random::<f64>() < inner.emu.radio_loss;
            if lost {
                bump(&inner.counters.emulated_losses, 1);
                return Ok(());
            }
        }
        if !lock(&inner.book).contains_key(&to) {
            return Err(NetError::UnknownPeer(to));
        }
        let frame = codec::encode(&msg).map_err(|source| NetError::Encode {
            name: msg.name(),
            source,
        })?;
        let key = (from, to, msg.lane());
        let out = Outgoing {
            frame,
            queued: tokio::time::Instant::now(),
            delay,
        };
        let mut links = lock(&inner.links);
        let link = links
            .entry(key)
            .or_insert_with(|| LinkTx::spawn(inner, key));
        let len = out.frame.len() as u64;
        let queued = link.queued.load(Ordering::Relaxed);
        if queued + len > inner.max_backlog.load(Ordering::Relaxed) {
            return Err(NetError::Backlog { to, queued });
        }
        link.queued.fetch_add(len, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(out)) = link.tx.send(out) {
            // The link task ended (shutdown raced us); start a fresh one.
            let fresh = LinkTx::spawn(inner, key);
            fresh.queued.fetch_add(len, Ordering::Relaxed);
            let _ = fresh.tx.send(out);
            links.insert(key, fresh);
        }
        Ok(())
    }

    /// Bytes queued on the link from `from` to `to` on `lane` and not yet written: how far
    /// a sender is ahead of the wire (0 for a receiver in this process, which is handed
    /// each message at once).
    #[must_use]
    pub fn queued(&self, from: NodeId, to: NodeId, lane: Lane) -> u64 {
        lock(&self.inner.links)
            .get(&(from, to, lane))
            .map_or(0, |l| l.queued.load(Ordering::Relaxed))
    }

    /// Opens the control-lane connection from every local node to every known remote
    /// node now, so that the first message after a handover does not pay for a TCP
    /// handshake. Connections to absent peers keep retrying in the background.
    pub fn warm_up(&self) {
        let inner = &self.inner;
        let peers: Vec<NodeId> = lock(&inner.book).keys().copied().collect();
        let mut links = lock(&inner.links);
        for from in &inner.local {
            for to in peers.iter().filter(|p| !inner.local.contains(p)) {
                let key = (*from, *to, Lane::Control);
                links
                    .entry(key)
                    .or_insert_with(|| LinkTx::spawn(inner, key));
            }
        }
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> NetStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NetStats {
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            peer_errors: get(&c.peer_errors),
            connects: get(&c.connects),
            emulated_losses: get(&c.emulated_losses),
        }
    }

    /// Injects faults: every send asks `filter` whether the message is lost or held up
    /// (the demo's partitions and lossy links). Set once, before the first send; a second
    /// filter is refused (returned).
    ///
    /// # Errors
    /// The filter, if one was set already.
    pub fn set_fault_filter(&self, filter: FaultFilter) -> Result<(), FaultFilter> {
        self.inner.faults.set(filter)
    }

    /// Closes every connection and the listener at once, dropping whatever is queued:
    /// what a crash looks like to the peers (fault injection in one process).
    pub fn abort(&self) {
        let inner = &self.inner;
        inner.closing.send_replace(true);
        lock(&inner.links).clear();
        lock(&inner.tasks).abort_all();
    }

    /// Stops accepting, then gives the outgoing queues up to `grace` to drain before
    /// closing every connection.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.closing.send_replace(true);
        lock(&inner.links).clear();
        let mut tasks = std::mem::take(&mut *lock(&inner.tasks));
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(left = tasks.len(), "outgoing queues not drained in time");
            tasks.abort_all();
        }
    }
}

fn is_radio_traffic(from: NodeId, to: NodeId, msg: &Message) -> bool {
    let radio = matches!(from, NodeId::Ue(_)) || matches!(to, NodeId::Ue(_));
    radio && msg.is_service_traffic()
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, mut closing: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        bump(&inner.counters.peer_errors, 1);
                        warn!(%peer, max = MAX_CONNECTIONS, "too many connections; refusing");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let closing = inner.closing.subscribe();
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        serve(inner, stream, peer, closing).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
            },
            () = closed(&mut closing) => return,
        }
    }
}

async fn closed(rx: &mut watch::Receiver<bool>) {
    // An error means the transport is gone, which is closing too.
    let _ = rx.wait_for(|c| *c).await.map(|_| ());
}

/// Reads one frame of at most `limit` payload bytes; `Ok(None)` on a clean end of stream
/// between frames. The buffer grows as bytes arrive, never to the announced length up front.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Message>, NetError> {
    let mut buf = vec![0u8; codec::HEADER_LEN];
    let mut got = 0;
    while got < buf.len() {
        let n = progress(got > 0, r.read(&mut buf[got..])).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(NetError::Truncated {
                    got,
                    want: codec::HEADER_LEN,
                })
            };
        }
        got += n;
    }
    let (_, len) = codec::decode_header(&buf)?;
    if len > limit {
        return Err(NetError::FrameTooLarge { len, limit });
    }
    let want = codec::HEADER_LEN + len;
    // Room for the first 64 KiB at once; beyond it the buffer doubles, so it never holds
    // more than twice what has arrived: an announced length costs memory only as its
    // bytes come. Reads go into the spare room, which is neither zeroed nor copied again.
    buf.reserve_exact(want.min(FIRST_READ) - got);
    while got < want {
        if buf.len() == buf.capacity() {
            buf.reserve_exact(buf.capacity().min(want - got));
        }
        let room = (buf.capacity() - got).min(want - got);
        let n = progress(true, r.read_buf(&mut (&mut buf).limit(room))).await?;
        if n == 0 {
            return Err(NetError::Truncated { got, want });
        }
        got += n;
    }
    // The frame's buffer becomes the message's: a 1004's chunk is not copied again.
    Ok(Some(codec::decode_shared(&Bytes::from(buf))?))
}

/// One read: within a frame it must make progress in [`STALL_TIMEOUT`].
async fn progress(
    in_frame: bool,
    read: impl Future<Output = std::io::Result<usize>>,
) -> Result<usize, NetError> {
    if in_frame {
        match tokio::time::timeout(STALL_TIMEOUT, read).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(NetError::Stalled(STALL_TIMEOUT)),
        }
    } else {
        Ok(read.await?)
    }
}

async fn serve(
    inner: Arc<Inner>,
    stream: TcpStream,
    peer: SocketAddr,
    closing: watch::Receiver<bool>,
) {
    let Some(tls) = inner.tls.clone() else {
        serve_on(inner, stream, peer, closing, None).await;
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let stream = match tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            bump(&inner.counters.peer_errors, 1);
            warn!(%peer, error = %e, "TLS handshake failed; dropping peer");
            return;
        }
        Err(_) => {
            bump(&inner.counters.peer_errors, 1);
            warn!(%peer, "no TLS handshake within {HELLO_TIMEOUT:?}; dropping peer");
            return;
        }
    };
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    serve_on(inner, stream, peer, closing, Some(cert)).await;
}

/// Serves one connection. `cert`: `None` without TLS, else the peer's certificate, which
/// must name the node its Hello claims.
async fn serve_on<S: AsyncRead + Unpin>(
    inner: Arc<Inner>,
    stream: S,
    peer: SocketAddr,
    mut closing: watch::Receiver<bool>,
    cert: Option<Option<rustls::pki_types::CertificateDer<'static>>>,
) {
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut r, HELLO_LIMIT)).await {
        Err(_) => Err(NetError::HelloTimeout(HELLO_TIMEOUT)),
        Ok(Ok(Some(Message::Hello(h)))) if inner.local.contains(&h.to) => Ok(h),
        Ok(Ok(Some(Message::Hello(h)))) => Err(NetError::NotHere(h.to)),
        Ok(Ok(Some(other))) => Err(NetError::NoHello(other.name())),
        Ok(Ok(None)) => return,
        Ok(Err(e)) => Err(e),
    };
    let hello = hello.and_then(|h| match &cert {
        Some(c) if !c.as_ref().is_some_and(|c| certifies(c, h.from)) => {
            Err(NetError::NotCertified(h.from))
        }
        _ => Ok(h),
    });
    let hello = match hello {
        Ok(h) => h,
        Err(e) => {
            bump(&inner.counters.peer_errors, 1);
            warn!(%peer, error = %e, "dropping peer");
            return;
        }
    };
    debug!(%peer, from = %hello.from, to = %hello.to, lane = ?hello.lane, "peer connected");
    loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut r, codec::MAX_PAYLOAD)) => match f {
                Ok(f) => f,
                Err(_) => {
                    debug!(%peer, from = %hello.from, "idle; closing");
                    return;
                }
            },
            () = closed(&mut closing) => return,
        };
        match frame {
            Ok(Some(msg)) => {
                bump(&inner.counters.frames_in, 1);
                bump(
                    &inner.counters.bytes_in,
                    (codec::HEADER_LEN + msg.bulk_len()) as u64,
                );
                let incoming = Incoming {
                    from: hello.from,
                    to: hello.to,
                    msg,
                };
                // A full inbox stops this connection's reads: backpressure to the peer.
                tokio::select! {
                    r = inner.inbox.send(incoming) => if r.is_err() {
                        return; // The process is shutting down.
                    },
                    () = closed(&mut closing) => return,
                }
            }
            Ok(None) => {
                debug!(%peer, from = %hello.from, "peer closed");
                return;
            }
            Err(e) => {
                bump(&inner.counters.peer_errors, 1);
                warn!(%peer, from = %hello.from, error = %e, "dropping peer");
                return;
            }
        }
    }
}

async fn link_task(
    inner: Arc<Inner>,
    key: LinkKey,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicU64>,
) {
    let (from, to, lane) = key;
    let mut pacer = Pacer::default();
    let mut pending: Option<Vec<u8>> = None;
    let mut backoff = BACKOFF_MIN;
    let mut announced = false;
    loop {
        let addr = lock(&inner.book).get(&to).copied();
        let stream = match addr {
            Some(addr) => TcpStream::connect(addr)
                .await
                .map_err(NetError::from)
                .and_then(|s| not_itself(s, addr)),
            None => Err(NetError::UnknownPeer(to)),
        };
        let stream = match stream {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                connect_tls(&inner, to, s).await
            }
            Err(e) => Err(e),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                if *inner.closing.borrow() {
                    return; // Shutting down: whatever is queued for an absent peer is moot.
                }
                // A replica group is looked through quickly: one of them leads soon.
                let cap = match addr {
                    Some(addr) if next_alternate(&inner, to, addr) => BACKOFF_ALTERNATES,
                    _ => BACKOFF_MAX,
                };
                // Peers start in any order: only a peer that stays away is worth a warning.
                if !announced && backoff >= BACKOFF_MAX {
                    warn!(%from, %to, ?lane, error = %e, "peer unreachable; retrying");
                    announced = true;
                }
                tokio::time::sleep(backoff.min(cap)).await;
                backoff = (backoff * 2).min(cap);
                continue;
            }
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let hello = codec::encode(&Hello { from, to, lane }.into());
        let Ok(hello) = hello else { return };
        if wr.write_all(&hello).await.is_err() {
            tokio::time::sleep(backoff).await;
            continue;
        }
        bump(&inner.counters.connects, 1);
        if announced {
            info!(%from, %to, ?lane, "peer reachable again");
        }
        announced = false;
        backoff = BACKOFF_MIN;
        let mut probe = [0u8; 1];
        loop {
            let frame = match pending.take() {
                Some(f) => f,
                None => {
                    tokio::select! {
                        o = rx.recv() => match o {
                            Some(o) => {
                                let at = pacer.arrival(&inner.emu, o.queued, o.frame.len())
                                    + o.delay;
                                tokio::time::sleep_until(at).await;
                                o.frame
                            }
                            None => {
                                let _ = wr.shutdown().await;
                                return;
                            }
                        },
                        // The peer never writes on this connection: readable means closed.
                        _ = rd.read(&mut probe) => {
                            debug!(%from, %to, ?lane, "peer closed; reconnecting");
                            break;
                        }
                    }
                }
            };
            if let Err(e) = wr.write_all(&frame).await {
                debug!(%from, %to, ?lane, error = %e, "write failed; reconnecting");
                pending = Some(frame);
                break;
            }
            bump(&inner.counters.frames_out, 1);
            bump(&inner.counters.bytes_out, frame.len() as u64);
            queued.fetch_sub(frame.len() as u64, Ordering::Relaxed);
        }
    }
}

/// `to` could not be reached at `failed`: if it has alternates, its book entry moves on
/// to the one after (unless another link moved it already). Returns whether it has.
fn next_alternate(inner: &Inner, to: NodeId, failed: SocketAddr) -> bool {
    let alternates = lock(&inner.alternates);
    let Some(addrs) = alternates.get(&to) else {
        return false;
    };
    if let Some(i) = addrs.iter().position(|a| *a == failed) {
        let mut book = lock(&inner.book);
        if book.get(&to) == Some(&failed) {
            book.insert(to, addrs[(i + 1) % addrs.len()]);
        }
    }
    true
}

/// The TLS client side of a fresh connection to `to`, or the plain connection.
/// Refuses a socket connected to itself: retrying a peer that is down, a connection to
/// its port can be given that very port as its own and then talks to itself, which
/// without TLS would look like a peer that takes every message and answers none.
fn not_itself(s: TcpStream, addr: SocketAddr) -> Result<TcpStream, NetError> {
    match s.local_addr() {
        Ok(local) if local == addr => Err(NetError::SelfConnect(addr)),
        _ => Ok(s),
    }
}

async fn connect_tls(inner: &Inner, to: NodeId, s: TcpStream) -> Result<Box<dyn Io>, NetError> {
    let Some(tls) = &inner.tls else {
        return Ok(Box::new(s));
    };
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let name = server_name(to)?;
    match tokio::time::timeout(HELLO_TIMEOUT, connector.connect(name, s)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(NetError::Tls(format!("handshake with {to}: {e}"))),
        Err(_) => Err(NetError::Tls(format!(
            "no handshake with {to} within {HELLO_TIMEOUT:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_connected_to_itself_is_refused() {
        // Binding the connecting socket to the port it connects to makes the simultaneous
        // open certain instead of a rare accident.
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let addr = sock.local_addr().expect("addr");
        let s = sock.connect(addr).await.expect("connects to itself");
        assert!(matches!(not_itself(s, addr), Err(NetError::SelfConnect(a)) if a == addr));

        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let to = l.local_addr().expect("addr");
        let s = TcpStream::connect(to).await.expect("connects");
        assert!(not_itself(s, to).is_ok());
    }
}
