//! QoS 0, 1 and 2 both ways, Receive Maximum, resending on resume, queues and expiry.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent, Limit, Undelivered};

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn ack(id: u16) -> PubResponse {
    PubResponse::new(pid(id))
}

/// [MQTT-4.3.2-4] the broker acknowledges a QoS 1 PUBLISH with the same identifier after
/// taking it; [MQTT-2.2.1-4] it numbers its own PUBLISH to the subscriber; [MQTT-4.3.3-2]
/// its QoS 2 PUBLISH goes with DUP 0 and [MQTT-4.3.3-4] is released with PUBREL after PUBREC.
/// The publisher speaks 3.1.1: 3.1.1 [MQTT-4.3.2-2] PUBACK, 3.1.1 [MQTT-4.3.3-2] PUBREC
/// and, on PUBREL, PUBCOMP.
#[test]
fn qos1_and_qos2_handshakes_both_ways() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)]);
    h.publish("p", "a", "one", QoS::AtLeastOnce, 10);
    h.send("s", Packet::PubAck(ack(1)));
    h.publish("p", "b", "two", QoS::ExactlyOnce, 11);
    h.send("s", Packet::PubRec(ack(2)));
    h.send("p", Packet::PubRel(ack(11)));
    h.send("s", Packet::PubComp(ack(2)));
    assert_eq!(
        h.transcript()[6..],
        lines(
            "
            p -> PUBLISH a q1 id=10 'one'
            s <- PUBLISH a q1 id=1 'one'
            p <- PUBACK 10
            s -> PUBACK 1
            p -> PUBLISH b q2 id=11 'two'
            s <- PUBLISH b q2 id=2 'two'
            p <- PUBREC 11
            s -> PUBREC 2
            s <- PUBREL 2
            p -> PUBREL 11
            p <- PUBCOMP 11
            s -> PUBCOMP 2
            "
        )[..]
    );
    assert_eq!(h.broker.queued("s"), Some((0, 0)), "nothing left in flight");
}

/// [MQTT-4.3.3-10]: until PUBREL, a QoS 2 PUBLISH with the same identifier is acknowledged
/// again and not delivered again; [MQTT-4.3.3-12] after PUBCOMP the identifier starts a new
/// message.
#[test]
fn inbound_qos2_is_delivered_exactly_once() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtMostOnce)]);
    h.transcript();
    h.publish("p", "t", "m1", QoS::ExactlyOnce, 5);
    let mut dup = Publish::new(TopicName::from_static("t"), "m1");
    dup.qos_pid = QosPid::ExactlyOnce(pid(5));
    dup.dup = true;
    h.send("p", Packet::Publish(dup));
    h.send("p", Packet::PubRel(ack(5)));
    h.publish("p", "t", "m2", QoS::ExactlyOnce, 5);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q2 id=5 'm1'
            s <- PUBLISH t q0 'm1'
            p <- PUBREC 5
            p -> PUBLISH t q2 id=5 dup 'm1'
            p <- PUBREC 5
            p -> PUBREL 5
            p <- PUBCOMP 5
            p -> PUBLISH t q2 id=5 'm2'
            s <- PUBLISH t q0 'm2'
            p <- PUBREC 5
            "
        )
    );
}

/// [MQTT-3.8.4-8]: a message goes out at the lower of its QoS and the subscription's; a
/// broker with Maximum QoS 1 grants at most 1 ([MQTT-3.2.2-9]). The clients speak 3.1.1:
/// 3.1.1 [MQTT-3.8.4-6].
#[test]
fn qos_is_capped_by_subscription_and_broker() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.maximum_qos = QoS::AtLeastOnce;
        c
    });
    h.connect("s", V311, true);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("hi", QoS::ExactlyOnce), ("lo", QoS::AtMostOnce)]);
    h.publish("p", "hi", "x", QoS::ExactlyOnce, 1);
    h.publish("p", "lo", "y", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript()[4..],
        lines(
            "
            s -> SUBSCRIBE 1 hi:2,lo:0
            s <- SUBACK 1 0x01,0x00
            p -> PUBLISH hi q2 id=1 'x'
            s <- PUBLISH hi q1 id=1 'x'
            p <- PUBREC 1
            p -> PUBLISH lo q1 id=2 'y'
            s <- PUBLISH lo q0 'y'
            p <- PUBACK 2
            "
        )[..]
    );
}

