//! An MQTT 3.1.1 / 5.0 broker on tokio that a program embeds (feature `tokio`): the session
//! [`Hub`] behind TCP, TLS and WebSocket listeners, with authentication, authorisation and
//! persistence pluggable, and a graceful shutdown by a [`CancellationToken`]. The
//! `mqtt-broker` program is this, with flags.
//!
//! ```no_run
//! use mqtt_session::broker::BrokerConfig;
//! use mqtt_session::server::{CancellationToken, Server, Transport};
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let shutdown = CancellationToken::new();
//! let broker = Server::new(BrokerConfig::default())
//!     .listener(TcpListener::bind("127.0.0.1:1883").await?, Transport::Tcp)
//!     .listener(TcpListener::bind("127.0.0.1:8080").await?, Transport::WebSocket)
//!     .serve(shutdown.clone());
//! let broker = tokio::spawn(broker);
//! // ... the program runs; when it is time to stop:
//! shutdown.cancel();
//! broker.await??;
//! # Ok(())
//! # }
//! ```
//!
//! Each connection has a task that decodes what arrives, checks it with the connection's
//! [`ServerConnection`](crate::broker::ServerConnection), and hands it to the hub under a
//! lock; the hub's packets for any connection go to that connection's writer, within its
//! write budget, so a client that stops reading holds up nobody else. With
//! [`Server::persistence`], nothing is acknowledged before what it acknowledges is
//! committed. Log lines go to [`tracing`], under the target `mqtt_session::server`.
//!
//! Cancelling the token stops accepting, sends v5 clients DISCONNECT 0x8B (Server shutting
//! down), commits what waits for the store, and gives connections up to three seconds to
//! write what is left.
// A driver reads the clock and hands the time to the broker; the core never does.
#![allow(clippy::disallowed_methods)]

// The crate is no_std underneath; this module has std.
use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

mod acl;
mod hub;
mod net;
mod persist;
mod stats;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mqtt_codec::{MqttString, ReasonCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

pub use acl::Acl;
pub use net::{Transport, tls_acceptor};
pub use stats::Stats;
pub use tokio_rustls::TlsAcceptor;
pub use tokio_util::sync::CancellationToken;
pub use users::{Throttle, Users};

use crate::broker::{Authorizer, BrokerConfig, ConnectPolicy, ConnectRequest, Hub};
use crate::time::Clock;

/// Bytes of large packets still arriving, all connections together, by default.
const DEFAULT_MAX_IN_TRANSIT: usize = 64 * 1024 * 1024;
/// How long connections get to write what is left at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Decides who may connect: called once per CONNECT that passes the protocol's checks and
/// the per-address [`Throttle`], with the request and where it comes from.
///
/// `Ok(None)` accepts the client under the user name it gave, `Ok(Some(name))` under
/// `name` (what an [`Authorizer`] and the logs then see), and `Err(code)` refuses it with
/// that CONNACK reason code (a 3.1.1 client gets the nearest 3.1.1 return code). It runs
/// under the broker's lock: keep it quick, with no I/O. A CONNECT asking for enhanced
/// authentication (a v5 Authentication Method) is handed over like any other; [`Users`]
/// refuses it with 0x8C (Bad authentication method).
///
/// A closure is an authenticator:
///
/// ```
/// use mqtt_session::mqtt_codec::ReasonCode;
/// use mqtt_session::server::{Peer, Server};
/// use mqtt_session::broker::{BrokerConfig, ConnectRequest};
///
/// let server = Server::new(BrokerConfig::default()).authenticator(
///     |r: &ConnectRequest, peer: &Peer<'_>| match r.password.as_deref() {
///         Some(b"open sesame") if peer.addr.ip().is_loopback() => Ok(None),
///         _ => Err(ReasonCode::NOT_AUTHORIZED),
///     },
/// );
/// # let _ = server;
/// ```
pub trait Authenticator: Send + 'static {
    /// The decision for one CONNECT.
    fn authenticate(
        &mut self,
        request: &ConnectRequest,
        peer: &Peer<'_>,
    ) -> Result<Option<MqttString>, ReasonCode>;
}

