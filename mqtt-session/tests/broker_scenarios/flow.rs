//! Flow control from session to socket: a client gets what its connection can take, the
//! rest waits in its session, a client that keeps reading receives everything, publishers
//! slow to the pace of their subscribers, and a client that stops reading is closed after
//! the write timeout without holding up anyone else.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent, Limit, Qos0Overflow, Undelivered};

use crate::common::{Harness, lines};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// A broker with a write budget of two small PUBLISH packets (7 bytes each, for a
/// one-letter topic and payload under v5).
fn small(config: BrokerConfig) -> Harness {
    Harness::new({
        let mut c = config;
        c.write_budget = 10;
        c
    })
}

/// Payloads of the PUBLISH packets `name` received, in order.
fn payloads(h: &mut Harness, name: &str) -> Vec<String> {
    std::iter::from_fn(|| h.recv_publish(name))
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

fn dropped(h: &mut Harness) -> Vec<(String, Undelivered)> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::MessageDropped {
                client_id, reason, ..
            } => Some((client_id.to_string(), reason)),
            _ => None,
        })
        .collect()
}

/// A subscriber that does not read gets what fits its write budget; QoS 0 messages wait
/// in a bounded queue, and reading again delivers every one of them in order
/// ([MQTT-4.6.0-6]). Beyond the queue the newest is dropped and evented.
#[test]
fn qos0_waits_for_a_slow_reader_and_all_of_it_arrives() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.max_queued_qos0 = 5;
        c.pause_publishers_at = usize::MAX;
        c
    });
    h.connect("sub", V5, true);
    h.subscribe("sub", 1, &[("t", QoS::AtMostOnce)]);
    h.connect("pub", V311, true);
    h.recv("sub");
    h.recv("sub");
    h.stop_reading("sub");
    for i in 0..9 {
        h.publish("pub", "t", &i.to_string(), QoS::AtMostOnce, 0);
    }
    // Two fit the budget (handed out, not read), five wait, two are dropped.
    assert_eq!(h.unread("sub"), 2);
    assert_eq!(
        dropped(&mut h),
        [
            ("sub".to_string(), Undelivered::QueueFull),
            ("sub".to_string(), Undelivered::QueueFull)
        ]
    );
    h.resume_reading("sub");
    assert_eq!(payloads(&mut h, "sub"), ["0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(h.broker.unwritten(h.peer("sub").conn.unwrap()), Some(0));
}

/// With the drop-oldest policy a slow reader gets the latest messages.
#[test]
fn qos0_overflow_can_drop_the_oldest() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.max_queued_qos0 = 3;
        c.qos0_overflow = Qos0Overflow::DropOldest;
        c.pause_publishers_at = usize::MAX;
        c
    });
    h.connect("sub", V5, true);
    h.subscribe("sub", 1, &[("t", QoS::AtMostOnce)]);
    h.connect("pub", V5, true);
    h.stop_reading("sub");
    for i in 0..8 {
        h.publish("pub", "t", &i.to_string(), QoS::AtMostOnce, 0);
    }
    h.resume_reading("sub");
    h.recv("sub");
    h.recv("sub");
    assert_eq!(payloads(&mut h, "sub"), ["0", "1", "5", "6", "7"]);
    assert_eq!(dropped(&mut h).len(), 3);
}

