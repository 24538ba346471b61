//! CONNECT: versions, client identifiers, takeover, Clean Start, CONNACK properties.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{BrokerConfig, BrokerEvent};

use crate::common::{Harness, lines};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// [MQTT-3.1.4-5], [MQTT-3.2.0-1]: each CONNECT is answered first with a CONNACK 0x00;
/// clients of every version then exchange messages; 3.1.1 [MQTT-3.1.4-4], [MQTT-3.2.0-1].
#[test]
fn v5_v311_and_v31_clients_share_one_broker() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("five", V5, true);
    h.connect("three", V311, true);
    h.connect("old", ProtocolVersion::V3_1, true);
    h.subscribe("five", 1, &[("t/#", QoS::AtLeastOnce)]);
    h.subscribe("old", 1, &[("t/+", QoS::AtMostOnce)]);
    h.publish("three", "t/1", "hi", QoS::AtLeastOnce, 7);
    assert_eq!(
        h.transcript(),
        lines(
            "
            five -> CONNECT 5.0 id=five clean=1
            five <- CONNACK 0x00 sp=0
            three -> CONNECT 3.1.1 id=three clean=1
            three <- CONNACK 0x00 sp=0
            old -> CONNECT 3.1 id=old clean=1
            old <- CONNACK 0x00 sp=0
            five -> SUBSCRIBE 1 t/#:1
            five <- SUBACK 1 0x01
            old -> SUBSCRIBE 1 t/+:0
            old <- SUBACK 1 0x00
            three -> PUBLISH t/1 q1 id=7 'hi'
            five <- PUBLISH t/1 q1 id=1 'hi'
            old <- PUBLISH t/1 q0 'hi'
            three <- PUBACK 7
            "
        )
    );
}

/// [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 0x84 (3.1.1: return code 1)
/// and the connection closes.
#[test]
fn unsupported_protocol_levels_are_refused_in_a_connack_the_client_can_read() {
    let mut h = Harness::new(BrokerConfig::default());
    h.open("future", V5);
    // CONNECT "MQTT" level 6.
    h.send_raw(
        "future",
        &[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0],
    );
    h.open("past", V311);
    // CONNECT "MQTT" level 2: answered as 3.1.1 with return code 1.
    h.send_raw(
        "past",
        &[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 2, 2, 0, 60, 0, 0],
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            future -> bytes 100c00044d5154540602003c0000
            future <- CONNACK 0x84 sp=0
            future <- [closed]
            past -> bytes 100c00044d5154540202003c0000
            past <- CONNACK 0x84 sp=0
            past <- [closed]
            "
        )
    );
}

/// [MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16]: an empty client id gets a unique
/// assigned one, told to a v5 client in the CONNACK.
#[test]
fn empty_client_id_gets_an_assigned_one() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_with("a", Connect::new(V5, MqttString::empty()));
    h.connect_with("b", Connect::new(V5, MqttString::empty()));
    h.connect_with("c", Connect::new(V311, MqttString::empty()));
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id= clean=1
            a <- CONNACK 0x00 sp=0 assigned=auto-1
            b -> CONNECT 5.0 id= clean=1
            b <- CONNACK 0x00 sp=0 assigned=auto-2
            c -> CONNECT 3.1.1 id= clean=1
            c <- CONNACK 0x00 sp=0
            "
        )
    );
    assert_eq!(h.broker.session_count(), 3);
}

/// [MQTT-3.2.2-12], [MQTT-3.2.2-13]: a will the broker cannot honour (QoS above its Maximum
/// QoS, or retained when it has no retained messages) refuses the connection with 0x9B or
/// 0x9A.
#[test]
fn wills_beyond_the_brokers_limits_are_refused() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.maximum_qos = QoS::AtLeastOnce;
        c.retain_available = false;
        c
    });
    for (name, qos, retain) in [("q", QoS::ExactlyOnce, false), ("r", QoS::AtMostOnce, true)] {
        let mut c = Connect::new(V5, MqttString::new(name).unwrap());
        c.will = Some(Will {
            topic: TopicName::from_static("w"),
            payload: Bytes::from_static(b"x"),
            qos,
            retain,
            properties: WillProperties::default(),
        });
        h.connect_with(name, c);
    }
    assert_eq!(
        h.transcript(),
        lines(
            "
            q -> CONNECT 5.0 id=q clean=1 will=w
            q <- CONNACK 0x9B sp=0 max_qos=1 retain=0 reason='[MQTT-3.2.2-12] Will QoS above the Maximum QoS'
            q <- [closed]
            r -> CONNECT 5.0 id=r clean=1 will=w
            r <- CONNACK 0x9A sp=0 max_qos=1 retain=0 reason='[MQTT-3.2.2-13] Will Retain without Retain Available'
            r <- [closed]
            "
        )
    );
}