/// [MQTT-3.3.4-9], [MQTT-4.9.0-1], [MQTT-4.9.0-2]: no more unacknowledged QoS 1/2 PUBLISH
/// towards a client than its Receive Maximum; [MQTT-3.3.4-10], [MQTT-4.9.0-3] QoS 0 and
/// other packets are not held back.
#[test]
fn receive_maximum_towards_the_client() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V5, MqttString::from_static("s"));
    c.properties.receive_maximum = NonZeroU16::new(2);
    h.connect_with("s", c);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.transcript();
    for (i, m) in ["1", "2", "3"].iter().enumerate() {
        h.publish("p", "t", m, QoS::AtLeastOnce, i as u16 + 1);
    }
    h.publish("p", "t", "zero", QoS::AtMostOnce, 0);
    h.send("s", Packet::PingReq);
    h.send("s", Packet::PubAck(ack(2)));
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("s "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            s <- PUBLISH t q1 id=1 '1'
            s <- PUBLISH t q1 id=2 '2'
            s <- PUBLISH t q0 'zero'
            s -> PINGREQ
            s <- PINGRESP
            s -> PUBACK 2
            s <- PUBLISH t q1 id=3 '3'
            "
        )
    );
}

/// Section 4.3.3: a PUBREC with a failure reason code ends the exchange, so one that
/// matches no message gets no PUBREL; a successful one that matches nothing gets PUBREL
/// 0x92 Packet Identifier not found.
#[test]
fn a_failing_pubrec_for_an_unknown_identifier_is_not_answered() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.transcript();
    let mut failed = ack(41);
    failed.reason_code = ReasonCode::UNSPECIFIED_ERROR;
    h.send("s", Packet::PubRec(failed));
    h.send("s", Packet::PubRec(ack(42)));
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .map(|l| l.split(" reason=").next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        got,
        lines(
            "
            s -> PUBREC 41 0x80
            s -> PUBREC 42
            s <- PUBREL 42 0x92
            "
        )
    );
}

/// The broker leaves at most `max_in_flight` QoS 1/2 PUBLISH unacknowledged even when the
/// client's Receive Maximum allows more (a 3.1.1 client has none), so that a subscriber
/// whose publishers are paused still has messages queued as its PUBACKs arrive.
#[test]
fn the_broker_keeps_its_own_in_flight_window() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_in_flight = 2;
        c
    });
    h.connect("s", V5, true);
    h.connect("s3", V311, true);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.subscribe("s3", 1, &[("t", QoS::AtLeastOnce)]);
    h.transcript();
    for (i, m) in ["1", "2", "3"].iter().enumerate() {
        h.publish("p", "t", m, QoS::AtLeastOnce, i as u16 + 1);
    }
    h.send("s", Packet::PubAck(ack(1)));
    h.send("s3", Packet::PubAck(ack(2)));
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("s ") || l.starts_with("s3 "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            s <- PUBLISH t q1 id=1 '1'
            s3 <- PUBLISH t q1 id=1 '1'
            s <- PUBLISH t q1 id=2 '2'
            s3 <- PUBLISH t q1 id=2 '2'
            s -> PUBACK 1
            s <- PUBLISH t q1 id=3 '3'
            s3 -> PUBACK 2
            s3 <- PUBLISH t q1 id=3 '3'
            "
        )
    );
}

