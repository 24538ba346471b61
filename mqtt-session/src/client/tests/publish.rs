//! QoS 0, 1 and 2 in both directions.

use mqtt_codec::{ConnAck, Packet, PubResponse, Publish, QoS, SubscriptionId};

use super::*;
use crate::client::{Message, PublishError};

/// [MQTT-4.3.1-1]: QoS 0 is one PUBLISH with DUP 0 and no identifier.
#[test]
fn qos0_out() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.publish("a/b", "hi", QoS::AtMostOnce),
        ["send PUBLISH 'a/b' qos=0 id=- dup=0 retain=0"]
    );
}

#[test]
fn qos0_needs_a_connection() {
    let mut h = Harness::v5();
    let m = Message::new(topic("a"), "x");
    assert_eq!(h.client.publish(h.now, m), Err(PublishError::NotConnected));
}

/// [MQTT-4.3.2-1], [MQTT-4.3.2-2], [MQTT-4.3.2-3]: a QoS 1 message has a fresh identifier,
/// DUP 0, and stays unacknowledged until its PUBACK.
#[test]
fn qos1_out() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.publish("a", "1", QoS::AtLeastOnce),
        [
            "persist put-out 1 publish",
            "send PUBLISH 'a' qos=1 id=1 dup=0 retain=0"
        ]
    );
    assert_eq!(h.client.in_flight(), 1);
    assert_eq!(
        h.recv(Packet::PubAck(PubResponse::new(id(1)))),
        ["persist rm-out 1", "event published 1"]
    );
    assert_eq!(h.client.in_flight(), 0);
}

/// [MQTT-4.3.3-1] to [MQTT-4.3.3-5]: PUBLISH, PUBREC, PUBREL, PUBCOMP, with the stored
/// message replaced by its PUBREL before the PUBREL goes out.
#[test]
fn qos2_out() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.publish("a", "2", QoS::ExactlyOnce),
        [
            "persist put-out 1 publish",
            "send PUBLISH 'a' qos=2 id=1 dup=0 retain=0"
        ]
    );
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(1)))),
        ["persist put-out 1 pubrel", "send PUBREL 1"]
    );
    // A repeated PUBREC gets the PUBREL again, never the PUBLISH ([MQTT-4.3.3-6]).
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(1)))),
        ["send PUBREL 1"]
    );
    assert_eq!(
        h.recv(Packet::PubComp(PubResponse::new(id(1)))),
        ["persist rm-out 1", "event published 1"]
    );
}

/// [MQTT-4.4.0-2]: a PUBREC with a failure code ends the handshake without PUBREL.
#[test]
fn qos2_refused_by_pubrec() {
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "2", QoS::ExactlyOnce);
    assert_eq!(
        h.recv(Packet::PubRec(with_rc(1, 0x87))),
        ["persist rm-out 1", "event published 1 rc=0x87"]
    );
    assert_eq!(h.client.in_flight(), 0);
}

/// v5 reason codes on PUBACK reach the application.
#[test]
fn puback_error_is_reported() {
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    assert_eq!(
        h.recv(Packet::PubAck(with_rc(1, 0x10))),
        ["persist rm-out 1", "event published 1 rc=0x10"]
    );
}

#[test]
fn qos0_and_qos1_in() {
    let mut h = Harness::v3();
    h.connect();
    assert_eq!(
        h.recv(incoming("t", "zero", QoS::AtMostOnce, 0)),
        ["event message 't' zero qos=0"]
    );
    // [MQTT-4.3.2-4]
    assert_eq!(
        h.recv(incoming("t", "one", QoS::AtLeastOnce, 5)),
        ["event message 't' one qos=1", "send PUBACK 5"]
    );
    // [MQTT-4.3.2-5]: after PUBACK the same identifier is a new message.
    assert_eq!(
        h.recv(incoming("t", "again", QoS::AtLeastOnce, 5)),
        ["event message 't' again qos=1", "send PUBACK 5"]
    );
}

/// [MQTT-4.3.3-8], [MQTT-4.3.3-10], [MQTT-4.3.3-11], [MQTT-4.3.3-12]: an incoming QoS 2
/// message is delivered once, however often it is resent before PUBREL; after PUBCOMP its
/// identifier starts a new message.
#[test]
fn qos2_in_is_delivered_exactly_once() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(incoming("t", "once", QoS::ExactlyOnce, 7)),
        [
            "event message 't' once qos=2",
            "persist put-in 7",
            "send PUBREC 7"
        ]
    );
    let Packet::Publish(mut dup) = incoming("t", "once", QoS::ExactlyOnce, 7) else {
        panic!()
    };
    dup.dup = true;
    assert_eq!(h.recv(Packet::Publish(dup)), ["send PUBREC 7"]);
    assert_eq!(
        h.recv(Packet::PubRel(PubResponse::new(id(7)))),
        ["persist rm-in 7", "send PUBCOMP 7"]
    );
    assert_eq!(
        h.recv(incoming("t", "next", QoS::ExactlyOnce, 7)),
        [
            "event message 't' next qos=2",
            "persist put-in 7",
            "send PUBREC 7"
        ]
    );
}

