//! PUBLISH.

use bytes::{BufMut, Bytes, BytesMut};

use crate::coding::{
    Body, MAX_VARIABLE_BYTE_INTEGER, Reader, put_binary, put_var_int, var_int_len,
};
use crate::in_place::{check_room, write_in_place};
use crate::properties::{Properties, PropertySet, encoded_props_len};
use crate::string::topic_name_str;
use crate::{
    DecodeError, EncodeError, PacketType, ProtocolVersion, PublishProperties, QoS, QosPid,
    StringError, TopicName,
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
        decode_publish(flags, r)
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
        let n = self.remaining_len(version)?;
        Ok(1 + var_int_len(n as u32) + n)
    }

    /// Checks the packet and returns its remaining length, which must fit the fixed
    /// header's variable byte integer.
    #[inline]
    fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let n = self.body_len(version)?;
        if n > MAX_VARIABLE_BYTE_INTEGER as usize {
            return Err(EncodeError::TooLarge {
                packet: PacketType::Publish,
                remaining_length: n,
            });
        }
        Ok(n)
    }

    /// Encodes the PUBLISH for `version` into `buf`: what
    /// [`Packet::encode`](crate::Packet::encode) does for it, without wrapping it in a
    /// `Packet`. The same checks, the same errors; nothing is written on an error.
    #[inline]
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let remaining = self.remaining_len(version)?;
        let total = 1 + var_int_len(remaining as u32) + remaining;
        if !write_in_place(buf, total, |w| self.write_whole(version, remaining, w)) {
            check_room(buf, total)?;
            self.write_split(version, remaining, buf);
        }
        Ok(())
    }

    /// The whole packet into a buffer without the room in one piece (see
    /// [`Publish::encode`]): out of line, to keep the common path short.
    #[inline(never)]
    fn write_split(&self, version: ProtocolVersion, remaining: usize, buf: &mut impl BufMut) {
        self.write_whole(version, remaining, buf);
    }

    #[inline(always)]
    fn write_whole(&self, version: ProtocolVersion, remaining: usize, buf: &mut impl BufMut) {
        self.write_fixed_and_head(version, remaining, buf);
        buf.put_slice(&self.payload);
    }

    #[inline(always)]
    fn write_head(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        put_binary(buf, self.topic.as_mqtt_str().as_bytes());
        self.write_after_topic(version, buf);
    }

    /// The packet identifier and the properties.
    #[inline(always)]
    fn write_after_topic(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        if let Some(id) = self.qos_pid.packet_id() {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            if self.properties.is_empty() {
                // Property Length 0, without the general writer's call.
                buf.put_u8(0);
            } else {
                self.properties.write(buf);
            }
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        self.write_head(version, buf);
        buf.put_slice(&self.payload);
    }

    /// Encodes everything but the payload: the fixed header, topic, packet identifier and
    /// properties. Send these bytes and then [`Publish::payload`] (for example with a
    /// vectored write) to put a large message on the wire without copying it.
    pub fn encode_head(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let remaining = self.remaining_len(version)?;
        let head = remaining - self.payload.len();
        let total = 1 + var_int_len(remaining as u32) + head;
        if !write_in_place(buf, total, |w| {
            self.write_fixed_and_head(version, remaining, w)
        }) {
            check_room(buf, total)?;
            self.write_fixed_and_head(version, remaining, buf);
        }
        Ok(())
    }

    #[inline(always)]
    fn write_fixed_and_head(
        &self,
        version: ProtocolVersion,
        remaining: usize,
        buf: &mut impl BufMut,
    ) {
        let first = ((PacketType::Publish as u8) << 4) | self.flags();
        let topic = self.topic.as_mqtt_str().as_bytes();
        let [hi, lo] = (topic.len() as u16).to_be_bytes();
        if remaining < 0x80 {
            // A remaining length of one byte or two: the fixed header and the topic's
            // length are written at once.
            buf.put_slice(&[first, remaining as u8, hi, lo]);
        } else if remaining < 0x4000 {
            let low = (remaining & 0x7F) as u8 | 0x80;
            buf.put_slice(&[first, low, (remaining >> 7) as u8, hi, lo]);
        } else {
            buf.put_u8(first);
            put_var_int(buf, remaining as u32);
            buf.put_u16(topic.len() as u16);
        }
        buf.put_slice(topic);
        self.write_after_topic(version, buf);
    }
}

