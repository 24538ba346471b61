//! The command line: `pub TOPIC MESSAGE` and `sub [--count N] FILTER...`.

use std::io::Write;
use std::num::NonZeroU16;
use std::time::Duration;

use mqtt_codec::{
    Bytes, Disconnect, MqttString, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter,
    TopicName, Will,
};
use mqtt_session::client::{Client, ClientConfig, Event, Message};
use mqtt_session::store::SessionState;

use super::driver::{Driver, Store};
use mqtt_session::persist::ClientStore;

pub const USAGE: &str = "\
usage: client [--host H] [--port P] [--id ID] [--qos 0|1|2] [--retain]
              [--protocol 3.1.1|5|5-or-3.1.1] [--username U] [--password P]
              [--will-topic T --will-payload M] [--keep-alive SECS] [--no-clean]
              [--session-expiry SECS] [--session-file FILE]
              pub TOPIC MESSAGE
       client [same options] sub [--count N] FILTER...
  sub prints one `topic payload` line per message; with --count N it exits after N
  messages (--count 0: subscribe, then disconnect, leaving a session behind with
  --no-clean).
  --protocol 5-or-3.1.1 (or auto) asks for MQTT 5.0 and, when the server refuses it,
  connects again with 3.1.1 (dropping --session-expiry); it prints the version it got
  to stderr.
  --session-file FILE keeps the session in FILE (created if absent): QoS 1/2 messages in
  flight and unanswered requests are stored before they are sent, and a later run with
  the same file resumes the session (no clean start; with MQTT 5.0 a Session Expiry
  Interval that never ends unless --session-expiry says otherwise) and sends them again.
  pub then says on stderr when its message is stored, and exits once every message of
  the session is delivered.";

/// Parsed options.
#[derive(Debug)]
struct Options {
    host: String,
    port: u16,
    config: ClientConfig,
    qos: QoS,
    retain: bool,
    session_file: Option<std::path::PathBuf>,
    command: Command,
}

