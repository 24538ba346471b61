//! An MQTT 3.1.1 / 5.0 broker on tokio: the command line over `mqtt_session::server`.
//!
//! ```sh
//! cargo run --release -p mqtt-session --features cli --bin mqtt-broker                 # 127.0.0.1:1883
//! cargo run --release -p mqtt-session --features cli --bin mqtt-broker -- --help
//! ```
//!
//! The program is [`mqtt_session::server`] with flags: it reads them (and a mosquitto.conf),
//! builds a `Server`, and serves it until Ctrl-C (or SIGTERM), which sends v5 clients
//! DISCONNECT 0x8B and closes every connection before exiting.
#![forbid(unsafe_code)]

mod conf;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mqtt_codec::MAX_PACKET_SIZE;
use mqtt_session::broker::{BrokerConfig, ClientIdPolicy, ConnectRate, Qos0Overflow};
use mqtt_session::mqtt_codec::QoS;
use mqtt_session::server::{Acl, Server, Throttle, TlsAcceptor, Transport, Users};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

/// The largest packet by default: ample for telemetry and commands, and a bound on what one
/// client can make the broker buffer (the protocol allows 256 MiB).
const DEFAULT_MAX_PACKET_SIZE: u32 = 1024 * 1024;

/// The defaults of the core's limits, for the help text.
fn core_default() -> BrokerConfig {
    BrokerConfig::default()
}

/// An MQTT 3.1.1 / 5.0 broker (MQTT 3.1 CONNECTs too). With no option it listens on
/// 127.0.0.1:1883 and accepts anyone.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt-broker",
    version,
    args_override_self = true,
    after_help = "Add a user to a password file (mosquitto_passwd's format, PBKDF2-SHA512):\n  \
                  mqtt-broker passwd FILE USER PASSWORD\n\n\
                  RUST_LOG sets the log filter when --log-level is not given."
)]
struct Args {
    /// Read the common subset of mosquitto.conf (listener, protocol, certfile, keyfile,
    /// cafile, allow_anonymous, password_file, acl_file, max_packet_size, sys_interval, ...);
    /// flags after it override the file
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    #[allow(dead_code)] // replaced by the flags it stands for before parsing
    config: Option<String>,

    // --- listeners ---
    /// Listen for MQTT over TCP on ADDR (repeatable; 127.0.0.1:1883 when no listener at all
    /// is given)
    #[arg(long = "bind", value_name = "ADDR", help_heading = "Listeners")]
    binds: Vec<String>,
    /// Listen for MQTT over TLS on ADDR (needs --cert and --key); alone, it is the only
    /// listener
    #[arg(long, value_name = "ADDR", help_heading = "Listeners")]
    tls: Option<String>,
    /// Listen for MQTT over WebSocket (subprotocol mqtt) on ADDR
    #[arg(long, value_name = "ADDR", help_heading = "Listeners")]
    ws: Option<String>,
    /// Listen for MQTT over WebSocket over TLS on ADDR
    #[arg(long, value_name = "ADDR", help_heading = "Listeners")]
    wss: Option<String>,
    /// PEM certificate chain for --tls and --wss
    #[arg(long, value_name = "FILE", help_heading = "Listeners")]
    cert: Option<String>,
    /// PEM private key for --tls and --wss
    #[arg(long, value_name = "FILE", help_heading = "Listeners")]
    key: Option<String>,
    /// PEM CA: TLS clients must present a certificate it signed
    #[arg(long, value_name = "FILE", help_heading = "Listeners")]
    cafile: Option<String>,
    /// With --cafile: a TLS client is its certificate's Common Name (no password needed;
    /// the CONNECT's user name is replaced)
    #[arg(long, help_heading = "Listeners")]
    use_identity_as_username: bool,

