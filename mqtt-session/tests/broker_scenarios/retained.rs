//! Retained messages: stored, replaced, deleted, sent on subscribe per Retain Handling.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::BrokerConfig;

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn retain(h: &mut Harness, name: &str, topic: &str, payload: &str, qos: QoS) {
    let mut p = Publish::new(
        TopicName::new(topic.to_string()).unwrap(),
        payload.to_string(),
    );
    p.qos_pid = QosPid::new(qos, PacketId::new(9)).unwrap();
    p.retain = true;
    h.send(name, Packet::Publish(p));
}

fn sub(h: &mut Harness, name: &str, id: u16, filter: &str, qos: QoS, rh: RetainHandling) {
    let o = SubscriptionOptions {
        retain_handling: rh,
        ..SubscriptionOptions::qos(qos)
    };
    let s = Subscribe::new(
        pid(id),
        vec![(TopicFilter::new(filter.to_string()).unwrap(), o)],
    );
    h.send(name, Packet::Subscribe(s));
}

/// [MQTT-3.3.1-5] a retained message replaces the topic's previous one; [MQTT-3.3.1-6],
/// [MQTT-3.3.1-7] an empty retained payload deletes it and is not stored; [MQTT-3.3.1-8] a
/// non-retained message leaves the store alone; 3.1.1 [MQTT-3.3.1-6], [MQTT-3.3.1-8]: a new
/// subscription gets the retained message with RETAIN set. The publisher speaks 3.1.1:
/// 3.1.1 [MQTT-3.3.1-5], [MQTT-3.3.1-7], [MQTT-3.3.1-10], [MQTT-3.3.1-11], [MQTT-3.3.1-12].
#[test]
fn retained_messages_are_stored_replaced_and_deleted() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    retain(&mut h, "p", "a", "1", QoS::AtMostOnce);
    retain(&mut h, "p", "a", "2", QoS::AtMostOnce);
    h.publish("p", "a", "not retained", QoS::AtMostOnce, 0);
    retain(&mut h, "p", "b", "3", QoS::AtMostOnce);
    retain(&mut h, "p", "b", "", QoS::AtMostOnce);
    h.connect("s", V311, true);
    h.transcript();
    h.subscribe("s", 1, &[("+", QoS::AtMostOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 +:0
            s <- SUBACK 1 0x00
            s <- PUBLISH a q0 retain '2'
            "
        )
    );
    assert_eq!(h.broker.retained_count(), 1);
}

/// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11], [MQTT-3.8.4-4]: Retain Handling 0 sends
/// retained messages on every subscribe, 1 only when the subscription is new, 2 never.
#[test]
fn retain_handling_0_1_2() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    retain(&mut h, "p", "t", "r", QoS::AtMostOnce);
    h.connect("s", V5, true);
    h.transcript();
    sub(
        &mut h,
        "s",
        1,
        "t",
        QoS::AtMostOnce,
        RetainHandling::SendAtSubscribe,
    );
    sub(
        &mut h,
        "s",
        2,
        "t",
        QoS::AtMostOnce,
        RetainHandling::SendAtSubscribe,
    );
    sub(
        &mut h,
        "s",
        3,
        "t",
        QoS::AtMostOnce,
        RetainHandling::SendAtSubscribeIfNew,
    );
    sub(
        &mut h,
        "s",
        4,
        "+",
        QoS::AtMostOnce,
        RetainHandling::SendAtSubscribeIfNew,
    );
    sub(
        &mut h,
        "s",
        5,
        "#",
        QoS::AtMostOnce,
        RetainHandling::DoNotSend,
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 t:0
            s <- SUBACK 1 0x00
            s <- PUBLISH t q0 retain 'r'
            s -> SUBSCRIBE 2 t:0
            s <- SUBACK 2 0x00
            s <- PUBLISH t q0 retain 'r'
            s -> SUBSCRIBE 3 t:0
            s <- SUBACK 3 0x00
            s -> SUBSCRIBE 4 +:0
            s <- SUBACK 4 0x00
            s <- PUBLISH t q0 retain 'r'
            s -> SUBSCRIBE 5 #:0
            s <- SUBACK 5 0x00
            "
        )
    );
}

