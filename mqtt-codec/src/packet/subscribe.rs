//! SUBSCRIBE and UNSUBSCRIBE.

use alloc::vec::Vec;

use bytes::BufMut;

use crate::coding::{Reader, put_binary, rule};
use crate::properties::{PropertySet, encoded_props_len};
use crate::{
    DecodeError, EncodeError, PacketId, PacketType, ProtocolVersion, QoS, SubscribeProperties,
    TopicFilter, UnsubscribeProperties,
};

/// Retain Handling: whether retained messages are sent when a subscription is made
/// (section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not already exist.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The options of one subscription in a SUBSCRIBE (section 3.8.3.1). Under 3.1.1 only the
/// QoS is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// No Local: do not forward the subscriber's own messages back to it (v5).
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag of forwarded messages (v5).
    pub retain_as_published: bool,
    /// Retain Handling (v5).
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and every v5 option at its default.
    pub fn qos(qos: QoS) -> Self {
        Self {
            qos,
            ..Self::default()
        }
    }

    fn to_byte(self) -> u8 {
        (self.qos as u8)
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4)
    }
}

/// SUBSCRIBE: a client's request for subscriptions (section 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Subscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: SubscribeProperties,
    /// Topic filters and their options, in order; at least one.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

impl Subscribe {
    /// A SUBSCRIBE for the given filters with no properties.
    pub fn new(packet_id: PacketId, filters: Vec<(TopicFilter, SubscriptionOptions)>) -> Self {
        Self {
            packet_id,
            properties: SubscribeProperties::default(),
            filters,
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if r.is_v5() {
            SubscribeProperties::decode(r)?
        } else {
            SubscribeProperties::default()
        };
        if r.is_empty() {
            return Err(r.protocol(rule(
                r.version,
                "[MQTT-3.8.3-2] SUBSCRIBE has no topic filter",
                "[MQTT-3.8.3-3] SUBSCRIBE has no topic filter",
            )));
        }
        let mut filters = Vec::with_capacity(r.count_prefixed(1));
        while !r.is_empty() {
            let filter = r.topic_filter()?;
            let b = r.u8()?;
            let options = if r.is_v5() {
                if b & 0xC0 != 0 {
                    return Err(
                        r.malformed("[MQTT-3.8.3-5] subscription options reserved bits set")
                    );
                }
                let Some(qos) = QoS::from_u8(b & 0x03) else {
                    return Err(r.protocol("subscription options QoS is 3 (section 3.8.3.1)"));
                };
                let retain_handling = match (b >> 4) & 0x03 {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendAtSubscribeIfNew,
                    2 => RetainHandling::DoNotSend,
                    _ => {
                        return Err(r.protocol("Retain Handling is 3 (section 3.8.3.1)"));
                    }
                };
                let no_local = b & 0x04 != 0;
                if no_local && filter.shared().is_some() {
                    return Err(r.protocol("[MQTT-3.8.3-4] No Local set on a shared subscription"));
                }
                SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published: b & 0x08 != 0,
                    retain_handling,
                }
            } else {
                let qos = QoS::from_u8(b).ok_or_else(|| {
                    // Printed as [MQTT-3-8.3-4] in 3.1.1 section 3.8.3.
                    r.malformed("[MQTT-3.8.3-4] requested QoS reserved bits set or QoS is 3")
                })?;
                SubscriptionOptions::qos(qos)
            };
            filters.push((filter, options));
        }
        Ok(Self {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Subscribe;
        let invalid = |rule| EncodeError::InvalidValue { packet: P, rule };
        if self.filters.is_empty() {
            return Err(invalid(
                "[MQTT-3.8.3-2] SUBSCRIBE needs at least one topic filter",
            ));
        }
        let mut n = 2 + encoded_props_len(&self.properties, P, version)?;
        for (f, o) in &self.filters {
            if version.is_v5() {
                if let Some(Err(_)) = f.shared() {
                    return Err(invalid("[MQTT-4.8.2-2] invalid shared subscription filter"));
                }
                if o.no_local && f.shared().is_some() {
                    return Err(invalid("[MQTT-3.8.3-4] No Local on a shared subscription"));
                }
            } else if o.no_local
                || o.retain_as_published
                || o.retain_handling != RetainHandling::SendAtSubscribe
            {
                return Err(EncodeError::NotInVersion {
                    packet: P,
                    field: "v5 subscription options",
                    version,
                });
            }
            n += 2 + f.len() + 1;
        }
        Ok(n)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for (f, o) in &self.filters {
            put_binary(buf, f.as_mqtt_str().as_bytes());
            buf.put_u8(o.to_byte());
        }
    }
}

/// UNSUBSCRIBE: a client's request to remove subscriptions (section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unsubscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// v5 properties (must be empty for 3.1.1).
    pub properties: UnsubscribeProperties,
    /// Topic filters, in order; at least one.
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE for the given filters with no properties.
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Self {
        Self {
            packet_id,
            properties: UnsubscribeProperties::default(),
            filters,
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if r.is_v5() {
            UnsubscribeProperties::decode(r)?
        } else {
            UnsubscribeProperties::default()
        };
        if r.is_empty() {
            return Err(r.protocol("[MQTT-3.10.3-2] UNSUBSCRIBE has no topic filter"));
        }
        let mut filters = Vec::with_capacity(r.count_prefixed(0));
        while !r.is_empty() {
            filters.push(r.topic_filter()?);
        }
        Ok(Self {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        const P: PacketType = PacketType::Unsubscribe;
        if self.filters.is_empty() {
            return Err(EncodeError::InvalidValue {
                packet: P,
                rule: "[MQTT-3.10.3-2] UNSUBSCRIBE needs at least one topic filter",
            });
        }
        let mut n = 2 + encoded_props_len(&self.properties, P, version)?;
        for f in &self.filters {
            if version.is_v5() && matches!(f.shared(), Some(Err(_))) {
                return Err(EncodeError::InvalidValue {
                    packet: P,
                    rule: "[MQTT-4.8.2-2] invalid shared subscription filter",
                });
            }
            n += 2 + f.len();
        }
        Ok(n)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for f in &self.filters {
            put_binary(buf, f.as_mqtt_str().as_bytes());
        }
    }
}
