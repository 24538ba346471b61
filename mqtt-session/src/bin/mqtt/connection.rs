//! From the shared flags to a connected [`AsyncClient`], and mosquitto's words and exit
//! codes for a connection that fails.

use std::time::Duration;

use mqtt_session::client::ClientConfig;
use mqtt_session::driver::{
    AsyncClient, ClientOptions, Events, Notification, PacketTrace, Reconnect, Tls, TlsSettings,
};
use mqtt_session::event::{CloseCause, Disconnected};
use mqtt_session::mqtt_codec::{
    Bytes, MqttString, ProtocolVersion, PublishProperties, ReasonCode, TopicName, Will,
};

use crate::Exit;
use crate::args::{Connection, parse_url};
use crate::properties;

/// Which program the flags are for: the defaults and checks differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Pub,
    Sub,
    Rr,
}

/// A client ready to start, and what the subcommand still needs of the flags.
pub(crate) struct Prepared {
    pub(crate) options: ClientOptions,
    pub(crate) protocol: ProtocolVersion,
    /// The `-D publish ...` properties.
    pub(crate) publish_properties: PublishProperties,
    /// The topic of a `-L` URL.
    pub(crate) url_topic: Option<String>,
}

/// Checks the flags as mosquitto does and makes the client's options.
pub(crate) fn prepare(c: &Connection, role: Role) -> Result<Prepared, Exit> {
    let props = properties::parse(&c.property).map_err(Exit::usage)?;
    let protocol = c
        .protocol
        .unwrap_or(if role == Role::Rr || !c.property.is_empty() {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        });
    let mut host = c.host.clone();
    let mut port = c.port;
    let mut username = c.username.clone();
    let mut password = c.password.clone().map(|p| p.into_encoded_bytes());
    let mut url_tls = false;
    let mut url_topic = None;
    if let Some(url) = &c.url {
        let u = parse_url(url).map_err(Exit::usage)?;
        host = u.host;
        port = Some(u.port);
        url_tls = u.tls;
        if u.username.is_some() {
            username = u.username;
            password = u.password.map(String::into_bytes);
        }
        url_topic = Some(u.topic);
    }
    if c.will_payload.is_some() && c.will_topic.is_none() {
        return Err(Exit::usage(
            "Error: Will payload given, but no will topic given.",
        ));
    }
    if c.will_retain && c.will_topic.is_none() {
        return Err(Exit::usage(
            "Error: Will retain given, but no will topic given.",
        ));
    }
    if c.cert.is_some() != c.key.is_some() {
        return Err(Exit::usage(
            "Error: Both certfile and keyfile must be provided if one of them is set.",
        ));
    }

    let client_id = match (&c.id, &c.id_prefix) {
        (Some(id), _) => id.clone(),
        (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
        (None, None) => String::new(),
    };
    let has_id = c.id.is_some();
    let mut connect_properties = props.connect;
    if protocol == ProtocolVersion::V5 {
        let expiry = match c.session_expiry {
            Some(x) => Some(x),
            None if c.disable_clean_session => Some(u32::MAX),
            None => None,
        };
        if let Some(x) = expiry.filter(|&x| x > 0) {
            if x == u32::MAX && !has_id {
                return Err(Exit::usage(
                    "Error: You must provide a client id if you are using an infinite session expiry interval.",
                ));
            }
            connect_properties.session_expiry_interval = Some(x);
        }
    } else if c.disable_clean_session && !has_id {
        return Err(Exit::usage(
            "Error: You must provide a client id if you are using the -c option.",
        ));
    }

    let id = MqttString::new(client_id.clone())
        .map_err(|e| Exit::usage(format!("Error: Invalid id: {e}.")))?;
    let mut config = ClientConfig::new(protocol, id);
    config.clean_start = !c.disable_clean_session;
    config.keep_alive = c.keepalive;
    config.properties = connect_properties;
    if password.is_some() && username.is_none() && !protocol.is_v5() {
        return Err(Exit::usage(
            "Error: Problem setting username and/or password.",
        ));
    }
    if let Some(u) = username {
        config.username = Some(
            MqttString::new(u)
                .map_err(|_| Exit::usage("Error: Problem setting username and/or password."))?,
        );
    }
    config.password = password.map(Bytes::from);
    if let Some(topic) = &c.will_topic {
        let topic = TopicName::new(topic.clone()).map_err(|_| {
            Exit::usage(format!(
                "Error: Invalid will topic '{topic}', does it contain '+' or '#'?"
            ))
        })?;
        config.will = Some(Will {
            topic,
            payload: c
                .will_payload
                .clone()
                .map(|p| Bytes::from(p.into_encoded_bytes()))
                .unwrap_or_default(),
            qos: c.will_qos,
            retain: c.will_retain,
            properties: props.will,
        });
    }

    let os_certs = c.tls_use_os_certs
        || url_tls
        || (port == Some(8883) && c.cafile.is_none() && c.capath.is_none());
    let tls = if c.cafile.is_some() || c.capath.is_some() || os_certs {
        Some(tls(c, &host, os_certs)?)
    } else {
        None
    };
    let port = port.unwrap_or(if tls.is_some() { 8883 } else { 1883 });
    // A bare IPv6 address takes brackets in host:port.
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut options = ClientOptions::new(addr, config);
    options.tls = tls;
    options.reconnect = match role {
        // mosquitto_pub gives up when its connection ends; mosquitto_sub and mosquitto_rr
        // reconnect after losing a connection that was accepted.
        Role::Pub => Reconnect::Never,
        Role::Sub | Role::Rr => Reconnect::OnceConnected,
    };
    options.reconnect_min = Duration::from_secs(1);
    if c.debug {
        options.packet_trace = Some(PacketTrace::new(crate::trace::printer(client_id, protocol)));
    }
    Ok(Prepared {
        options,
        protocol,
        publish_properties: props.publish,
        url_topic,
    })
}

/// The TLS settings of `--cafile`, `--capath`, `--cert`, `--key` and `--insecure`.
fn tls(c: &Connection, host: &str, os_certs: bool) -> Result<Tls, Exit> {
    let not_found = || Exit::runtime(1, "Error: Problem setting TLS options: File not found.");
    let mut ca = Vec::new();
    if let Some(f) = &c.cafile {
        ca.extend(std::fs::read(f).map_err(|_| not_found())?);
        ca.push(b'\n');
    }
    if let Some(dir) = &c.capath {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|_| not_found())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("crt" | "pem")))
            .collect();
        files.sort();
        for f in files {
            ca.extend(std::fs::read(&f).map_err(|_| not_found())?);
            ca.push(b'\n');
        }
    }
    let client = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => Some((
            std::fs::read(cert).map_err(|_| not_found())?,
            std::fs::read(key).map_err(|_| not_found())?,
        )),
        _ => None,
    };
    let mut settings = TlsSettings::default();
    settings.ca_pem = &ca;
    settings.platform_roots = os_certs;
    settings.client = client.as_ref().map(|(c, k)| (&c[..], &k[..]));
    settings.any_server_name = c.insecure;
    Tls::with_settings(&settings, host)
        .map_err(|e| Exit::runtime(1, format!("Error: Problem setting TLS options: {e}.")))
}

