//! Protocol violations: each closes the offending connection with the right reason code,
//! and no other connection notices.

use std::num::NonZeroU16;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent, Limit};
use mqtt_session::event::CloseCause;

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// The rule each close cited, from the events.
fn rules_cited(h: &mut Harness) -> Vec<String> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::Disconnected(d)
                if d.disconnected.cause == CloseCause::ProtocolViolation =>
            {
                Some(d.disconnected.rule.unwrap_or("").to_string())
            }
            _ => None,
        })
        .collect()
}

/// [MQTT-3.1.0-2], [MQTT-4.13.2-1]: a second CONNECT is a Protocol Error (v5: DISCONNECT
/// 0x82, then the close); 3.1.1 [MQTT-3.1.0-2], [MQTT-4.8.0-1]: the connection is closed.
/// The bystander keeps working.
#[test]
fn a_second_connect_closes_only_that_connection() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("by", V5, true);
    h.connect("a", V5, true);
    h.connect("b", V311, true);
    h.transcript();
    h.send(
        "a",
        Packet::Connect(Box::new(Connect::new(V5, MqttString::from_static("a")))),
    );
    h.send(
        "b",
        Packet::Connect(Box::new(Connect::new(V311, MqttString::from_static("b")))),
    );
    h.send("by", Packet::PingReq);
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1
            a <- DISCONNECT 0x82
            a <- [closed]
            b -> CONNECT 3.1.1 id=b clean=1
            b <- [closed]
            by -> PINGREQ
            by <- PINGRESP
            "
        )
    );
    assert!(
        rules_cited(&mut h)
            .iter()
            .all(|r| r.starts_with("[MQTT-3.1.0-2]"))
    );
}

/// [MQTT-3.1.0-1], [MQTT-3.1.4-1]: a first packet other than CONNECT, or a malformed
/// CONNECT, closes the connection without a CONNACK; the same for the older protocol:
/// 3.1.1 [MQTT-3.1.0-1], [MQTT-3.1.4-1].
#[test]
fn a_connection_must_start_with_a_valid_connect() {
    let mut h = Harness::new(BrokerConfig::default());
    h.open("a", V5);
    h.send_raw("a", &[0xC0, 0x00]); // PINGREQ
    h.open("b", V311);
    // CONNECT 3.1.1 with the reserved flag set ([MQTT-3.1.2-3]).
    h.send_raw(
        "b",
        &[
            0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'x',
        ],
    );
    h.open("c", V311);
    h.send_raw("c", &[0xC0, 0x00]); // PINGREQ
    h.open("d", V5);
    // CONNECT 5.0 with the reserved flag set ([MQTT-3.1.2-3]).
    h.send_raw(
        "d",
        &[
            0x10, 0x0e, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'x',
        ],
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> bytes c000
            a <- [closed]
            b -> bytes 100d00044d5154540403003c000178
            b <- [closed]
            c -> bytes c000
            c <- [closed]
            d -> bytes 100e00044d5154540503003c00000178
            d <- [closed]
            "
        )
    );
    let rules = rules_cited(&mut h);
    assert!(rules[0].starts_with("[MQTT-3.1.0-1]"), "{rules:?}");
    assert!(rules[1].starts_with("[MQTT-3.1.2-3]"), "{rules:?}");
    assert!(rules[2].starts_with("[MQTT-3.1.0-1]"), "{rules:?}");
    assert!(rules[3].starts_with("[MQTT-3.1.2-3]"), "{rules:?}");
}

/// [MQTT-4.13.1-1] with the decoder's reason codes: a malformed packet gets DISCONNECT 0x81,
/// one above the Maximum Packet Size 0x95 ([MQTT-3.2.2-15]).
#[test]
fn malformed_and_oversized_packets() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.maximum_packet_size = 64;
        c
    });
    h.connect("m", V5, true);
    h.connect("big", V5, true);
    h.transcript();
    // PUBLISH with a wildcard in its topic ([MQTT-3.3.2-2]).
    h.send_raw("m", &[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00]);
    let mut p = Publish::new(TopicName::from_static("t"), vec![b'x'; 100]);
    p.qos_pid = QosPid::AtMostOnce;
    h.send("big", Packet::Publish(p));
    assert_eq!(
        h.transcript(),
        lines(
            "
            m -> bytes 30060003612f2300
            m <- DISCONNECT 0x81
            m <- [closed]
            big -> PUBLISH t q0 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
            big <- DISCONNECT 0x95
            big <- [closed]
            "
        )
    );
}