/// [MQTT-4.4.0-1], [MQTT-3.3.1-1], [MQTT-4.6.0-1] (the broker's side of it): on resume,
/// unacknowledged PUBLISH go again with DUP in their order and with their identifiers, and
/// a PUBREL that was not completed goes again.
#[test]
fn in_flight_messages_are_resent_with_dup_on_resume() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 600);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::ExactlyOnce)]);
    h.publish("p", "t", "a", QoS::ExactlyOnce, 1);
    h.publish("p", "t", "b", QoS::AtLeastOnce, 2);
    h.publish("p", "t", "c", QoS::ExactlyOnce, 3);
    h.send("s", Packet::PubRec(ack(1)));
    h.sever("s");
    h.publish("p", "t", "d", QoS::AtLeastOnce, 4);
    h.transcript();
    h.connect_v5_session("s", false, 600);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            s <- PUBREL 1
            s <- PUBLISH t q1 id=2 dup 'b'
            s <- PUBLISH t q2 id=3 dup 'c'
            s <- PUBLISH t q1 id=4 'd'
            "
        )
    );
}

/// Section 3.7.2.1, the broker's side: a client that completed a QoS 2 message before the
/// cut answers the PUBREL sent again on resume with PUBCOMP 0x92 Packet Identifier not
/// found, which "is not an error during recovery". The message is done like any other:
/// out of flight, not sent again, and no drop reported.
#[test]
fn pubcomp_0x92_for_a_pubrel_sent_again_completes_the_message() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 600);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::ExactlyOnce)]);
    h.publish("p", "t", "a", QoS::ExactlyOnce, 1);
    h.send("s", Packet::PubRec(ack(1)));
    h.sever("s");
    h.transcript();
    h.connect_v5_session("s", false, 600);
    let mut not_found = ack(1);
    not_found.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
    h.send("s", Packet::PubComp(not_found));
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            s <- PUBREL 1
            s -> PUBCOMP 1 0x92
            "
        )
    );
    assert_eq!(h.broker.queued("s"), Some((0, 0)), "nothing left in flight");
    let dropped = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, BrokerEvent::MessageDropped { .. }))
        .count();
    assert_eq!(dropped, 0);
    h.sever("s");
    h.transcript();
    h.connect_v5_session("s", false, 600);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            "
        )
    );
}

/// [MQTT-4.5.0-1]; 3.1.1 [MQTT-3.1.2-5], [MQTT-4.5.0-1]: QoS 1/2 messages are queued for a
/// disconnected session, QoS 0 ones are not; the queue is bounded and each drop is counted
/// and evented.
#[test]
fn offline_queue_is_bounded_and_drops_are_evented() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_queued_messages = 2;
        c
    });
    h.connect("s", V311, false);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.connect("p", V311, true);
    h.publish("p", "t", "q0", QoS::AtMostOnce, 0);
    for (i, m) in ["1", "2", "3"].iter().enumerate() {
        h.publish("p", "t", m, QoS::AtLeastOnce, i as u16 + 1);
    }
    assert_eq!(h.broker.queued("s"), Some((2, 1)));
    let drops: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::MessageDropped {
                client_id, reason, ..
            } => Some((client_id, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        drops,
        [(MqttString::from_static("s"), Undelivered::QueueFull)]
    );
    h.transcript();
    h.connect("s", V311, false);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 3.1.1 id=s clean=0
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=1 '1'
            s <- PUBLISH t q1 id=2 '2'
            "
        )
    );
}

