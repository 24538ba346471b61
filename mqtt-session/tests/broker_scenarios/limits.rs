//! Bounded resources: each limit of the configuration refuses what would exceed it with the
//! reason code the client can read, and counts and events what it refused.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent, ConnectPolicy, ConnectRate, Limit};

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// The limits reached since the last call, with the client each names.
fn limits(h: &mut Harness) -> Vec<(Option<String>, Limit)> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::LimitReached {
                client_id, limit, ..
            } => Some((client_id.map(|c| c.to_string()), limit)),
            _ => None,
        })
        .collect()
}

fn named(name: &str, limit: Limit) -> (Option<String>, Limit) {
    (Some(name.to_string()), limit)
}

fn retain(h: &mut Harness, name: &str, topic: &str, payload: &str, qos: QoS, id: u16) {
    let mut p = Publish::new(
        TopicName::new(topic.to_string()).unwrap(),
        payload.to_string(),
    );
    p.qos_pid = QosPid::new(qos, PacketId::new(id)).unwrap();
    p.retain = true;
    h.send(name, Packet::Publish(p));
}

/// Sessions are bounded, offline persistent ones included: a CONNECT that needs a new
/// session is refused with CONNACK 0x97 (3.1.1: return code 3 Server unavailable); resuming
/// a session, or replacing one with Clean Start, is not.
#[test]
fn sessions_are_bounded_offline_ones_included() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_sessions = 2;
        c
    });
    h.connect_v5_session("kept", false, 600);
    h.sever("kept");
    h.connect("b", V5, true);
    h.transcript();
    h.connect("c", V5, true);
    h.connect("c3", V311, true);
    h.connect_v5_session("kept", false, 600);
    h.connect("b", V5, true);
    assert_eq!(
        h.transcript(),
        lines(
            "
            c -> CONNECT 5.0 id=c clean=1
            c <- CONNACK 0x97 sp=0 reason='too many sessions: try again later'
            c <- [closed]
            c3 -> CONNECT 3.1.1 id=c3 clean=1
            c3 <- CONNACK 0x88 sp=0
            c3 <- [closed]
            kept -> CONNECT 5.0 id=kept clean=0 expiry=600
            kept <- CONNACK 0x00 sp=1
            b -> CONNECT 5.0 id=b clean=1
            b <- CONNACK 0x00 sp=0
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [named("c", Limit::Sessions), named("c3", Limit::Sessions)]
    );
    assert_eq!(h.broker.limit_count(Limit::Sessions), 2);
    assert_eq!(h.broker.session_count(), 2);
}

/// CONNECTs waiting for the driver are bounded: one more gets CONNACK 0x89 Server busy;
/// once the driver decides, there is room again.
#[test]
fn connects_waiting_for_the_driver_are_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_policy = ConnectPolicy::AskDriver;
        c.max_pending_connects = 1;
        c
    });
    let a = h.connect("a", V5, true);
    h.connect("b", V5, true);
    h.connect("b3", V311, true);
    let now = h.now;
    h.broker.accept(now, a, None).unwrap();
    h.drain();
    let c = h.connect("c", V5, true);
    h.broker.accept(now, c, None).unwrap();
    h.drain();
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1
            b -> CONNECT 5.0 id=b clean=1
            b <- CONNACK 0x89 sp=0 reason='too many CONNECTs wait for a decision: try again later'
            b <- [closed]
            b3 -> CONNECT 3.1.1 id=b3 clean=1
            b3 <- CONNACK 0x88 sp=0
            b3 <- [closed]
            a <- CONNACK 0x00 sp=0
            c -> CONNECT 5.0 id=c clean=1
            c <- CONNACK 0x00 sp=0
            "
        )
    );
    assert_eq!(h.broker.limit_count(Limit::PendingConnects), 2);
}

/// The connection rate: at most `connects` CONNECTs per window, the others refused with
/// CONNACK 0x9F Connection rate exceeded (3.1.1: return code 3); the next window lets
/// clients in again.
#[test]
fn the_connection_rate_is_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_rate = Some(ConnectRate::new(2, Duration::from_secs(1)));
        c
    });
    h.connect("a", V5, true);
    h.connect("b", V311, true);
    h.connect("c", V5, true);
    h.connect("d", V311, true);
    h.advance(Duration::from_secs(1));
    h.connect("e", V5, true);
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1
            a <- CONNACK 0x00 sp=0
            b -> CONNECT 3.1.1 id=b clean=1
            b <- CONNACK 0x00 sp=0
            c -> CONNECT 5.0 id=c clean=1
            c <- CONNACK 0x9F sp=0 reason='too many CONNECTs: try again later'
            c <- [closed]
            d -> CONNECT 3.1.1 id=d clean=1
            d <- CONNACK 0x88 sp=0
            d <- [closed]
            e -> CONNECT 5.0 id=e clean=1
            e <- CONNACK 0x00 sp=0
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [
            named("c", Limit::ConnectRate),
            named("d", Limit::ConnectRate)
        ]
    );
}

