//! PUBLISH.

use bytes::{BufMut, Bytes};

use crate::coding::{MAX_VARIABLE_BYTE_INTEGER, Reader, put_binary, put_var_int, var_int_len};
use crate::properties::{Properties, PropertySet, encoded_props_len};
use crate::{
    DecodeError, EncodeError, PacketType, ProtocolVersion, PublishProperties, QoS, QosPid,
    TopicName,
};

/// PUBLISH: an application message (section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Publish {
    /// DUP: this is a re-delivery. Never set with QoS 0 ([MQTT-3.3.1-2]).
    pub dup: bool,
    /// QoS and, for QoS 1 and 2, the packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name. Empty only in a v5 PUBLISH that carries a Topic Alias.
    pub topic: TopicName,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: Properties<PublishProperties>,
    /// The application message, a slice of the received buffer when decoded.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_payload"))]
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic,
            properties: Properties::none(),
            payload: payload.into(),
        }
    }

    /// The message's QoS.
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos() as u8) << 1) | u8::from(self.retain)
    }

    #[inline]
    pub(crate) fn decode(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let dup = flags & 0x08 != 0;
        let retain = flags & 0x01 != 0;
        let Some(qos) = QoS::from_u8((flags >> 1) & 0x03) else {
            return Err(r.malformed("[MQTT-3.3.1-4] PUBLISH has both QoS bits set"));
        };
        if dup && qos == QoS::AtMostOnce {
            return Err(r.malformed("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH"));
        }
        let topic = r.topic_name()?;
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id()?),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id()?),
        };
        let properties = if r.is_v5() {
            Properties::<PublishProperties>::decode(r)?
        } else {
            Properties::none()
        };
        if topic.is_empty() {
            if !r.is_v5() {
                return Err(r.malformed("[MQTT-4.7.3-1] PUBLISH topic name is empty"));
            }
            if properties.topic_alias.is_none() {
                return Err(r.protocol(
                    "PUBLISH topic name is empty and there is no Topic Alias (section 3.3.2.1)",
                ));
            }
        }
        let payload = r.rest();
        Ok(Self {
            dup,
            qos_pid,
            retain,
            topic,
            properties,
            payload,
        })
    }

    /// Checks the packet and returns the remaining length without the payload.
    #[inline]
    fn head_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Publish;
        let invalid = |rule| EncodeError::InvalidValue { packet: P, rule };
        if self.dup && self.qos() == QoS::AtMostOnce {
            return Err(invalid("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH"));
        }
        if self.topic.is_empty() {
            if !version.is_v5() {
                return Err(invalid("[MQTT-4.7.3-1] topic name is empty"));
            }
            if self.properties.topic_alias.is_none() {
                return Err(invalid(
                    "empty topic name needs a Topic Alias (section 3.3.2.1)",
                ));
            }
        }
        let mut n = 2 + self.topic.len();
        if self.qos_pid.packet_id().is_some() {
            n += 2;
        }
        n += encoded_props_len(&self.properties, P, version)?;
        Ok(n)
    }

    #[inline]
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(self.head_len(version)? + self.payload.len())
    }

    /// The bytes this PUBLISH takes encoded for `version`, fixed header included: what
    /// [`Packet::encoded_len`](crate::Packet::encoded_len) gives for it, without wrapping
    /// it in a `Packet`. The same checks, the same errors.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let n = self.body_len(version)?;
        if n > MAX_VARIABLE_BYTE_INTEGER as usize {
            return Err(EncodeError::TooLarge {
                packet: PacketType::Publish,
                remaining_length: n,
            });
        }
        Ok(1 + var_int_len(n as u32) + n)
    }

    fn write_head(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        put_binary(buf, self.topic.as_mqtt_str().as_bytes());
        if let Some(id) = self.qos_pid.packet_id() {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            self.properties.write(buf);
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        self.write_head(version, buf);
        buf.put_slice(&self.payload);
    }

    /// Encodes the whole packet when its head is small: the fixed header, topic, packet
    /// identifier and (empty) properties are gathered on the stack and handed to `buf` in
    /// one call, with the payload when it fits too (else the payload follows in another),
    /// instead of one call per field (each of which checks the buffer's room again).
    /// Returns `None`, having written nothing, when the head does not fit or carries
    /// properties; `Packet::encode` then writes field by field. The caller has checked the
    /// packet (`head_len`) and the room in `buf`.
    #[inline]
    pub(crate) fn write_small(
        &self,
        version: ProtocolVersion,
        remaining: usize,
        buf: &mut impl BufMut,
    ) -> Option<()> {
        const ROOM: usize = 128;
        let topic = self.topic.as_mqtt_str().as_bytes();
        if topic.len() > ROOM - 12 || (version.is_v5() && !self.properties.is_empty()) {
            return None;
        }
        let mut head = [0u8; ROOM];
        head[0] = ((PacketType::Publish as u8) << 4) | self.flags();
        let mut n = 1;
        let mut v = remaining as u32;
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            head[n] = if v > 0 { byte | 0x80 } else { byte };
            n += 1;
            if v == 0 {
                break;
            }
        }
        head[n..n + 2].copy_from_slice(&(topic.len() as u16).to_be_bytes());
        n += 2;
        head[n..n + topic.len()].copy_from_slice(topic);
        n += topic.len();
        if let Some(id) = self.qos_pid.packet_id() {
            head[n..n + 2].copy_from_slice(&id.get().to_be_bytes());
            n += 2;
        }
        if version.is_v5() {
            // Property Length 0.
            n += 1;
        }
        let total = n + self.payload.len();
        if total <= ROOM {
            // The whole packet fits: one write instead of two.
            head[n..total].copy_from_slice(&self.payload);
            buf.put_slice(&head[..total]);
        } else {
            buf.put_slice(&head[..n]);
            buf.put_slice(&self.payload);
        }
        Some(())
    }

    /// Encodes everything but the payload: the fixed header, topic, packet identifier and
    /// properties. Send these bytes and then [`Publish::payload`] (for example with a
    /// vectored write) to put a large message on the wire without copying it.
    pub fn encode_head(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let head = self.head_len(version)?;
        let remaining = head + self.payload.len();
        if remaining > MAX_VARIABLE_BYTE_INTEGER as usize {
            return Err(EncodeError::TooLarge {
                packet: PacketType::Publish,
                remaining_length: remaining,
            });
        }
        let total = 1 + var_int_len(remaining as u32) + head;
        if buf.remaining_mut() < total {
            return Err(EncodeError::BufferTooSmall {
                needed: total,
                available: buf.remaining_mut(),
            });
        }
        buf.put_u8(((PacketType::Publish as u8) << 4) | self.flags());
        put_var_int(buf, remaining as u32);
        self.write_head(version, buf);
        Ok(())
    }
}
