//! CONNECT and CONNACK.

use alloc::boxed::Box;

use bytes::{BufMut, Bytes};

use crate::coding::{Body, Reader, put_binary, rule};
use crate::properties::{PropertySet, encoded_props_len};
use crate::{
    ConnAckProperties, ConnectProperties, DecodeError, DecodeErrorKind, EncodeError, MqttString,
    PacketType, ProtocolVersion, QoS, ReasonCode, TopicName, WillProperties,
};

/// CONNECT: the client's request to connect (section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Connect {
    /// The protocol version, from the protocol name and level. A CONNECT always encodes in
    /// its own version.
    pub protocol: ProtocolVersion,
    /// Clean Start (v5) or Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: ConnectProperties,
    /// Client Identifier; may be empty (the server then assigns one, or refuses).
    pub client_id: MqttString,
    /// The Will Message, if the Will Flag is set.
    pub will: Option<Will>,
    /// User Name, if the User Name Flag is set.
    pub username: Option<MqttString>,
    /// Password, if the Password Flag is set. MQTT 5.0 allows it without a user name;
    /// 3.1.1 does not ([MQTT-3.1.2-22]).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_opt_payload"))]
    pub password: Option<Bytes>,
}

/// The Will Message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Will {
    /// Will Topic: a non-empty topic name.
    pub topic: TopicName,
    /// Will Payload.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_payload"))]
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// v5 Will Properties (must be empty for 3.1.1).
    pub properties: WillProperties,
}