/// The offline queue is bounded in bytes too (`max_queued_bytes`: topic, payload and
/// properties): a message that would take it beyond is dropped and evented, as one beyond
/// `max_queued_messages` is; an empty queue takes a message of any size; an acknowledged
/// message makes room again.
#[test]
fn offline_queue_is_bounded_in_bytes() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_queued_bytes = 100;
        c
    });
    h.connect("s", V311, false);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.connect("p", V311, true);
    let forty = "x".repeat(40);
    // 41 bytes each (topic `t` and 40 of payload): two fit in 100, the third does not.
    for i in 1..=3u16 {
        h.publish(
            "p",
            "t",
            &format!("{i}{}", &forty[1..]),
            QoS::AtLeastOnce,
            i,
        );
    }
    assert_eq!(h.broker.queued("s"), Some((2, 1)));
    let dropped = |h: &mut Harness| {
        h.take_events()
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    BrokerEvent::MessageDropped {
                        reason: Undelivered::QueueFull,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(dropped(&mut h), 1);
    // Delivered and acknowledged, the queue is empty: one large message still waits.
    h.connect("s", V311, false);
    for _ in 0..2 {
        let p = h.recv_publish("s").unwrap();
        let id = p.qos_pid.packet_id().unwrap();
        h.send("s", Packet::PubAck(PubResponse::new(id)));
    }
    h.sever("s");
    h.publish("p", "t", &"y".repeat(500), QoS::AtLeastOnce, 4);
    assert_eq!(dropped(&mut h), 0, "an empty queue takes any message");
    h.publish("p", "t", "z", QoS::AtLeastOnce, 5);
    assert_eq!(
        dropped(&mut h),
        1,
        "but nothing more while it holds 501 bytes"
    );
    assert_eq!(h.broker.queued("s"), Some((1, 2)));
}

/// [MQTT-3.3.2-5], [MQTT-3.3.2-6]: a queued message's Message Expiry Interval counts down
/// while it waits, and it is dropped if it runs out before it could be sent.
#[test]
fn message_expiry_counts_down_while_queued() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 600);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.connect("p", V5, true);
    for (payload, expiry) in [("short", 5), ("long", 50)] {
        let mut p = Publish::new(TopicName::from_static("t"), payload);
        p.qos_pid = QosPid::AtLeastOnce(pid(1));
        p.properties.message_expiry_interval = Some(expiry);
        h.send("p", Packet::Publish(p));
        h.recv("p");
    }
    h.advance(Duration::from_secs(20));
    h.transcript();
    h.connect_v5_session("s", false, 600);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=2 expiry=30 'long'
            "
        )
    );
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        BrokerEvent::MessageDropped {
            reason: Undelivered::Expired,
            ..
        }
    )));
}

/// [MQTT-3.1.2-24], [MQTT-3.1.2-25]: nothing larger than the client's Maximum Packet Size is
/// sent; such a message is discarded as if delivered.
#[test]
fn messages_larger_than_the_clients_maximum_are_discarded() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V5, MqttString::from_static("s"));
    c.properties.maximum_packet_size = NonZeroU32::new(20);
    h.connect_with("s", c);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.transcript();
    h.publish("p", "t", "this payload is too long", QoS::AtLeastOnce, 1);
    h.publish("p", "t", "short", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q1 id=1 'this payload is too long'
            p <- PUBACK 1
            p -> PUBLISH t q1 id=2 'short'
            s <- PUBLISH t q1 id=2 'short'
            p <- PUBACK 2
            "
        )
    );
    assert_eq!(h.broker.queued("s"), Some((1, 1)));
}

/// [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18],
/// [MQTT-3.3.2-20], [MQTT-3.1.3-10]: payload format, response topic, correlation data,
/// content type and user properties (in order) reach the subscriber untouched; a 3.1.1
/// subscriber gets the message without them.
#[test]
fn v5_properties_are_forwarded_unaltered() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s5", V5, true);
    h.connect("s3", V311, true);
    h.connect("p", V5, true);
    h.subscribe("s5", 1, &[("req", QoS::AtMostOnce)]);
    h.subscribe("s3", 1, &[("req", QoS::AtMostOnce)]);
    let mut p = Publish::new(TopicName::from_static("req"), "{}");
    let props = PublishProperties {
        payload_format_indicator: Some(true),
        content_type: Some(MqttString::from_static("application/json")),
        response_topic: Some(TopicName::from_static("resp/1")),
        correlation_data: Some(Bytes::from_static(b"\x00\x01")),
        user_properties: vec![
            (MqttString::from_static("b"), MqttString::from_static("2")),
            (MqttString::from_static("a"), MqttString::from_static("1")),
            (MqttString::from_static("b"), MqttString::from_static("3")),
        ]
        .into(),
        ..PublishProperties::default()
    };
    p.properties = props.clone().into();
    h.send("p", Packet::Publish(p));
    let got5 = h.recv_publish("s5").expect("s5 got no PUBLISH");
    assert_eq!(*got5.properties, props);
    let got3 = h.recv_publish("s3").expect("s3 got no PUBLISH");
    assert!(got3.properties.is_empty());
    assert_eq!(got3.payload, got5.payload);
}

