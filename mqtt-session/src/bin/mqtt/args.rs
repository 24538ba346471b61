//! The flags every subcommand shares (mosquitto's client_shared.c): where to connect, as
//! whom, with which protocol, will, TLS and properties.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use mqtt_session::mqtt_codec::{Bytes, ProtocolVersion, QoS, TopicName};

use crate::Exit;

/// How to connect: the flags of mosquitto_pub, mosquitto_sub and mosquitto_rr alike.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// Host to connect to.
    #[arg(
        short = 'h',
        long,
        default_value = "localhost",
        allow_hyphen_values = true
    )]
    pub(crate) host: String,
    /// Port (default 1883, or 8883 with TLS).
    #[arg(short, long, value_parser = port)]
    pub(crate) port: Option<u16>,
    /// User, password, host, port and topic at once: mqtt(s)://[user[:password]@]host[:port]/topic
    #[arg(short = 'L', long, allow_hyphen_values = true)]
    pub(crate) url: Option<String>,
    /// User name.
    #[arg(short, long, allow_hyphen_values = true)]
    pub(crate) username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw", allow_hyphen_values = true)]
    pub(crate) password: Option<OsString>,
    /// Client identifier (default: empty, which the server replaces with one of its own).
    #[arg(short, long, conflicts_with = "id_prefix", allow_hyphen_values = true)]
    pub(crate) id: Option<String>,
    /// Client identifier: this prefix and the process id.
    #[arg(short = 'I', long, allow_hyphen_values = true)]
    pub(crate) id_prefix: Option<String>,
    /// Keep alive in seconds, 5 to 65535.
    #[arg(short, long, default_value_t = 60, value_parser = keepalive)]
    pub(crate) keepalive: u16,
    /// QoS: 0, 1 or 2.
    #[arg(short, long, default_value = "0", value_parser = qos)]
    pub(crate) qos: QoS,
    /// Keep the session (Clean Session 0; under 5.0 a session that never expires unless -x).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub(crate) disable_clean_session: bool,
    /// MQTT version: mqttv5 (5), mqttv311 (311) or mqttv31 (31).
    #[arg(short = 'V', long = "protocol-version", value_parser = protocol)]
    pub(crate) protocol: Option<ProtocolVersion>,
    /// Session Expiry Interval in seconds (5.0); -1 or ∞: never.
    #[arg(short = 'x', value_parser = session_expiry, allow_hyphen_values = true)]
    pub(crate) session_expiry: Option<u32>,
    /// Topic of the will.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) will_topic: Option<String>,
    /// Payload of the will.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) will_payload: Option<OsString>,
    /// QoS of the will.
    #[arg(long, default_value = "0", value_parser = qos)]
    pub(crate) will_qos: QoS,
    /// Retain the will.
    #[arg(long)]
    pub(crate) will_retain: bool,
    /// PEM file of trusted CA certificates: TLS.
    #[arg(long)]
    pub(crate) cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates (*.crt, *.pem): TLS.
    #[arg(long)]
    pub(crate) capath: Option<PathBuf>,
    /// PEM client certificate (with --key).
    #[arg(long)]
    pub(crate) cert: Option<PathBuf>,
    /// PEM client private key (with --cert).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// Accept a server certificate made out to another host name (testing only).
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Trust the system's CA certificates: TLS.
    #[arg(long)]
    pub(crate) tls_use_os_certs: bool,
    /// Print each packet sent and received.
    #[arg(short, long)]
    pub(crate) debug: bool,
    /// A 5.0 property: -D COMMAND NAME VALUE, or -D COMMAND user-property KEY VALUE.
    #[arg(
        short = 'D',
        long = "property",
        num_args = 3..=4,
        action = clap::ArgAction::Append,
        value_names = ["COMMAND", "NAME", "VALUE"]
    )]
    pub(crate) property: Vec<String>,
    /// Print no errors (but still mistakes in the command line).
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Accepted for mosquitto's sake: Nagle's algorithm is always off.
    #[arg(long)]
    pub(crate) nodelay: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub(crate) help: Option<bool>,
}

fn port(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("Invalid port given: {s}"))
}

fn keepalive(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(k) if k >= 5 => Ok(k),
        _ => Err("Invalid keepalive given, it must be between 5 and 65535 inclusive.".into()),
    }
}

/// A QoS of 0, 1 or 2.
pub(crate) fn qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(format!("Invalid QoS given: {s}")),
    }
}