    // --- who may connect ---
    /// Password file (mosquitto_passwd's format, or user:password lines); only these
    /// credentials are accepted
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    users: Option<String>,
    /// ACL file (mosquitto's acl_file format): who may publish, subscribe and read where
    #[arg(long, value_name = "FILE", help_heading = "Access")]
    acl: Option<String>,
    /// Accept clients without a user name [default: false with --users or a listener
    /// beyond loopback, else true]
    #[arg(long, value_name = "BOOL", help_heading = "Access")]
    allow_anonymous: Option<bool>,
    /// CONNECTs per source address per second (0: no limit; loopback is not limited);
    /// beyond it CONNACK 0x9F
    #[arg(long, value_name = "N", default_value_t = Throttle::default().connects_per_second, help_heading = "Access")]
    max_connect_rate: u32,
    /// Failed logins from one address before it must pause, 1 s and doubling up to 60 s
    /// with each further failure (0: never)
    #[arg(long, value_name = "N", default_value_t = Throttle::default().failures_allowed, help_heading = "Access")]
    max_login_failures: u32,
    /// CONNECTs per second, all clients together (0: no limit); beyond it CONNACK 0x9F
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Access")]
    max_total_connect_rate: u32,
    /// Which client identifiers are accepted; others get CONNACK 0x85
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = IdPolicy::Any, help_heading = "Access")]
    client_id_policy: IdPolicy,
    /// Refuse an empty client identifier (0x85) rather than assign one
    #[arg(long, help_heading = "Access")]
    no_empty_client_id: bool,
    /// The prefix of assigned client identifiers
    #[arg(long, value_name = "PREFIX", default_value_t = core_default().assigned_client_id_prefix, help_heading = "Access")]
    assigned_client_id_prefix: String,
    /// Refuse client ids, topics and filters with control characters
    #[arg(long, help_heading = "Access")]
    reject_control_characters: bool,

    // --- what a peer can make the broker hold ---
    /// Largest packet accepted from a client (announced in the v5 CONNACK)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_PACKET_SIZE, value_parser = clap::value_parser!(u32).range(2..=i64::from(MAX_PACKET_SIZE)), help_heading = "Limits")]
    max_packet_size: u32,
    /// Largest CONNECT, and packet before it
    #[arg(long, value_name = "BYTES", default_value_t = core_default().maximum_connect_size, value_parser = clap::value_parser!(u32).range(2..=i64::from(MAX_PACKET_SIZE)), help_heading = "Limits")]
    max_connect_size: u32,
    /// Broker-wide bytes of packets over 64 KiB still arriving; a packet waits for room
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024, help_heading = "Limits")]
    max_in_transit: usize,
    /// Seconds a packet may take to arrive once begun
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    packet_timeout: u64,
    /// Seconds from opening a connection to CONNACK
    #[arg(long, value_name = "SECS", default_value_t = core_default().connect_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    connect_timeout: u64,
    /// Packets a client may send after CONNECT before it is answered
    #[arg(long, value_name = "N", default_value_t = core_default().max_packets_before_connack, help_heading = "Limits")]
    max_packets_before_connack: usize,
    /// CONNECTs waiting for their answer at once; more get CONNACK 0x89
    #[arg(long, value_name = "N", default_value_t = core_default().max_pending_connects, help_heading = "Limits")]
    max_pending_connects: usize,
    /// AUTH packets in one v5 authentication exchange
    #[arg(long, value_name = "N", default_value_t = core_default().max_auth_round_trips, help_heading = "Limits")]
    max_auth_round_trips: u32,
    /// Sessions at once; a CONNECT needing a new one beyond it gets CONNACK 0x97
    #[arg(long, value_name = "N", default_value_t = core_default().max_sessions, help_heading = "Limits")]
    max_sessions: usize,
    /// Subscriptions per session; more get 0x97 in the SUBACK
    #[arg(long, value_name = "N", default_value_t = core_default().max_subscriptions_per_session, help_heading = "Limits")]
    max_subscriptions: usize,
    /// QoS 1/2 messages held per session
    #[arg(long, value_name = "N", default_value_t = core_default().max_queued_messages, help_heading = "Limits")]
    max_queued_messages: usize,
    /// Bytes (topic, payload, properties) of QoS 1/2 messages held per session (0: no limit,
    /// as mosquitto's max_queued_bytes)
    #[arg(long, value_name = "BYTES", default_value_t = core_default().max_queued_bytes, help_heading = "Limits")]
    max_queued_bytes: usize,
    /// QoS 0 messages waiting for a slow connection
    #[arg(long, value_name = "N", default_value_t = core_default().max_queued_qos0, help_heading = "Limits")]
    max_queued_qos0: usize,
    /// Which QoS 0 message a full queue drops
    #[arg(long, value_name = "WHICH", value_enum, default_value_t = Overflow::DropNewest, help_heading = "Limits")]
    qos0_overflow: Overflow,
    /// Retained messages kept
    #[arg(long, value_name = "N", default_value_t = core_default().max_retained_messages, help_heading = "Limits")]
    max_retained_messages: usize,
    /// Bytes of retained messages kept
    #[arg(long, value_name = "BYTES", default_value_t = core_default().max_retained_bytes, help_heading = "Limits")]
    max_retained_bytes: usize,
    /// Levels in a topic name or filter
    #[arg(long, value_name = "N", default_value_t = core_default().max_topic_levels, help_heading = "Limits")]
    max_topic_levels: usize,
    /// Bytes handed to a connection before it reports them written (flow control)
    #[arg(long, value_name = "BYTES", default_value_t = core_default().write_budget, help_heading = "Limits")]
    write_budget: usize,
    /// Seconds a connection may hold unwritten bytes without progress before it is closed
    #[arg(long, value_name = "SECS", default_value_t = core_default().write_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    write_timeout: u64,
    /// Messages a subscriber may have yet to take before its publishers are paused
    #[arg(long, value_name = "N", default_value_t = core_default().pause_publishers_at, help_heading = "Limits")]
    pause_publishers_at: usize,

    // --- the protocol ---
    /// QoS 2 messages a v5 client may have unreleased (Receive Maximum)
    #[arg(long, value_name = "N", default_value_t = core_default().receive_maximum, value_parser = clap::value_parser!(u16).range(1..), help_heading = "Protocol")]
    receive_maximum: u16,
    /// QoS 1/2 messages sent to a client and not yet acknowledged (or its Receive Maximum
    /// if lower)
    #[arg(long, value_name = "N", default_value_t = core_default().max_in_flight, value_parser = clap::value_parser!(u16).range(1..), help_heading = "Protocol")]
    max_inflight: u16,
    /// The highest QoS accepted and granted (Maximum QoS)
    #[arg(long, value_name = "QOS", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2), help_heading = "Protocol")]
    maximum_qos: u8,
    /// Longest keep-alive a client may ask for: v5 clients asking for more (or none) get it
    /// as Server Keep Alive, 3.1.1 ones are refused [default: no limit]
    #[arg(long, value_name = "SECS", help_heading = "Protocol")]
    max_keepalive: Option<u16>,
    /// Impose this keep-alive on v5 clients (Server Keep Alive) [default: theirs]
    #[arg(long, value_name = "SECS", help_heading = "Protocol")]
    server_keep_alive: Option<u16>,
    /// Longest Session Expiry Interval granted [default: never expires]
    #[arg(long, value_name = "SECS", help_heading = "Protocol")]
    max_session_expiry: Option<u32>,
    /// Topic Alias Maximum offered to v5 clients
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Protocol"
    )]
    max_topic_alias: u16,
    /// Give topics aliases in PUBLISH towards v5 clients that allow it
    #[arg(long, help_heading = "Protocol")]
    outbound_topic_aliases: bool,
    /// No retained messages (Retain Available 0)
    #[arg(long, help_heading = "Protocol")]
    no_retain: bool,
    /// No subscriptions with + or # (Wildcard Subscription Available 0)
    #[arg(long, help_heading = "Protocol")]
    no_wildcard_subscriptions: bool,
    /// No Subscription Identifiers (Subscription Identifier Available 0)
    #[arg(long, help_heading = "Protocol")]
    no_subscription_identifiers: bool,
    /// No $share/ subscriptions (Shared Subscription Available 0)
    #[arg(long, help_heading = "Protocol")]
    no_shared_subscriptions: bool,
    /// Send no Reason Strings
    #[arg(long, help_heading = "Protocol")]
    no_reason_strings: bool,

    // --- persistence and operations ---
    /// Keep sessions, their messages and subscriptions, wills and retained messages in
    /// DIR/broker.redb and restore them at start; nothing is acknowledged before it is on
    /// disk [default: in memory only]
    #[arg(long, value_name = "DIR", help_heading = "Operations")]
    persist: Option<String>,
    /// With --persist: wait up to MS milliseconds after a write for more to commit with it
    #[arg(
        long,
        value_name = "MS",
        requires = "persist",
        help_heading = "Operations"
    )]
    persist_window: Option<u64>,
    /// Publish statistics under $SYS/broker/ every SECS seconds (0: none)
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        help_heading = "Operations"
    )]
    sys_interval: u64,
    /// Serve the statistics for Prometheus at http://ADDR/metrics
    #[arg(long, value_name = "ADDR", help_heading = "Operations")]
    metrics: Option<String>,
    /// Log level [default: info; RUST_LOG when not given]
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"], help_heading = "Operations")]
    log_level: Option<String>,
}

