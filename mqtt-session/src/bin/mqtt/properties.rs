//! `-D COMMAND NAME VALUE`: MQTT 5.0 properties for the CONNECT, the PUBLISH and the will,
//! by mosquitto's names (the specification's, with `-` between words).

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_session::mqtt_codec::{
    Bytes, ConnectProperties, MqttString, PublishProperties, TopicName, WillProperties,
};

/// The properties given with `-D`, by the packet that carries them.
#[derive(Debug, Default)]
pub(crate) struct Properties {
    pub(crate) connect: ConnectProperties,
    pub(crate) publish: PublishProperties,
    pub(crate) will: WillProperties,
}

/// What a property's value is.
enum Kind {
    Byte,
    Int16,
    Int32,
    Binary,
    String,
    Pair,
}

/// Each property a client may send, its type, and the commands that may carry it (of
/// those this client sends with properties: connect, publish, will).
const TABLE: &[(&str, Kind, &[&str])] = &[
    ("payload-format-indicator", Kind::Byte, &["publish", "will"]),
    ("message-expiry-interval", Kind::Int32, &["publish", "will"]),
    ("content-type", Kind::String, &["publish", "will"]),
    ("response-topic", Kind::String, &["publish", "will"]),
    ("correlation-data", Kind::Binary, &["publish", "will"]),
    ("subscription-identifier", Kind::Int32, &[]),
    (
        "session-expiry-interval",
        Kind::Int32,
        &["connect", "disconnect"],
    ),
    ("authentication-method", Kind::String, &["connect", "auth"]),
    ("authentication-data", Kind::Binary, &["connect", "auth"]),
    ("request-problem-information", Kind::Byte, &["connect"]),
    ("will-delay-interval", Kind::Int32, &["will"]),
    ("request-response-information", Kind::Byte, &["connect"]),
    ("receive-maximum", Kind::Int16, &["connect"]),
    ("topic-alias-maximum", Kind::Int16, &["connect"]),
    ("topic-alias", Kind::Int16, &["publish"]),
    ("maximum-packet-size", Kind::Int32, &["connect"]),
    (
        "user-property",
        Kind::Pair,
        &[
            "connect",
            "publish",
            "will",
            "subscribe",
            "unsubscribe",
            "disconnect",
            "auth",
        ],
    ),
];

const COMMANDS: &[&str] = &[
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "auth",
    "will",
];

/// Reads every `-D`, given as the values of all of them in order (each is COMMAND NAME
/// VALUE, or COMMAND user-property KEY VALUE); an error is the line to print.
pub(crate) fn parse(given: &[String]) -> Result<Properties, String> {
    let mut out = Properties::default();
    let mut rest = given;
    while !rest.is_empty() {
        let n = if rest.get(1).is_some_and(|n| n == "user-property") {
            4
        } else {
            3
        };
        let (d, tail) = rest.split_at(n.min(rest.len()));
        add(&mut out, d)?;
        rest = tail;
    }
    Ok(out)
}