/// Packets sent before the CONNACK are bounded: one more closes the connection (v5: with
/// CONNACK 0x89 Server busy), and nothing it sent is handled.
#[test]
fn packets_before_connack_are_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_policy = ConnectPolicy::AskDriver;
        c.max_packets_before_connack = 2;
        c
    });
    h.connect("a", V5, true);
    h.connect("a3", V311, true);
    for name in ["a", "a3"] {
        for _ in 0..3 {
            h.publish(name, "t", "x", QoS::AtMostOnce, 0);
        }
    }
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1
            a3 -> CONNECT 3.1.1 id=a3 clean=1
            a -> PUBLISH t q0 'x'
            a -> PUBLISH t q0 'x'
            a -> PUBLISH t q0 'x'
            a <- CONNACK 0x89 sp=0 reason='too many packets before CONNACK'
            a <- [closed]
            a3 -> PUBLISH t q0 'x'
            a3 -> PUBLISH t q0 'x'
            a3 -> PUBLISH t q0 'x'
            a3 <- [closed]
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [
            named("a", Limit::PacketsBeforeConnack),
            named("a3", Limit::PacketsBeforeConnack)
        ]
    );
    assert_eq!(h.broker.connection_count(), 0);
}

fn auth(rc: ReasonCode) -> Packet {
    Packet::Auth(Auth {
        reason_code: rc,
        properties: AuthProperties {
            authentication_method: Some(MqttString::from_static("M")),
            ..AuthProperties::default()
        }
        .into(),
    })
}

/// An authentication exchange is bounded in AUTH round trips: one more refuses the CONNECT
/// with CONNACK 0x97, or ends a re-authentication with DISCONNECT 0x97.
#[test]
fn authentication_round_trips_are_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_policy = ConnectPolicy::AskDriver;
        c.max_auth_round_trips = 2;
        c
    });
    for name in ["a", "r"] {
        let mut c = Connect::new(V5, MqttString::new(name).unwrap());
        c.properties.authentication_method = Some(MqttString::from_static("M"));
        h.connect_with(name, c);
    }
    let (a, r) = (h.peer("a").conn.unwrap(), h.peer("r").conn.unwrap());
    let now = h.now;
    for _ in 0..3 {
        h.broker.continue_auth(a, None).unwrap();
        h.drain();
        h.send("a", auth(ReasonCode::CONTINUE_AUTHENTICATION));
    }
    h.broker.accept(now, r, None).unwrap();
    h.drain();
    h.send("r", auth(ReasonCode::REAUTHENTICATE));
    h.broker.continue_auth(r, None).unwrap();
    h.drain();
    h.send("r", auth(ReasonCode::CONTINUE_AUTHENTICATION));
    h.broker.accept(now, r, None).unwrap();
    h.drain();
    // A completed exchange starts the count again.
    h.send("r", auth(ReasonCode::REAUTHENTICATE));
    h.broker.continue_auth(r, None).unwrap();
    h.drain();
    h.send("r", auth(ReasonCode::CONTINUE_AUTHENTICATION));
    h.broker.continue_auth(r, None).unwrap();
    h.drain();
    h.send("r", auth(ReasonCode::CONTINUE_AUTHENTICATION));
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1
            r -> CONNECT 5.0 id=r clean=1
            a <- AUTH 0x18
            a -> AUTH 0x18
            a <- AUTH 0x18
            a -> AUTH 0x18
            a <- AUTH 0x18
            a -> AUTH 0x18
            a <- CONNACK 0x97 sp=0 reason='too many AUTH round trips'
            a <- [closed]
            r <- CONNACK 0x00 sp=0 auth=M
            r -> AUTH 0x19
            r <- AUTH 0x18
            r -> AUTH 0x18
            r <- AUTH 0x00
            r -> AUTH 0x19
            r <- AUTH 0x18
            r -> AUTH 0x18
            r <- AUTH 0x18
            r -> AUTH 0x18
            r <- DISCONNECT 0x97
            r <- [closed]
            "
        )
    );
    assert_eq!(h.broker.limit_count(Limit::AuthRoundTrips), 2);
}