/// Backpressure: once a subscriber is `pause_publishers_at` messages behind, the
/// publisher's connection is paused (its packets wait unread) and nothing it sent is
/// dropped; when the subscriber has caught up to half, the publisher resumes and every
/// QoS 1 message arrives once, in order ([MQTT-4.6.0-6], [MQTT-4.3.2-1]).
#[test]
fn a_slow_subscriber_pauses_its_publishers_and_loses_nothing() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.pause_publishers_at = 4;
        c.max_queued_messages = 8;
        c
    });
    h.connect("sub", V5, true);
    h.subscribe("sub", 1, &[("t/#", QoS::AtLeastOnce)]);
    h.connect("pub", V5, true);
    h.connect("other", V5, true);
    h.recv("other");
    h.transcript();
    h.stop_reading("sub");
    for i in 1..=20u16 {
        h.publish("pub", "t/a", &i.to_string(), QoS::AtLeastOnce, i);
    }
    // The broker took what it had to before the subscriber fell 4 behind, then paused.
    assert!(h.is_paused("pub"));
    assert!(!h.is_paused("other"));
    assert!(dropped(&mut h).is_empty(), "nothing was dropped");
    // Other clients are served meanwhile.
    h.send("other", Packet::PingReq);
    assert_eq!(h.recv("other"), Some(Packet::PingResp));
    // The subscriber reads and acknowledges: everything flows again.
    h.resume_reading("sub");
    let mut got = Vec::new();
    while got.len() < 20 {
        let Some(p) = h.recv_publish("sub") else {
            panic!("only {got:?} arrived: {:#?}", h.transcript());
        };
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
        let id = p.qos_pid.packet_id().unwrap();
        h.send("sub", Packet::PubAck(PubResponse::new(id)));
    }
    let want: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    assert!(!h.is_paused("pub"));
    assert!(dropped(&mut h).is_empty());
    let pubacks = h
        .transcript()
        .iter()
        .filter(|l| l.starts_with("pub <- PUBACK"))
        .count();
    assert_eq!(pubacks, 20);
}

/// A publisher is not paused for its own subscription: it would stop reading the very
/// acknowledgements it is behind on.
#[test]
fn a_publisher_is_not_paused_for_itself() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.pause_publishers_at = 2;
        c
    });
    h.connect("echo", V5, true);
    h.subscribe("echo", 1, &[("t", QoS::AtMostOnce)]);
    h.stop_reading("echo");
    for i in 0..6 {
        h.publish("echo", "t", &i.to_string(), QoS::AtMostOnce, 0);
    }
    assert!(!h.is_paused("echo"));
    h.resume_reading("echo");
    h.recv("echo");
    h.recv("echo");
    assert_eq!(payloads(&mut h, "echo"), ["0", "1", "2", "3", "4", "5"]);
}

/// One subscription matching many retained messages receives all of them, SUBACK first
/// ([MQTT-3.8.4-1]), each with RETAIN set ([MQTT-3.3.1-9]), however small the budget.
#[test]
fn a_subscription_receives_every_retained_message() {
    let mut h = small(BrokerConfig::default());
    h.connect("pub", V5, true);
    for i in 0..2000 {
        let mut p = Publish::new(TopicName::new(format!("r/{i}")).unwrap(), i.to_string());
        p.retain = true;
        h.send("pub", Packet::Publish(p));
    }
    h.connect("sub", V311, true);
    h.recv("sub");
    h.subscribe("sub", 1, &[("r/#", QoS::AtLeastOnce)]);
    assert!(matches!(h.recv("sub"), Some(Packet::SubAck(_))));
    let mut got = std::collections::BTreeSet::new();
    while let Some(p) = h.recv_publish("sub") {
        assert!(p.retain);
        assert_eq!(
            p.topic.as_str(),
            format!("r/{}", String::from_utf8_lossy(&p.payload))
        );
        assert!(got.insert(p.topic.to_string()), "{} twice", p.topic);
    }
    assert_eq!(got.len(), 2000);
}

/// Retained QoS 1 messages waiting for a new subscription go before a newer message on the
/// same topic ([MQTT-4.6.0-6]): the subscriber ends with the newest value. (Order across
/// topics is not prescribed; the one on the new message's topic moves ahead.)
#[test]
fn retained_messages_waiting_are_not_overtaken_on_their_topic() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.receive_maximum = 65535;
        c
    });
    h.connect("pub", V5, true);
    for t in ["a", "b", "c"] {
        let mut p = Publish::new(TopicName::new(t).unwrap(), "old");
        p.retain = true;
        p.qos_pid = QosPid::AtLeastOnce(PacketId::new(1).unwrap());
        h.send("pub", Packet::Publish(p));
    }
    let mut c = Connect::new(V5, MqttString::new("sub").unwrap());
    c.properties.receive_maximum = std::num::NonZeroU16::new(1);
    h.connect_with("sub", c);
    h.subscribe("sub", 1, &[("#", QoS::AtLeastOnce)]);
    h.transcript();
    // Receive Maximum 1: "a" is in flight, "b" and "c" wait. A new "c" arrives.
    h.publish("pub", "c", "new", QoS::AtLeastOnce, 2);
    for _ in 0..4 {
        let p = h.recv_publish("sub").unwrap();
        h.send(
            "sub",
            Packet::PubAck(PubResponse::new(p.qos_pid.packet_id().unwrap())),
        );
    }
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("sub <- PUBLISH"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            sub <- PUBLISH c q1 id=2 retain 'old'
            sub <- PUBLISH c q1 id=3 'new'
            sub <- PUBLISH b q1 id=4 retain 'old'
            "
        )
    );
}

