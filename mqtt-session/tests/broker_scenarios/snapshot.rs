//! Durable state: the Persist actions describe every change, and a broker restored from
//! them carries on.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{Broker, BrokerConfig, BrokerSnapshot};
use mqtt_session::store::OutgoingState;

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// What a store can know: every stored PUBLISH may have been sent; where identifier
/// allocation resumes is the store's guess.
pub(crate) fn normalized(mut s: BrokerSnapshot) -> BrokerSnapshot {
    for session in s.sessions.values_mut() {
        session.state.next_packet_id = 0;
        for e in &mut session.state.outgoing {
            if let OutgoingState::Publish { .. } = e.state {
                e.sent = true;
            }
            e.on_wire = false;
        }
    }
    s
}

/// A busy story: sessions come and go, subscribe, receive at every QoS, retain, leave wills.
pub(crate) fn story(h: &mut Harness) {
    let mut c = Connect::new(V5, MqttString::from_static("dev"));
    c.clean_start = false;
    c.keep_alive = 0;
    c.properties.session_expiry_interval = Some(3600);
    let mut w = Will {
        topic: TopicName::from_static("status/dev"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    };
    w.properties.will_delay_interval = Some(30);
    c.will = Some(w);
    h.connect_with("dev", c);
    h.subscribe(
        "dev",
        1,
        &[
            ("cmd/#", QoS::ExactlyOnce),
            ("$share/g/jobs", QoS::AtLeastOnce),
        ],
    );
    h.connect("gone", V311, false);
    h.subscribe("gone", 1, &[("cmd/x", QoS::AtLeastOnce)]);
    h.send(
        "gone",
        Packet::Unsubscribe(Unsubscribe::new(
            pid(2),
            vec![TopicFilter::from_static("cmd/x")],
        )),
    );
    h.subscribe("gone", 3, &[("cmd/y", QoS::AtLeastOnce)]);
    h.connect("op", V311, true);
    let mut r = Publish::new(TopicName::from_static("cfg/a"), "1");
    r.retain = true;
    r.qos_pid = QosPid::AtLeastOnce(pid(1));
    h.send("op", Packet::Publish(r));
    h.publish("op", "cmd/a", "one", QoS::ExactlyOnce, 2);
    h.publish("op", "cmd/b", "two", QoS::AtLeastOnce, 3);
    h.publish("op", "jobs", "j", QoS::AtLeastOnce, 4);
    h.send("dev", Packet::PubRec(PubResponse::new(pid(1))));
    h.send("dev", Packet::PubAck(PubResponse::new(pid(2))));
    // dev publishes QoS 2 and does not release it yet.
    h.publish("dev", "up", "u", QoS::ExactlyOnce, 77);
    h.connect("tmp", V5, true);
    h.subscribe("tmp", 1, &[("cmd/#", QoS::AtLeastOnce)]);
    h.sever("dev");
    h.publish("op", "cmd/c", "three", QoS::AtLeastOnce, 5);
    h.publish("op", "cmd/y", "why", QoS::AtLeastOnce, 6);
}

/// The Persist actions, applied in order, hold exactly the broker's durable state: the
/// write-ahead contract of the store. [MQTT-3.1.2-7]: the will is stored with the session.
#[test]
fn persist_actions_describe_every_change() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let from_ops = normalized(h.store.snapshot());
    let direct = normalized(h.broker.snapshot());
    assert_eq!(from_ops, direct);
    assert_eq!(
        direct.sessions.len(),
        2,
        "dev and gone; op and tmp end with their connection"
    );
    let dev = &direct.sessions[&MqttString::from_static("dev")];
    assert_eq!(dev.subscriptions.len(), 2);
    assert_eq!(dev.state.incoming_qos2, [pid(77)]);
    assert!(dev.will.is_some());
    assert_eq!(dev.state.outgoing.len(), 4, "PUBREL 1, PUBLISH 3, 4 and 5");
    assert_eq!(direct.retained.len(), 1);
}

/// A broker restored from the store resumes the sessions: queued and in-flight messages go
/// out (PUBREL, then PUBLISH with DUP), an unreleased inbound QoS 2 message is not delivered
/// twice, retained messages are there, and a stored will is published after its delay
/// counted from the restart unless its client comes back.
#[test]
fn a_restored_broker_resumes_every_session() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let snapshot = h.store.snapshot();
    let now = h.now + Duration::from_secs(5);
    let broker = Broker::restore(BrokerConfig::default(), snapshot, now).unwrap();
    let mut h = Harness::with_broker(broker, now);
    h.connect("watch", V5, true);
    h.subscribe("watch", 1, &[("status/#", QoS::AtLeastOnce)]);
    h.connect("gone", V311, false);
    h.connect_v5_session("dev", false, 3600);
    let mut dup = Publish::new(TopicName::from_static("up"), "u");
    dup.qos_pid = QosPid::ExactlyOnce(pid(77));
    dup.dup = true;
    h.send("dev", Packet::Publish(dup));
    h.subscribe("dev", 9, &[("cfg/#", QoS::AtMostOnce)]);
    assert_eq!(
        h.transcript(),
        lines(
            "
            watch -> CONNECT 5.0 id=watch clean=1
            watch <- CONNACK 0x00 sp=0
            watch -> SUBSCRIBE 1 status/#:1
            watch <- SUBACK 1 0x01
            gone -> CONNECT 3.1.1 id=gone clean=0
            gone <- CONNACK 0x00 sp=1
            gone <- PUBLISH cmd/y q1 id=1 dup 'why'
            dev -> CONNECT 5.0 id=dev clean=0 expiry=3600
            dev <- CONNACK 0x00 sp=1
            dev <- PUBREL 1
            dev <- PUBLISH jobs q1 id=3 dup 'j'
            dev <- PUBLISH cmd/c q1 id=4 dup 'three'
            dev <- PUBLISH cmd/y q1 id=5 dup 'why'
            dev -> PUBLISH up q2 id=77 dup 'u'
            dev <- PUBREC 77
            dev -> SUBSCRIBE 9 cfg/#:0
            dev <- SUBACK 9 0x00
            dev <- PUBLISH cfg/a q0 retain '1'
            "
        )
    );
}

/// A stored will whose client does not come back is published after its delay, counted
/// from the restart.
#[test]
fn a_stored_will_fires_after_restore() {
    let mut h = Harness::new(BrokerConfig::default());
    story(&mut h);
    let now = h.now;
    let broker = Broker::restore(BrokerConfig::default(), h.store.snapshot(), now).unwrap();
    let mut h = Harness::with_broker(broker, now);
    h.connect("watch", V5, true);
    h.subscribe("watch", 1, &[("status/#", QoS::AtLeastOnce)]);
    h.transcript();
    h.advance(Duration::from_secs(29));
    assert_eq!(h.transcript(), Vec::<String>::new());
    h.advance(Duration::from_secs(1));
    // Retained (Will Retain), but forwarded to an established subscription without RETAIN
    // ([MQTT-3.3.1-12]); a new subscriber sees it retained.
    assert_eq!(
        h.transcript(),
        lines("watch <- PUBLISH status/dev q1 id=1 'offline'")
    );
    h.connect("late", V5, true);
    h.subscribe("late", 1, &[("status/dev", QoS::AtMostOnce)]);
    assert!(h.recv_publish("late").is_some_and(|p| p.retain));
}