/// [MQTT-4.3.3-7] (and the same for QoS 1): once a message has been sent, expiry no longer
/// applies to it; after a reconnect it goes again with DUP.
#[test]
fn message_expiry_stops_once_sent() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 600);
    h.subscribe("s", 1, &[("t", QoS::ExactlyOnce)]);
    h.connect("p", V5, true);
    let mut p = Publish::new(TopicName::from_static("t"), "x");
    p.qos_pid = QosPid::ExactlyOnce(pid(1));
    p.properties.message_expiry_interval = Some(5);
    h.send("p", Packet::Publish(p));
    h.sever("s");
    h.advance(Duration::from_secs(10));
    h.transcript();
    h.connect_v5_session("s", false, 600);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q2 id=1 dup expiry=5 'x'
            "
        )
    );
}

/// Optional outbound topic aliases: within the client's Topic Alias Maximum
/// ([MQTT-3.1.2-26], [MQTT-3.3.2-11]), the name sent once with its alias and then left out,
/// and none carried over to a new connection ([MQTT-3.3.2-7]).
#[test]
fn outbound_topic_aliases_within_the_clients_maximum() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.outbound_topic_aliases = true;
        c
    });
    let mut c = Connect::new(V5, MqttString::from_static("s"));
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    c.properties.topic_alias_maximum = Some(1);
    h.connect_with("s", c.clone());
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("#", QoS::AtMostOnce)]);
    h.transcript();
    for topic in ["long/topic", "long/topic", "other"] {
        h.publish("p", topic, "m", QoS::AtMostOnce, 0);
    }
    h.sever("s");
    h.connect_with("s", c);
    h.publish("p", "long/topic", "m", QoS::AtMostOnce, 0);
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("s <- PUBLISH"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            s <- PUBLISH long/topic q0 alias=1 'm'
            s <- PUBLISH  q0 alias=1 'm'
            s <- PUBLISH other q0 'm'
            s <- PUBLISH long/topic q0 alias=1 'm'
            "
        )
    );
}

/// 3.1.1 has no Receive Maximum ([MQTT-3.3.4-7] is a 5.0 statement): a 3.1.1 client never
/// hears of the broker's, so it is not held to it, and may leave more QoS 2 messages
/// unreleased than a v5 client may. (Found by the simulation: compliant 3.1.1 clients were
/// disconnected.)
#[test]
fn a_311_client_is_not_held_to_the_receive_maximum() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.receive_maximum = 1;
        c
    });
    h.connect("p", V311, true);
    h.transcript();
    for id in 1..=3 {
        h.publish("p", "t", &id.to_string(), QoS::ExactlyOnce, id);
    }
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q2 id=1 '1'
            p <- PUBREC 1
            p -> PUBLISH t q2 id=2 '2'
            p <- PUBREC 2
            p -> PUBLISH t q2 id=3 '3'
            p <- PUBREC 3
            "
        )
    );
    assert!(!h.take_events().iter().any(|e| matches!(
        e,
        BrokerEvent::LimitReached {
            limit: Limit::InboundQos2,
            ..
        }
    )));
}

/// Intervals from peers reach 136 years (`u32::MAX` seconds): they are kept as "not in this
/// process's lifetime", never overflowing the clock.
#[test]
fn the_longest_intervals_do_not_overflow() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V5, MqttString::from_static("s"));
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(u32::MAX - 1);
    c.will = Some(Will {
        topic: TopicName::from_static("w"),
        payload: Bytes::from_static(b"w"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(u32::MAX),
            ..WillProperties::default()
        },
    });
    h.connect_with("s", c);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.connect("p", V5, true);
    let mut p = Publish::new(TopicName::from_static("t"), "x");
    p.qos_pid = QosPid::AtLeastOnce(pid(1));
    p.retain = true;
    p.properties.message_expiry_interval = Some(u32::MAX);
    h.send("p", Packet::Publish(p));
    h.advance(Duration::from_secs(86_400));
    assert!(h.broker.has_session("s"));
    assert_eq!(h.broker.queued("s"), Some((1, 0)));
    assert_eq!(h.broker.retained_count(), 1);
}

