//! Owned copies of what outlives the read it came in.
//!
//! A decoded packet is zero-copy: its topic, payload and properties are slices of the
//! buffer the driver read it into, and keep that whole buffer alive. A message delivered at
//! once lets go of it within the call; one the broker keeps (a retained message, a QoS 1/2
//! message in a session, a QoS 0 message waiting for a slow reader, a will, a client
//! identifier) would keep a read buffer of any size alive for as long as it is kept: 16
//! bytes could pin a megabyte, and the limits that count message bytes would count 16. So
//! what is kept is copied into an allocation of its own size. The copy re-encodes the
//! message and decodes it from that exact buffer: one allocation for all its parts.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;

use mqtt_codec::{
    Connect, DecodeContext, MAX_PACKET_SIZE, MqttString, Packet, ProtocolVersion, Publish, Will,
};

/// How the copies are encoded: v5 carries every field of both versions.
const V5: ProtocolVersion = ProtocolVersion::V5;

fn cx() -> DecodeContext {
    DecodeContext::new(V5).with_max_packet_size(MAX_PACKET_SIZE)
}

/// `s` in an allocation of its own.
pub(crate) fn string(s: &MqttString) -> MqttString {
    MqttString::new(s.as_str().to_owned()).unwrap_or_else(|_| s.clone())
}

/// `packet` encoded into a buffer of its size and decoded from it.
fn round_trip(packet: &Packet) -> Option<Packet> {
    let bytes = packet.to_bytes(V5).ok()?;
    Packet::decode_exact(bytes.freeze(), &cx()).ok()
}

/// A copy of `p` with its topic, payload and properties in one allocation of the
/// message's size (`None` only if it does not encode, which a decoded message does).
pub(crate) fn publish(p: &Publish) -> Option<Publish> {
    match round_trip(&Packet::Publish(p.clone()))? {
        Packet::Publish(q) => Some(q),
        _ => None,
    }
}

/// A copy of `w` with its topic, payload and properties in one allocation of its size.
pub(crate) fn will(w: &Will) -> Option<Will> {
    let mut connect = Connect::new(V5, MqttString::from_static("w"));
    connect.will = Some(w.clone());
    match round_trip(&Packet::Connect(Box::new(connect)))? {
        Packet::Connect(c) => c.will,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{Bytes, BytesMut, PacketId, QoS, QosPid, TopicName, WillProperties};

    /// Decodes `packet` from a buffer with a megabyte behind it, as a driver's read is.
    fn decoded(packet: Packet) -> Packet {
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.extend_from_slice(&packet.to_bytes(V5).unwrap());
        Packet::decode(&mut buf, &cx()).unwrap().unwrap()
    }

    /// The copy equals the message, and its bytes are not the read buffer's.
    #[test]
    fn a_copied_message_is_equal_and_owns_its_bytes() {
        let mut p = Publish::new(TopicName::from_static("a/b"), vec![7u8; 16]);
        p.qos_pid = QosPid::AtLeastOnce(PacketId::new(9).unwrap());
        p.retain = true;
        p.properties.correlation_data = Some(Bytes::from_static(b"corr"));
        p.properties
            .user_properties
            .push((MqttString::from_static("k"), MqttString::from_static("v")));
        let Packet::Publish(original) = decoded(Packet::Publish(p)) else {
            panic!("not a PUBLISH");
        };
        let copy = publish(&original).unwrap();
        assert_eq!(copy, original);
        assert_ne!(copy.payload.as_ptr(), original.payload.as_ptr());
        assert_ne!(
            copy.topic.as_str().as_ptr(),
            original.topic.as_str().as_ptr()
        );
    }

    #[test]
    fn a_copied_will_is_equal_and_owns_its_bytes() {
        let w = Will {
            topic: TopicName::from_static("gone"),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: WillProperties {
                will_delay_interval: Some(5),
                ..WillProperties::default()
            },
        };
        let mut c = Connect::new(V5, MqttString::from_static("c"));
        c.will = Some(w);
        let Packet::Connect(c) = decoded(Packet::Connect(Box::new(c))) else {
            panic!("not a CONNECT");
        };
        let original = c.will.unwrap();
        let copy = will(&original).unwrap();
        assert_eq!(copy, original);
        assert_ne!(copy.payload.as_ptr(), original.payload.as_ptr());
    }
}