/// `--client-id-policy`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum IdPolicy {
    /// Any the protocol allows
    Any,
    /// No control characters or spaces
    Printable,
    /// 1 to 23 of 0-9, a-z, A-Z
    Portable,
}

/// `--qos0-overflow`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Overflow {
    /// Drop the new message (as mosquitto)
    DropNewest,
    /// Drop the oldest queued one: the client sees the latest values
    DropOldest,
}

impl Args {
    /// What the flags cannot say alone: the listeners' needs, and the default listener.
    fn check(mut self) -> Result<Self, String> {
        let secure = self.tls.is_some() || self.wss.is_some();
        if secure != (self.cert.is_some() && self.key.is_some()) {
            return Err("--tls and --wss need --cert and --key (and they need one of them)".into());
        }
        if self.cafile.is_some() && !secure {
            return Err("--cafile needs --tls or --wss".into());
        }
        if self.use_identity_as_username && self.cafile.is_none() {
            return Err("--use-identity-as-username needs --cafile".into());
        }
        // No listener asked for: plain MQTT on this machine only. Any listener asked for
        // (TLS alone, say) is all there is.
        if self.binds.is_empty() && !secure && self.ws.is_none() {
            self.binds.push("127.0.0.1:1883".into());
        }
        Ok(self)
    }