/// An empty client id with Clean Session 0 is refused with return code 2 (0x85) and the
/// connection closed: 3.1.1 [MQTT-3.1.3-8], [MQTT-3.1.3-9], [MQTT-3.2.2-5]. MQTT 3.1
/// allows 1 to 23 characters only.
#[test]
fn empty_client_id_without_clean_session_is_refused_under_311() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(V311, MqttString::empty());
    c.clean_start = false;
    h.connect_with("a", c);
    h.connect_with(
        "b",
        Connect::new(
            ProtocolVersion::V3_1,
            MqttString::from_static("a-client-id-of-24-chars!"),
        ),
    );
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 3.1.1 id= clean=0
            a <- CONNACK 0x85 sp=0
            a <- [closed]
            b -> CONNECT 3.1 id=a-client-id-of-24-chars! clean=1
            b <- CONNACK 0x85 sp=0
            b <- [closed]
            "
        )
    );
    assert_eq!(h.broker.session_count(), 0);
}

/// MQTT 3.1 has no Session Present: its CONNACK's first byte is reserved (section 3.2 of
/// the 3.1 specification), so a resumed 3.1 session is not announced, where a 3.1.1 one is
/// (3.1.1 [MQTT-3.2.2-2]).
#[test]
fn a_3_1_connack_never_sets_the_reserved_flags() {
    let mut h = Harness::new(BrokerConfig::default());
    for (name, version) in [("old", ProtocolVersion::V3_1), ("new", V311)] {
        h.connect(name, version, false);
        h.sever(name);
        h.connect(name, version, false);
    }
    let acks: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains("CONNACK"))
        .collect();
    assert_eq!(
        acks,
        lines(
            "
            old <- CONNACK 0x00 sp=0
            old <- CONNACK 0x00 sp=0
            new <- CONNACK 0x00 sp=0
            new <- CONNACK 0x00 sp=1
            "
        )
    );
}

/// [MQTT-3.1.2-24], [MQTT-3.2.0-1]: a client whose Maximum Packet Size is too small for
/// the CONNACK gets no CONNACK and, since nothing may come before one, nothing at all: the
/// connection is closed, without a will.
#[test]
fn a_connack_too_large_for_the_client_closes_the_connection() {
    let mut h = Harness::new(BrokerConfig::default());
    let mut c = Connect::new(ProtocolVersion::V5, MqttString::from_static("tiny"));
    c.properties.maximum_packet_size = std::num::NonZeroU32::new(4);
    c.will = Some(Will {
        topic: TopicName::from_static("gone"),
        payload: Bytes::from_static(b"x"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    h.connect_with("tiny", c);
    assert_eq!(
        h.transcript(),
        lines(
            "
            tiny -> CONNECT 5.0 id=tiny clean=1 will=gone
            tiny <- [closed]
            "
        )
    );
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, mqtt_session::broker::BrokerEvent::WillPublished { .. }))
    );
}

/// [MQTT-3.1.4-3]: a second connection with the same client id takes the session over; a
/// v5 client being replaced gets DISCONNECT 0x8E Session taken over. 3.1.1 [MQTT-3.1.4-2]:
/// the old 3.1.1 connection is simply closed.
#[test]
fn a_second_connection_takes_the_session_over() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("x", V5, false);
    h.connect_v5_session("x2", false, 60);
    let mut c = Connect::new(V5, MqttString::from_static("x2"));
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    h.connect_with("x3", c);
    let mut c = Connect::new(V311, MqttString::from_static("x2"));
    c.clean_start = false;
    h.connect_with("x4", c);
    assert_eq!(
        h.transcript(),
        lines(
            "
            x -> CONNECT 5.0 id=x clean=0
            x <- CONNACK 0x00 sp=0
            x2 -> CONNECT 5.0 id=x2 clean=0 expiry=60
            x2 <- CONNACK 0x00 sp=0
            x3 -> CONNECT 5.0 id=x2 clean=0 expiry=60
            x2 <- DISCONNECT 0x8E
            x2 <- [closed]
            x3 <- CONNACK 0x00 sp=1
            x4 -> CONNECT 3.1.1 id=x2 clean=0
            x3 <- DISCONNECT 0x8E
            x3 <- [closed]
            x4 <- CONNACK 0x00 sp=1
            "
        )
    );
}

