//! Fitting a packet to what its receiver accepts, for both ends.

use mqtt_codec::Packet;

/// Drops the parts of `packet` a sender may leave out: the Reason String and User
/// Properties of acknowledgements, CONNACK, DISCONNECT and AUTH (all the properties of an
/// acknowledgement are those). Used when a packet would exceed the receiver's Maximum
/// Packet Size ([MQTT-3.1.2-24], [MQTT-3.2.2-15] and the per-packet rules such as
/// [MQTT-3.4.2-2]), or when a client asked for no problem information ([MQTT-3.1.2-29]).
pub(crate) fn drop_optional_properties(packet: &mut Packet) {
    match packet {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.properties = Default::default();
        }
        Packet::SubAck(a) => a.properties = Default::default(),
        Packet::UnsubAck(a) => a.properties = Default::default(),
        Packet::ConnAck(a) => {
            a.properties.reason_string = None;
            a.properties.user_properties.clear();
        }
        // (Behind a shared pointer: changed only where something is set.)
        Packet::Disconnect(d) => {
            if let Some(p) = d.properties.get_mut() {
                p.reason_string = None;
                p.user_properties.clear();
            }
        }
        Packet::Auth(a) => {
            if let Some(p) = a.properties.get_mut() {
                p.reason_string = None;
                p.user_properties.clear();
            }
        }
        _ => {}
    }
}

/// Drops the Reason String of `packet`, if it can carry one.
pub(crate) fn drop_reason_string(packet: &mut Packet) {
    match packet {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.properties.reason_string = None;
        }
        Packet::SubAck(a) => a.properties.reason_string = None,
        Packet::UnsubAck(a) => a.properties.reason_string = None,
        Packet::ConnAck(a) => a.properties.reason_string = None,
        Packet::Disconnect(d) if d.properties.reason_string.is_some() => {
            d.properties.reason_string = None;
        }
        Packet::Auth(a) if a.properties.reason_string.is_some() => {
            a.properties.reason_string = None;
        }
        _ => {}
    }
}