fn protocol(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "mqttv5" | "5" => Ok(ProtocolVersion::V5),
        "mqttv311" | "311" => Ok(ProtocolVersion::V3_1_1),
        "mqttv31" | "31" => Ok(ProtocolVersion::V3_1),
        _ => Err("Invalid protocol version argument given.".into()),
    }
}

/// `-x`: seconds, in decimal, hex (0x) or octal (0) as strtol reads them; -1 and ∞ for
/// never.
fn session_expiry(s: &str) -> Result<u32, String> {
    if s == "∞" || s == "-1" {
        return Ok(u32::MAX);
    }
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8)
    } else {
        s.parse::<i64>()
    };
    let n = parsed.map_err(|_| "session-expiry-interval not a number.".to_string())?;
    u32::try_from(n).map_err(|_| "session-expiry-interval out of range.".into())
}

/// A positive count or number of seconds (`-C`, `-W`).
/// The payload of `-m`, `-f`, `-s` or `-n` (clap lets at most one through), as
/// mosquitto_pub and mosquitto_rr read it; `None` when none was given.
pub(crate) fn payload(
    message: Option<OsString>,
    file: Option<&Path>,
    stdin_file: bool,
    null_message: bool,
) -> Result<Option<Bytes>, Exit> {
    if let Some(m) = message {
        return Ok(Some(Bytes::from(m.into_encoded_bytes())));
    }
    if let Some(f) = file {
        let bytes = std::fs::read(f).map_err(|_| {
            Exit::runtime(1, format!("Error loading input file \"{}\".", f.display()))
        })?;
        return Ok(Some(bytes.into()));
    }
    if stdin_file {
        use std::io::Read;
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(|_| Exit::runtime(1, "Error loading input from stdin."))?;
        return Ok(Some(v.into()));
    }
    Ok(null_message.then(Bytes::new))
}

/// A topic to publish to, refused in mosquitto_pub's words if it is not one.
pub(crate) fn publish_topic(topic: String) -> Result<TopicName, Exit> {
    TopicName::new(topic.clone()).map_err(|_| {
        Exit::usage(format!(
            "Error: Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })
}

pub(crate) fn positive(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("must be a whole number of at least 1, not \"{s}\"")),
    }
}

/// The parts of a `-L` URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) tls: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) topic: String,
}

/// Reads `mqtt(s)://[username[:password]@]host[:port]/topic` as mosquitto does.
pub(crate) fn parse_url(url: &str) -> Result<Url, String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let (rest, tls, mut port) = if lower.starts_with("mqtt://") {
        (&url[7..], false, 1883)
    } else if lower.starts_with("mqtts://") {
        (&url[8..], true, 8883)
    } else {
        return Err("Error: unsupported URL scheme.".into());
    };
    let Some((authority, topic)) = rest.split_once('/') else {
        return Err("Error: Invalid URL for -L argument specified - topic missing.".into());
    };
    let (userinfo, hostport) = match authority.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    let host = match hostport.split_once(':') {
        Some((h, p)) => {
            port = p
                .parse()
                .map_err(|_| format!("Error: Invalid port given: {p}"))?;
            h
        }
        None => hostport,
    };
    Ok(Url {
        tls,
        username,
        password,
        host: host.to_string(),
        port,
        topic: topic.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mosquitto's `-L` form, every part given.
    #[test]
    fn url_with_every_part() {
        let u = parse_url("mqtts://alice:s3cret@example.com:8884/a/b").unwrap();
        assert_eq!(
            u,
            Url {
                tls: true,
                username: Some("alice".into()),
                password: Some("s3cret".into()),
                host: "example.com".into(),
                port: 8884,
                topic: "a/b".into(),
            }
        );
        let u = parse_url("MQTT://h/t").unwrap();
        assert_eq!((u.port, u.tls, u.topic.as_str()), (1883, false, "t"));
        assert!(parse_url("http://h/t").is_err());
        assert!(parse_url("mqtt://h").is_err());
    }

    /// `-x` as mosquitto reads it: -1 and ∞ mean never; strtol's bases.
    #[test]
    fn session_expiry_forms() {
        assert_eq!(session_expiry("-1"), Ok(u32::MAX));
        assert_eq!(session_expiry("∞"), Ok(u32::MAX));
        assert_eq!(session_expiry("0x10"), Ok(16));
        assert_eq!(session_expiry("010"), Ok(8));
        assert_eq!(session_expiry("300"), Ok(300));
        assert!(session_expiry("-2").is_err());
        assert!(session_expiry("soon").is_err());
    }
}
