//! Wills: when they are published, their delay, and what cancels them.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent};

use crate::common::{Harness, lines};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn with_will(
    version: ProtocolVersion,
    id: &'static str,
    delay: Option<u32>,
    expiry: u32,
) -> Connect {
    let mut c = Connect::new(version, MqttString::from_static(id));
    c.keep_alive = 0;
    c.clean_start = !version.is_v5() && expiry == 0;
    if version.is_v5() {
        c.properties.session_expiry_interval = Some(expiry);
    }
    let mut w = Will {
        topic: TopicName::from_static("wills"),
        payload: Bytes::from_static(id.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties::default(),
    };
    w.properties.will_delay_interval = delay;
    c.will = Some(w);
    c
}

fn watcher(h: &mut Harness) {
    h.connect("w", V5, true);
    h.subscribe("w", 1, &[("wills", QoS::AtLeastOnce)]);
}

fn received(h: &mut Harness) -> Vec<String> {
    h.transcript()
        .into_iter()
        .filter(|l| l.starts_with("w <- PUBLISH"))
        .collect()
}

/// [MQTT-3.1.2-8] a connection lost without DISCONNECT publishes the will;
/// [MQTT-3.14.4-3] a DISCONNECT 0x00 deletes it; a DISCONNECT 0x04 Disconnect with Will
/// Message publishes it. An older client's DISCONNECT always deletes it:
/// 3.1.1 [MQTT-3.14.4-3].
#[test]
fn wills_on_abnormal_close_and_0x04_not_on_normal_disconnect() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    h.connect_with("lost", with_will(V5, "lost", None, 0));
    h.connect_with("lost3", with_will(V311, "lost3", None, 0));
    h.connect_with("bye", with_will(V5, "bye", None, 0));
    h.connect_with("bye3", with_will(V311, "bye3", None, 0));
    h.connect_with("ask", with_will(V5, "ask", None, 0));
    h.transcript();
    h.sever("lost");
    h.sever("lost3");
    h.send(
        "bye",
        Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
    );
    h.send("bye3", Packet::Disconnect(Disconnect::default()));
    h.send(
        "ask",
        Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL)),
    );
    assert_eq!(
        received(&mut h),
        lines(
            "
            w <- PUBLISH wills q1 id=1 'lost'
            w <- PUBLISH wills q1 id=2 'lost3'
            w <- PUBLISH wills q1 id=3 'ask'
            "
        )
    );
    assert_eq!(
        h.broker.session_count(),
        1,
        "only the watcher's session is left"
    );
}

/// [MQTT-3.1.2-8], [MQTT-3.1.3-9]: with a Will Delay Interval the will waits; a new
/// connection resuming the session before then cancels it. [MQTT-3.1.2-10]: a will is
/// published once and then gone.
#[test]
fn will_delay_and_its_cancellation_by_reconnecting() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    h.connect_with("late", with_will(V5, "late", Some(10), 600));
    h.connect_with("back", with_will(V5, "back", Some(10), 600));
    h.sever("late");
    h.sever("back");
    h.advance(Duration::from_secs(9));
    assert_eq!(received(&mut h), Vec::<String>::new());
    let mut c = with_will(V5, "back", None, 600);
    c.will = None;
    h.connect_with("back", c);
    h.advance(Duration::from_secs(1));
    assert_eq!(received(&mut h), lines("w <- PUBLISH wills q1 id=1 'late'"));
    h.advance(Duration::from_secs(600));
    assert_eq!(received(&mut h), Vec::<String>::new());
}

/// [MQTT-3.1.2-8]: the will goes at the earlier of its delay and the end of the session;
/// a session ending with its connection (expiry 0) publishes it at once.
#[test]
fn will_fires_at_the_earlier_of_delay_and_session_expiry() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    h.connect_with("short", with_will(V5, "short", Some(100), 5));
    h.connect_with("none", with_will(V5, "none", Some(100), 0));
    h.sever("short");
    h.sever("none");
    assert_eq!(received(&mut h), lines("w <- PUBLISH wills q1 id=1 'none'"));
    h.advance(Duration::from_secs(5));
    assert_eq!(
        received(&mut h),
        lines("w <- PUBLISH wills q1 id=2 'short'")
    );
    assert!(!h.broker.has_session("short"));
}

/// [MQTT-3.1.2-8], [MQTT-3.1.3-9]: a new connection for the client identifier before the
/// Will Delay ran out means the will is not sent, also when it comes with Clean Start 1 and
/// the old session ends (mosquitto and the Eclipse reference broker read it so): not at the
/// reconnect, nor later.
#[test]
fn a_clean_start_reconnect_within_the_will_delay_discards_the_will() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    h.connect_with("c", with_will(V5, "c", Some(100), 5));
    h.sever("c");
    h.advance(Duration::from_secs(1));
    h.transcript();
    h.connect_v5_session("c", true, 600);
    assert_eq!(received(&mut h), Vec::<String>::new());
    h.advance(Duration::from_secs(10));
    assert_eq!(received(&mut h), Vec::<String>::new());
}