/// How a decoder of either kind reads a PUBLISH's Topic Name (as a [`TopicName`] sharing
/// the buffer, or as a `&str` borrowed from it) and what it builds: [`Publish`] or
/// [`PublishRef`].
pub(crate) trait TopicBody: Body {
    type Topic: core::ops::Deref<Target = str>;
    type Publish;
    fn topic(r: &mut Reader<Self>) -> Result<Self::Topic, DecodeError>;
    fn publish(
        dup: bool,
        qos_pid: QosPid,
        retain: bool,
        topic: Self::Topic,
        properties: Properties<PublishProperties>,
        payload: Self,
    ) -> Self::Publish;
}

impl TopicBody for Bytes {
    type Topic = TopicName;
    type Publish = Publish;

    #[inline]
    fn topic(r: &mut Reader<Self>) -> Result<TopicName, DecodeError> {
        r.topic_name()
    }

    #[inline]
    fn publish(
        dup: bool,
        qos_pid: QosPid,
        retain: bool,
        topic: TopicName,
        properties: Properties<PublishProperties>,
        payload: Self,
    ) -> Publish {
        Publish {
            dup,
            qos_pid,
            retain,
            topic,
            properties,
            payload,
        }
    }
}

impl<'a> TopicBody for &'a [u8] {
    type Topic = &'a str;
    type Publish = PublishRef<'a>;

    #[inline]
    fn topic(r: &mut Reader<Self>) -> Result<&'a str, DecodeError> {
        let b = r.binary()?;
        topic_name_str(b).map_err(|e| r.string_error(e))
    }

    #[inline]
    fn publish(
        dup: bool,
        qos_pid: QosPid,
        retain: bool,
        topic: &'a str,
        properties: Properties<PublishProperties>,
        payload: Self,
    ) -> PublishRef<'a> {
        PublishRef {
            dup,
            qos_pid,
            retain,
            topic,
            properties,
            payload,
        }
    }
}

/// Decodes a PUBLISH body: the one decoder both [`Publish`] and [`PublishRef`] are built
/// with.
#[inline]
fn decode_publish<B: TopicBody>(flags: u8, r: &mut Reader<B>) -> Result<B::Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let retain = flags & 0x01 != 0;
    let Some(qos) = QoS::from_u8((flags >> 1) & 0x03) else {
        return Err(r.malformed("[MQTT-3.3.1-4] PUBLISH has both QoS bits set"));
    };
    if dup && qos == QoS::AtMostOnce {
        return Err(r.malformed("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH"));
    }
    let topic = B::topic(r)?;
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
    Ok(B::publish(dup, qos_pid, retain, topic, properties, payload))
}

/// A PUBLISH borrowed from the buffer it was decoded from, as [`PacketRef::decode`]
/// gives it: the topic and payload are slices of that buffer, so decoding takes no
/// reference count and the view is dropped for free. It is checked exactly as a
/// [`Publish`] is. Its v5 properties are owned (copied out of the buffer when there are
/// any), as they rarely matter to the speed of routing.
///
/// [`PacketRef::decode`]: crate::PacketRef::decode
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRef<'a> {
    /// DUP: this is a re-delivery.
    pub dup: bool,
    /// QoS and, for QoS 1 and 2, the packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name, checked as [`TopicName`] checks it. Empty only in a v5 PUBLISH that
    /// carries a Topic Alias.
    pub topic: &'a str,
    /// v5 properties (empty for 3.1.1).
    pub properties: Properties<PublishProperties>,
    /// The application message.
    pub payload: &'a [u8],
}

impl<'a> PublishRef<'a> {
    #[inline]
    pub(crate) fn decode(flags: u8, r: &mut Reader<&'a [u8]>) -> Result<Self, DecodeError> {
        decode_publish(flags, r)
    }

    /// The message's QoS.
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    /// An owned [`Publish`] with the same fields, its topic and payload copied into one
    /// new buffer (the properties are shared). Fails only for a view whose topic was set
    /// by hand to something that is not a topic name.
    pub fn to_publish(&self) -> Result<Publish, StringError> {
        let mut buf = BytesMut::with_capacity(self.topic.len() + self.payload.len());
        buf.extend_from_slice(self.topic.as_bytes());
        buf.extend_from_slice(self.payload);
        let mut payload = buf.freeze();
        let topic = TopicName::from_wire(payload.split_to(self.topic.len()))?;
        Ok(Publish {
            dup: self.dup,
            qos_pid: self.qos_pid,
            retain: self.retain,
            topic,
            properties: self.properties.clone(),
            payload,
        })
    }
}