impl Connect {
    /// A CONNECT for `protocol` with the given client identifier, clean start, keep-alive
    /// 60 seconds and nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: MqttString) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive: 60,
            properties: ConnectProperties::default(),
            client_id,
            will: None,
            username: None,
            password: None,
        }
    }

    /// Decodes the body into a box (a CONNECT is large: building it in its box saves
    /// moving it there afterwards).
    pub(crate) fn decode(r: &mut Reader) -> Result<Box<Self>, DecodeError> {
        let name = r.binary()?;
        let level = r.u8()?;
        let unsupported = |level, rule| {
            DecodeError::new(
                DecodeErrorKind::UnsupportedProtocolVersion { level },
                Some(PacketType::Connect),
                rule,
            )
        };
        let protocol = match (&name[..], level) {
            (b"MQTT", 4) => ProtocolVersion::V3_1_1,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQIsdp", 3) => ProtocolVersion::V3_1,
            (b"MQTT" | b"MQIsdp", _) => {
                return Err(unsupported(
                    level,
                    "[MQTT-3.1.2-2] protocol level not supported",
                ));
            }
            _ => {
                return Err(unsupported(
                    level,
                    "[MQTT-3.1.2-1] protocol name is not MQTT",
                ));
            }
        };
        r.version = protocol;
        let v = protocol;
        let flags = r.u8()?;
        if flags & 0x01 != 0 {
            return Err(r.malformed("[MQTT-3.1.2-3] CONNECT reserved flag is not 0"));
        }
        let clean_start = flags & 0x02 != 0;
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let password_flag = flags & 0x40 != 0;
        let username_flag = flags & 0x80 != 0;
        if !will_flag && will_qos != 0 {
            return Err(r.malformed_v(
                "[MQTT-3.1.2-11] Will QoS is not 0 without a Will Flag",
                "[MQTT-3.1.2-13] Will QoS is not 0 without a Will Flag",
            ));
        }
        if !will_flag && will_retain {
            return Err(r.malformed_v(
                "[MQTT-3.1.2-13] Will Retain is set without a Will Flag",
                "[MQTT-3.1.2-15] Will Retain is set without a Will Flag",
            ));
        }
        let Some(will_qos) = QoS::from_u8(will_qos) else {
            return Err(r.malformed_v(
                "[MQTT-3.1.2-12] Will QoS is 3",
                "[MQTT-3.1.2-14] Will QoS is 3",
            ));
        };
        if !v.is_v5() && password_flag && !username_flag {
            return Err(r.malformed("[MQTT-3.1.2-22] Password Flag set without User Name Flag"));
        }
        let keep_alive = r.u16()?;
        let properties = if v.is_v5() {
            let p = ConnectProperties::decode(r)?;
            if p.authentication_data.is_some() && p.authentication_method.is_none() {
                return Err(r.protocol("Authentication Data without an Authentication Method"));
            }
            p
        } else {
            ConnectProperties::default()
        };
        let client_id = r.string()?;
        let will = if will_flag {
            let properties = if v.is_v5() {
                WillProperties::decode(r)?
            } else {
                WillProperties::default()
            };
            // A Will Topic is a Topic Name: the general wildcard rule applies (5.0 [MQTT-4.7.0-1],
            // 3.1.1 [MQTT-4.7.1-1]); [MQTT-3.3.2-2] is PUBLISH's own.
            let topic = r.topic_name_citing(rule(
                v,
                "[MQTT-4.7.0-1] Will Topic contains a wildcard",
                "[MQTT-4.7.1-1] Will Topic contains a wildcard",
            ))?;
            if topic.is_empty() {
                return Err(r.malformed("[MQTT-4.7.3-1] Will Topic is empty"));
            }
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if username_flag {
            Some(r.string()?)
        } else {
            None
        };
        let password = if password_flag {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Box::new(Self {
            protocol,
            clean_start,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        }))
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Connect;
        let invalid = |rule| EncodeError::InvalidValue { packet: P, rule };
        if version != self.protocol {
            return Err(invalid(
                "CONNECT's protocol differs from the version asked for",
            ));
        }
        let mut n = 2 + version.protocol_name().len() + 1 + 1 + 2;
        n += encoded_props_len(&self.properties, P, version)?;
        if self.properties.authentication_data.is_some()
            && self.properties.authentication_method.is_none()
        {
            return Err(invalid(
                "Authentication Data without an Authentication Method",
            ));
        }
        n += 2 + self.client_id.len();
        if let Some(w) = &self.will {
            n += encoded_props_len(&w.properties, P, version)?;
            if w.topic.is_empty() {
                return Err(invalid("[MQTT-4.7.3-1] Will Topic is empty"));
            }
            if w.payload.len() > u16::MAX as usize {
                return Err(invalid("Will Payload longer than 65,535 bytes"));
            }
            n += 2 + w.topic.len() + 2 + w.payload.len();
        }
        if let Some(u) = &self.username {
            n += 2 + u.len();
        }
        if let Some(p) = &self.password {
            if !version.is_v5() && self.username.is_none() {
                return Err(invalid(
                    "[MQTT-3.1.2-22] a password needs a user name in 3.1.1",
                ));
            }
            if p.len() > u16::MAX as usize {
                return Err(invalid("Password longer than 65,535 bytes"));
            }
            n += 2 + p.len();
        }
        Ok(n)
    }

    pub(crate) fn write(&self, buf: &mut impl BufMut) {
        let v = self.protocol;
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | ((w.qos as u8) << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        // The variable header up to the properties in one write: protocol name, level,
        // flags and Keep Alive.
        let [ka_hi, ka_lo] = self.keep_alive.to_be_bytes();
        match v {
            ProtocolVersion::V3_1 => buf.put_slice(&[
                0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, flags, ka_hi, ka_lo,
            ]),
            ProtocolVersion::V3_1_1 | ProtocolVersion::V5 => {
                buf.put_slice(&[0, 4, b'M', b'Q', b'T', b'T', v.level(), flags, ka_hi, ka_lo])
            }
        }
        if v.is_v5() {
            self.properties.write(buf);
        }
        put_binary(buf, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if v.is_v5() {
                w.properties.write(buf);
            }
            put_binary(buf, w.topic.as_mqtt_str().as_bytes());
            put_binary(buf, &w.payload);
        }
        if let Some(u) = &self.username {
            put_binary(buf, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_binary(buf, p);
        }
    }
}

/// CONNACK: the server's answer to a CONNECT (section 3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConnAck {
    /// Session Present.
    pub session_present: bool,
    /// The Connect Reason Code. Under 3.1.1 the return codes 0 to 5 map to 0x00, 0x84,
    /// 0x85, 0x88, 0x86 and 0x87 (see [`ReasonCode::to_v3_connack`]).
    pub reason_code: ReasonCode,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    pub(crate) fn decode<B: Body>(r: &mut Reader<B>) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & 0xFE != 0 {
            return Err(r.malformed_v(
                "[MQTT-3.2.2-1] CONNACK flags bits 7-1 are not 0",
                "CONNACK flags bits 7-1 are reserved and must be 0 (section 3.2.2.1)",
            ));
        }
        if flags != 0 && r.version == ProtocolVersion::V3_1 {
            return Err(
                r.malformed("the CONNACK flags byte is reserved in MQTT 3.1 (no Session Present)")
            );
        }
        let session_present = flags & 0x01 != 0;
        let code = r.u8()?;
        let reason_code = if r.is_v5() {
            let rc = ReasonCode(code);
            if !rc.allowed_in(PacketType::ConnAck) {
                return Err(r.malformed("[MQTT-3.2.2-8] not a CONNACK reason code"));
            }
            rc
        } else {
            ReasonCode::from_v3_connack(code)
                .ok_or_else(|| r.malformed("CONNACK return code is reserved (section 3.2.2.3)"))?
        };
        if session_present && reason_code != ReasonCode::SUCCESS {
            return Err(r.protocol(rule(
                r.version,
                "[MQTT-3.2.2-6] Session Present set with a non-zero reason code",
                "[MQTT-3.2.2-4] Session Present set with a non-zero return code",
            )));
        }
        let properties = if r.is_v5() {
            let p = ConnAckProperties::decode(r)?;
            if p.authentication_data.is_some() && p.authentication_method.is_none() {
                return Err(r.protocol("Authentication Data without an Authentication Method"));
            }
            p
        } else {
            ConnAckProperties::default()
        };
        Ok(Self {
            session_present,
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::ConnAck;
        if self.session_present && self.reason_code != ReasonCode::SUCCESS {
            return Err(EncodeError::InvalidValue {
                packet: P,
                rule: "[MQTT-3.2.2-6] Session Present with a non-zero reason code",
            });
        }
        if self.session_present && version == ProtocolVersion::V3_1 {
            // The Connect Acknowledge Flags are reserved in MQTT 3.1 (section 3.2).
            return Err(EncodeError::NotInVersion {
                packet: P,
                field: "Session Present",
                version,
            });
        }
        if version.is_v5() {
            if !self.reason_code.allowed_in(P) {
                return Err(EncodeError::InvalidValue {
                    packet: P,
                    rule: "[MQTT-3.2.2-8] not a CONNACK reason code",
                });
            }
        } else if self.reason_code.to_v3_connack().is_none() {
            return Err(EncodeError::NotInVersion {
                packet: P,
                field: "this reason code",
                version,
            });
        }
        Ok(2 + encoded_props_len(&self.properties, P, version)?)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            buf.put_u8(self.reason_code.0);
            self.properties.write(buf);
        } else {
            buf.put_u8(self.reason_code.to_v3_connack().unwrap_or(0));
        }
    }
}
