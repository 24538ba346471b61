//! What the broker owes MQTT 3.1.1 clients: sessions, wills, keep-alive, subscriptions,
//! ordering and packet identifiers, told with 3.1.1 clients only. Each test cites the
//! statements of the 3.1.1 specification it checks.

use std::collections::BTreeSet;
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, ConnectPolicy};

use crate::common::{Harness, lines, pid};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn ack(id: u16) -> PubResponse {
    PubResponse::new(pid(id))
}

fn with_will(id: &'static str, retain: bool) -> Connect {
    let mut c = Connect::new(V311, MqttString::from_static(id));
    c.keep_alive = 0;
    c.will = Some(Will {
        topic: TopicName::new(format!("wills/{id}")).unwrap(),
        payload: Bytes::from_static(id.as_bytes()),
        qos: QoS::AtMostOnce,
        retain,
        properties: WillProperties::default(),
    });
    c
}

fn retain(h: &mut Harness, name: &str, topic: &str, payload: &str, qos: QoS) {
    let mut p = Publish::new(
        TopicName::new(topic.to_string()).unwrap(),
        payload.to_string(),
    );
    p.qos_pid = QosPid::new(qos, PacketId::new(9)).unwrap();
    p.retain = true;
    h.send(name, Packet::Publish(p));
}

/// Clean Session 0 resumes the session, creating one if there is none, and keeps it after
/// the connection ends; Session Present says which; Clean Session 1 discards it:
/// 3.1.1 [MQTT-3.1.2-4], [MQTT-3.1.4-3], [MQTT-3.2.2-3].
#[test]
fn clean_session_0_resumes_and_1_discards() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    h.connect("s", V311, false);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.publish("p", "t", "kept", QoS::AtLeastOnce, 1);
    h.connect("s", V311, false);
    h.send("s", Packet::PubAck(ack(1)));
    h.sever("s");
    h.connect("s", V311, true);
    h.publish("p", "t", "lost", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript()[2..],
        lines(
            "
            s -> CONNECT 3.1.1 id=s clean=0
            s <- CONNACK 0x00 sp=0
            s -> SUBSCRIBE 1 t:1
            s <- SUBACK 1 0x01
            s -- severed
            p -> PUBLISH t q1 id=1 'kept'
            p <- PUBACK 1
            s -> CONNECT 3.1.1 id=s clean=0
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=1 'kept'
            s -> PUBACK 1
            s -- severed
            s -> CONNECT 3.1.1 id=s clean=1
            s <- CONNACK 0x00 sp=0
            p -> PUBLISH t q1 id=2 'lost'
            p <- PUBACK 2
            "
        )[..]
    );
}

/// The will is published when the connection ends without DISCONNECT, as a retained
/// message only if Will Retain is 1, and then removed; a DISCONNECT removes it unpublished;
/// a connection without a will publishes nothing:
/// 3.1.1 [MQTT-3.1.2-8], [MQTT-3.1.2-10], [MQTT-3.1.2-12], [MQTT-3.1.2-16], [MQTT-3.1.2-17].
#[test]
fn wills_under_311() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("w", V311, true);
    h.subscribe("w", 1, &[("wills/#", QoS::AtMostOnce)]);
    h.connect_with("plain", with_will("plain", false));
    h.connect_with("kept", with_will("kept", true));
    h.connect_with("bye", with_will("bye", true));
    h.connect("none", V311, false);
    h.sever("plain");
    h.sever("kept");
    h.send("bye", Packet::Disconnect(Disconnect::default()));
    h.sever("none");
    // The same clients again, without wills this time: nothing is left to publish.
    let mut c = Connect::new(V311, MqttString::from_static("plain"));
    c.clean_start = false;
    h.connect_with("plain", c);
    h.sever("plain");
    h.connect("late", V311, true);
    h.subscribe("late", 1, &[("wills/#", QoS::AtMostOnce)]);
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains("<- PUBLISH"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            w <- PUBLISH wills/plain q0 'plain'
            w <- PUBLISH wills/kept q0 'kept'
            late <- PUBLISH wills/kept q0 retain 'kept'
            "
        )
    );
}