#[derive(Debug)]
enum Command {
    Pub {
        topic: TopicName,
        message: Bytes,
    },
    Sub {
        count: Option<usize>,
        filters: Vec<TopicFilter>,
    },
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let mut host = "127.0.0.1".to_string();
    let mut port = 1883u16;
    let mut id = String::new();
    let mut qos = QoS::AtMostOnce;
    let mut retain = false;
    let mut protocol = ProtocolVersion::V5;
    let mut fallback = false;
    let mut username = None;
    let mut password = None;
    let mut will_topic = None;
    let mut will_payload = None;
    let mut keep_alive = 60u16;
    let mut clean = true;
    let mut session_expiry = None;
    let mut session_file = None;
    let value = |it: &mut std::slice::Iter<String>, name: &str| {
        it.next().cloned().ok_or(format!("{name} needs a value"))
    };
    let command = loop {
        let Some(arg) = it.next() else {
            return Err("missing command (pub or sub)".into());
        };
        match arg.as_str() {
            "--host" => host = value(&mut it, arg)?,
            "--port" => {
                port = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--id" => id = value(&mut it, arg)?,
            "--qos" => {
                qos = match value(&mut it, arg)?.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    "2" => QoS::ExactlyOnce,
                    q => return Err(format!("--qos: {q} is not 0, 1 or 2")),
                }
            }
            "--retain" => retain = true,
            "--protocol" => {
                (protocol, fallback) = match value(&mut it, arg)?.as_str() {
                    "3.1.1" | "4" => (ProtocolVersion::V3_1_1, false),
                    "5" | "5.0" => (ProtocolVersion::V5, false),
                    "5-or-3.1.1" | "auto" => (ProtocolVersion::V5, true),
                    p => return Err(format!("--protocol: {p} is not 3.1.1, 5 or 5-or-3.1.1")),
                }
            }
            "--username" => username = Some(value(&mut it, arg)?),
            "--password" => password = Some(value(&mut it, arg)?),
            "--will-topic" => will_topic = Some(value(&mut it, arg)?),
            "--will-payload" => will_payload = Some(value(&mut it, arg)?),
            "--keep-alive" => {
                keep_alive = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--keep-alive: {e}"))?
            }
            "--no-clean" => clean = false,
            "--session-expiry" => {
                session_expiry = Some(
                    value(&mut it, arg)?
                        .parse::<u32>()
                        .map_err(|e| format!("--session-expiry: {e}"))?,
                )
            }
            "--session-file" => session_file = Some(value(&mut it, arg)?.into()),
            "pub" => {
                let topic = value(&mut it, "pub")?;
                let message = value(&mut it, "pub")?;
                let topic = TopicName::new(topic).map_err(|e| format!("topic: {e}"))?;
                break Command::Pub {
                    topic,
                    message: Bytes::from(message),
                };
            }
            "sub" => {
                let mut count = None;
                let mut filters = Vec::new();
                while let Some(a) = it.next() {
                    if a == "--count" {
                        count = Some(
                            value(&mut it, "--count")?
                                .parse()
                                .map_err(|e| format!("--count: {e}"))?,
                        );
                    } else {
                        filters.push(
                            TopicFilter::new(a.clone()).map_err(|e| format!("filter {a}: {e}"))?,
                        );
                    }
                }
                if filters.is_empty() {
                    return Err("sub needs at least one filter".into());
                }
                break Command::Sub { count, filters };
            }
            other => return Err(format!("unknown option {other}")),
        }
    };
    if it.next().is_some() {
        return Err("unexpected arguments after the command".into());
    }
    let string = |s: String, what: &str| MqttString::new(s).map_err(|e| format!("{what}: {e}"));
    let mut config = ClientConfig::new(protocol, string(id, "--id")?);
    config.fallback_to_v3_1_1 = fallback;
    config.clean_start = clean && session_file.is_none();
    config.keep_alive = keep_alive;
    config.username = username.map(|u| string(u, "--username")).transpose()?;
    config.password = password.map(Bytes::from);
    if protocol.is_v5() {
        config.properties.session_expiry_interval = match (session_expiry, &session_file) {
            (None, Some(_)) => Some(u32::MAX),
            (e, _) => e,
        };
        config.properties.receive_maximum = NonZeroU16::new(64);
    }
    match (will_topic, will_payload) {
        (Some(t), p) => {
            config.will = Some(Will {
                topic: TopicName::new(t).map_err(|e| format!("--will-topic: {e}"))?,
                payload: Bytes::from(p.unwrap_or_default()),
                qos,
                retain: false,
                properties: Default::default(),
            })
        }
        (None, Some(_)) => return Err("--will-payload needs --will-topic".into()),
        (None, None) => {}
    }
    Ok(Options {
        host,
        port,
        config,
        qos,
        retain,
        session_file,
        command,
    })
}

/// Whether `args` is a valid command line (a usage error otherwise).
#[allow(dead_code)] // the tests call `run` directly
pub fn check(args: &[String]) -> Result<(), String> {
    parse(args).map(|_| ())
}

