//! A tokio driver for the sans-IO [`Client`]: an [`AsyncClient`] handle whose calls resolve
//! when their handshake completes, an [`Events`] stream of what arrives, and a task that
//! owns the connection, reconnects with exponential back-off and jitter, and resumes the
//! session (feature `tokio`).
//!
//! ```no_run
//! use mqtt_session::driver::{AsyncClient, ClientOptions, Notification};
//! use mqtt_session::client::{ClientConfig, Message};
//! use mqtt_session::mqtt_codec::{MqttString, ProtocolVersion, QoS, TopicFilter, TopicName};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new(ProtocolVersion::V5, MqttString::new("hello")?);
//! let (client, mut events) = AsyncClient::start(ClientOptions::new("127.0.0.1:1883", config));
//! events.connected().await?;
//! client.subscribe(TopicFilter::new("hello/#")?, QoS::AtLeastOnce).await?;
//! let msg = Message::new(TopicName::new("hello/world")?, "hi").with_qos(QoS::AtLeastOnce);
//! client.publish(msg).await?;
//! while let Some(n) = events.recv().await {
//!     if let Notification::Message(m) = n {
//!         println!("{}: {:?}", m.topic, m.payload);
//!         break;
//!     }
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The client keeps its session in memory across reconnections (Clean Start 0 after the
//! first connection under 5.0, as [`ClientConfig::clean_start`] says); QoS 1/2 messages
//! published while disconnected wait in its queue ([`ClientConfig::max_queued`]) and go
//! out once it is connected again, and their `publish` calls resolve then.

use std::boxed::Box;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::string::String;
use std::time::Duration;
use std::vec;
use std::vec::Vec;

use futures_util::{SinkExt, StreamExt};
use mqtt_codec::{
    Bytes, BytesMut, Decoded, Packet, PacketId, Publish, QoS, SubscriptionOptions, TopicFilter,
    TopicName,
};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{
    Action, Client, ClientConfig, Connected, DropReason, Event, Message, PublishError, Published,
    ResumeError, SubscribeError, Subscribed, Unsubscribed,
};
use crate::event::{CloseCause, Disconnected};
use crate::persist::{ClientStore, StoreError};
use crate::store::SessionState;
use crate::time::Clock;

/// How to reach the server, and how to behave when it cannot be reached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The server's address (`host:port`), for TCP.
    pub addr: String,
    /// The client's configuration (version, client identifier, keep-alive, will...).
    pub config: ClientConfig,
    /// The first wait before connecting again after a failure; it doubles up to
    /// `reconnect_max`, and each wait is drawn between half and all of it (jitter).
    pub reconnect_min: Duration,
    /// The longest wait between attempts.
    pub reconnect_max: Duration,
    /// Notifications the application has not read yet, at most; beyond, the driver waits
    /// (and reads nothing more from the server) until the application catches up.
    pub events_capacity: usize,
    /// Topic and payload bytes of QoS 1/2 messages published and not yet acknowledged, at
    /// most (while disconnected, they wait); beyond, `publish` fails with
    /// [`PublishError::QueueFull`]. [`ClientConfig::max_queued`] bounds their number.
    pub max_queued_bytes: usize,
    /// MQTT over TLS (rustls) instead of plain TCP.
    pub tls: Option<Tls>,
    /// MQTT over WebSocket (subprotocol `mqtt`, binary frames), with this request path
    /// (`/mqtt`, say): `ws://`, or `wss://` with `tls`.
    pub websocket: Option<String>,
    /// When to connect again after a connection ends or an attempt fails; once the driver
    /// gives up it stops, and [`Events::recv`] ends after the last notification.
    pub reconnect: Reconnect,
    /// Sees every packet as it is sent or received (a debug log, say).
    pub packet_trace: Option<PacketTrace>,
}

/// When the driver connects again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Reconnect {
    /// After every failure, with back-off, until the client disconnects.
    #[default]
    Always,
    /// After losing a connection the server had accepted; but not when the first attempt
    /// fails (the server unreachable, or the connection closed before CONNACK), nor when
    /// the server refuses a CONNECT. A tool that should report a wrong address or refused
    /// credentials at once, and still ride out a broker restart, wants this.
    OnceConnected,
    /// Never: the driver stops when its connection ends, or when its first attempt fails.
    Never,
}