/// [MQTT-3.1.2-4], [MQTT-3.1.2-5], [MQTT-3.1.2-6], [MQTT-3.2.2-2], [MQTT-3.2.2-3],
/// [MQTT-3.1.4-4]: Clean Start 1 discards the session, 0 resumes it and says so in Session
/// Present.
#[test]
fn clean_start_and_session_present() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("a", false, 100);
    h.subscribe("a", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("a");
    h.connect_v5_session("a", false, 100);
    h.sever("a");
    h.connect_v5_session("a", true, 100);
    h.connect("p", V5, true);
    h.publish("p", "t", "lost", QoS::AtLeastOnce, 1);
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=0 expiry=100
            a <- CONNACK 0x00 sp=0
            a -> SUBSCRIBE 1 t:1
            a <- SUBACK 1 0x01
            a -- severed
            a -> CONNECT 5.0 id=a clean=0 expiry=100
            a <- CONNACK 0x00 sp=1
            a -- severed
            a -> CONNECT 5.0 id=a clean=1 expiry=100
            a <- CONNACK 0x00 sp=0
            p -> CONNECT 5.0 id=p clean=1
            p <- CONNACK 0x00 sp=0
            p -> PUBLISH t q1 id=1 'lost'
            p <- PUBACK 1 0x10
            "
        )
    );
}

/// [MQTT-3.1.2-23], [MQTT-4.1.0-2]: a session with its queued messages outlives the
/// connection for its Session Expiry Interval, then vanishes.
#[test]
fn session_expiry_keeps_the_session_then_discards_it() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 30);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.sever("s");
    h.connect("p", V311, true);
    h.publish("p", "t", "kept", QoS::AtLeastOnce, 1);
    h.advance(Duration::from_secs(29));
    assert!(h.broker.has_session("s"));
    assert_eq!(h.broker.queued("s"), Some((1, 0)));
    h.connect_v5_session("s", false, 30);
    h.send("s", Packet::PubAck(PubResponse::new(crate::common::pid(1))));
    h.sever("s");
    h.advance(Duration::from_secs(30));
    assert!(!h.broker.has_session("s"));
    h.connect_v5_session("s", false, 30);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=30
            s <- CONNACK 0x00 sp=0
            s -> SUBSCRIBE 1 t:1
            s <- SUBACK 1 0x01
            s -- severed
            p -> CONNECT 3.1.1 id=p clean=1
            p <- CONNACK 0x00 sp=0
            p -> PUBLISH t q1 id=1 'kept'
            p <- PUBACK 1
            s -> CONNECT 5.0 id=s clean=0 expiry=30
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=1 'kept'
            s -> PUBACK 1
            s -- severed
            s -> CONNECT 5.0 id=s clean=0 expiry=30
            s <- CONNACK 0x00 sp=0
            "
        )
    );
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, BrokerEvent::SessionEnded { .. }))
    );
}

/// [MQTT-3.2.2-9] and section 3.2.2.3: what the broker enforces is announced in the
/// CONNACK; the server's own Session Expiry Interval when it caps the client's, and Server
/// Keep Alive ([MQTT-3.2.2-21]).
#[test]
fn connack_announces_the_limits() {
    let config = {
        let mut c = BrokerConfig::default();
        c.receive_maximum = 10;
        c.maximum_qos = QoS::AtLeastOnce;
        c.retain_available = false;
        c.maximum_packet_size = 1024;
        c.topic_alias_maximum = 5;
        c.wildcard_subscription_available = false;
        c.shared_subscription_available = false;
        c.subscription_identifiers_available = false;
        c.server_keep_alive = Some(30);
        c.maximum_session_expiry = 3600;
        c
    };
    let mut h = Harness::new(config);
    h.connect_v5_session("a", true, 86_400);
    h.connect("b", V311, true);
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id=a clean=1 expiry=86400
            a <- CONNACK 0x00 sp=0 expiry=3600 receive_max=10 max_qos=1 retain=0 max_packet=1024 alias_max=5 keep_alive=30 wildcard=0 shared=0 sub_ids=0
            b -> CONNECT 3.1.1 id=b clean=1
            b <- CONNACK 0x00 sp=0
            "
        )
    );
}