/// PUBLISH rules the broker enforces under v5: [MQTT-3.2.2-11] QoS above Maximum QoS is
/// 0x9B; [MQTT-3.2.2-14] RETAIN when Retain Available is 0 is 0x9A; [MQTT-3.3.4-6] a
/// Subscription Identifier from a client is a Protocol Error.
#[test]
fn publish_rules_under_v5() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.maximum_qos = QoS::AtLeastOnce;
        c.retain_available = false;
        c
    });
    for name in ["q", "r", "s"] {
        h.connect(name, V5, true);
    }
    h.transcript();
    h.publish("q", "t", "x", QoS::ExactlyOnce, 1);
    let mut p = Publish::new(TopicName::from_static("t"), "x");
    p.retain = true;
    h.send("r", Packet::Publish(p));
    let mut p = Publish::new(TopicName::from_static("t"), "x");
    p.properties.subscription_identifiers = vec![SubscriptionId::new(1).unwrap()].into();
    h.send("s", Packet::Publish(p));
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains(" <- "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            q <- DISCONNECT 0x9B
            q <- [closed]
            r <- DISCONNECT 0x9A
            r <- [closed]
            s <- DISCONNECT 0x82
            s <- [closed]
            "
        )
    );
}

/// [MQTT-3.3.4-7]: a client that has more unreleased QoS 2 messages than the broker's
/// Receive Maximum is disconnected with 0x93.
#[test]
fn receive_maximum_exceeded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.receive_maximum = 2;
        c
    });
    h.connect("p", V5, true);
    h.transcript();
    for id in 1..=3 {
        h.publish("p", "t", "x", QoS::ExactlyOnce, id);
    }
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q2 id=1 'x'
            p <- PUBREC 1 0x10
            p -> PUBLISH t q2 id=2 'x'
            p <- PUBREC 2 0x10
            p -> PUBLISH t q2 id=3 'x'
            p <- DISCONNECT 0x93
            p <- [closed]
            "
        )
    );
    assert_eq!(h.broker.limit_count(Limit::InboundQos2), 1);
}

/// [MQTT-3.3.2-12]: topic aliases up to the broker's Topic Alias Maximum are accepted and
/// resolved; above it is 0x94 Topic Alias invalid, an unknown alias a Protocol Error.
#[test]
fn inbound_topic_aliases() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.topic_alias_maximum = 2;
        c
    });
    h.connect("s", V311, true);
    h.subscribe("s", 1, &[("long/topic/name", QoS::AtMostOnce)]);
    for name in ["p", "bad", "unknown"] {
        h.connect(name, V5, true);
    }
    h.transcript();
    let alias = |topic: &'static str, n: u16| {
        let mut p = Publish::new(TopicName::from_static(topic), "m");
        p.properties.topic_alias = NonZeroU16::new(n);
        Packet::Publish(p)
    };
    h.send("p", alias("long/topic/name", 2));
    h.send("p", alias("", 2));
    h.send("bad", alias("x", 3));
    h.send("unknown", alias("", 1));
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH long/topic/name q0 alias=2 'm'
            s <- PUBLISH long/topic/name q0 'm'
            p -> PUBLISH  q0 alias=2 'm'
            s <- PUBLISH long/topic/name q0 'm'
            bad -> PUBLISH x q0 alias=3 'm'
            bad <- DISCONNECT 0x94
            bad <- [closed]
            unknown -> PUBLISH  q0 alias=1 'm'
            unknown <- DISCONNECT 0x82
            unknown <- [closed]
            "
        )
    );
}

/// Packets only a server sends are Protocol Errors from a client (section 2.1.2);
/// section 3.14.2.2.2: a DISCONNECT may not set a Session Expiry Interval after 0 in
/// CONNECT; [MQTT-4.3.3-11] a PUBREL for an unknown identifier gets PUBCOMP 0x92.
#[test]
fn wrong_direction_and_state_errors() {
    let mut h = Harness::new(BrokerConfig::default());
    for name in ["a", "b", "c"] {
        h.connect(name, V5, true);
    }
    h.transcript();
    h.send("a", Packet::PingResp);
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(60);
    h.send("b", Packet::Disconnect(d));
    h.send("c", Packet::PubRel(PubResponse::new(pid(4))));
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> PINGRESP
            a <- DISCONNECT 0x82
            a <- [closed]
            b -> DISCONNECT 0x00 expiry=60
            b <- DISCONNECT 0x82
            b <- [closed]
            c -> PUBREL 4
            c <- PUBCOMP 4 0x92 reason='no QoS 2 message awaits PUBREL with this identifier'
            "
        )
    );
}