/// Which way a packet went, for a [`PacketTrace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From this client to the server.
    Sent,
    /// From the server to this client.
    Received,
}

/// A function the driver calls with every packet it sends or receives, on its own task,
/// before acting on it: it should return quickly.
#[derive(Clone)]
pub struct PacketTrace(Arc<TraceFn>);

/// The function inside a [`PacketTrace`].
type TraceFn = dyn Fn(Direction, &Packet) + Send + Sync;

impl PacketTrace {
    /// A trace that calls `f`.
    pub fn new(f: impl Fn(Direction, &Packet) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl core::fmt::Debug for PacketTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PacketTrace")
    }
}

/// Why a connection attempt failed before any MQTT was spoken: the TCP connection, the TLS
/// handshake or the WebSocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ConnectFailure {
    /// The kind of I/O error.
    pub kind: std::io::ErrorKind,
    /// The operating system's or library's description of it (for an operating system
    /// error, without Rust's "(os error N)").
    pub message: String,
    /// The operating system's error number, if it was one.
    pub os_error: Option<i32>,
}

impl From<&std::io::Error> for ConnectFailure {
    fn from(e: &std::io::Error) -> Self {
        let mut message = std::format!("{e}");
        if let Some(n) = e.raw_os_error() {
            let suffix = std::format!(" (os error {n})");
            if let Some(m) = message.strip_suffix(&suffix) {
                message = m.into();
            }
        }
        Self {
            kind: e.kind(),
            message,
            os_error: e.raw_os_error(),
        }
    }
}

/// How to speak TLS to the server: a rustls configuration and the name the server's
/// certificate must carry.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl core::fmt::Debug for Tls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why a TLS setting could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input holds no certificate or key, or is not PEM.
    #[error("PEM: {0}")]
    Pem(String),
    /// rustls refused the configuration (a certificate or key it cannot use).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The platform's certificate store holds no certificate rustls can use (with the
    /// first error met reading it, if any).
    #[error("no usable platform CA certificate{0}")]
    NoPlatformRoots(String),
    /// The server name is not a DNS name or IP address.
    #[error("server name: {0}")]
    ServerName(#[from] rustls::pki_types::InvalidDnsNameError),
}

impl Tls {
    /// TLS with a configuration of the application's own, checking the server's
    /// certificate against `server_name`.
    pub fn new(config: Arc<rustls::ClientConfig>, server_name: &str) -> Result<Tls, TlsError> {
        Ok(Tls {
            config,
            server_name: ServerName::try_from(server_name)?.to_owned(),
        })
    }

    /// TLS trusting the platform's certificate authorities (the system's store; the file
    /// or directory named by `SSL_CERT_FILE` or `SSL_CERT_DIR` instead, when set), with
    /// rustls's safe defaults and the ring provider: what a client of a public broker
    /// needs. Certificates of the store that rustls cannot parse are skipped; none at all
    /// is an error.
    pub fn with_platform_roots(server_name: &str) -> Result<Tls, TlsError> {
        let settings = TlsSettings {
            platform_roots: true,
            ..TlsSettings::default()
        };
        Self::with_settings(&settings, server_name)
    }

    /// TLS trusting the certificate authorities in `ca_pem` (PEM), presenting the client
    /// certificate chain and key `client` (PEM) when given (mutual TLS), with rustls's
    /// safe defaults and the ring provider.
    pub fn with_ca_pem(
        ca_pem: &[u8],
        client: Option<(&[u8], &[u8])>,
        server_name: &str,
    ) -> Result<Tls, TlsError> {
        let settings = TlsSettings {
            ca_pem,
            client,
            ..TlsSettings::default()
        };
        Self::with_settings(&settings, server_name)
    }

    /// As [`with_ca_pem`](Self::with_ca_pem), but a certificate for another name than
    /// `server_name` is accepted too (the chain, its dates and signatures are still
    /// checked against `ca_pem`): for testing a server whose certificate names another
    /// host, as mosquitto's `--insecure` does. Anyone who can redirect the connection to
    /// another server that CA certified can then impersonate the server.
    pub fn with_ca_pem_any_name(
        ca_pem: &[u8],
        client: Option<(&[u8], &[u8])>,
        server_name: &str,
    ) -> Result<Tls, TlsError> {
        let settings = TlsSettings {
            ca_pem,
            client,
            any_server_name: true,
            ..TlsSettings::default()
        };
        Self::with_settings(&settings, server_name)
    }