/// A client silent for one and a half times its Keep Alive is disconnected as if the
/// network had failed, so its will is published; a PINGREQ is answered with PINGRESP and
/// keeps it alive: 3.1.1 [MQTT-3.1.2-24], [MQTT-3.12.4-1].
#[test]
fn keep_alive_under_311() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("w", V311, true);
    h.subscribe("w", 1, &[("wills/#", QoS::AtMostOnce)]);
    let mut c = with_will("k", false);
    c.keep_alive = 10;
    h.connect_with("k", c);
    h.transcript();
    h.advance(Duration::from_secs(14));
    h.send("k", Packet::PingReq);
    h.advance(Duration::from_millis(14_999));
    assert!(h.is_open("k"));
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.transcript(),
        lines(
            "
            k -> PINGREQ
            k <- PINGRESP
            k <- [closed]
            w <- PUBLISH wills/k q0 'k'
            "
        )
    );
}

/// A second CONNECT while the first waits for the driver is a protocol violation no
/// CONNACK return code describes: the connection closes without a CONNACK, and nothing it
/// sent is handled: 3.1.1 [MQTT-3.2.2-6].
#[test]
fn no_connack_when_no_return_code_applies() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.connect_policy = ConnectPolicy::AskDriver;
        c
    });
    h.connect("a", V311, true);
    h.send(
        "a",
        Packet::Connect(Box::new(Connect::new(V311, MqttString::from_static("a")))),
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 3.1.1 id=a clean=1
            a -> CONNECT 3.1.1 id=a clean=1
            a <- [closed]
            "
        )
    );
    assert_eq!(h.broker.session_count(), 0);
}

/// Overlapping subscriptions of a 3.1.1 client: the message goes once, at the highest QoS
/// they grant (and never above the message's): 3.1.1 [MQTT-3.3.5-1].
#[test]
fn overlapping_subscriptions_respect_the_highest_qos() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V311, true);
    h.connect("p", V311, true);
    h.subscribe(
        "s",
        1,
        &[("a/+", QoS::AtMostOnce), ("a/#", QoS::AtLeastOnce)],
    );
    h.transcript();
    h.publish("p", "a/b", "x", QoS::ExactlyOnce, 1);
    h.publish("p", "a/b", "y", QoS::AtMostOnce, 0);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH a/b q2 id=1 'x'
            s <- PUBLISH a/b q1 id=1 'x'
            p <- PUBREC 1
            p -> PUBLISH a/b q0 'y'
            s <- PUBLISH a/b q0 'y'
            "
        )
    );
}

/// Subscribing again to the same filter replaces the subscription, sends the retained
/// message again, and the flow of messages goes on (one copy, the new QoS):
/// 3.1.1 [MQTT-3.8.4-3].
#[test]
fn resubscribing_replaces_and_resends_retained() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    retain(&mut h, "p", "t", "r", QoS::AtLeastOnce);
    h.connect("s", V311, true);
    h.transcript();
    h.subscribe("s", 1, &[("t", QoS::AtMostOnce)]);
    h.subscribe("s", 2, &[("t", QoS::AtLeastOnce)]);
    h.publish("p", "t", "live", QoS::AtLeastOnce, 3);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 t:0
            s <- SUBACK 1 0x00
            s <- PUBLISH t q0 retain 'r'
            s -> SUBSCRIBE 2 t:1
            s <- SUBACK 2 0x01
            s <- PUBLISH t q1 id=1 retain 'r'
            p -> PUBLISH t q1 id=3 'live'
            s <- PUBLISH t q1 id=2 'live'
            p <- PUBACK 3
            "
        )
    );
}

/// A SUBSCRIBE with several filters is handled as that many SUBSCRIBEs, answered in one
/// SUBACK with the return codes in the order of the filters, a failure among them:
/// 3.1.1 [MQTT-3.8.4-4], [MQTT-3.9.3-1].
#[test]
fn several_filters_are_handled_one_after_another() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    retain(&mut h, "p", "a", "ra", QoS::AtMostOnce);
    retain(&mut h, "p", "b", "rb", QoS::AtLeastOnce);
    h.connect("s", V311, true);
    h.transcript();
    h.subscribe(
        "s",
        1,
        &[
            ("b", QoS::AtLeastOnce),
            ("$share/g", QoS::AtMostOnce),
            ("a", QoS::ExactlyOnce),
        ],
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 b:1,$share/g:0,a:2
            s <- SUBACK 1 0x01,0x80,0x02
            s <- PUBLISH b q1 id=1 retain 'rb'
            s <- PUBLISH a q0 retain 'ra'
            "
        )
    );
    assert_eq!(h.broker.subscription_count(), 2);
}