impl<F> Authenticator for F
where
    F: FnMut(&ConnectRequest, &Peer<'_>) -> Result<Option<MqttString>, ReasonCode> + Send + 'static,
{
    fn authenticate(
        &mut self,
        request: &ConnectRequest,
        peer: &Peer<'_>,
    ) -> Result<Option<MqttString>, ReasonCode> {
        self(request, peer)
    }
}

/// Where a CONNECT comes from, for an [`Authenticator`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Peer<'a> {
    /// The client's address.
    pub addr: SocketAddr,
    /// The Common Name of the TLS client certificate it presented, verified against the
    /// listener's client CA (see [`tls_acceptor`]).
    pub certificate_name: Option<&'a str>,
}

/// Why a [`Server`] did not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The store could not be opened or restored (another format, a damaged file, no
    /// permission).
    #[error("persistence in {dir}: {message}")]
    Persistence {
        /// The directory given to [`Server::persistence`].
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The store failed while running (disk full, I/O error): nothing more could be
    /// acknowledged, so the broker stopped. What was acknowledged is on disk.
    #[error("persistence failed: {0}")]
    StoreFailed(String),
    /// A listener's address could not be read.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A broker to be started: its configuration, listeners, authentication, authorisation and
/// store. Build it with the methods below, then [`serve`](Self::serve) it (or
/// [`start`](Self::start) it and keep a handle).
pub struct Server {
    config: BrokerConfig,
    listeners: Vec<(TcpListener, Transport)>,
    authenticator: Box<dyn Authenticator>,
    authorizer: Option<Box<dyn Authorizer>>,
    throttle: Throttle,
    persistence: Option<(PathBuf, Duration)>,
    max_in_transit: usize,
    packet_timeout: Duration,
    sys_interval: Option<Duration>,
    metrics: Option<TcpListener>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("listeners", &self.listeners)
            .field("persistence", &self.persistence)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A broker with `config` (every limit of the core is a field of it), no listener yet,
    /// every client accepted ([`Users::any`]), no authoriser, and sessions in memory only.
    /// The configuration's [`connect_policy`](BrokerConfig::connect_policy) is replaced:
    /// the server's authenticator decides.
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            listeners: Vec::new(),
            authenticator: Box::new(Users::any()),
            authorizer: None,
            throttle: Throttle::default(),
            persistence: None,
            max_in_transit: DEFAULT_MAX_IN_TRANSIT,
            packet_timeout: Duration::from_secs(30),
            sys_interval: None,
            metrics: None,
        }
    }

    /// Accepts connections on `listener`, speaking `transport` (repeatable: one broker
    /// serves any number of listeners).
    pub fn listener(mut self, listener: TcpListener, transport: Transport) -> Self {
        self.listeners.push((listener, transport));
        self
    }

    /// Who may connect (default: [`Users::any`], everyone).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Box::new(authenticator);
        self
    }

    /// Who may publish, subscribe and receive where (default: everyone everywhere). An
    /// [`Acl`] reads mosquitto's ACL files. Whatever it says, no client publishes under
    /// `$SYS/`, the broker's own topics (PUBACK 0x87 under v5), as in mosquitto.
    pub fn authorizer(mut self, authorizer: impl Authorizer + 'static) -> Self {
        self.authorizer = Some(Box::new(authorizer));
        self
    }

    /// How fast one source address may connect, and how long it pauses after failed
    /// logins (default: [`Throttle::default`]).
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    /// Keeps sessions, their messages and subscriptions, wills and retained messages in
    /// `dir/broker.redb` (created if missing), and restores them at start. Nothing is
    /// acknowledged (PUBACK, PUBREC, a CONNACK with a session) before it is committed.
    pub fn persistence(mut self, dir: impl Into<PathBuf>) -> Self {
        self.persistence = Some((dir.into(), Duration::ZERO));
        self
    }

    /// With [`persistence`](Self::persistence): how long the store waits after a write for
    /// more to commit with it (default: zero, commit at once; writes that arrive during a
    /// commit join the next one).
    pub fn commit_window(mut self, window: Duration) -> Self {
        if let Some((_, w)) = &mut self.persistence {
            *w = window;
        }
        self
    }

    /// Bytes that packets larger than 64 KiB, still arriving, may hold across all
    /// connections (default: 64 MiB); a packet beyond it waits for room.
    pub fn max_in_transit(mut self, bytes: usize) -> Self {
        self.max_in_transit = bytes;
        self
    }

    /// How long a packet may take to arrive once its first byte has (default: 30 s).
    pub fn packet_timeout(mut self, timeout: Duration) -> Self {
        self.packet_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Publishes the broker's statistics under `$SYS/broker/` every `interval` (none by
    /// default; mosquitto's `sys_interval`, 10 s in its default configuration), as
    /// retained messages with mosquitto's topic names: `version`, `uptime`,
    /// `clients/{connected,disconnected,total,maximum}`, `messages/{received,sent}` (MQTT
    /// packets of every type), `publish/messages/{received,sent,dropped}`,
    /// `bytes/{received,sent}`, `subscriptions/count`, `retained messages/count`, and
    /// `load/{messages,publish,bytes}/{received,sent}/{1min,5min,15min}` and
    /// `load/connections/...` (per minute, averaged as mosquitto does). A value is published
    /// when it changed since the last interval. Zero turns them off.
    pub fn sys_interval(mut self, interval: Duration) -> Self {
        self.sys_interval = (!interval.is_zero()).then_some(interval);
        self
    }

    /// Serves the statistics in Prometheus's text format at `GET /metrics` on `listener`
    /// (HTTP/1.1, one request per connection, at most 16 at once, each within 5 s): the
    /// `$SYS` values as `mqtt_*` gauges and counters, and the refusals, drops and limits
    /// reached by reason.
    pub fn metrics(mut self, listener: TcpListener) -> Self {
        self.metrics = Some(listener);
        self
    }

    /// Opens the store (restoring what it holds), starts accepting on every listener, and
    /// returns a handle to the running broker. Needs a tokio runtime.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let Server {
            mut config,
            listeners,
            authenticator,
            authorizer,
            throttle,
            persistence,
            max_in_transit,
            packet_timeout,
            sys_interval,
            metrics,
        } = self;
        config.connect_policy = ConnectPolicy::AskDriver;
        let mut limits = net::ReadLimits::new(
            config.maximum_connect_size,
            config.maximum_packet_size,
            max_in_transit,
        );
        limits.partial_timeout = packet_timeout;
        let limits = Arc::new(limits);
        let failure = Arc::new(Failure::default());
        let clock = Clock::new();
        let (mut hub, store) = match persistence {
            Some((dir, window)) => {
                let (opened, failed) = (dir.clone(), failure.clone());
                let open = tokio::task::spawn_blocking(move || {
                    persist::Persistence::open(&opened, window, failed)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                let fail = |message| ServerError::Persistence {
                    dir: dir.clone(),
                    message,
                };
                let (store, snapshot) = open.map_err(fail)?;
                let (sessions, retained) = (snapshot.sessions.len(), snapshot.retained.len());
                let hub =
                    Hub::restore(config, snapshot, clock.now()).map_err(|e| fail(e.to_string()))?;
                info!(
                    "persistence in {}: restored {sessions} sessions and {retained} retained messages",
                    dir.display()
                );
                (hub, Some(store))
            }
            None => (Hub::new(config), None),
        };
        // The broker's own topics are not the clients' to write ($SYS, as mosquitto).
        let authorizer = authorizer.unwrap_or_else(|| Box::new(crate::broker::AllowAll));
        hub.set_authorizer(Box::new(NoSysPublish(authorizer)));
        let auth = hub::Auth {
            authenticator,
            throttle,
        };
        let (shared, timer, all_done) =
            net::Shared::start_with(hub, clock, auth, limits.clone(), store);
        let core = shared.core.clone();
        let counters = Counters {
            core: core.clone(),
            traffic: shared.traffic.clone(),
            started: std::time::Instant::now(),
        };
        let mut local_addrs = Vec::new();
        let mut accepting = Vec::new();
        for (listener, transport) in listeners {
            let addr = listener.local_addr()?;
            info!("listening on {addr} ({transport:?})");
            local_addrs.push(addr);
            accepting.push(tokio::spawn(net::listen(
                listener,
                transport,
                shared.clone(),
            )));
        }
        let mut metrics_addr = None;
        if let Some(listener) = metrics {
            let addr = listener.local_addr()?;
            info!("metrics on http://{addr}/metrics");
            metrics_addr = Some(addr);
            accepting.push(tokio::spawn(serve_metrics(listener, counters.clone())));
        }
        if let Some(interval) = sys_interval {
            accepting.push(tokio::spawn(publish_sys(counters.clone(), interval)));
        }
        Ok(RunningServer {
            core,
            timer,
            accepting,
            all_done,
            local_addrs,
            metrics_addr,
            limits,
            failure,
            counters,
        })
    }

    /// [`start`](Self::start)s the broker and runs it until `shutdown` is cancelled (or
    /// the store fails), then shuts it down gracefully.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        let running = self.start().await?;
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = running.failure.token.cancelled() => {}
        }
        running.shutdown().await
    }
}