    /// The core's configuration.
    fn broker_config(&self) -> BrokerConfig {
        let mut c = BrokerConfig::default();
        c.maximum_packet_size = self.max_packet_size;
        c.maximum_connect_size = self.max_connect_size;
        c.connect_timeout = Duration::from_secs(self.connect_timeout);
        c.max_packets_before_connack = self.max_packets_before_connack;
        c.max_pending_connects = self.max_pending_connects;
        c.max_auth_round_trips = self.max_auth_round_trips;
        c.connect_rate = (self.max_total_connect_rate > 0)
            .then(|| ConnectRate::new(self.max_total_connect_rate, Duration::from_secs(1)));
        c.max_sessions = self.max_sessions;
        c.max_subscriptions_per_session = self.max_subscriptions;
        c.max_queued_messages = self.max_queued_messages;
        c.max_queued_bytes = match self.max_queued_bytes {
            0 => usize::MAX,
            n => n,
        };
        c.max_queued_qos0 = self.max_queued_qos0;
        c.qos0_overflow = match self.qos0_overflow {
            Overflow::DropNewest => Qos0Overflow::DropNewest,
            Overflow::DropOldest => Qos0Overflow::DropOldest,
        };
        c.max_retained_messages = self.max_retained_messages;
        c.max_retained_bytes = self.max_retained_bytes;
        c.max_topic_levels = self.max_topic_levels;
        c.write_budget = self.write_budget;
        c.write_timeout = Duration::from_secs(self.write_timeout);
        c.pause_publishers_at = self.pause_publishers_at;
        c.receive_maximum = self.receive_maximum;
        c.max_in_flight = self.max_inflight;
        c.maximum_qos = match self.maximum_qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        c.max_keep_alive = self.max_keepalive;
        c.server_keep_alive = self.server_keep_alive;
        if let Some(secs) = self.max_session_expiry {
            c.maximum_session_expiry = secs;
        }
        // mosquitto's default: clients that send aliases without reading the CONNACK work.
        c.topic_alias_maximum = self.max_topic_alias;
        c.outbound_topic_aliases = self.outbound_topic_aliases;
        c.retain_available = !self.no_retain;
        c.wildcard_subscription_available = !self.no_wildcard_subscriptions;
        c.subscription_identifiers_available = !self.no_subscription_identifiers;
        c.shared_subscription_available = !self.no_shared_subscriptions;
        c.reason_strings = !self.no_reason_strings;
        c.reject_control_characters = self.reject_control_characters;
        c.client_id_policy = match self.client_id_policy {
            IdPolicy::Any => ClientIdPolicy::Any,
            IdPolicy::Printable => ClientIdPolicy::Printable,
            IdPolicy::Portable => ClientIdPolicy::Portable,
        };
        c.allow_empty_client_id = !self.no_empty_client_id;
        c.assigned_client_id_prefix = self.assigned_client_id_prefix.clone();
        c
    }
}

/// The TLS acceptor for `--tls` and `--wss`: the certificate chain and key from PEM files,
/// and with `--cafile`, client certificates required and checked against that CA.
fn tls_acceptor(cert: &str, key: &str, cafile: Option<&str>) -> Result<TlsAcceptor, String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let ca = cafile.map(read).transpose()?;
    mqtt_session::server::tls_acceptor(&read(cert)?, &read(key)?, ca.as_deref())
        .map_err(|e| format!("--cert {cert} / --key {key} / --cafile: {e}"))
}