/// Retained messages go out at the lower of their QoS and the subscription's
/// ([MQTT-3.8.4-8]), matched by wildcards but not `$` topics by a leading wildcard
/// ([MQTT-4.7.2-1]), and not to shared subscriptions (section 4.8.2).
#[test]
fn retained_messages_match_wildcards_and_keep_their_qos() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    retain(&mut h, "p", "s/1", "q2", QoS::ExactlyOnce);
    h.send("p", Packet::PubRel(PubResponse::new(pid(9))));
    retain(&mut h, "p", "s/2", "q1", QoS::AtLeastOnce);
    retain(&mut h, "p", "$SYS/x", "sys", QoS::AtMostOnce);
    h.connect("s", V5, true);
    h.transcript();
    h.subscribe("s", 1, &[("#", QoS::AtLeastOnce)]);
    h.subscribe("s", 2, &[("$share/g/s/+", QoS::AtLeastOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 #:1
            s <- SUBACK 1 0x01
            s <- PUBLISH s/1 q1 id=1 retain 'q2'
            s <- PUBLISH s/2 q1 id=2 retain 'q1'
            s -> SUBSCRIBE 2 $share/g/s/+:1
            s <- SUBACK 2 0x01
            "
        )
    );
}

/// [MQTT-3.3.2-5], [MQTT-3.3.2-6]: a retained message's Message Expiry Interval counts down,
/// and once it has run out the message is no longer sent.
#[test]
fn retained_messages_expire() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    let mut p = Publish::new(TopicName::from_static("t"), "soon gone");
    p.retain = true;
    p.properties.message_expiry_interval = Some(10);
    h.send("p", Packet::Publish(p));
    h.connect("s", V5, true);
    h.advance(Duration::from_secs(4));
    h.transcript();
    h.subscribe("s", 1, &[("t", QoS::AtMostOnce)]);
    h.advance(Duration::from_secs(6));
    h.subscribe("s", 2, &[("t", QoS::AtMostOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> SUBSCRIBE 1 t:0
            s <- SUBACK 1 0x00
            s <- PUBLISH t q0 retain expiry=6 'soon gone'
            s -> SUBSCRIBE 2 t:0
            s <- SUBACK 2 0x00
            "
        )
    );
    assert_eq!(h.broker.retained_count(), 0);
}

/// The broker's own messages (`Broker::publish_own`, the `$SYS` topics): a topic starting
/// with `$` reaches `$SYS/#` but not `#` or `+/...` ([MQTT-4.7.2-1]); retained, it goes to a
/// later subscriber, and no store operation is emitted for it (a restart starts without it).
#[test]
fn the_brokers_own_messages() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("sys", V5, true);
    h.connect("all", V5, true);
    h.subscribe("sys", 1, &[("$SYS/#", QoS::AtLeastOnce)]);
    h.subscribe(
        "all",
        1,
        &[("#", QoS::AtMostOnce), ("+/broker/uptime", QoS::AtMostOnce)],
    );
    h.transcript();
    let persisted = h.persisted.len();
    let mut p = Publish::new(TopicName::new("$SYS/broker/uptime").unwrap(), "12 seconds");
    p.retain = true;
    let now = h.now;
    assert_eq!(h.broker.publish_own(now, p, QoS::AtMostOnce), 1);
    h.drain();
    assert_eq!(
        h.transcript(),
        lines("sys <- PUBLISH $SYS/broker/uptime q0 '12 seconds'")
    );
    h.connect("late", V5, true);
    h.transcript();
    h.subscribe("late", 1, &[("$SYS/broker/+", QoS::AtMostOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            late -> SUBSCRIBE 1 $SYS/broker/+:0
            late <- SUBACK 1 0x00
            late <- PUBLISH $SYS/broker/uptime q0 retain '12 seconds'
            "
        )
    );
    assert_eq!(h.persisted.len(), persisted, "nothing of it is stored");
}
