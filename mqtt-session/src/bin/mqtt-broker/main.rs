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

use mqtt_codec::MAX_PACKET_SIZE;
use mqtt_session::broker::BrokerConfig;
use mqtt_session::server::{Acl, Server, Throttle, TlsAcceptor, Transport, Users};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

/// The largest packet by default: ample for telemetry and commands, and a bound on what one
/// client can make the broker buffer (the protocol allows 256 MiB).
const DEFAULT_MAX_PACKET_SIZE: u32 = 1024 * 1024;

const USAGE: &str = "\
usage: mqtt-broker [OPTIONS]

  -c, --config FILE        read the common subset of mosquitto.conf (listener, protocol,
                           certfile, keyfile, cafile, allow_anonymous, password_file,
                           acl_file, max_packet_size, max_queued_messages,
                           max_inflight_messages, max_keepalive, retain_available, ...);
                           flags after it override the file
  --bind ADDR              listen for MQTT over TCP on ADDR (repeatable; default
                           127.0.0.1:1883 when no listener at all is given)
  --tls ADDR               listen for MQTT over TLS on ADDR (needs --cert and --key);
                           alone, it is the only listener: no plain text
  --cert FILE              PEM certificate chain for --tls and --wss
  --key FILE               PEM private key for --tls and --wss
  --cafile FILE            PEM CA: TLS clients must present a certificate it signed
  --use-identity-as-username
                           with --cafile: a TLS client is its certificate's Common Name
                           (no password needed; the CONNECT's user name is replaced)
  --ws ADDR                listen for MQTT over WebSocket (subprotocol mqtt) on ADDR
  --wss ADDR               listen for MQTT over WebSocket over TLS on ADDR
  --max-packet-size BYTES  largest packet accepted from a client (default: 1048576, 1 MiB;
                           announced in the v5 CONNACK)
  --max-connect-size BYTES largest CONNECT, and packet before it (default: 65536)
  --max-in-transit BYTES   broker-wide bytes of packets over 64 KiB still arriving
                           (default: 67108864, 64 MiB); a packet waits for room
  --packet-timeout SECS    time a packet may take to arrive once begun (default: 30)
  --users FILE             password file (mosquitto_passwd's format, or user:password
                           lines); only these credentials are accepted
  --acl FILE               ACL file (mosquitto's acl_file format): who may publish,
                           subscribe and read where
  --max-keepalive SECS     longest keep-alive a client may ask for: v5 clients asking for
                           more (or none) get it as Server Keep Alive, 3.1.1 ones are
                           refused (default: no limit)
  --receive-maximum N      QoS 2 messages a client may have unreleased (default: 65535)
  --max-inflight N         QoS 1/2 messages sent to a client and not yet acknowledged
                           (default: 128, or the client's Receive Maximum if lower)
  --max-queued-messages N  QoS 1/2 messages held per session (default: 1000)
  --no-retain              no retained messages (Retain Available 0)
  --max-topic-alias N      Topic Alias Maximum offered to v5 clients (default: 10)
  --outbound-topic-aliases give topics aliases in PUBLISH towards v5 clients that allow it
  --no-reason-strings      send no Reason Strings
  --reject-control-characters
                           refuse client ids, topics and filters with control characters
  --client-id-policy P     any (default), printable (no control characters or spaces), or
                           portable (1 to 23 of 0-9, a-z, A-Z); others get CONNACK 0x85
  --max-connect-rate N     CONNECTs per source address per second (default: 50; 0: no
                           limit; loopback is not limited); beyond it CONNACK 0x9F
  --max-login-failures N   failed logins from one address before it must pause, 1 s and
                           doubling up to 60 s with each further failure (default: 5)
  --allow-anonymous BOOL   accept clients without a user name (default: false with
                           --users or a listener beyond loopback, else true)
  --persist DIR            keep sessions, their messages and subscriptions, wills and
                           retained messages in DIR/broker.redb, and restore them at
                           start; nothing is acknowledged (PUBACK, PUBREC, CONNACK with a
                           session) before it is on disk (default: in memory only)
  --persist-window MS      with --persist: wait up to MS milliseconds after a write for
                           more to commit with it (default: 0, commit at once; writes
                           that arrive during a commit join the next one)
  --sys-interval SECS      publish statistics under $SYS/broker/ every SECS seconds
                           (default: 10, as mosquitto; 0: none)
  --metrics ADDR           serve the statistics for Prometheus at http://ADDR/metrics
  --log-level LEVEL        error, warn, info (default), debug or trace; without it,
                           RUST_LOG sets the filter
  --help                   this text

       mqtt-broker passwd FILE USER PASSWORD
                           add USER to the password file FILE (or replace it), hashed
                           as mosquitto_passwd does (PBKDF2-SHA512)";

#[derive(Debug, Default)]
struct Args {
    binds: Vec<String>,
    tls: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ws: Option<String>,
    wss: Option<String>,
    cafile: Option<String>,
    use_identity_as_username: bool,
    max_packet_size: Option<u32>,
    max_connect_size: Option<u32>,
    max_in_transit: Option<usize>,
    packet_timeout: Option<u64>,
    users: Option<String>,
    acl: Option<String>,
    max_connect_rate: Option<u32>,
    max_keepalive: Option<u16>,
    receive_maximum: Option<u16>,
    max_inflight: Option<u16>,
    max_topic_alias: Option<u16>,
    outbound_topic_aliases: bool,
    no_reason_strings: bool,
    max_queued_messages: Option<usize>,
    no_retain: bool,
    reject_control_characters: bool,
    client_id_policy: Option<mqtt_session::broker::ClientIdPolicy>,
    max_login_failures: Option<u32>,
    allow_anonymous: Option<bool>,
    persist: Option<String>,
    persist_window: Option<u64>,
    sys_interval: Option<u64>,
    metrics: Option<String>,
    log_level: Option<String>,
    help: bool,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut a = Args::default();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--bind" => a.binds.push(value()?),
                "--tls" => one_listener(&mut a.tls, &flag, value()?)?,
                "--cert" => a.cert = Some(value()?),
                "--key" => a.key = Some(value()?),
                "--ws" => one_listener(&mut a.ws, &flag, value()?)?,
                "--wss" => one_listener(&mut a.wss, &flag, value()?)?,
                "--cafile" => a.cafile = Some(value()?),
                "--use-identity-as-username" => a.use_identity_as_username = true,
                "--max-packet-size" => {
                    let n: u32 = number(&flag, &value()?)?;
                    if n < 2 {
                        return Err("--max-packet-size must be at least 2".into());
                    }
                    a.max_packet_size = Some(n.min(MAX_PACKET_SIZE));
                }
                "--max-connect-size" => {
                    let n: u32 = number(&flag, &value()?)?;
                    a.max_connect_size = Some(n.clamp(2, MAX_PACKET_SIZE));
                }
                "--max-in-transit" => a.max_in_transit = Some(number(&flag, &value()?)?),
                "--packet-timeout" => {
                    a.packet_timeout = Some(number::<u64>(&flag, &value()?)?.max(1));
                }
                "--users" => a.users = Some(value()?),
                "--acl" => a.acl = Some(value()?),
                "--max-keepalive" => a.max_keepalive = Some(number(&flag, &value()?)?),
                "--receive-maximum" => {
                    a.receive_maximum = Some(number::<u16>(&flag, &value()?)?.max(1));
                }
                "--max-inflight" => a.max_inflight = Some(number::<u16>(&flag, &value()?)?.max(1)),
                "--max-topic-alias" => a.max_topic_alias = Some(number(&flag, &value()?)?),
                "--outbound-topic-aliases" => a.outbound_topic_aliases = true,
                "--no-reason-strings" => a.no_reason_strings = true,
                "--max-queued-messages" => {
                    a.max_queued_messages = Some(number(&flag, &value()?)?);
                }
                "--no-retain" => a.no_retain = true,
                "--reject-control-characters" => a.reject_control_characters = true,
                "--client-id-policy" => {
                    use mqtt_session::broker::ClientIdPolicy;
                    a.client_id_policy = Some(match value()?.as_str() {
                        "any" => ClientIdPolicy::Any,
                        "printable" => ClientIdPolicy::Printable,
                        "portable" => ClientIdPolicy::Portable,
                        v => {
                            return Err(format!(
                                "--client-id-policy {v}: any, printable or portable"
                            ));
                        }
                    });
                }
                "--max-connect-rate" => a.max_connect_rate = Some(number(&flag, &value()?)?),
                "--max-login-failures" => {
                    a.max_login_failures = Some(number(&flag, &value()?)?);
                }
                "--allow-anonymous" => {
                    a.allow_anonymous = Some(match value()?.as_str() {
                        "true" => true,
                        "false" => false,
                        v => return Err(format!("--allow-anonymous {v}: expected true or false")),
                    });
                }
                "--persist" => a.persist = Some(value()?),
                "--persist-window" => a.persist_window = Some(number(&flag, &value()?)?),
                "--sys-interval" => a.sys_interval = Some(number(&flag, &value()?)?),
                "--metrics" => a.metrics = Some(value()?),
                "--log-level" => {
                    let level = value()?;
                    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                        return Err(format!(
                            "--log-level {level}: error, warn, info, debug or trace"
                        ));
                    }
                    a.log_level = Some(level);
                }
                "--help" | "-h" => a.help = true,
                other => return Err(format!("unknown option {other}")),
            }
        }
        let secure = a.tls.is_some() || a.wss.is_some();
        if secure != (a.cert.is_some() && a.key.is_some()) {
            return Err("--tls and --wss need --cert and --key (and they need one of them)".into());
        }
        if a.cafile.is_some() && !secure {
            return Err("--cafile needs --tls or --wss".into());
        }
        if a.persist_window.is_some() && a.persist.is_none() {
            return Err("--persist-window needs --persist".into());
        }
        if a.use_identity_as_username && a.cafile.is_none() {
            return Err("--use-identity-as-username needs --cafile".into());
        }
        // No listener asked for: plain MQTT on this machine only. Any listener asked for
        // (TLS alone, say) is all there is.
        if a.binds.is_empty() && !secure && a.ws.is_none() {
            a.binds.push("127.0.0.1:1883".into());
        }
        Ok(a)
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
            eprintln!("broker: {e}");
            return ExitCode::from(2);
        }
    };
    let args = match Args::parse(argv.into_iter()) {
        Ok(a) if a.help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(a) => a,
        Err(e) => {
            eprintln!("broker: {e}\n\n{USAGE}");
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
    if let Some(n) = args.max_connect_rate {
        throttle.connects_per_second = n;
    }
    if let Some(n) = args.max_login_failures {
        throttle.failures_allowed = n;
    }
    let config = {
        let mut c = BrokerConfig::default();
        c.maximum_packet_size = args.max_packet_size.unwrap_or(DEFAULT_MAX_PACKET_SIZE);
        if let Some(n) = args.max_connect_size {
            c.maximum_connect_size = n;
        }
        c.max_keep_alive = args.max_keepalive;
        if let Some(n) = args.receive_maximum {
            c.receive_maximum = n;
        }
        if let Some(n) = args.max_inflight {
            c.max_in_flight = n;
        }
        // mosquitto's default: clients that send aliases without reading the CONNACK work.
        c.topic_alias_maximum = args.max_topic_alias.unwrap_or(10);
        c.outbound_topic_aliases = args.outbound_topic_aliases;
        c.reason_strings = !args.no_reason_strings;
        c.reject_control_characters = args.reject_control_characters;
        if let Some(p) = args.client_id_policy {
            c.client_id_policy = p;
        }
        if let Some(n) = args.max_queued_messages {
            c.max_queued_messages = n;
        }
        c.retain_available = !args.no_retain;
        c
    };
    let sys_interval = Duration::from_secs(args.sys_interval.unwrap_or(10));
    let mut server = Server::new(config)
        .authenticator(users)
        .throttle(throttle)
        .sys_interval(sys_interval);
    if let Some(addr) = &args.metrics {
        server = server.metrics(bind(addr).await?);
    }
    if let Some(n) = args.max_in_transit {
        server = server.max_in_transit(n);
    }
    if let Some(secs) = args.packet_timeout {
        server = server.packet_timeout(Duration::from_secs(secs));
    }
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

/// Sets the address of a listener of which there can be one.
fn one_listener(slot: &mut Option<String>, flag: &str, addr: String) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{flag}: one such listener is supported"));
    }
    *slot = Some(addr);
    Ok(())
}

/// `value` of `flag` as a number.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} {value}: not a number in range"))
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