async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "passwd") {
        return match passwd_command(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mqtt-broker passwd: {e}");
                ExitCode::from(2)
            }
        };
    }
    let argv = match expand_config(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mqtt-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let args = match Args::try_parse_from(std::iter::once("mqtt-broker".to_string()).chain(argv)) {
        Ok(a) => a,
        // --help and --version print and exit 0; a usage error prints it and exits 2.
        Err(e) => e.exit(),
    };
    let args = match args.check() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mqtt-broker: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines with timestamps on stderr, at `--log-level` (default info), or as `RUST_LOG`
/// says when it is set and no level is given.
fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
}

async fn run(args: Args) -> Result<(), String> {
    init_logging(args.log_level.as_deref());
    // As mosquitto 2: anonymous clients are refused by default once a password file is
    // given or a listener is reachable from other machines.
    let exposed = args
        .binds
        .iter()
        .chain(&args.tls)
        .chain(&args.ws)
        .chain(&args.wss)
        .any(|a| !is_loopback(a));
    let allow_anonymous = args
        .allow_anonymous
        .or((exposed && args.users.is_none()).then_some(false));
    if exposed && allow_anonymous != Some(true) && args.users.is_none() {
        warn!(
            "listening beyond this machine without --users: anonymous clients are refused \
             (--allow-anonymous true to accept them)"
        );
    }
    let mut users = match &args.users {
        Some(path) => Users::load(path).map_err(|e| format!("--users {e}"))?,
        None => Users::any(),
    };
    if let Some(allow) = allow_anonymous {
        users = users.allow_anonymous(allow);
    }
    let users = users.use_identity_as_username(args.use_identity_as_username);
    let mut throttle = Throttle::default();
    throttle.connects_per_second = args.max_connect_rate;
    throttle.failures_allowed = args.max_login_failures;
    let config = args.broker_config();
    let sys_interval = Duration::from_secs(args.sys_interval);
    let mut server = Server::new(config)
        .authenticator(users)
        .throttle(throttle)
        .sys_interval(sys_interval);
    if let Some(addr) = &args.metrics {
        server = server.metrics(bind(addr).await?);
    }
    server = server
        .max_in_transit(args.max_in_transit)
        .packet_timeout(Duration::from_secs(args.packet_timeout));
    if let Some(path) = &args.acl {
        server = server.authorizer(Acl::load(path).map_err(|e| format!("--acl {e}"))?);
    }
    if let Some(dir) = &args.persist {
        let window = Duration::from_millis(args.persist_window.unwrap_or(0));
        server = server.persistence(dir).commit_window(window);
    }
    for addr in &args.binds {
        server = server.listener(bind(addr).await?, Transport::Tcp);
    }
    let acceptor = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key, args.cafile.as_deref())?),
        _ => None,
    };
    if let (Some(addr), Some(acceptor)) = (&args.tls, &acceptor) {
        server = server.listener(bind(addr).await?, Transport::Tls(acceptor.clone()));
    }
    if let Some(addr) = &args.ws {
        server = server.listener(bind(addr).await?, Transport::WebSocket);
    }
    if let (Some(addr), Some(acceptor)) = (&args.wss, &acceptor) {
        let l = bind(addr).await?;
        server = server.listener(l, Transport::SecureWebSocket(acceptor.clone()));
    }
    let running = server.start().await.map_err(|e| e.to_string())?;
    info!(
        "mqtt-broker {} running; --help lists its options",
        env!("CARGO_PKG_VERSION")
    );
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = running.failed() => {}
    }
    running.shutdown().await.map_err(|e| e.to_string())
}

/// `mqtt-broker passwd FILE USER PASSWORD`: adds USER to FILE, or replaces its entry.
fn passwd_command(args: &[String]) -> Result<(), String> {
    let [file, user, password] = args else {
        return Err("usage: mqtt-broker passwd FILE USER PASSWORD".into());
    };
    Users::add_user(file, user, password)
}

/// `-c FILE` (or `--config FILE`) replaced by the flags the file stands for.
fn expand_config(argv: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "-c" || a == "--config" {
            let path = it.next().ok_or_else(|| format!("{a} needs a file"))?;
            out.extend(conf::args_from_conf(&path)?);
        } else {
            out.push(a);
        }
    }
    Ok(out)
}

/// Whether a listen address (`host:port`) is this machine only.
fn is_loopback(addr: &str) -> bool {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => addr.starts_with("localhost:"),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