/// The server's authoriser around the application's: no client publishes under `$SYS/`
/// (those are the broker's own statistics, as in mosquitto; a refused PUBLISH gets 0x87
/// under v5, and a will there is not published); everything else as the application's
/// says.
struct NoSysPublish(Box<dyn Authorizer>);

impl Authorizer for NoSysPublish {
    fn may_publish(
        &self,
        client: &crate::broker::ClientInfo<'_>,
        topic: &mqtt_codec::TopicName,
    ) -> bool {
        !topic.as_str().starts_with("$SYS/") && self.0.may_publish(client, topic)
    }

    fn may_subscribe(
        &self,
        client: &crate::broker::ClientInfo<'_>,
        filter: &mqtt_codec::TopicFilter,
    ) -> bool {
        self.0.may_subscribe(client, filter)
    }

    fn may_receive(
        &self,
        client: &crate::broker::ClientInfo<'_>,
        topic: &mqtt_codec::TopicName,
    ) -> bool {
        self.0.may_receive(client, topic)
    }

    fn checks_receipt(&self) -> bool {
        self.0.checks_receipt()
    }
}

/// A store failure, noted by the store's thread for the server to stop on.
#[derive(Debug, Default)]
struct Failure {
    token: CancellationToken,
    message: OnceLock<String>,
}