/// [MQTT-3.2.2-10]: a broker without QoS 1 and 2 (Maximum QoS 0) still accepts SUBSCRIBE
/// asking for them, and grants QoS 0.
#[test]
fn a_qos0_broker_accepts_subscriptions_asking_for_more() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.maximum_qos = QoS::AtMostOnce;
        c
    });
    h.connect("s", V5, true);
    h.transcript();
    h.subscribe("s", 1, &[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 a:1,b:2
            s <- SUBACK 1 0x00,0x00
            "
        )
    );
    assert_eq!(h.broker.subscription_count(), 2);
}

/// [MQTT-3.3.1-3]: the DUP flag of a PUBLISH the broker sends says only whether that
/// PUBLISH is a retransmission: a publisher's retransmission (DUP 1) reaches subscribers
/// with DUP 0, and the broker's own retransmission after a reconnect has DUP 1. The same
/// towards a 3.1.1 subscriber: 3.1.1 [MQTT-3.3.1-3].
#[test]
fn dup_is_set_by_the_brokers_own_retransmissions_only() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s5", false, 60);
    h.connect("s3", V311, false);
    h.connect("p", V311, true);
    h.subscribe("s5", 1, &[("t", QoS::AtLeastOnce)]);
    h.subscribe("s3", 1, &[("t", QoS::AtLeastOnce)]);
    h.transcript();
    let mut p = Publish::new(TopicName::from_static("t"), "again");
    p.qos_pid = QosPid::AtLeastOnce(pid(1));
    p.dup = true;
    h.send("p", Packet::Publish(p));
    h.sever("s5");
    h.sever("s3");
    h.connect_v5_session("s5", false, 60);
    h.connect("s3", V311, false);
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains("<- PUBLISH"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            s5 <- PUBLISH t q1 id=1 'again'
            s3 <- PUBLISH t q1 id=1 'again'
            s5 <- PUBLISH t q1 id=1 dup 'again'
            s3 <- PUBLISH t q1 id=1 dup 'again'
            "
        )
    );
}

/// [MQTT-4.3.3-13]: the broker, receiving a QoS 2 message, completes the handshake even
/// when the message expired meanwhile and was dropped from the subscriber's queue.
#[test]
fn qos2_handshake_completes_after_the_message_expired() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 600);
    h.subscribe("s", 1, &[("t", QoS::ExactlyOnce)]);
    h.sever("s");
    h.connect("p", V5, true);
    h.transcript();
    let mut p = Publish::new(TopicName::from_static("t"), "brief");
    p.qos_pid = QosPid::ExactlyOnce(pid(7));
    p.properties.message_expiry_interval = Some(1);
    h.send("p", Packet::Publish(p));
    h.advance(Duration::from_secs(5));
    h.connect_v5_session("s", false, 600);
    h.send("p", Packet::PubRel(ack(7)));
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q2 id=7 expiry=1 'brief'
            p <- PUBREC 7
            s -> CONNECT 5.0 id=s clean=0 expiry=600
            s <- CONNACK 0x00 sp=1
            p -> PUBREL 7
            p <- PUBCOMP 7
            "
        )
    );
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        BrokerEvent::MessageDropped {
            reason: Undelivered::Expired,
            ..
        }
    )));
}

/// [MQTT-3.3.4-1]: the broker answers a v5 client's PUBLISH as its QoS says: nothing for
/// QoS 0, PUBACK for QoS 1, PUBREC (and PUBCOMP on PUBREL) for QoS 2.
#[test]
fn each_qos_gets_its_answer() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtMostOnce)]);
    h.connect("p", V5, true);
    h.transcript();
    h.publish("p", "t", "0", QoS::AtMostOnce, 0);
    h.publish("p", "t", "1", QoS::AtLeastOnce, 1);
    h.publish("p", "t", "2", QoS::ExactlyOnce, 2);
    h.send("p", Packet::PubRel(ack(2)));
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("p "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            p -> PUBLISH t q0 '0'
            p -> PUBLISH t q1 id=1 '1'
            p <- PUBACK 1
            p -> PUBLISH t q2 id=2 '2'
            p <- PUBREC 2
            p -> PUBREL 2
            p <- PUBCOMP 2
            "
        )
    );
}