/// A client that stops reading is closed after the write timeout: counted, evented, its
/// will published; its QoS 1 messages stay in its session and arrive when it reconnects
/// ([MQTT-4.4.0-1]). Other clients are not disturbed.
#[test]
fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.write_timeout = Duration::from_secs(10);
        c.pause_publishers_at = usize::MAX;
        c
    });
    let mut c = Connect::new(V5, MqttString::new("stuck").unwrap());
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    c.will = Some(Will {
        topic: TopicName::new("wills").unwrap(),
        payload: "gone".into(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    h.connect_with("stuck", c);
    h.subscribe("stuck", 1, &[("t", QoS::AtLeastOnce)]);
    h.connect("watch", V5, true);
    h.subscribe("watch", 1, &[("wills", QoS::AtMostOnce)]);
    h.connect("pub", V5, true);
    h.stop_reading("stuck");
    for i in 1..=5u16 {
        h.publish("pub", "t", &i.to_string(), QoS::AtLeastOnce, i);
    }
    h.take_events();
    h.transcript();
    h.advance(Duration::from_secs(9));
    assert!(h.is_open("stuck"));
    h.advance(Duration::from_secs(2));
    assert!(!h.is_open("stuck"));
    assert_eq!(h.broker.limit_count(Limit::WriteTimeout), 1);
    assert_eq!(
        h.transcript(),
        lines(
            "
            stuck <- [closed]
            watch <- PUBLISH wills q0 'gone'
            "
        )
    );
    assert_eq!(h.broker.queued("stuck"), Some((5, 0)));
    let mut c = Connect::new(V5, MqttString::new("stuck").unwrap());
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    h.connect_with("stuck", c);
    h.recv("stuck");
    let got: Vec<(String, bool)> = std::iter::from_fn(|| h.recv_publish("stuck"))
        .map(|p| (String::from_utf8_lossy(&p.payload).into_owned(), p.dup))
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[0],
        ("1".to_string(), true),
        "sent before: DUP [MQTT-3.3.1-1]"
    );
}

/// A client that reads but never acknowledges fills its Receive Maximum: it pauses its
/// publishers only until the write timeout, then stops slowing anyone down, and its
/// queue limit applies.
#[test]
fn a_client_that_never_acknowledges_stops_braking_after_the_write_timeout() {
    let mut h = small({
        let mut c = BrokerConfig::default();
        c.write_timeout = Duration::from_secs(10);
        c.pause_publishers_at = 3;
        c.max_queued_messages = 100;
        c
    });
    let mut c = Connect::new(V5, MqttString::new("lazy").unwrap());
    c.properties.receive_maximum = std::num::NonZeroU16::new(1);
    h.connect_with("lazy", c);
    h.subscribe("lazy", 1, &[("t", QoS::AtLeastOnce)]);
    h.connect("pub", V5, true);
    for i in 1..=10u16 {
        h.publish("pub", "t", &i.to_string(), QoS::AtLeastOnce, i);
    }
    assert!(h.is_paused("pub"));
    h.advance(Duration::from_secs(11));
    assert!(!h.is_paused("pub"));
    assert!(h.is_open("lazy"), "it reads: it is not closed");
    // The held PUBLISH packets were handled, and further ones are not paused for it.
    h.publish("pub", "t", "more", QoS::AtLeastOnce, 11);
    assert!(!h.is_paused("pub"));
    let acks = h
        .transcript()
        .iter()
        .filter(|l| l.starts_with("pub <- PUBACK"))
        .count();
    assert_eq!(acks, 11);
    assert_eq!(h.broker.queued("lazy"), Some((11, 0)));
}