impl Failure {
    fn set(&self, message: String) {
        let _ = self.message.set(message);
        self.token.cancel();
    }
}

/// A running broker, from [`Server::start`]. Dropping it leaves the broker running (until
/// the runtime ends); [`shutdown`](Self::shutdown) stops it.
pub struct RunningServer {
    core: hub::Core,
    timer: JoinHandle<()>,
    accepting: Vec<JoinHandle<()>>,
    all_done: mpsc::Receiver<()>,
    local_addrs: Vec<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    limits: Arc<net::ReadLimits>,
    failure: Arc<Failure>,
    counters: Counters,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The listeners' addresses, in the order they were given (a listener bound to port 0
    /// has its port here).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The address of the `/metrics` listener, if one was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The statistics now: what `$SYS` and `/metrics` show.
    pub fn stats(&self) -> Stats {
        self.counters.stats()
    }

    /// Reads the hub's state under the broker's lock: sessions, retained messages, queues
    /// (see [`Hub`]'s methods). `None` once the broker has stopped.
    pub fn inspect<R>(&self, f: impl FnOnce(&Hub) -> R) -> Option<R> {
        self.core.inspect(f)
    }

    /// Bytes that packets larger than 64 KiB, still arriving, hold now (at most
    /// [`Server::max_in_transit`]).
    pub fn in_transit_bytes(&self) -> usize {
        self.limits.max_in_transit - self.limits.partial_budget.available()
    }

