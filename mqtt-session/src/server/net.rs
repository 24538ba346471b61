//! Transports: TCP, TLS and WebSocket listeners, and the task that runs one connection.
//!
//! A connection task runs the connection's `ServerConnection`: it decodes what arrives,
//! lets the `ServerConnection` check it (and answer PINGREQ, and watch the keep-alive),
//! and hands the rest to the session hub; it passes what the hub sends back through the
//! `ServerConnection` (topic aliases), encodes and writes it; it ends when either side
//! closes.

// The crate is no_std underneath; this module has std.
use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::broker::{BrokerConfig, ConnectionId, Inbound, ServerConnection, Violation};
use crate::time::Clock;
use futures_util::{FutureExt, SinkExt, StreamExt};
use mqtt_codec::{
    BytesMut, DecodeContext, DecodeError, Decoded, Packet, ProtocolVersion, ReasonCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::{debug, error, info, warn};

use super::stats::{Tally, Traffic};

/// What a connection task (or, for `Shutdown`, `main`) hands the broker core.
#[derive(Debug)]
pub(crate) enum Input {
    Opened {
        conn: ConnectionId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        /// The Common Name of the client's TLS certificate, if it presented one.
        identity: Option<String>,
    },
    Packet(ConnectionId, Packet),
    /// The connection's client broke a rule its `ServerConnection` checks.
    Violation(ConnectionId, Violation),
    /// The connection's client stayed silent beyond its keep-alive.
    KeepAliveTimeout(ConnectionId),
    DecodeError(ConnectionId, DecodeError),
    /// Bytes of packets the core sent were written to the transport.
    Written(ConnectionId, usize),
    Closed(ConnectionId),
    /// Everything the connection had received when asked to drain has been handed over.
    Drained(ConnectionId),
    /// The driver closes a connection for a limit of its own (v5: DISCONNECT with the
    /// reason code first).
    Disconnect(ConnectionId, ReasonCode, &'static str),
    /// Messages of the broker's own (`$SYS`), retained QoS 0.
    Own(Vec<mqtt_codec::Publish>),
    Shutdown,
}

/// What the broker core has for one connection: packets to write, whether to read, and
/// whether to close; and the connection's `ServerConnection`, which its reader and writer
/// share. The core puts in at most its write budget of bytes before the writer reports them
/// written, so this needs no bound of its own; an idle connection's queue holds no
/// allocation.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    /// Locked only briefly, never across an await, and only by the connection's task.
    machine: Mutex<ServerConnection>,
    /// Wakes the writer: packets queued, or closing.
    to_writer: Signal,
    /// Wakes the reader: reading resumed, or closing.
    to_reader: Signal,
    /// Fired once when the connection starts closing.
    closing: Notify,
}

/// A wake-up for the one task that waits on it: set by anyone, taken by that task, and kept
/// when it is not waiting (as `Notify::notify_one` keeps a permit). Waiting holds no waiter
/// node in the future, as a `Notify`'s does (64 bytes): an idle connection's task, which
/// waits on two of these all the time, is that much smaller.
#[derive(Debug, Default)]
struct Signal {
    set: std::sync::atomic::AtomicBool,
    waker: futures_util::task::AtomicWaker,
}

impl Signal {
    fn notify_one(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// The returned future holds only `&self` (an `async fn` would hold it twice).
    fn notified(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.set.swap(false, Ordering::AcqRel) {
                return std::task::Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Set between the first look and the registration: not lost.
            if self.set.swap(false, Ordering::AcqRel) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}

#[derive(Debug, Default)]
struct OutboxState {
    /// Packets, and what each counts against the hub's write budget.
    queue: VecDeque<(ProtocolVersion, Packet, usize)>,
    paused: bool,
    closing: bool,
    /// The core wants what this connection has already received before it goes on.
    drain: bool,
}

impl Outbox {
    fn new(machine: ServerConnection) -> Self {
        Self {
            state: Mutex::default(),
            machine: Mutex::new(machine),
            to_writer: Signal::default(),
            to_reader: Signal::default(),
            closing: Notify::new(),
        }
    }

    fn machine(&self) -> std::sync::MutexGuard<'_, ServerConnection> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a packet to write.
    pub(crate) fn send(&self, version: ProtocolVersion, packet: Packet, len: usize) {
        self.state().queue.push_back((version, packet, len));
        self.to_writer.notify_one();
    }

    /// Stops or resumes reading (the core's backpressure).
    pub(crate) fn set_paused(&self, paused: bool) {
        self.state().paused = paused;
        if !paused {
            self.to_reader.notify_one();
        }
    }

    /// Writes what is queued, then closes the transport; reading stops now.
    pub(crate) fn close(&self) {
        let first = !std::mem::replace(&mut self.state().closing, true);
        self.to_writer.notify_one();
        self.to_reader.notify_one();
        if first {
            self.closing.notify_waiters();
            self.closing.notify_one();
        }
    }

    /// Asks the reader to hand over everything already received, then say so
    /// ([`Input::Drained`]): a new connection for the same client waits for it, so that a
    /// DISCONNECT the old one received is handled before the takeover.
    pub(crate) fn request_drain(&self) {
        self.state().drain = true;
        self.to_reader.notify_one();
    }

    fn take_drain_request(&self) -> bool {
        std::mem::take(&mut self.state().drain)
    }

    fn paused(&self) -> bool {
        self.state().paused
    }

    fn is_closing(&self) -> bool {
        self.state().closing
    }

    /// Frees the queue's storage while it is empty: an idle connection holds none.
    fn release_idle(&self) {
        let mut s = self.state();
        if s.queue.is_empty() {
            s.queue = VecDeque::new();
        }
    }

    /// Moves the queued packets into `into`; whether the connection is closing.
    fn take(&self, into: &mut VecDeque<(ProtocolVersion, Packet, usize)>) -> bool {
        let mut s = self.state();
        std::mem::swap(&mut s.queue, into);
        s.closing
    }
}

/// How long a closing connection may take to write what is left before it is dropped (a
/// client that stopped reading never takes it).
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What a peer may make a connection's reader hold.
#[derive(Debug)]
pub(crate) struct ReadLimits {
    /// The largest packet before and including CONNECT: what an unauthenticated peer can
    /// make the broker buffer.
    pub(crate) max_connect_size: u32,
    /// The largest packet after CONNECT.
    pub(crate) max_packet_size: u32,
    /// How long a packet may take to arrive once its first byte has.
    pub(crate) partial_timeout: std::time::Duration,
    /// Bytes all connections together may hold of packets larger than [`SMALL_PACKET`]
    /// that have not fully arrived.
    pub(crate) partial_budget: Budget,
    /// What `partial_budget` started with.
    pub(crate) max_in_transit: usize,
}

impl ReadLimits {
    pub(crate) fn new(max_connect_size: u32, max_packet_size: u32, partial_budget: usize) -> Self {
        Self {
            max_connect_size: max_connect_size.min(max_packet_size),
            max_packet_size,
            partial_timeout: std::time::Duration::from_secs(30),
            partial_budget: Budget::new(partial_budget),
            max_in_transit: partial_budget,
        }
    }
}

/// Packets up to this size arrive within a read or two and take nothing from the budget.
pub(crate) const SMALL_PACKET: usize = 64 * 1024;

/// A count of bytes shared by every connection, taken and given back.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Mutex<usize>,
    /// Fired when bytes come back.
    freed: Notify,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            left: Mutex::new(bytes),
            freed: Notify::new(),
        }
    }

    fn left(&self) -> std::sync::MutexGuard<'_, usize> {
        self.left.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `n` bytes if there are that many left.
    fn take(&self, n: usize) -> bool {
        let mut left = self.left();
        if *left < n {
            return false;
        }
        *left -= n;
        true
    }

    fn give_back(&self, n: usize) {
        if n > 0 {
            *self.left() += n;
            self.freed.notify_waiters();
        }
    }

    /// Bytes left.
    pub(crate) fn available(&self) -> usize {
        *self.left()
    }
}

/// What every connection task needs, behind one pointer (each task holds a clone: 8 bytes
/// of its idle state rather than 56).
#[derive(Clone)]
pub(crate) struct Shared(Arc<SharedState>);

impl std::ops::Deref for Shared {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The contents of [`Shared`].
pub(crate) struct SharedState {
    pub(crate) core: super::hub::Core,
    /// What each connection's `ServerConnection` is made with.
    pub(crate) config: Arc<BrokerConfig>,
    /// The one clock of the hub and every connection.
    pub(crate) clock: Clock,
    pub(crate) limits: Arc<ReadLimits>,
    pub(crate) next_id: Arc<AtomicU64>,
    /// Bytes and packets in and out, all connections together.
    pub(crate) traffic: Arc<super::stats::Traffic>,
    /// Held by every task; the broker waits for all of them to drop it when shutting down.
    pub(crate) _alive: mpsc::Sender<()>,
}

impl Shared {
    /// Starts the core around `hub` (a new one, or one restored from `persist`'s store at
    /// `clock`'s now), with its operations going to `persist` if given.
    pub(crate) fn start_with(
        hub: crate::broker::Hub,
        clock: Clock,
        auth: super::hub::Auth,
        limits: Arc<ReadLimits>,
        persist: Option<super::persist::Persistence>,
    ) -> (Self, tokio::task::JoinHandle<()>, mpsc::Receiver<()>) {
        let shared_config = Arc::new(hub.config().clone());
        let core = super::hub::Core::new(hub, auth, clock, persist);
        let traffic = Arc::new(super::stats::Traffic::default());
        let timer = tokio::spawn(core.clone().run_timer());
        let (alive, all_done) = mpsc::channel::<()>(1);
        let shared = Self(Arc::new(SharedState {
            core,
            config: shared_config,
            clock,
            limits,
            next_id: Arc::new(AtomicU64::new(1)),
            traffic,
            _alive: alive,
        }));
        (shared, timer, all_done)
    }

    fn conn_id(&self) -> ConnectionId {
        ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a listener speaks, over the TCP connections it accepts.
#[derive(Clone)]
pub enum Transport {
    /// MQTT over TCP (`mqtt://`, port 1883 by convention).
    Tcp,
    /// MQTT over TLS (`mqtts://`, port 8883), with this acceptor (see [`tls_acceptor`]).
    Tls(TlsAcceptor),
    /// MQTT over WebSocket (`ws://`), with the subprotocol `mqtt` ([MQTT-6.0.0-3]); any
    /// request path is accepted.
    WebSocket,
    /// MQTT over WebSocket over TLS (`wss://`), with this acceptor.
    SecureWebSocket(TlsAcceptor),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "mqtt",
            Self::Tls(_) => "mqtt over TLS",
            Self::WebSocket => "mqtt over WebSocket",
            Self::SecureWebSocket(_) => "mqtt over secure WebSocket",
        })
    }
}

/// The Common Name of the certificate a TLS client presented (verified against the CA of
/// `--cafile`), if any.
fn certificate_subject(tls: &tokio_rustls::rustls::ServerConnection) -> Option<String> {
    let der = tls.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// A TLS acceptor (rustls, with ring) from a PEM certificate chain and key, for
/// [`Transport::Tls`] and [`Transport::SecureWebSocket`]. With `client_ca` (PEM), every
/// client must present a certificate that chains to it (mutual TLS), and its Common Name is
/// what [`Peer::certificate_name`](super::Peer::certificate_name) gives the
/// authenticator; without, none is asked for.
pub fn tls_acceptor(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca: Option<&[u8]>,
) -> Result<TlsAcceptor, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem) {
                let ca = ca.map_err(|e| format!("client CA: {e}"))?;
                roots.add(ca).map_err(|e| format!("client CA: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections forever. When accepting fails (out of file descriptors, say) it
/// backs off, doubling the pause up to a second, and logs once per episode.
pub(crate) async fn listen(listener: TcpListener, transport: Transport, shared: Shared) {
    let mut backoff = std::time::Duration::ZERO;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => {
                if !backoff.is_zero() {
                    info!("accepting connections again");
                    backoff = std::time::Duration::ZERO;
                }
                x
            }
            Err(e) => {
                if backoff.is_zero() {
                    warn!("accept failed: {e}; backing off until it works again");
                }
                backoff = (backoff * 2).clamp(
                    std::time::Duration::from_millis(10),
                    std::time::Duration::from_secs(1),
                );
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        Traffic::add(&shared.traffic.connections, 1);
        let shared = shared.clone();
        // One task per connection, sized for its own transport: a TCP connection's task
        // carries no TLS or WebSocket handshake state.
        match &transport {
            Transport::Tcp => {
                let (r, w) = tcp.into_split();
                let fut = serve(TcpRx::new(r), StreamTx(w), peer, shared, None);
                tokio::spawn(fut);
            }
            Transport::Tls(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match timeout(Box::pin(acceptor.accept(tcp))).await {
                        Ok(Ok(tls)) => {
                            let identity = certificate_subject(tls.get_ref().1);
                            let (r, w) = tokio::io::split(tls);
                            serve(StreamRx(r), StreamTx(w), peer, shared, identity).await;
                        }
                        Ok(Err(e)) => debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
            Transport::WebSocket => {
                tokio::spawn(async move {
                    let handshake =
                        tokio_tungstenite::accept_hdr_async(tcp, choose_mqtt_subprotocol);
                    match timeout(Box::pin(handshake)).await {
                        Ok(Ok(ws)) => {
                            let (w, r) = ws.split();
                            serve(WsRx(r), WsTx(w), peer, shared, None).await;
                        }
                        Ok(Err(e)) => debug!("WebSocket handshake with {peer} failed: {e}"),
                        Err(_) => debug!("WebSocket handshake with {peer} timed out"),
                    }
                });
            }
            Transport::SecureWebSocket(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Both handshakes within one timeout: TLS, then the WebSocket upgrade.
                    let handshakes = async {
                        let tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
                        let identity = certificate_subject(tls.get_ref().1);
                        tokio_tungstenite::accept_hdr_async(tls, choose_mqtt_subprotocol)
                            .await
                            .map(|ws| (ws, identity))
                            .map_err(|e| e.to_string())
                    };
                    match timeout(Box::pin(handshakes)).await {
                        Ok(Ok((ws, identity))) => {
                            let (w, r) = ws.split();
                            serve(WsRx(r), WsTx(w), peer, shared, identity).await;
                        }
                        Ok(Err(e)) => debug!("secure WebSocket handshake with {peer} failed: {e}"),
                        Err(_) => debug!("secure WebSocket handshake with {peer} timed out"),
                    }
                });
            }
        }
    }
}

/// A TLS or WebSocket handshake gets as long as the broker gives a CONNECT.
async fn timeout<F: std::future::Future>(f: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(std::time::Duration::from_secs(10), f).await
}

/// [MQTT-6.0.0-3], [MQTT-6.0.0-4]: the client offers `mqtt` and the server selects it. Older
/// clients (Paho JavaScript) offer `mqttv3.1`, which is selected when `mqtt` is not offered;
/// the answer is the token as the client wrote it, since a server may only select what was
/// offered (RFC 6455, section 4.2.2).
#[allow(clippy::result_large_err)] // the signature tungstenite asks for
fn choose_mqtt_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered: Vec<&str> = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let pick = |name: &str| offered.iter().find(|p| p.eq_ignore_ascii_case(name));
    if let Some(token) = pick("mqtt").or_else(|| pick("mqttv3.1"))
        && let Ok(value) = HeaderValue::from_str(token)
    {
        resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    Ok(resp)
}

/// The reading half of a transport: appends what arrives to `buf`; 0 at the end.
trait Rx {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize>;

    /// Appends what has already arrived without waiting (0: nothing, or not supported).
    fn read_now(&mut self, buf: &mut BytesMut) -> usize {
        let _ = buf;
        0
    }
}

/// The writing half of a transport.
trait Tx {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    async fn close(&mut self);
}

struct StreamRx<R>(R);
struct StreamTx<W>(W);

/// How much a read takes at once.
const READ_CHUNK: usize = 8 * 1024;

impl<R: AsyncRead + Unpin> Rx for StreamRx<R> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        buf.reserve(READ_CHUNK);
        self.0.read_buf(buf).await
    }
}

/// A TCP reader that allocates its buffer only once bytes have arrived, so that an idle
/// connection holds none, and starts small: a read that fills what it reserved doubles the
/// next reservation, up to [`READ_CHUNK`] times 8 (most clients send a CONNECT, a SUBSCRIBE
/// and then little; those that stream get large reads).
struct TcpRx {
    half: OwnedReadHalf,
    chunk: usize,
}

impl TcpRx {
    fn new(half: OwnedReadHalf) -> Self {
        Self { half, chunk: 512 }
    }
}

impl Rx for TcpRx {
    fn read_now(&mut self, buf: &mut BytesMut) -> usize {
        buf.reserve(self.chunk);
        self.half.try_read_buf(buf).unwrap_or(0)
    }

    /// Polls the socket's readiness rather than awaiting `readable()`, whose future (with
    /// its waiter) is 200 bytes that every idle connection's task would hold; and returns
    /// that poll as the future, which holds the two references once (an `async fn` would
    /// hold them twice).
    fn read_into(
        &mut self,
        buf: &mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> {
        std::future::poll_fn(move |cx| {
            loop {
                std::task::ready!(self.half.as_ref().poll_read_ready(cx))?;
                buf.reserve(self.chunk);
                let room = buf.capacity() - buf.len();
                match self.half.try_read_buf(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Ok(n) if n == room => {
                        self.chunk = (self.chunk * 2).min(READ_CHUNK * 8);
                        return std::task::Poll::Ready(Ok(n));
                    }
                    r => return std::task::Poll::Ready(r),
                }
            }
        })
    }
}

impl<W: AsyncWrite + Unpin> Tx for StreamTx<W> {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes).await?;
        self.0.flush().await
    }
    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

type Ws<S> = tokio_tungstenite::WebSocketStream<S>;
struct WsRx<S>(futures_util::stream::SplitStream<Ws<S>>);
struct WsTx<S>(futures_util::stream::SplitSink<Ws<S>, Message>);

fn io_error(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Rx for WsRx<S> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        loop {
            match self.0.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Err(e)) => return Err(io_error(e)),
                // [MQTT-6.0.0-2] packets may span frames: the bytes go to one buffer.
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                // [MQTT-6.0.0-1] MQTT travels in binary frames only.
                Some(Ok(Message::Text(_))) => {
                    return Err(std::io::Error::other("text frame on an MQTT WebSocket"));
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Tx for WsTx<S> {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let msg = Message::Binary(bytes.to_vec().into());
        self.0.send(msg).await.map_err(io_error)
    }
    async fn close(&mut self) {
        let _ = self.0.close().await;
    }
}

/// Runs one connection until either side closes it: a reader that decodes and hands each
/// packet to the core (while the core does not pause it), and a writer that writes what the
/// core queues and reports it written. Neither holds a buffer while idle.
///
/// The task is the two futures joined, nothing around them: each owns its half of the
/// transport and a `Conn` (two pointers), and what was needed only to open the connection
/// (the peer's address, its identity) stays out of it.
fn serve(
    rx: impl Rx,
    tx: impl Tx,
    peer: SocketAddr,
    shared: Shared,
    identity: Option<String>,
) -> impl std::future::Future<Output = ()> {
    let id = shared.conn_id();
    let machine = ServerConnection::new(shared.clock.now(), &shared.config);
    let outbox = Arc::new(Outbox::new(machine));
    let opened = Input::Opened {
        conn: id,
        peer,
        outbox: outbox.clone(),
        identity,
    };
    if shared.core.input(opened).is_err() {
        // The core has stopped: the writer ends at once, the reader after its grace.
        outbox.close();
    }
    let c = Conn { id, outbox, shared };
    futures_util::future::join(read(rx, c.clone()), write(tx, c)).map(|_| ())
}

/// One connection, as its reader and its writer each hold it.
#[derive(Clone)]
struct Conn {
    id: ConnectionId,
    outbox: Arc<Outbox>,
    shared: Shared,
}

/// A packet that has begun to arrive and not yet finished: since when, and what it holds
/// of the shared budget.
#[derive(Default)]
struct Partial {
    since: Option<tokio::time::Instant>,
    reserved: usize,
}

impl Partial {
    fn done(&mut self, budget: &Budget) {
        budget.give_back(std::mem::take(&mut self.reserved));
        self.since = None;
    }
}

/// How to decode the connection's next packet: as its `ServerConnection` says, within the
/// driver's own read limits.
fn decode_context(outbox: &Outbox, limits: &ReadLimits) -> DecodeContext {
    let mut cx = outbox.machine().decode_context();
    let max = match cx.version {
        None => limits.max_connect_size,
        Some(_) => limits.max_packet_size,
    };
    cx.max_packet_size = cx.max_packet_size.min(max);
    cx
}

/// Decodes the whole packets at the start of `inbuf`, has the `ServerConnection` check
/// each, and hands the hub what it passes on, while `go` says so. Returns how many more
/// bytes the packet in progress needs (0 when `go` stopped it), or `None` once the
/// connection is over: a decode error or a broken rule (the hub answers and closes) or the
/// hub gone.
fn hand_over(
    c: &Conn,
    inbuf: &mut BytesMut,
    partial: &mut Partial,
    go: impl Fn() -> bool,
) -> Option<usize> {
    let shared = &c.shared;
    let mut cx = decode_context(&c.outbox, &shared.limits);
    let mut tally = Tally::received(&shared.traffic);
    while go() {
        match Packet::decode_stream(inbuf, &cx) {
            Ok(Decoded::Packet(p)) => {
                partial.done(&shared.limits.partial_budget);
                tally.count(&p);
                let mut p = p;
                let connect = matches!(p, Packet::Connect(_));
                let inbound = c.outbox.machine().handle_packet(shared.clock.now(), &mut p);
                match inbound {
                    Inbound::ToHub => shared.core.input(Input::Packet(c.id, p)).ok()?,
                    // PINGRESP, written without the hub.
                    Inbound::PingResp => {
                        let version = c.outbox.machine().protocol();
                        let version = version.unwrap_or(ProtocolVersion::V5);
                        c.outbox.send(version, Packet::PingResp, 0);
                    }
                    Inbound::Violation(v) => {
                        let _ = shared.core.input(Input::Violation(c.id, v));
                        return None;
                    }
                }
                if connect {
                    cx = decode_context(&c.outbox, &shared.limits);
                }
            }
            Ok(Decoded::Incomplete { needed }) => return Some(needed),
            Err(e) => {
                let _ = shared.core.input(Input::DecodeError(c.id, e));
                return None;
            }
        }
    }
    Some(0)
}

/// When the keep-alive of the connection is next to be checked, as a boxed timer (only
/// while there is one: an idle connection without keep-alive holds none).
struct KeepAlive(Option<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl KeepAlive {
    /// Arms the timer if the connection has a keep-alive and none is armed. It is checked
    /// lazily: when it fires, the `ServerConnection` says whether the client was silent.
    fn arm(&mut self, outbox: &Outbox, clock: &Clock) {
        if self.0.is_none() {
            self.0 = outbox.machine().poll_timeout().map(|at| {
                let at = tokio::time::Instant::from_std(clock.to_std(at));
                Box::pin(tokio::time::sleep_until(at))
            });
        }
    }

    fn fired(&mut self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| match &mut self.0 {
            Some(s) => s.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        })
    }
}

/// Reads and decodes until the transport ends or the connection closes. A packet that has
/// begun to arrive must finish within the partial-packet timeout, and one larger than
/// [`SMALL_PACKET`] is read only once the shared budget holds its size.
///
/// A function returning its future rather than an `async fn`, which would keep its
/// arguments twice for the whole life of the connection.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
fn read(mut rx: impl Rx, c: Conn) -> impl std::future::Future<Output = ()> {
    async move {
        let c = &c;
        let mut inbuf = BytesMut::new();
        let mut partial = Partial::default();
        let mut keep_alive = KeepAlive(None);
        loop {
            if c.outbox.is_closing() {
                linger(&mut rx).await;
                break;
            }
            if c.outbox.take_drain_request() {
                // Everything received so far, whether paused or not, then say so.
                while rx.read_now(&mut inbuf) > 0 {}
                let over = hand_over(c, &mut inbuf, &mut partial, || true);
                if c.shared.core.input(Input::Drained(c.id)).is_err() || over.is_none() {
                    break;
                }
                continue;
            }
            // Packet by packet, as long as the core does not pause this connection.
            let go = || !c.outbox.paused();
            let Some(needed) = hand_over(c, &mut inbuf, &mut partial, go) else {
                break;
            };
            if inbuf.is_empty() {
                // Decoded packets share the old allocation; an idle connection keeps none.
                inbuf = BytesMut::new();
            }
            if c.outbox.paused() {
                // The broker stopped reading; the client is not late meanwhile.
                partial.since = None;
                c.outbox.to_reader.notified().await;
                continue;
            }
            keep_alive.arm(&c.outbox, &c.shared.clock);
            if !inbuf.is_empty() && partial.since.is_none() {
                partial.since = Some(tokio::time::Instant::now());
            }
            // Boxed, and only while a packet is arriving: an idle connection's task holds no
            // timer.
            let since = partial.since;
            let late = async move {
                match since {
                    Some(t) => {
                        let at = t + c.shared.limits.partial_timeout;
                        Box::pin(tokio::time::sleep_until(at)).await
                    }
                    None => std::future::pending().await,
                }
            };
            // A large packet waits for room in the shared budget before more of it is read.
            let total = inbuf.len() + needed;
            let budget = &c.shared.limits.partial_budget;
            if total > SMALL_PACKET && partial.reserved < total {
                if budget.take(total - partial.reserved) {
                    partial.reserved = total;
                } else {
                    tokio::select! {
                        _ = budget.freed.notified() => {}
                        _ = c.outbox.to_reader.notified() => {}
                        _ = late => {
                            let why = "the broker-wide budget for packets in transit stayed full";
                            let input = Input::Disconnect(c.id, ReasonCode::QUOTA_EXCEEDED, why);
                            let _ = c.shared.core.input(input);
                            break;
                        }
                    }
                    continue;
                }
            }
            tokio::select! {
                // What has arrived is read before the keep-alive is judged.
                biased;
                r = rx.read_into(&mut inbuf) => match r {
                    Ok(0) | Err(_) => {
                        let _ = c.shared.core.input(Input::Closed(c.id));
                        break;
                    }
                    Ok(n) => Traffic::add(&c.shared.traffic.bytes_received, n as u64),
                },
                _ = c.outbox.to_reader.notified() => {}
                _ = late => {
                    let why = "a packet did not finish arriving in time";
                    let input = Input::Disconnect(c.id, ReasonCode::KEEP_ALIVE_TIMEOUT, why);
                    let _ = c.shared.core.input(input);
                    break;
                }
                _ = keep_alive.fired() => {
                    keep_alive.0 = None;
                    // [MQTT-3.1.2-22] silent for one and a half times the keep-alive.
                    if c.outbox.machine().handle_timeout(c.shared.clock.now()) {
                        let _ = c.shared.core.input(Input::KeepAliveTimeout(c.id));
                        break;
                    }
                }
            }
        }
        partial.done(&c.shared.limits.partial_budget);
        c.outbox.close();
    }
}

/// What a closing connection reads and drops at most, and for how long.
const LINGER_BYTES: usize = 1 << 20;

/// The broker closed the connection: what the client still sends is read and dropped for a
/// moment (at most [`CLOSE_GRACE`] and [`LINGER_BYTES`]) while the writer writes what is
/// left and shuts its side. A socket closed with unread bytes sends a reset, and a reset
/// can destroy what the client has not read yet: the DISCONNECT that says why, say, when a
/// client that sent more than its Receive Maximum is still sending.
async fn linger(rx: &mut impl Rx) {
    let mut sink = BytesMut::new();
    let mut total = 0;
    let drain = async {
        loop {
            sink.clear();
            match rx.read_into(&mut sink).await {
                Ok(n) if n > 0 && total + n <= LINGER_BYTES => total += n,
                _ => return,
            }
        }
    };
    let _ = Box::pin(tokio::time::timeout(CLOSE_GRACE, drain)).await;
}

/// Writes what the core queues until the connection closes (a function returning its
/// future, as [`read`] is).
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
fn write(mut tx: impl Tx, c: Conn) -> impl std::future::Future<Output = ()> {
    async move {
        let c = &c;
        let mut batch = VecDeque::new();
        loop {
            let closing = c.outbox.take(&mut batch);
            if batch.is_empty() {
                if closing {
                    let _ = Box::pin(tokio::time::timeout(CLOSE_GRACE, tx.close())).await;
                    break;
                }
                // Nothing to write: keep no storage while idle (busy, the two queues swap and
                // are reused).
                batch = VecDeque::new();
                c.outbox.release_idle();
                c.outbox.to_writer.notified().await;
                continue;
            }
            let mut out = BytesMut::new();
            let mut counted = 0;
            {
                let mut tally = Tally::sent(&c.shared.traffic);
                let mut m = c.outbox.machine();
                let connected = m.is_connected();
                for (version, mut packet, len) in batch.drain(..) {
                    m.outgoing(&mut packet);
                    encode(&mut out, version, &packet);
                    tally.count(&packet);
                    counted += len;
                }
                if !connected && m.is_connected() {
                    // The CONNACK is out: the reader arms the keep-alive.
                    c.outbox.to_reader.notify_one();
                }
            }
            // A write that makes no progress is abandoned once the connection closes (the
            // core closes a client that stopped reading after its write timeout).
            let abandon = async {
                if !c.outbox.is_closing() {
                    c.outbox.closing.notified().await;
                }
                tokio::time::sleep(CLOSE_GRACE).await;
            };
            // Boxed: the task keeps only what it needs while idle, not a write in progress.
            let written = Box::pin(async {
                tokio::select! {
                    r = tx.write(&out) => r.is_ok(),
                    _ = abandon => false,
                }
            })
            .await;
            if !written {
                let _ = c.shared.core.input(Input::Closed(c.id));
                break;
            }
            Traffic::add(&c.shared.traffic.bytes_sent, out.len() as u64);
            // (A PINGRESP alone counted nothing: the hub need not hear of it.)
            if counted > 0 && c.shared.core.input(Input::Written(c.id, counted)).is_err() {
                break;
            }
        }
        c.outbox.close();
    }
}

fn encode(buf: &mut BytesMut, version: ProtocolVersion, packet: &Packet) {
    if let Err(e) = packet.encode(version, buf) {
        // The broker only hands out packets that fit the version; this would be its bug.
        error!("could not encode {:?}: {e}", packet.packet_type());
    }
}