/// Subscriptions per session are bounded: a new filter beyond the limit fails with 0x97
/// (3.1.1: 0x80) while the others in the same SUBSCRIBE succeed; subscribing again to a
/// filter the session has replaces it, and unsubscribing makes room.
#[test]
fn subscriptions_per_session_are_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_subscriptions_per_session = 2;
        c
    });
    h.connect("s", V5, true);
    h.connect("s3", V311, true);
    h.transcript();
    for name in ["s", "s3"] {
        h.subscribe(name, 1, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]);
        h.subscribe(name, 2, &[("a", QoS::AtLeastOnce), ("c", QoS::AtMostOnce)]);
    }
    h.send(
        "s",
        Packet::Unsubscribe(Unsubscribe::new(
            pid(3),
            vec![TopicFilter::from_static("b")],
        )),
    );
    h.subscribe("s", 4, &[("c", QoS::AtMostOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 a:0,b:0
            s <- SUBACK 1 0x00,0x00
            s -> SUBSCRIBE 2 a:1,c:0
            s <- SUBACK 2 0x01,0x97 reason='too many subscriptions'
            s3 -> SUBSCRIBE 1 a:0,b:0
            s3 <- SUBACK 1 0x00,0x00
            s3 -> SUBSCRIBE 2 a:1,c:0
            s3 <- SUBACK 2 0x01,0x80
            s -> UNSUBSCRIBE 3 b
            s <- UNSUBACK 3 0x00
            s -> SUBSCRIBE 4 c:0
            s <- SUBACK 4 0x00
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [
            named("s", Limit::SubscriptionsPerSession),
            named("s3", Limit::SubscriptionsPerSession)
        ]
    );
    assert_eq!(h.broker.subscription_count(), 4);
}

/// The number of retained messages is bounded. Under v5 a retained QoS 1/2 PUBLISH that
/// would add one more is refused with 0x97 and not delivered; a client that cannot be told
/// in an acknowledgement loses its connection instead: v5 at QoS 0 after DISCONNECT 0x97,
/// 3.1.1 at once (3.1.1 [MQTT-4.8.0-2]). Replacing and deleting are always allowed.
#[test]
fn retained_messages_are_bounded_in_number() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_retained_messages = 2;
        c
    });
    h.connect("s", V5, true);
    h.subscribe("s", 1, &[("#", QoS::AtLeastOnce)]);
    for (name, version) in [("p", V5), ("q", V5), ("p3", V311)] {
        h.connect(name, version, true);
    }
    retain(&mut h, "p", "a", "1", QoS::AtMostOnce, 0);
    retain(&mut h, "p", "b", "1", QoS::AtMostOnce, 0);
    h.transcript();
    retain(&mut h, "p", "c", "refused", QoS::AtLeastOnce, 1);
    retain(&mut h, "q", "c", "refused", QoS::AtMostOnce, 0);
    retain(&mut h, "p3", "c", "refused", QoS::AtLeastOnce, 1);
    retain(&mut h, "p", "a", "2", QoS::AtLeastOnce, 2);
    retain(&mut h, "p", "b", "", QoS::AtMostOnce, 0);
    retain(&mut h, "p", "c", "kept", QoS::AtLeastOnce, 3);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH c q1 id=1 retain 'refused'
            p <- PUBACK 1 0x97 reason='retained messages are over their limit'
            q -> PUBLISH c q0 retain 'refused'
            q <- DISCONNECT 0x97
            q <- [closed]
            p3 -> PUBLISH c q1 id=1 retain 'refused'
            p3 <- [closed]
            p -> PUBLISH a q1 id=2 retain '2'
            s <- PUBLISH a q1 id=1 '2'
            p <- PUBACK 2
            p -> PUBLISH b q0 retain ''
            s <- PUBLISH b q0 ''
            p -> PUBLISH c q1 id=3 retain 'kept'
            s <- PUBLISH c q1 id=2 'kept'
            p <- PUBACK 3
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [
            named("p", Limit::RetainedMessages),
            named("q", Limit::RetainedMessages),
            named("p3", Limit::RetainedMessages)
        ]
    );
    h.connect("late", V5, true);
    h.subscribe("late", 1, &[("#", QoS::AtMostOnce)]);
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("late <- PUBLISH"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            late <- PUBLISH a q0 retain '2'
            late <- PUBLISH c q0 retain 'kept'
            "
        )
    );
}