    /// Resolves if the store fails while running (the broker then takes no more input;
    /// [`shutdown`](Self::shutdown) says why).
    pub async fn failed(&self) {
        self.failure.token.cancelled().await;
    }

    /// Stops accepting, sends v5 clients DISCONNECT 0x8B, commits what waits for the
    /// store, and gives connections up to three seconds to write what is left.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        info!("shutting down");
        for task in &self.accepting {
            task.abort();
        }
        let _ = self.core.input(net::Input::Shutdown);
        let _ = (&mut self.timer).await;
        let finishing = self.core.clone();
        let _ = tokio::task::spawn_blocking(move || finishing.finish_persistence()).await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.all_done.recv()).await;
        match self.failure.message.get() {
            Some(m) => Err(ServerError::StoreFailed(m.clone())),
            None => Ok(()),
        }
    }
}

/// Where the statistics come from: the hub's driver (under its lock) and the connections'
/// traffic counters.
#[derive(Clone)]
struct Counters {
    core: hub::Core,
    traffic: Arc<stats::Traffic>,
    started: std::time::Instant,
}

impl Counters {
    fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let t = &self.traffic;
        let mut s = Stats {
            uptime: self.started.elapsed(),
            connections: t.connections.load(Relaxed),
            packets_received: t.packets_received.load(Relaxed),
            packets_sent: t.packets_sent.load(Relaxed),
            publish_received: t.publish_received.load(Relaxed),
            publish_sent: t.publish_sent.load(Relaxed),
            bytes_received: t.bytes_received.load(Relaxed),
            bytes_sent: t.bytes_sent.load(Relaxed),
            ..Stats::default()
        };
        self.core.stats(&mut s);
        s
    }
}

/// Publishes the `$SYS` topics every `interval`, those whose value changed, until the hub
/// stops.
async fn publish_sys(counters: Counters, interval: Duration) {
    let mut loads = stats::Loads::default();
    let mut last = std::collections::BTreeMap::<String, String>::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = counters.stats();
        loads.sample(&now, interval);
        let mut messages = Vec::new();
        for (name, value) in stats::sys_topics(&now, &loads) {
            if last.get(&name) != Some(&value) {
                messages.extend(stats::sys_message(&name, &value));
                last.insert(name, value);
            }
        }
        if counters.core.input(net::Input::Own(messages)).is_err() {
            return;
        }
    }
}

/// Requests for `/metrics` handled at once, at most; more are closed at once.
const METRICS_REQUESTS: usize = 16;
/// The largest request head read.
const METRICS_REQUEST_BYTES: usize = 8 * 1024;

/// Answers `GET /metrics` on `listener`.
async fn serve_metrics(listener: TcpListener, counters: Counters) {
    let permits = Arc::new(tokio::sync::Semaphore::new(METRICS_REQUESTS));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let counters = counters.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let answer = answer_metrics(tcp, &counters);
            let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;
        });
    }
}

/// Reads one request head (parsed by httparse) and answers it.
async fn answer_metrics(
    mut tcp: tokio::net::TcpStream,
    counters: &Counters,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::with_capacity(1024);
    let (status, body) = loop {
        if tcp.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default();
                break match (request.method, path) {
                    (Some("GET"), "/metrics") => ("200 OK", stats::prometheus(&counters.stats())),
                    (Some("GET"), _) => ("404 Not Found", "try /metrics\n".to_string()),
                    _ => ("405 Method Not Allowed", "GET /metrics\n".to_string()),
                };
            }
            Ok(httparse::Status::Partial) if buf.len() < METRICS_REQUEST_BYTES => {}
            _ => break ("400 Bad Request", String::new()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    tcp.shutdown().await
}