/// A QoS 1 message whose delivery started before its subscription was removed is still
/// delivered, also again after a reconnect: 3.1.1 [MQTT-3.10.4-3].
#[test]
fn unsubscribing_completes_deliveries_already_started() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V311, false);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.publish("p", "t", "started", QoS::AtLeastOnce, 1);
    let unsub = Unsubscribe::new(pid(2), vec![TopicFilter::from_static("t")]);
    h.send("s", Packet::Unsubscribe(unsub));
    h.publish("p", "t", "after", QoS::AtLeastOnce, 2);
    h.sever("s");
    h.transcript();
    h.connect("s", V311, false);
    h.send("s", Packet::PubAck(ack(1)));
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 3.1.1 id=s clean=0
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=1 dup 'started'
            s -> PUBACK 1
            "
        )
    );
    assert_eq!(h.broker.queued("s"), Some((0, 0)));
}

/// Each topic is an Ordered Topic: messages of one publisher on one topic reach the
/// subscriber in the order they were published, whatever their QoS:
/// 3.1.1 [MQTT-4.6.0-5], [MQTT-4.6.0-6].
#[test]
fn topics_are_ordered() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V311, true);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("t", QoS::ExactlyOnce)]);
    let sent = [
        ("1", QoS::ExactlyOnce),
        ("2", QoS::AtLeastOnce),
        ("3", QoS::AtMostOnce),
        ("4", QoS::ExactlyOnce),
        ("5", QoS::AtMostOnce),
        ("6", QoS::AtLeastOnce),
    ];
    for (i, (m, q)) in sent.iter().enumerate() {
        h.publish("p", "t", m, *q, i as u16 + 1);
    }
    let mut got = Vec::new();
    while let Some(p) = h.recv_publish("s") {
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    assert_eq!(got, ["1", "2", "3", "4", "5", "6"]);
}

/// Topic names and filters are matched as written: no case folding, no Unicode
/// normalisation, no trimming of empty levels: 3.1.1 [MQTT-4.7.3-4].
#[test]
fn topics_are_matched_without_normalisation() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    for (name, filter) in [
        ("upper", "Room/A"),
        ("nfc", "caf\u{e9}"),
        ("slash", "room/a/"),
    ] {
        h.connect(name, V311, true);
        h.subscribe(name, 1, &[(filter, QoS::AtMostOnce)]);
    }
    h.transcript();
    for topic in ["room/a", "Room/a", "cafe\u{301}", "room/a/", "room//a"] {
        h.publish("p", topic, "m", QoS::AtMostOnce, 0);
    }
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains(" <- "))
        .collect();
    assert_eq!(got, lines("slash <- PUBLISH room/a/ q0 'm'"));
}

/// The broker's QoS 1 PUBLISH packets use identifiers not in use: each unacknowledged one
/// has its own, kept when it is sent again, and a new message takes none of them:
/// 3.1.1 [MQTT-2.3.1-4].
#[test]
fn the_brokers_packet_identifiers_are_unused_ones() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V311, false);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    for i in 1..=3 {
        h.publish("p", "t", "m", QoS::AtLeastOnce, i);
    }
    let ids = |h: &mut Harness| -> Vec<u16> {
        std::iter::from_fn(|| h.recv_publish("s"))
            .map(|p| p.qos_pid.packet_id().unwrap().get())
            .collect()
    };
    let first = ids(&mut h);
    h.send("s", Packet::PubAck(ack(first[1])));
    h.sever("s");
    h.connect("s", V311, false);
    h.publish("p", "t", "m", QoS::AtLeastOnce, 4);
    let second = ids(&mut h);
    let unacked: BTreeSet<u16> = [first[0], first[2]].into();
    // The two unacknowledged go again with their identifiers; the new one has another.
    assert_eq!(second[..2], [first[0], first[2]]);
    assert!(!unacked.contains(&second[2]), "{first:?} then {second:?}");
    assert_eq!(BTreeSet::from_iter(first.iter()).len(), 3);
}