    /// TLS as `settings` say, with rustls's safe defaults and the ring provider: the
    /// constructors above are shorthands of this.
    pub fn with_settings(settings: &TlsSettings<'_>, server_name: &str) -> Result<Tls, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let pem = |e: rustls::pki_types::pem::Error| TlsError::Pem(std::format!("{e:?}"));
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(settings.ca_pem) {
            roots.add(ca.map_err(pem)?)?;
        }
        if settings.platform_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _skipped) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| std::format!(": {e}"))
                    .unwrap_or_default();
                return Err(TlsError::NoPlatformRoots(why));
            }
        }
        if roots.is_empty() {
            return Err(TlsError::Pem("no CA certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if settings.any_server_name {
            let verifier =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| TlsError::Pem(std::format!("{e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
        } else {
            builder.with_root_certificates(roots)
        };
        let config = match settings.client {
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(pem)?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(pem)?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        Tls::new(Arc::new(config), server_name)
    }
}

/// What a [`Tls`] trusts and presents, for [`Tls::with_settings`]: certificate authorities
/// from PEM and, or, the platform's; a client certificate; whether the server's certificate
/// must name the server.
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct TlsSettings<'a> {
    /// Certificate authorities to trust (PEM; may be empty when `platform_roots`).
    pub ca_pem: &'a [u8],
    /// Trust the platform's certificate authorities too (see [`Tls::with_platform_roots`]).
    pub platform_roots: bool,
    /// A client certificate chain and its key (PEM), for mutual TLS.
    pub client: Option<(&'a [u8], &'a [u8])>,
    /// Accept a server certificate for another name (see [`Tls::with_ca_pem_any_name`]).
    pub any_server_name: bool,
}

/// A server certificate verifier that accepts a certificate for any name, and checks
/// everything else as rustls's WebPKI verifier does.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl ClientOptions {
    /// Options for `addr` with `config`: reconnecting after 0.1 s, doubling up to 30 s,
    /// 1,024 notifications buffered, 16 MiB of messages awaiting acknowledgement.
    pub fn new(addr: impl Into<String>, config: ClientConfig) -> Self {
        Self {
            addr: addr.into(),
            config,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            events_capacity: 1024,
            max_queued_bytes: 16 * 1024 * 1024,
            tls: None,
            websocket: None,
            reconnect: Reconnect::Always,
            packet_trace: None,
        }
    }

    /// The same, over WebSocket at `path` (`wss://` if TLS is set too).
    pub fn with_websocket(mut self, path: impl Into<String>) -> Self {
        self.websocket = Some(path.into());
        self
    }

    /// The same, over TLS.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// What the driver tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// The server accepted a connection (Session Present says whether the session went on).
    Connected(Connected),
    /// An application message.
    Message(Publish),
    /// The connection ended; the driver connects again unless the client disconnected
    /// (or [`ClientOptions::reconnect`] says not to).
    Disconnected(Disconnected),
    /// An attempt to connect failed before MQTT began (no server listening, a TLS
    /// handshake refused...); the driver tries again unless
    /// [`ClientOptions::reconnect`] says not to.
    ConnectFailed(ConnectFailure),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client refused the publish (not connected for QoS 0, queue full, ...).
    #[error("publish refused: {0}")]
    Publish(#[from] PublishError),
    /// The client refused the request (not connected, ...).
    #[error("request refused: {0}")]
    Subscribe(#[from] SubscribeError),
    /// The message was dropped before its handshake completed.
    #[error("message dropped: {0:?}")]
    Dropped(DropReason),
    /// The driver's task has ended (the client disconnected, or every handle was
    /// dropped).
    #[error("the client has stopped")]
    Stopped,
    /// No response came in time.
    #[error("no response in time")]
    Timeout,
    /// Request/response needs MQTT 5.0 (Response Topic and Correlation Data).
    #[error("request/response needs MQTT 5.0")]
    NotV5,
    /// The client identifier makes no topic name for responses (a wildcard in an
    /// identifier the server assigned, say).
    #[error("no response topic can be made of this client identifier")]
    ResponseTopic,
}

/// Why [`AsyncClient::start_with_store`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session it holds cannot be resumed.
    #[error("the stored session: {0}")]
    Resume(#[from] ResumeError),
}

enum Command {
    /// Boxed: a message is large, and the channel holds every command at its size.
    Publish(
        Box<Message>,
        oneshot::Sender<Result<Option<Published>, ClientError>>,
    ),
    Subscribe(
        Vec<(TopicFilter, SubscriptionOptions)>,
        oneshot::Sender<Result<Subscribed, ClientError>>,
    ),
    Unsubscribe(
        Vec<TopicFilter>,
        oneshot::Sender<Result<Unsubscribed, ClientError>>,
    ),
    Request(Box<Message>, oneshot::Sender<Result<Publish, ClientError>>),
    Disconnect(oneshot::Sender<()>),
}

/// A handle to a running client: cheap to clone, usable from many tasks.
#[derive(Debug, Clone)]
pub struct AsyncClient {
    commands: mpsc::Sender<Command>,
}

/// What arrives for the application, in order.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Notification>,
}

impl Events {
    /// The next notification; `None` once the driver has stopped.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// Waits for the next [`Notification::Connected`], skipping anything before it.
    pub async fn connected(&mut self) -> Result<Connected, ClientError> {
        loop {
            match self.rx.recv().await {
                Some(Notification::Connected(c)) => return Ok(c),
                Some(_) => {}
                None => return Err(ClientError::Stopped),
            }
        }
    }
}

impl AsyncClient {
    /// Starts the driver's task on the current tokio runtime; it connects at once.
    pub fn start(options: ClientOptions) -> (AsyncClient, Events) {
        // A client that keeps its session holds session state from the start, so a
        // session its own first CONNECT made is taken up even when that CONNACK was lost.
        let client = if options.config.clean_start {
            Client::new(options.config.clone())
        } else {
            Client::resume(options.config.clone(), SessionState::default())
                .unwrap_or_else(|_| Client::new(options.config.clone()))
        };
        Self::spawn(options, client, None)
    }

    /// [`start`](Self::start), with the session kept in `store` on disk: the client
    /// resumes what the store holds (its client identifier, QoS 1/2 messages in flight,
    /// QoS 2 messages received and not released, unanswered requests), and every change
    /// is committed before the packet or the notification that follows it. A message
    /// published and not yet acknowledged when the program stopped (even by `kill -9`)
    /// is sent again by the next program that starts from the same file, once the server
    /// says it kept the session; a QoS 2 message received is delivered once across
    /// restarts.
    ///
    /// Should the store fail later, the driver stops (calls fail with
    /// [`ClientError::Stopped`]): nothing is acknowledged that is not on disk.
    ///
    /// ```no_run
    /// use mqtt_session::client::ClientConfig;
    /// use mqtt_session::driver::{AsyncClient, ClientOptions};
    /// use mqtt_session::mqtt_codec::{MqttString, ProtocolVersion};
    /// use mqtt_session::persist::ClientStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::new("sensor-7")?);
    /// config.clean_start = false;
    /// config.properties.session_expiry_interval = Some(3600);
    /// let store = ClientStore::open("sensor-7.redb")?;
    /// let (client, events) =
    ///     AsyncClient::start_with_store(ClientOptions::new("127.0.0.1:1883", config), store)?;
    /// # let _ = (client, events);
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_with_store(
        options: ClientOptions,
        store: ClientStore,
    ) -> Result<(AsyncClient, Events), StartError> {
        let client = Client::resume(options.config.clone(), store.state()?)?;
        Ok(Self::spawn(options, client, Some(store)))
    }

    fn spawn(
        options: ClientOptions,
        client: Client,
        store: Option<ClientStore>,
    ) -> (AsyncClient, Events) {
        let (commands, rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(options.events_capacity.max(1));
        tokio::spawn(run(options, client, store, rx, events_tx));
        (AsyncClient { commands }, Events { rx: events })
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// Publishes `msg`. QoS 0 resolves once the client has taken it (`None`); QoS 1 and 2
    /// once the server's PUBACK or PUBCOMP arrives, with its reason code (a reason code of
    /// 0x80 or above: the server refused it). Published while disconnected, a QoS 1/2
    /// message waits in the client's queue and goes out when the client is connected again.
    pub async fn publish(&self, msg: Message) -> Result<Option<Published>, ClientError> {
        self.call(|tx| Command::Publish(Box::new(msg), tx)).await
    }

    /// Subscribes to `filter` at `qos`, resolving with the SUBACK (whose reason codes say
    /// what was granted). Fails while disconnected.
    pub async fn subscribe(
        &self,
        filter: TopicFilter,
        qos: QoS,
    ) -> Result<Subscribed, ClientError> {
        let filters = vec![(filter, SubscriptionOptions::qos(qos))];
        self.subscribe_many(filters).await
    }

    /// Subscribes to several filters with their options in one SUBSCRIBE.
    pub async fn subscribe_many(
        &self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) -> Result<Subscribed, ClientError> {
        self.call(|tx| Command::Subscribe(filters, tx)).await
    }

    /// Unsubscribes from `filters`, resolving with the UNSUBACK (v5: a reason code per
    /// filter). Fails while disconnected.
    pub async fn unsubscribe(
        &self,
        filters: Vec<TopicFilter>,
    ) -> Result<Unsubscribed, ClientError> {
        self.call(|tx| Command::Unsubscribe(filters, tx)).await
    }

    /// MQTT 5.0 request/response (section 4.10): publishes `msg` with a Response Topic of
    /// this client's own (`responses/CLIENT-ID`, subscribed at the first request) and a
    /// Correlation Data of its own, and resolves with the first message that comes back
    /// on that topic with that Correlation Data, or fails with
    /// [`ClientError::Timeout`] after `timeout`. Responses never reach [`Events`].
    pub async fn request(&self, msg: Message, timeout: Duration) -> Result<Publish, ClientError> {
        let call = self.call(|tx| Command::Request(Box::new(msg), tx));
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Sends DISCONNECT (when connected), closes the connection and stops the driver.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Disconnect(tx))
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }
}

/// Calls waiting for their handshake, by packet identifier.
#[derive(Default)]
struct Waiting {
    /// With the bytes each counts against `max_queued_bytes`.
    publishes: HashMap<PacketId, (Reply<Option<Published>>, usize)>,
    /// Topic and payload bytes of the QoS 1/2 messages not yet acknowledged.
    queued_bytes: usize,
    max_queued_bytes: usize,
    subscribes: HashMap<PacketId, Reply<Subscribed>>,
    unsubscribes: HashMap<PacketId, Reply<Unsubscribed>>,
    /// Requests awaiting their response, by Correlation Data.
    requests: HashMap<u64, oneshot::Sender<Result<Publish, ClientError>>>,
    /// The Response Topic, once subscribed on the current session.
    response_topic: Option<TopicName>,
    next_correlation: u64,
}

/// A byte stream to the server: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The connection, and what has arrived of a packet not yet whole.
struct Link {
    transport: Transport,
    rx: BytesMut,
}

enum Transport {
    /// TCP or TLS: a byte stream.
    Bytes(Box<dyn Stream>),
    /// WebSocket: packets in binary frames, which may split and join them ([MQTT-6.0.0-2]).
    WebSocket(Box<tokio_tungstenite::WebSocketStream<Box<dyn Stream>>>),
}

impl Link {
    /// Appends what arrives to `rx`; 0 at the end of the stream.
    async fn read(&mut self) -> std::io::Result<usize> {
        match &mut self.transport {
            Transport::Bytes(s) => s.read_buf(&mut self.rx).await,
            Transport::WebSocket(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(WsMessage::Close(_))) => return Ok(0),
                    Some(Err(e)) => return Err(std::io::Error::other(e)),
                    Some(Ok(WsMessage::Binary(b))) => {
                        self.rx.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    // [MQTT-6.0.0-1] MQTT travels in binary frames only.
                    Some(Ok(WsMessage::Text(_))) => {
                        return Err(std::io::Error::other("text frame on an MQTT WebSocket"));
                    }
                    Some(Ok(_)) => {}
                }
            },
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.transport {
            Transport::Bytes(s) => s.write_all(bytes).await,
            Transport::WebSocket(ws) => ws
                .send(WsMessage::Binary(bytes.to_vec().into()))
                .await
                .map_err(std::io::Error::other),
        }
    }
}

/// Opens a connection to the server: TCP, then the TLS handshake when configured, then
/// the WebSocket upgrade when configured.
async fn open(options: &ClientOptions) -> std::io::Result<Transport> {
    let tcp = TcpStream::connect(&options.addr).await?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = match &options.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            Box::new(connector.connect(tls.server_name.clone(), tcp).await?)
        }
    };
    let Some(path) = &options.websocket else {
        return Ok(Transport::Bytes(stream));
    };
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let scheme = if options.tls.is_some() { "wss" } else { "ws" };
    let url = std::format!("{scheme}://{}{path}", options.addr);
    let mut request = url.into_client_request().map_err(std::io::Error::other)?;
    // [MQTT-6.0.0-3]: the subprotocol is `mqtt`.
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("mqtt"),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(std::io::Error::other)?;
    Ok(Transport::WebSocket(Box::new(ws)))
}

async fn run(
    options: ClientOptions,
    mut client: Client,
    mut store: Option<ClientStore>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Notification>,
) {
    let clock = Clock::new();
    let mut waiting = Waiting {
        max_queued_bytes: options.max_queued_bytes,
        ..Waiting::default()
    };
    let mut link: Option<Link> = None;
    let mut backoff = Backoff::new(&options);
    let mut reconnect_at = Some(tokio::time::Instant::now());
    let mut stopping: Option<oneshot::Sender<()>> = None;
    // What `options.reconnect` decides by: a connection was accepted; a CONNECT refused.
    let mut accepted = false;
    let mut refused = false;
    let trace = |direction: Direction, p: &Packet| {
        if let Some(t) = &options.packet_trace {
            (t.0)(direction, p);
        }
    };
    loop {
        // Carry out what the client asked for, in order.
        let mut out = BytesMut::new();
        let mut close = false;
        // Store operations applied and not yet committed: what follows them waits.
        let mut uncommitted = false;
        while let Some(action) = client.poll_action() {
            if uncommitted && !matches!(action, Action::Persist(_)) {
                uncommitted = false;
                if store.as_mut().is_some_and(|s| s.commit().is_err()) {
                    return;
                }
            }
            match action {
                Action::Send(p) => {
                    trace(Direction::Sent, &p);
                    if let Err(e) = p.encode(client.protocol(), &mut out) {
                        // The client only hands out packets that fit its version.
                        debug_assert!(false, "client packet does not encode: {e}");
                    }
                }
                // Without a store, the session lives in this process's memory, across
                // reconnections. With one, a failed write stops the driver: nothing more
                // may be acknowledged.
                Action::Persist(op) => {
                    if let Some(s) = &mut store {
                        if s.apply(&op).is_err() {
                            return;
                        }
                        uncommitted = true;
                    }
                }
                Action::Close => close = true,
                Action::Event(e) => {
                    match &e {
                        Event::Connected(_) => {
                            accepted = true;
                            backoff.reset();
                        }
                        Event::Disconnected(d) if d.cause == CloseCause::Refused => refused = true,
                        _ => {}
                    }
                    deliver(e, &mut waiting, &events).await;
                }
            }
        }
        if uncommitted && store.as_mut().is_some_and(|s| s.commit().is_err()) {
            return;
        }
        if let Some(l) = &mut link
            && !out.is_empty()
            && l.write(&out).await.is_err()
        {
            close = true;
            client.handle_closed(clock.now());
        }
        if close && link.take().is_some() {
            if let Some(done) = stopping.take() {
                let _ = done.send(());
                return;
            }
            reconnect_at = retry(&options, &mut backoff, accepted, refused);
            continue;
        }
        if link.is_none()
            && let Some(done) = stopping.take()
        {
            let _ = done.send(());
            return;
        }
        // Not connected, and no attempt to come: `options.reconnect` gave up.
        if link.is_none() && reconnect_at.is_none() {
            return;
        }
        let connected = link.is_some();
        let timer = client
            .poll_timeout()
            .map(|t| tokio::time::Instant::from_std(clock.to_std(t)));
        tokio::select! {
            command = commands.recv() => match command {
                Some(c) => command_in(c, &mut client, &clock, &mut waiting, &mut stopping),
                // Every handle is gone: leave as a clean disconnect would.
                None if link.is_some() => {
                    let _ = client.disconnect(clock.now(), Default::default());
                    let (tx, _) = oneshot::channel();
                    stopping = Some(tx);
                }
                None => return,
            },
            read = async {
                match &mut link {
                    Some(l) => l.read().await,
                    None => std::future::pending().await,
                }
            } => match read {
                Ok(n) if n > 0 => {
                    let Some(l) = &mut link else { continue };
                    loop {
                        match Packet::decode_stream(&mut l.rx, &client.decode_context()) {
                            Ok(Decoded::Packet(p)) => {
                                trace(Direction::Received, &p);
                                client.handle_packet(clock.now(), p);
                            }
                            Ok(Decoded::Incomplete { .. }) => break,
                            Err(e) => {
                                client.handle_decode_error(clock.now(), &e);
                                break;
                            }
                        }
                    }
                }
                _ => {
                    client.handle_closed(clock.now());
                    link = None;
                    if stopping.is_some() {
                        continue;
                    }
                    reconnect_at = retry(&options, &mut backoff, accepted, refused);
                }
            },
            () = async {
                match timer {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => client.handle_timeout(clock.now()),
            () = async {
                match reconnect_at {
                    Some(at) if !connected => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            } => {
                reconnect_at = None;
                match open(&options).await {
                    Ok(transport) => {
                        link = Some(Link { transport, rx: BytesMut::new() });
                        if client.connect(clock.now()).is_err() {
                            link = None;
                            reconnect_at = retry(&options, &mut backoff, accepted, refused);
                        }
                    }
                    Err(e) => {
                        reconnect_at = retry(&options, &mut backoff, accepted, refused);
                        let failure = Notification::ConnectFailed(ConnectFailure::from(&e));
                        let _ = events.send(failure).await;
                    }
                }
            }
        }
    }
}

/// When to connect again after a failure, if at all, by `options.reconnect`: whether a
/// connection was ever `accepted`, and whether a CONNECT was `refused`.
fn retry(
    options: &ClientOptions,
    backoff: &mut Backoff,
    accepted: bool,
    refused: bool,
) -> Option<tokio::time::Instant> {
    match options.reconnect {
        Reconnect::Always => Some(backoff.next()),
        Reconnect::OnceConnected if accepted && !refused => Some(backoff.next()),
        Reconnect::OnceConnected | Reconnect::Never => None,
    }
}

/// When to connect again: a wait that doubles from `reconnect_min` to `reconnect_max`
/// with each failure, each drawn between half and all of it (jitter, from std's random
/// hash keys), and starts over once a connection is accepted.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    attempts: u64,
    jitter: RandomState,
}

impl Backoff {
    fn new(options: &ClientOptions) -> Self {
        Self {
            min: options.reconnect_min,
            max: options.reconnect_max,
            current: options.reconnect_min,
            attempts: 0,
            jitter: RandomState::new(),
        }
    }

    /// The time of the next attempt, after a failure now.
    fn next(&mut self) -> tokio::time::Instant {
        self.attempts += 1;
        let r = self.jitter.hash_one(self.attempts) % 1_000;
        let wait = self.current / 2 + self.current / 2 * (r as u32) / 1_000;
        self.current = (self.current * 2).min(self.max);
        tokio::time::Instant::now() + wait
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

/// A command from a handle, handed to the client.
fn command_in(
    command: Command,
    client: &mut Client,
    clock: &Clock,
    waiting: &mut Waiting,
    stopping: &mut Option<oneshot::Sender<()>>,
) {
    match command {
        Command::Publish(msg, done) => {
            let size = msg.topic.len() + msg.payload.len();
            if msg.qos != QoS::AtMostOnce && waiting.queued_bytes + size > waiting.max_queued_bytes
            {
                let _ = done.send(Err(ClientError::Publish(PublishError::QueueFull)));
                return;
            }
            match client.publish(clock.now(), *msg) {
                Ok(Some(id)) => {
                    waiting.queued_bytes += size;
                    waiting.publishes.insert(id, (done, size));
                }
                Ok(None) => {
                    let _ = done.send(Ok(None));
                }
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            }
        }
        Command::Subscribe(filters, done) => {
            let sent = client.subscribe(clock.now(), filters, Default::default());
            wait_for_ack(&mut waiting.subscribes, sent, done);
        }
        Command::Unsubscribe(filters, done) => {
            let sent = client.unsubscribe(clock.now(), filters, Default::default());
            wait_for_ack(&mut waiting.unsubscribes, sent, done);
        }
        Command::Request(mut msg, done) => {
            if !client.protocol().is_v5() {
                let _ = done.send(Err(ClientError::NotV5));
                return;
            }
            let topic = match &waiting.response_topic {
                Some(t) => t.clone(),
                None => {
                    let name = std::format!("responses/{}", client.client_id());
                    let (Ok(topic), Ok(filter)) =
                        (TopicName::new(name.clone()), TopicFilter::new(name))
                    else {
                        let _ = done.send(Err(ClientError::ResponseTopic));
                        return;
                    };
                    let options = SubscriptionOptions::qos(QoS::AtLeastOnce);
                    if let Err(e) =
                        client.subscribe(clock.now(), vec![(filter, options)], Default::default())
                    {
                        let _ = done.send(Err(e.into()));
                        return;
                    }
                    waiting.response_topic = Some(topic.clone());
                    topic
                }
            };
            waiting.next_correlation += 1;
            let correlation = waiting.next_correlation;
            msg.properties.response_topic = Some(topic);
            msg.properties.correlation_data =
                Some(Bytes::copy_from_slice(&correlation.to_be_bytes()));
            // Requests whose caller gave up are forgotten here.
            waiting.requests.retain(|_, d| !d.is_closed());
            match client.publish(clock.now(), *msg) {
                Ok(_) => {
                    waiting.requests.insert(correlation, done);
                }
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            }
        }
        Command::Disconnect(done) => {
            let _ = client.disconnect(clock.now(), Default::default());
            *stopping = Some(done);
        }
    }
}

/// Where a call waits for its answer.
type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// A SUBSCRIBE or UNSUBSCRIBE handed to the client: its call waits for the ack, or fails
/// at once if the client refused it.
fn wait_for_ack<T>(
    waiting: &mut HashMap<PacketId, Reply<T>>,
    sent: Result<PacketId, SubscribeError>,
    done: Reply<T>,
) {
    match sent {
        Ok(id) => {
            waiting.insert(id, done);
        }
        Err(e) => {
            let _ = done.send(Err(e.into()));
        }
    }
}

/// The ack a call waited for.
fn answer<T>(waiting: &mut HashMap<PacketId, Reply<T>>, id: PacketId, ack: T) {
    if let Some(done) = waiting.remove(&id) {
        let _ = done.send(Ok(ack));
    }
}

/// Resolves the call an event answers, or tells the application.
async fn deliver(e: Event, waiting: &mut Waiting, events: &mpsc::Sender<Notification>) {
    let note = match e {
        Event::Published(p) => {
            if let Some((done, size)) = waiting.publishes.remove(&p.packet_id) {
                waiting.queued_bytes -= size;
                let _ = done.send(Ok(Some(p)));
            }
            return;
        }
        Event::PublishDropped { packet_id, reason } => {
            if let Some((done, size)) = waiting.publishes.remove(&packet_id) {
                waiting.queued_bytes -= size;
                let _ = done.send(Err(ClientError::Dropped(reason)));
            }
            return;
        }
        Event::Subscribed(s) => return answer(&mut waiting.subscribes, s.packet_id, s),
        Event::Unsubscribed(u) => return answer(&mut waiting.unsubscribes, u.packet_id, u),
        Event::Connected(c) => {
            if !c.session_present {
                // A new session holds no subscription to the Response Topic.
                waiting.response_topic = None;
            }
            Notification::Connected(c)
        }
        Event::Message(m) => {
            if waiting.response_topic.as_ref() == Some(&m.topic)
                && let Some(data) = &m.properties.correlation_data
                && let Ok(bytes) = <[u8; 8]>::try_from(&data[..])
                && let Some(done) = waiting.requests.remove(&u64::from_be_bytes(bytes))
            {
                let _ = done.send(Ok(m));
                return;
            }
            Notification::Message(m)
        }
        Event::Disconnected(d) => Notification::Disconnected(d),
        _ => return,
    };
    // Nobody reading is no reason to stop: calls may still be waiting.
    let _ = events.send(note).await;
}