/// [MQTT-3.1.2-14], [MQTT-3.1.2-15]: Will Retain decides whether the will is retained; the
/// will's QoS and properties are those of the published message.
#[test]
fn will_retain_qos_and_properties() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = with_will(V5, "dev", None, 0);
    if let Some(w) = &mut c.will {
        w.retain = true;
        w.qos = QoS::ExactlyOnce;
        w.properties.content_type = Some(MqttString::from_static("text/plain"));
        w.properties.user_properties =
            vec![(MqttString::from_static("k"), MqttString::from_static("v"))].into();
    }
    h.connect_with("dev", c);
    h.sever("dev");
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, BrokerEvent::WillPublished { .. }))
    );
    h.connect("late", V5, true);
    h.subscribe("late", 1, &[("wills", QoS::ExactlyOnce)]);
    let p = h.recv_publish("late").expect("retained will");
    assert!(p.retain);
    assert_eq!(p.qos(), QoS::ExactlyOnce);
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.properties.user_properties.len(), 1);
}

/// [MQTT-3.1.2-22]: a client silent for one and a half times its keep-alive is
/// disconnected (v5: 0x8D Keep Alive timeout) as if the network failed, so its will is
/// published; any packet, PINGREQ among them ([MQTT-3.12.4-1]), keeps it alive.
#[test]
fn keep_alive_expiry_closes_and_publishes_the_will() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    let mut c = with_will(V5, "k", None, 0);
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
            k <- DISCONNECT 0x8D
            k <- [closed]
            w <- PUBLISH wills q1 id=1 'k'
            "
        )
    );
}

/// [MQTT-3.2.2-21], [MQTT-3.2.2-22]: a Server Keep Alive replaces the client's keep-alive
/// for v5 clients; 3.1.1 clients keep theirs.
#[test]
fn server_keep_alive_replaces_the_clients() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.server_keep_alive = Some(4);
        c
    });
    let mut c = Connect::new(V5, MqttString::from_static("a"));
    c.keep_alive = 600;
    h.connect_with("a", c);
    let mut c = Connect::new(V311, MqttString::from_static("b"));
    c.keep_alive = 8;
    h.connect_with("b", c);
    h.transcript();
    h.advance(Duration::from_secs(6));
    h.advance(Duration::from_secs(6));
    assert_eq!(
        h.transcript(),
        lines(
            "
            a <- DISCONNECT 0x8D
            a <- [closed]
            b <- [closed]
            "
        )
    );
}

/// [MQTT-3.1.4-3] with [MQTT-3.1.2-8] and [MQTT-3.1.3-9]: a connection taken over ends as if
/// lost; a will without delay is published, one with a delay is cancelled by the new
/// connection resuming the session.
#[test]
fn wills_on_session_takeover() {
    let mut h = Harness::new(BrokerConfig::default());
    watcher(&mut h);
    h.connect_with("now", with_will(V5, "now", None, 600));
    h.connect_with("later", with_will(V5, "later", Some(30), 600));
    h.transcript();
    h.connect_v5_session("now", false, 600);
    h.connect_v5_session("later", false, 600);
    h.advance(Duration::from_secs(60));
    assert_eq!(received(&mut h), lines("w <- PUBLISH wills q1 id=1 'now'"));
}

/// The race of a client that sends DISCONNECT 0x00 and reconnects at once, as the two
/// deterministic interleavings of the core, under both versions. With the driver asked
/// (`ConnectPolicy::AskDriver`), the new CONNECT waits for its decision meanwhile:
/// - the old connection's DISCONNECT handled before the decision (what a driver ensures by
///   letting the old connection, `Hub::connection_of`, hand over what it has received
///   first): the will is deleted ([MQTT-3.14.4-3], 3.1.1 [MQTT-3.1.2-10]), and the new
///   connection takes a session nobody holds;
/// - the decision first, the DISCONNECT still unread: the new connection takes over a live
///   one ([MQTT-3.1.4-3]), which ends without DISCONNECT, so its will is published
///   ([MQTT-3.1.2-8]).
#[test]
fn a_reconnect_race_publishes_the_will_only_when_the_takeover_comes_first() {
    use mqtt_session::broker::ConnectPolicy;
    for version in [V5, V311] {
        for disconnect_first in [true, false] {
            let mut config = BrokerConfig::default();
            config.connect_policy = ConnectPolicy::AskDriver;
            let mut h = Harness::new(config);
            let now = h.now;
            let w = h.connect("w", V5, true);
            h.broker.accept(now, w, None).unwrap();
            h.drain();
            h.subscribe("w", 1, &[("wills", QoS::AtLeastOnce)]);
            let old = h.connect_with("old", with_will(version, "racer", None, 0));
            h.broker.accept(now, old, None).unwrap();
            h.drain();
            h.transcript();

            let new = h.connect_with("new", with_will(version, "racer", None, 0));
            if disconnect_first {
                h.send(
                    "old",
                    Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)),
                );
                assert_eq!(h.broker.hub().connection_of("racer"), None);
            } else {
                assert_eq!(h.broker.hub().connection_of("racer"), Some(old));
            }
            h.broker.accept(now, new, None).unwrap();
            h.drain();
            // (Taken over, the old connection is closed: a DISCONNECT it still had unread
            // is lost with it.)
            let wills = received(&mut h);
            let expected = if disconnect_first {
                Vec::new()
            } else {
                lines("w <- PUBLISH wills q1 id=1 'racer'")
            };
            assert_eq!(
                wills, expected,
                "{version:?}, DISCONNECT first: {disconnect_first}"
            );
            assert!(!h.is_open("old") && h.is_open("new"));
        }
    }
}