fn io_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs the command line `args` (without the program name). Messages go to `out`;
/// `ready` is told once a `sub` has its SUBACK. Returns the protocol version the
/// connection got.
pub async fn run(
    args: &[String],
    out: &mut (dyn Write + Send),
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<ProtocolVersion, String> {
    let opts = parse(args)?;
    let auto = opts.config.fallback_to_v3_1_1;
    let addr = format!("{}:{}", opts.host, opts.port);
    let mut config = opts.config;
    let (client, store) = match &opts.session_file {
        // The session as the last run left it.
        Some(path) => {
            let store = ClientStore::open(path).map_err(io_err)?;
            let state = store.state().map_err(io_err)?;
            let stored = &state.client_id;
            if config.client_id.is_empty() {
                config.client_id = stored.clone();
            } else if !stored.is_empty() && *stored != config.client_id {
                return Err(format!(
                    "{} holds the session of client {stored:?}, not {:?}",
                    path.display(),
                    config.client_id.as_str()
                ));
            }
            let client = Client::resume(config, state).map_err(io_err)?;
            (client, Store::File(Box::new(store)))
        }
        // --no-clean asks for the session the server kept. This process stores nothing, so
        // it resumes from an empty session state: a fresh client would refuse Session
        // Present 1.
        None if !config.clean_start => (
            Client::resume(config, SessionState::default()).map_err(io_err)?,
            Store::Memory(Default::default()),
        ),
        None => (Client::new(config), Store::Memory(Default::default())),
    };
    let mut d = Driver::connect_with(&addr, client, store)
        .await
        .map_err(io_err)?;
    // Wait for the CONNACK. A server that refuses 5.0 while the client may fall back to
    // 3.1.1 closes this connection; the session then goes on on a new one.
    let mut fall_back = false;
    let version = loop {
        match d.next_event().await.map_err(io_err)? {
            Some(Event::Connected(c)) => break c.protocol,
            Some(Event::UnsupportedProtocolVersion { refused, fallback }) => match fallback {
                Some(v) => {
                    eprintln!("client: the server does not support MQTT {refused}; trying {v}");
                    fall_back = true;
                }
                None => {
                    return Err(format!(
                        "the server does not support MQTT {refused} (see --protocol)"
                    ));
                }
            },
            Some(Event::Disconnected(_)) if fall_back => {
                fall_back = false;
                d.flush().await.map_err(io_err)?;
                let (client, store) = d.into_parts();
                d = Driver::connect_with(&addr, client, store)
                    .await
                    .map_err(io_err)?;
            }
            Some(Event::Disconnected(why)) => return Err(format!("connection failed: {why:?}")),
            Some(_) => {}
            None => return Err("connection closed before CONNACK".into()),
        }
    };
    if auto {
        eprintln!("client: connected with MQTT {version}");
    }
    match opts.command {
        Command::Pub { topic, message } => {
            let msg = Message::new(topic, message)
                .with_qos(opts.qos)
                .with_retain(opts.retain);
            let id = d
                .client()
                .publish(super::driver::now(), msg)
                .map_err(io_err)?;
            if let Some(id) = id {
                d.flush().await.map_err(io_err)?;
                if let Some(path) = &opts.session_file {
                    eprintln!(
                        "client: message {id} stored in {}; it will be delivered",
                        path.display()
                    );
                }
                // Wait for the handshake to finish.
                loop {
                    match d.next_event().await.map_err(io_err)? {
                        Some(Event::Published(p)) if p.packet_id == id => {
                            if p.reason_code.is_error() {
                                return Err(format!("publish refused: {}", p.reason_code));
                            }
                            break;
                        }
                        Some(Event::Disconnected(why)) => {
                            return Err(format!("disconnected: {why:?}"));
                        }
                        Some(_) => {}
                        None => return Err("connection closed during publish".into()),
                    }
                }
            }
            // With a session file, what earlier runs left in flight goes too.
            while d.client().in_flight() + d.client().queued() > 0 {
                match d.next_event().await.map_err(io_err)? {
                    Some(Event::Disconnected(why)) => {
                        return Err(format!("disconnected: {why:?}"));
                    }
                    Some(_) => {}
                    None => return Err("connection closed during publish".into()),
                }
            }
        }
        Command::Sub { count, filters } => {
            let filters = filters
                .into_iter()
                .map(|f| (f, SubscriptionOptions::qos(opts.qos)))
                .collect();
            let now = super::driver::now();
            d.client()
                .subscribe(now, filters, Default::default())
                .map_err(io_err)?;
            let mut ready = ready;
            let mut seen = 0usize;
            let mut subscribed = false;
            while !subscribed || count.is_none_or(|n| seen < n) {
                match d.next_event().await.map_err(io_err)? {
                    Some(Event::Subscribed(s)) => {
                        if let Some((f, _, rc)) = s.filters.iter().find(|(_, _, rc)| rc.is_error())
                        {
                            return Err(format!("subscription to {f} refused: {rc}"));
                        }
                        subscribed = true;
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Some(Event::Message(p)) => {
                        writeln!(out, "{} {}", p.topic, String::from_utf8_lossy(&p.payload))
                            .map_err(io_err)?;
                        out.flush().map_err(io_err)?;
                        seen += 1;
                    }
                    Some(Event::Disconnected(why)) => {
                        return Err(format!("disconnected: {why:?}"));
                    }
                    Some(_) => {}
                    None => return Err("connection closed".into()),
                }
            }
        }
    }
    d.client()
        .disconnect(super::driver::now(), Disconnect::default())
        .map_err(io_err)?;
    d.flush().await.map_err(io_err)?;
    // Give the server a moment to read the DISCONNECT before the socket goes.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(version)
}