/// A connection that never sends CONNECT is closed after the connect timeout.
#[test]
fn connections_without_connect_time_out() {
    let mut h = Harness::new(BrokerConfig::default());
    h.open("idle", V5);
    h.advance(Duration::from_secs(9));
    assert!(h.is_open("idle"));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.transcript(), lines("idle <- [closed]"));
    assert_eq!(h.broker.connection_count(), 0);
}

/// [MQTT-3.1.3-5]: client identifiers of 1 to 23 letters and digits are accepted, the
/// shortest and the longest included; the same for 3.1.1 clients: 3.1.1 [MQTT-3.1.3-5].
#[test]
fn client_ids_of_1_to_23_letters_and_digits_are_accepted() {
    let mut h = Harness::new(BrokerConfig::default());
    let (long, long3) = ("0123456789abcdefXYZ0123", "ABCDEFGHIJKLMNOPQRSTUVW");
    assert_eq!((long.len(), long3.len()), (23, 23));
    for (name, id, version) in [
        ("a", "a", V5),
        ("b", long, V5),
        ("c", "Z", V311),
        ("d", long3, V311),
    ] {
        let mut c = Connect::new(version, MqttString::new(id).unwrap());
        c.clean_start = false;
        h.connect_with(name, c);
    }
    let acks: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains(" <- "))
        .collect();
    assert_eq!(
        acks,
        lines(
            "
            a <- CONNACK 0x00 sp=0
            b <- CONNACK 0x00 sp=0
            c <- CONNACK 0x00 sp=0
            d <- CONNACK 0x00 sp=0
            "
        )
    );
    assert!(h.broker.has_session(long) && h.broker.has_session(long3));
}

/// [MQTT-3.14.2-2]: the DISCONNECTs the server sends (session taken over, keep-alive
/// timeout, a protocol violation, shutting down) never carry a Session Expiry Interval,
/// though each client set one.
#[test]
fn server_disconnects_carry_no_session_expiry_interval() {
    let mut h = Harness::new(BrokerConfig::default());
    for name in ["taken", "idle", "rude", "calm"] {
        let mut c = Connect::new(V5, MqttString::new(name).unwrap());
        c.properties.session_expiry_interval = Some(60);
        c.keep_alive = if name == "idle" { 1 } else { 0 };
        h.connect_with(name, c);
    }
    let mut c = Connect::new(V5, MqttString::from_static("taken"));
    c.properties.session_expiry_interval = Some(60);
    h.connect_with("taker", c);
    h.advance(Duration::from_secs(2));
    h.send("rude", Packet::PingResp);
    let now = h.now;
    h.broker.shutdown(now);
    h.drain();
    let mut disconnects = 0;
    for name in ["taken", "idle", "rude", "calm", "taker"] {
        while let Some(p) = h.recv(name) {
            if let Packet::Disconnect(d) = p {
                disconnects += 1;
                assert_eq!(d.properties.session_expiry_interval, None, "{name}: {d:?}");
            }
        }
    }
    assert_eq!(disconnects, 5);
}

/// [MQTT-3.1.3-8]: a broker that requires client identifiers refuses an empty one with
/// CONNACK 0x85 and closes the connection.
#[test]
fn a_broker_may_refuse_empty_client_ids() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.allow_empty_client_id = false;
        c
    });
    h.connect_with("a", Connect::new(V5, MqttString::empty()));
    assert_eq!(
        h.transcript(),
        lines(
            "
            a -> CONNECT 5.0 id= clean=1
            a <- CONNACK 0x85 sp=0 reason='a Client Identifier is required'
            a <- [closed]
            "
        )
    );
    assert_eq!(h.broker.session_count(), 0);
}

