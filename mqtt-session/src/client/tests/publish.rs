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
            "persist put-in 7",
            "event message 't' once qos=2",
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
            "persist put-in 7",
            "event message 't' next qos=2",
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

// [MQTT-3.3.4-1]; 3.1.1 [MQTT-3.3.4-1]: the receiver answers a PUBLISH as its QoS says:
// nothing for QoS 0, PUBACK for QoS 1, PUBREC for QoS 2, each with the PUBLISH's identifier.
// [MQTT-4.5.0-2]; 3.1.1 [MQTT-4.5.0-2]: every PUBLISH is acknowledged, a resent duplicate
// the application does not see again included.
#[test]
fn every_publish_is_answered_as_its_qos_says() {
    for mut h in [Harness::v5(), Harness::v3()] {
        h.connect();
        assert_eq!(
            h.recv(incoming("t", "0", QoS::AtMostOnce, 0)),
            ["event message 't' 0 qos=0"]
        );
        assert_eq!(
            h.recv(incoming("t", "1", QoS::AtLeastOnce, 11)),
            ["event message 't' 1 qos=1", "send PUBACK 11"]
        );
        assert_eq!(
            h.recv(incoming("t", "2", QoS::ExactlyOnce, 12)),
            [
                "persist put-in 12",
                "event message 't' 2 qos=2",
                "send PUBREC 12"
            ]
        );
        let Packet::Publish(mut again) = incoming("t", "2", QoS::ExactlyOnce, 12) else {
            panic!()
        };
        again.dup = true;
        assert_eq!(h.recv(Packet::Publish(again)), ["send PUBREC 12"]);
    }
}

// 3.1.1 [MQTT-4.3.1-1]: QoS 0 goes out with QoS 0 and DUP 0.
// 3.1.1 [MQTT-4.3.2-1]: QoS 1 gets an unused identifier, DUP 0, and stays unacknowledged
// until its PUBACK.
// 3.1.1 [MQTT-4.3.3-1]: QoS 2 gets an unused identifier, DUP 0; stays unacknowledged until
// PUBREC; then PUBREL with the same identifier, unacknowledged until PUBCOMP, and the
// PUBLISH is never sent again.
#[test]
fn v311_sender_flows() {
    let mut config = ClientConfig::new(
        mqtt_codec::ProtocolVersion::V3_1_1,
        mqtt_codec::MqttString::from_static("c1"),
    );
    config.clean_start = false;
    let mut h = Harness::new(config);
    h.connect();
    assert_eq!(
        h.publish("a", "0", QoS::AtMostOnce),
        ["send PUBLISH 'a' qos=0 id=- dup=0 retain=0"]
    );
    assert_eq!(
        h.publish("a", "1", QoS::AtLeastOnce),
        [
            "persist put-out 1 publish",
            "send PUBLISH 'a' qos=1 id=1 dup=0 retain=0"
        ]
    );
    assert_eq!(
        h.publish("a", "2", QoS::ExactlyOnce),
        [
            "persist put-out 2 publish",
            "send PUBLISH 'a' qos=2 id=2 dup=0 retain=0"
        ]
    );
    assert_eq!(h.client.in_flight(), 2);
    assert_eq!(
        h.recv(Packet::PubAck(PubResponse::new(id(1)))),
        ["persist rm-out 1", "event published 1"]
    );
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(2)))),
        ["persist put-out 2 pubrel", "send PUBREL 2"]
    );
    // Unacknowledged PUBREL: sent again on a resumed session, the PUBLISH never again.
    h.client.handle_closed(h.now);
    h.drain();
    let mut ack = ConnAck::default();
    ack.session_present = true;
    assert_eq!(
        h.connect_with(ack),
        ["event connected present=1 id=c1", "send PUBREL 2"]
    );
    assert_eq!(
        h.recv(Packet::PubComp(PubResponse::new(id(2)))),
        ["persist rm-out 2", "event published 2"]
    );
    assert_eq!(h.client.in_flight(), 0);
}