fn add(out: &mut Properties, d: &[String]) -> Result<(), String> {
    let [command, name, rest @ ..] = d else {
        return Err("Error: --property argument given but not enough arguments specified.".into());
    };
    let command = command.to_ascii_lowercase();
    if !COMMANDS.contains(&command.as_str()) {
        return Err("Error: Invalid command given in --property argument.".into());
    }
    let Some((_, kind, allowed)) = TABLE.iter().find(|(n, _, _)| n == name) else {
        return Err("Error: Invalid property name given in --property argument.".into());
    };
    if !allowed.contains(&command.as_str()) {
        return Err(format!(
            "Error: {name} property not allowed for {command} in --property argument."
        ));
    }
    if !matches!(command.as_str(), "connect" | "publish" | "will") {
        return Err(format!(
            "Error: {name} property not supported for {command} in --property argument."
        ));
    }
    let value = match (kind, rest) {
        (Kind::Pair, [k, v]) => Value::Pair(string(k)?, string(v)?),
        (Kind::Pair, _) | (_, [] | [_, _, ..]) => {
            return Err(
                "Error: --property argument given but not enough arguments specified.".into(),
            );
        }
        (Kind::Byte, [v]) => Value::Int(number(name, v, u8::MAX.into())?),
        (Kind::Int16, [v]) => Value::Int(number(name, v, u16::MAX.into())?),
        (Kind::Int32, [v]) => Value::Int(number(name, v, u32::MAX.into())?),
        (Kind::Binary, [v]) => Value::Binary(Bytes::copy_from_slice(v.as_bytes())),
        (Kind::String, [v]) => Value::String(string(v)?),
    };
    let bad = || format!("Error: Invalid value for property {name}.");
    let int = |v: &Value| match v {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    let u32_of = |v: &Value| int(v).and_then(|n| u32::try_from(n).ok());
    let bool_of = |v: &Value| match int(v) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    };
    let str_of = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    let bin_of = |v: &Value| match v {
        Value::Binary(b) => Some(b.clone()),
        _ => None,
    };
    let topic_of = |v: &Value| str_of(v).and_then(|s| TopicName::new(s.as_str().to_string()).ok());
    match command.as_str() {
        "connect" => {
            let c = &mut out.connect;
            match (name.as_str(), &value) {
                ("user-property", Value::Pair(k, v)) => {
                    c.user_properties.push((k.clone(), v.clone()))
                }
                ("session-expiry-interval", v) => {
                    c.session_expiry_interval = Some(u32_of(v).ok_or_else(bad)?)
                }
                ("authentication-method", v) => {
                    c.authentication_method = Some(str_of(v).ok_or_else(bad)?)
                }
                ("authentication-data", v) => {
                    c.authentication_data = Some(bin_of(v).ok_or_else(bad)?)
                }
                ("request-problem-information", v) => {
                    c.request_problem_information = Some(bool_of(v).ok_or_else(bad)?)
                }
                ("request-response-information", v) => {
                    c.request_response_information = Some(bool_of(v).ok_or_else(bad)?)
                }
                ("receive-maximum", v) => {
                    let n = int(v)
                        .and_then(|n| u16::try_from(n).ok())
                        .and_then(NonZeroU16::new);
                    c.receive_maximum = Some(n.ok_or_else(bad)?);
                }
                ("topic-alias-maximum", v) => {
                    c.topic_alias_maximum =
                        Some(int(v).and_then(|n| u16::try_from(n).ok()).ok_or_else(bad)?);
                }
                ("maximum-packet-size", v) => {
                    c.maximum_packet_size =
                        Some(u32_of(v).and_then(NonZeroU32::new).ok_or_else(bad)?);
                }
                _ => return Err(bad()),
            }
        }
        "publish" => {
            let p = &mut out.publish;
            match (name.as_str(), &value) {
                ("user-property", Value::Pair(k, v)) => {
                    p.user_properties.push((k.clone(), v.clone()))
                }
                ("payload-format-indicator", v) => {
                    p.payload_format_indicator = Some(bool_of(v).ok_or_else(bad)?)
                }
                ("message-expiry-interval", v) => {
                    p.message_expiry_interval = Some(u32_of(v).ok_or_else(bad)?)
                }
                ("content-type", v) => p.content_type = Some(str_of(v).ok_or_else(bad)?),
                ("response-topic", v) => p.response_topic = Some(topic_of(v).ok_or_else(bad)?),
                ("correlation-data", v) => p.correlation_data = Some(bin_of(v).ok_or_else(bad)?),
                ("topic-alias", v) => {
                    let n = int(v)
                        .and_then(|n| u16::try_from(n).ok())
                        .and_then(NonZeroU16::new);
                    p.topic_alias = Some(n.ok_or_else(bad)?);
                }
                _ => return Err(bad()),
            }
        }
        _ => {
            let w = &mut out.will;
            match (name.as_str(), &value) {
                ("user-property", Value::Pair(k, v)) => {
                    w.user_properties.push((k.clone(), v.clone()))
                }
                ("payload-format-indicator", v) => {
                    w.payload_format_indicator = Some(bool_of(v).ok_or_else(bad)?)
                }
                ("message-expiry-interval", v) => {
                    w.message_expiry_interval = Some(u32_of(v).ok_or_else(bad)?)
                }
                ("content-type", v) => w.content_type = Some(str_of(v).ok_or_else(bad)?),
                ("response-topic", v) => w.response_topic = Some(topic_of(v).ok_or_else(bad)?),
                ("correlation-data", v) => w.correlation_data = Some(bin_of(v).ok_or_else(bad)?),
                ("will-delay-interval", v) => {
                    w.will_delay_interval = Some(u32_of(v).ok_or_else(bad)?)
                }
                _ => return Err(bad()),
            }
        }
    }
    Ok(())
}

enum Value {
    Int(u64),
    Binary(Bytes),
    String(MqttString),
    Pair(MqttString, MqttString),
}

fn number(name: &str, v: &str, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "Error: Property value ({v}) out of range for property {name}."
        )),
    }
}

fn string(s: &str) -> Result<MqttString, String> {
    MqttString::new(s.to_string())
        .map_err(|e| format!("Error: Invalid property value \"{s}\": {e}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn parse(ds: &[Vec<String>]) -> Result<Properties, String> {
        super::parse(&ds.concat())
    }

    /// Each command's properties land in its own packet's set; user properties keep order.
    #[test]
    fn properties_by_command() {
        let p = parse(&[
            d(&["publish", "content-type", "text/plain"]),
            d(&["PUBLISH", "user-property", "a", "1"]),
            d(&["publish", "user-property", "a", "2"]),
            d(&["connect", "session-expiry-interval", "30"]),
            d(&["will", "will-delay-interval", "5"]),
        ])
        .unwrap();
        assert_eq!(
            p.publish.content_type.as_ref().unwrap().as_str(),
            "text/plain"
        );
        let users: Vec<_> = p
            .publish
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(users, [("a", "1"), ("a", "2")]);
        assert_eq!(p.connect.session_expiry_interval, Some(30));
        assert_eq!(p.will.will_delay_interval, Some(5));
    }

    /// mosquitto's messages for a wrong command, name, placement or value.
    #[test]
    fn mistakes() {
        assert!(
            parse(&[d(&["bogus", "content-type", "x"])])
                .unwrap_err()
                .contains("Invalid command")
        );
        assert!(
            parse(&[d(&["publish", "bogus", "x"])])
                .unwrap_err()
                .contains("Invalid property name")
        );
        assert!(
            parse(&[d(&["connect", "content-type", "x"])])
                .unwrap_err()
                .contains("not allowed for connect")
        );
        assert!(
            parse(&[d(&["publish", "message-expiry-interval", "-3"])])
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse(&[d(&["publish", "user-property", "k"])])
                .unwrap_err()
                .contains("not enough")
        );
    }
}