/// Starts the client and waits for the server's answer: the first CONNACK that accepts, or
/// the reason there is none, with mosquitto's line and exit status.
pub(crate) async fn connect(p: &Prepared) -> Result<(AsyncClient, Events), Exit> {
    let (client, mut events) = AsyncClient::start(p.options.clone());
    loop {
        match events.recv().await {
            Some(Notification::Connected(_)) => return Ok((client, events)),
            Some(Notification::Disconnected(d)) => return Err(lost(&d, p.protocol)),
            Some(Notification::ConnectFailed(f)) => {
                return Err(Exit::runtime(1, format!("Error: {}", f.message)));
            }
            Some(_) => {}
            None => return Err(Exit::runtime(7, "Error: The connection was lost.")),
        }
    }
}

/// What to say and the exit status when a connection ends before the program is done:
/// for a refused CONNECT, its return code (3.1.1) or reason code (5.0), as mosquitto's
/// programs do.
pub(crate) fn lost(d: &Disconnected, protocol: ProtocolVersion) -> Exit {
    match (d.cause, d.reason_code) {
        (CloseCause::Refused, Some(code)) if !protocol.is_v5() => {
            let rc = code.to_v3_connack().unwrap_or(code.0);
            Exit::runtime(rc, format!("Connection error: {}", connack_string(rc)))
        }
        (CloseCause::Refused, Some(code)) => {
            let mut line = format!("Connection error: {}", reason_string(code));
            if code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                line.push_str(". Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.");
            }
            Exit::runtime(code.0, line)
        }
        (CloseCause::Remote, Some(code)) if code.is_error() => Exit::runtime(
            7,
            format!("Error: The server disconnected: {}.", reason_string(code)),
        ),
        (CloseCause::ProtocolViolation, _) => Exit::runtime(
            2,
            "Error: A network protocol error occurred when communicating with the broker.",
        ),
        (CloseCause::Timeout, _) => Exit::runtime(19, "Error: The server did not answer in time."),
        _ => Exit::runtime(7, "Error: The connection was lost."),
    }
}

/// mosquitto_connack_string: the words for a 3.1.1 CONNACK return code.
fn connack_string(rc: u8) -> &'static str {
    match rc {
        0 => "Connection Accepted.",
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

/// mosquitto_reason_string: the specification's name of a reason code, as mosquitto
/// spells it.
pub(crate) fn reason_string(code: ReasonCode) -> &'static str {
    match code {
        ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED => {
            "Subscription identifiers not supported"
        }
        c => c.name().unwrap_or("Unknown reason"),
    }
}