/// Section 3.7.2.1: a PUBREL for an unknown identifier is answered, v5 with 0x92.
#[test]
fn pubrel_for_unknown_identifier() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::PubRel(PubResponse::new(id(9)))),
        ["send PUBCOMP 9 rc=0x92"]
    );
    let mut h = Harness::v3();
    h.connect();
    assert_eq!(
        h.recv(Packet::PubRel(PubResponse::new(id(9)))),
        ["send PUBCOMP 9"]
    );
}

/// Section 3.6.2.1: a v5 PUBREC for an unknown identifier gets PUBREL 0x92.
#[test]
fn pubrec_for_unknown_identifier_v5() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(3)))),
        ["send PUBREL 3 rc=0x92"]
    );
}

/// [MQTT-3.2.2-11], [MQTT-3.2.2-14]: the server's Maximum QoS and Retain Available bind
/// the client.
#[test]
fn maximum_qos_and_retain_available() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.maximum_qos = Some(QoS::AtMostOnce);
        p.retain_available = Some(false);
    }));
    let m = Message::new(topic("a"), "x").with_qos(QoS::AtLeastOnce);
    assert_eq!(
        h.client.publish(h.now, m),
        Err(PublishError::QosNotSupported(QoS::AtMostOnce))
    );
    let m = Message::new(topic("a"), "x").with_retain(true);
    assert_eq!(
        h.client.publish(h.now, m),
        Err(PublishError::RetainNotSupported)
    );
    assert_eq!(h.drain(), Vec::<String>::new());
}

/// [MQTT-3.3.4-6]: no Subscription Identifier in a client's PUBLISH.
#[test]
fn no_subscription_identifier_in_publish() {
    let mut h = Harness::v5();
    h.connect();
    let mut m = Message::new(topic("a"), "x");
    m.properties
        .subscription_identifiers
        .push(SubscriptionId::new(1).unwrap());
    assert_eq!(
        h.client.publish(h.now, m),
        Err(PublishError::SubscriptionIdentifier)
    );
}

/// v5 properties cannot go out under 3.1.1: a local error, nothing sent.
#[test]
fn v5_properties_under_v311_are_refused() {
    let mut h = Harness::v3();
    h.connect();
    let mut m = Message::new(topic("a"), "x");
    m.properties.message_expiry_interval = Some(5);
    assert!(matches!(
        h.client.publish(h.now, m),
        Err(PublishError::Encode(_))
    ));
    assert_eq!(h.drain(), Vec::<String>::new());
}

/// [MQTT-2.2.1-3]: identifiers in use are not reused; freed ones are taken again only
/// after the counter wraps.
#[test]
fn identifiers_are_not_reused_while_in_flight() {
    let mut h = Harness::v5();
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    h.publish("a", "2", QoS::AtLeastOnce);
    h.recv(Packet::PubAck(PubResponse::new(id(1))));
    assert_eq!(
        h.publish("a", "3", QoS::AtLeastOnce),
        [
            "persist put-out 3 publish",
            "send PUBLISH 'a' qos=1 id=3 dup=0 retain=0"
        ]
    );
}

/// Packets a publish produces are exactly what a server decodes: payload and properties
/// survive the wire.
#[test]
fn published_packet_carries_payload_and_properties() {
    let mut h = Harness::v5();
    h.connect_with(ConnAck::default());
    let mut m = Message::new(topic("x/y"), "payload").with_qos(QoS::AtLeastOnce);
    m.properties.content_type = Some(mqtt_codec::MqttString::from_static("text/plain"));
    h.client.publish(h.now, m).unwrap();
    h.drain();
    let Some(Action::Send(Packet::Publish(p))) = h.actions.last() else {
        panic!()
    };
    let mut want = Publish::new(topic("x/y"), "payload");
    want.qos_pid = mqtt_codec::QosPid::AtLeastOnce(id(1));
    want.properties.content_type = Some(mqtt_codec::MqttString::from_static("text/plain"));
    assert_eq!(p, &want);
}

/// Identifier exhaustion is a local error, not a panic: 65,535 messages waiting hold every
/// identifier.
#[test]
fn identifier_exhaustion_is_a_local_error() {
    let mut config = ClientConfig::new(
        mqtt_codec::ProtocolVersion::V5,
        mqtt_codec::MqttString::from_static("c1"),
    );
    config.max_queued = usize::MAX;
    let mut h = Harness::new(config);
    let m = || Message::new(topic("a"), "x").with_qos(QoS::AtLeastOnce);
    for _ in 0..u16::MAX {
        assert!(h.client.publish(h.now, m()).unwrap().is_some());
    }
    assert_eq!(
        h.client.publish(h.now, m()),
        Err(PublishError::PacketIdsExhausted)
    );
    assert_eq!(h.client.queued(), usize::from(u16::MAX));
}