/// The bytes of retained messages are bounded: a QoS 2 PUBLISH over the limit gets PUBREC
/// 0x97 and its identifier is free again ([MQTT-4.3.3-9]); a retained will over it is still
/// published, only not retained. Expired messages make room ([MQTT-3.3.2-5]).
#[test]
fn retained_messages_are_bounded_in_bytes() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_retained_bytes = 10;
        c
    });
    h.connect("s", V5, true);
    h.subscribe("s", 1, &[("#", QoS::AtMostOnce)]);
    h.connect("p", V5, true);
    let mut p = Publish::new(TopicName::from_static("t"), "123456789");
    p.retain = true;
    p.properties.message_expiry_interval = Some(5);
    h.send("p", Packet::Publish(p));
    let mut c = Connect::new(V5, MqttString::from_static("w"));
    c.will = Some(Will {
        topic: TopicName::from_static("w"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: true,
        properties: WillProperties::default(),
    });
    h.connect_with("w", c);
    h.transcript();
    retain(&mut h, "p", "u", "x", QoS::ExactlyOnce, 1);
    h.sever("w");
    h.advance(Duration::from_secs(5));
    retain(&mut h, "p", "u", "x", QoS::ExactlyOnce, 1);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH u q2 id=1 retain 'x'
            p <- PUBREC 1 0x97 reason='retained messages are over their limit'
            w -- severed
            s <- PUBLISH w q0 'gone'
            p -> PUBLISH u q2 id=1 retain 'x'
            s <- PUBLISH u q0 'x'
            p <- PUBREC 1
            "
        )
    );
    assert_eq!(
        limits(&mut h),
        [
            named("p", Limit::RetainedBytes),
            named("w", Limit::RetainedBytes)
        ]
    );
    assert_eq!(h.broker.retained_count(), 1);
    assert_eq!(h.broker.limit_count(Limit::RetainedBytes), 2);
}

/// Topic levels are bounded: a PUBLISH with too many gets 0x90 Topic Name invalid (QoS 0
/// and 3.1.1: dropped after the usual acknowledgement); a filter with too many 0x8F Topic
/// Filter invalid (3.1.1: 0x80), the levels of a shared filter counted after its share
/// name (`s` gets its shared and its own copy); a will topic with too many refuses the
/// CONNECT with 0x90.
#[test]
fn topic_levels_are_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_topic_levels = 3;
        c
    });
    h.connect("s", V5, true);
    h.connect("s3", V311, true);
    h.connect("p", V5, true);
    h.connect("p3", V311, true);
    let mut c = Connect::new(V5, MqttString::from_static("w"));
    c.will = Some(Will {
        topic: TopicName::from_static("a/b/c/d"),
        payload: Bytes::from_static(b"x"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties::default(),
    });
    h.connect_with("w", c);
    let filters = [
        ("a/b/c", QoS::AtLeastOnce),
        ("a/+/+/#", QoS::AtLeastOnce),
        ("$share/g/a/b/+", QoS::AtLeastOnce),
    ];
    h.subscribe("s", 1, &filters);
    h.subscribe("s3", 1, &filters[..2]);
    h.publish("p", "a/b/c", "ok", QoS::AtMostOnce, 0);
    h.publish("p", "a/b/c/d", "deep", QoS::AtLeastOnce, 1);
    h.publish("p", "a/b/c/d", "deep", QoS::AtMostOnce, 0);
    h.publish("p3", "a/b/c/d", "deep", QoS::AtLeastOnce, 1);
    assert_eq!(
        h.transcript()[8..],
        lines(
            "
            w -> CONNECT 5.0 id=w clean=1 will=a/b/c/d
            w <- CONNACK 0x90 sp=0 reason='the will topic has too many levels'
            w <- [closed]
            s -> SUBSCRIBE 1 a/b/c:1,a/+/+/#:1,$share/g/a/b/+:1
            s <- SUBACK 1 0x01,0x8F,0x01 reason='the topic filter has too many levels'
            s3 -> SUBSCRIBE 1 a/b/c:1,a/+/+/#:1
            s3 <- SUBACK 1 0x01,0x80
            p -> PUBLISH a/b/c q0 'ok'
            s <- PUBLISH a/b/c q0 'ok'
            s <- PUBLISH a/b/c q0 'ok'
            s3 <- PUBLISH a/b/c q0 'ok'
            p -> PUBLISH a/b/c/d q1 id=1 'deep'
            p <- PUBACK 1 0x90 reason='the topic has too many levels'
            p -> PUBLISH a/b/c/d q0 'deep'
            p3 -> PUBLISH a/b/c/d q1 id=1 'deep'
            p3 <- PUBACK 1
            "
        )[..]
    );
    assert_eq!(h.broker.limit_count(Limit::TopicLevels), 6);
}