// 3.1.1 [MQTT-4.3.2-2]: the QoS 1 receiver answers with PUBACK carrying the PUBLISH's
// identifier; after it, a PUBLISH with that identifier is a new message, DUP or not.
// 3.1.1 [MQTT-4.3.3-2]: the QoS 2 receiver answers with PUBREC, answers duplicates with
// PUBREC without delivering them again, answers PUBREL with PUBCOMP, and after PUBCOMP
// takes the identifier as a new message.
#[test]
fn v311_receiver_flows() {
    let mut h = Harness::v3();
    h.connect();
    let dup = |p: Packet| {
        let Packet::Publish(mut p) = p else { panic!() };
        p.dup = true;
        Packet::Publish(p)
    };
    assert_eq!(
        h.recv(incoming("t", "one", QoS::AtLeastOnce, 3)),
        ["event message 't' one qos=1", "send PUBACK 3"]
    );
    assert_eq!(
        h.recv(dup(incoming("t", "one", QoS::AtLeastOnce, 3))),
        ["event message 't' one qos=1", "send PUBACK 3"]
    );
    assert_eq!(
        h.recv(incoming("t", "two", QoS::ExactlyOnce, 3)),
        [
            "persist put-in 3",
            "event message 't' two qos=2",
            "send PUBREC 3"
        ]
    );
    assert_eq!(
        h.recv(dup(incoming("t", "two", QoS::ExactlyOnce, 3))),
        ["send PUBREC 3"]
    );
    assert_eq!(
        h.recv(Packet::PubRel(PubResponse::new(id(3)))),
        ["persist rm-in 3", "send PUBCOMP 3"]
    );
    assert_eq!(
        h.recv(incoming("t", "three", QoS::ExactlyOnce, 3))[1],
        "event message 't' three qos=2"
    );
}

/// [MQTT-4.3.3-2]: a new QoS 2 message goes out with DUP 0;
/// [MQTT-4.3.3-3]: it stays unacknowledged until its PUBREC: sent again (DUP 1) on a
/// resumed session while the PUBREC is missing, never again once it came.
#[test]
fn qos2_publish_is_unacknowledged_until_pubrec() {
    let mut config = ClientConfig::new(
        mqtt_codec::ProtocolVersion::V5,
        mqtt_codec::MqttString::from_static("c1"),
    );
    config.properties.session_expiry_interval = Some(60);
    let mut h = Harness::new(config);
    h.connect();
    assert_eq!(
        h.publish("a", "x", QoS::ExactlyOnce)[1],
        "send PUBLISH 'a' qos=2 id=1 dup=0 retain=0"
    );
    assert_eq!(h.client.in_flight(), 1);
    h.client.handle_closed(h.now);
    h.drain();
    let mut present = ConnAck::default();
    present.session_present = true;
    assert_eq!(
        h.connect_with(present.clone())[1..],
        ["send PUBLISH 'a' qos=2 id=1 dup=1 retain=0"]
    );
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(1)))),
        ["persist put-out 1 pubrel", "send PUBREL 1"]
    );
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(h.connect_with(present)[1..], ["send PUBREL 1"]);
}

// 3.1.1 [MQTT-2.3.1-2]: a new packet gets an identifier no packet in flight uses, also once
// the counter wraps round;
// 3.1.1 [MQTT-2.3.1-3]: a packet sent again keeps its identifier (PUBLISH, SUBSCRIBE and
// UNSUBSCRIBE alike).
#[test]
fn v311_identifiers_unused_and_kept_for_resends() {
    let mut config = ClientConfig::new(
        mqtt_codec::ProtocolVersion::V3_1_1,
        mqtt_codec::MqttString::from_static("c1"),
    );
    config.clean_start = false;
    let mut h = Harness::new(config);
    h.connect();
    h.publish("a", "1", QoS::AtLeastOnce);
    // Continue in a client resumed with the counter at the top of the range.
    h.client.handle_closed(h.now);
    h.drain();
    let mut state = h.client.session_state();
    state.next_packet_id = u16::MAX;
    let config = h.client.config().clone();
    let mut h = Harness::with_client(Client::resume(config, state).unwrap());
    let mut present = ConnAck::default();
    present.session_present = true;
    h.connect_with(present.clone());
    h.drain();
    assert_eq!(
        h.publish("b", "2", QoS::ExactlyOnce)[1],
        "send PUBLISH 'b' qos=2 id=65535 dup=0 retain=0"
    );
    // 1 is still unacknowledged: the wrapped counter skips it.
    assert_eq!(
        h.publish("c", "3", QoS::AtLeastOnce)[1],
        "send PUBLISH 'c' qos=1 id=2 dup=0 retain=0"
    );
    let f = mqtt_codec::TopicFilter::from_static("f");
    let sub = vec![(f.clone(), mqtt_codec::SubscriptionOptions::default())];
    assert_eq!(
        h.client.subscribe(h.now, sub, Default::default()),
        Ok(id(3))
    );
    assert_eq!(
        h.client.unsubscribe(h.now, vec![f], Default::default()),
        Ok(id(4))
    );
    h.drain();
    h.client.handle_closed(h.now);
    h.drain();
    assert_eq!(
        h.connect_with(present)[1..],
        [
            "send PUBLISH 'a' qos=1 id=1 dup=1 retain=0",
            "send PUBLISH 'b' qos=2 id=65535 dup=1 retain=0",
            "send PUBLISH 'c' qos=1 id=2 dup=1 retain=0",
            "send SUBSCRIBE 3 f:0",
            "send UNSUBSCRIBE 4 f"
        ]
    );
}