/// `max_keep_alive` (mosquitto's `max_keepalive`): a v5 client asking for a longer
/// keep-alive, or none, is given the maximum as Server Keep Alive ([MQTT-3.2.2-21]); one
/// within it keeps its own; a 3.1.1 client cannot be told, so it is refused with return code
/// 2 and closed.
#[test]
fn the_longest_keep_alive_is_bounded() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.max_keep_alive = Some(60);
        c
    });
    for (name, version, ka) in [
        ("none", ProtocolVersion::V5, 0),
        ("short", ProtocolVersion::V5, 30),
        ("long", ProtocolVersion::V5, 100),
        ("old", V311, 100),
        ("old-ok", V311, 60),
    ] {
        let mut c = Connect::new(version, MqttString::new(name.to_string()).unwrap());
        c.keep_alive = ka;
        h.connect_with(name, c);
    }
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains("<-"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            none <- CONNACK 0x00 sp=0 keep_alive=60
            short <- CONNACK 0x00 sp=0
            long <- CONNACK 0x00 sp=0 keep_alive=60
            old <- CONNACK 0x85 sp=0
            old <- [closed]
            old-ok <- CONNACK 0x00 sp=0
            "
        )
    );
}

/// Section 1.5.4: control characters SHOULD NOT be sent and a receiver MAY refuse them;
/// with `reject_control_characters` the broker does: in a client identifier (CONNACK 0x85),
/// a topic name (PUBACK 0x90) and a topic filter (SUBACK 0x8F). With `reason_strings` off
/// no refusal explains itself.
#[test]
fn control_characters_can_be_refused_and_reason_strings_turned_off() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.reject_control_characters = true;
        c.reason_strings = false;
        c
    });
    h.connect_with(
        "bell",
        Connect::new(
            ProtocolVersion::V5,
            MqttString::new("ring\u{7}".to_string()).unwrap(),
        ),
    );
    h.connect("c", ProtocolVersion::V5, true);
    h.publish("c", "tab\there", "x", QoS::AtLeastOnce, 1);
    h.subscribe(
        "c",
        2,
        &[
            ("esc\u{1b}/#", QoS::AtMostOnce),
            ("fine/#", QoS::AtMostOnce),
        ],
    );
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.contains("<-"))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            bell <- CONNACK 0x85 sp=0
            bell <- [closed]
            c <- CONNACK 0x00 sp=0
            c <- PUBACK 1 0x90
            c <- SUBACK 2 0x8F,0x00
            "
        )
    );
}

/// `client_id_policy`: `Portable` accepts only what every server must ([MQTT-3.1.3-5]: 1 to
/// 23 bytes of 0-9, a-z, A-Z), `Printable` refuses white space and control characters;
/// a refusal is CONNACK 0x85 (3.1.1: return code 2), and an empty identifier still gets
/// one assigned.
#[test]
fn a_client_identifier_policy_refuses_with_0x85() {
    use mqtt_session::broker::ClientIdPolicy;
    for (policy, accepted, refused) in [
        (ClientIdPolicy::Portable, "sensor42", "sensor-42"),
        (
            ClientIdPolicy::Portable,
            "a23charactersareallowed",
            "a24charactersarenotokay4",
        ),
        (ClientIdPolicy::Printable, "sensor-42/α", "sensor 42"),
    ] {
        let mut h = Harness::new({
            let mut c = BrokerConfig::default();
            c.client_id_policy = policy;
            c
        });
        for (name, version) in [("v5", ProtocolVersion::V5), ("v3", V311)] {
            let ok = Connect::new(version, MqttString::new(accepted.to_string()).unwrap());
            h.connect_with(&format!("{name}-ok"), ok);
            let no = Connect::new(version, MqttString::new(refused.to_string()).unwrap());
            h.connect_with(&format!("{name}-no"), no);
        }
        h.connect_with(
            "empty",
            Connect::new(ProtocolVersion::V5, MqttString::empty()),
        );
        let acks: Vec<String> = h
            .transcript()
            .into_iter()
            .filter(|l| l.contains("CONNACK"))
            .map(|l| {
                let l = l.split(" assigned=").next().unwrap_or_default();
                l.split(" reason=").next().unwrap_or_default().to_string()
            })
            .collect();
        assert_eq!(
            acks,
            lines(
                "
                v5-ok <- CONNACK 0x00 sp=0
                v5-no <- CONNACK 0x85 sp=0
                v3-ok <- CONNACK 0x00 sp=0
                v3-no <- CONNACK 0x85 sp=0
                empty <- CONNACK 0x00 sp=0
                "
            ),
            "{policy:?}"
        );
    }
}
