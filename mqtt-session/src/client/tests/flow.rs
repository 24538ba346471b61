//! Flow control (Receive Maximum, the bounded queue), Maximum Packet Size and topic
//! aliases.

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::{
    Disconnect, MqttString, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
    TopicName,
};

use super::*;
use crate::client::{Message, PublishError};

/// [MQTT-3.3.4-7], [MQTT-4.9.0-2]: no more than the server's Receive Maximum QoS 1/2
/// PUBLISH unacknowledged; the next waits for an acknowledgement.
#[test]
fn receive_maximum_holds_back_publishes() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| p.receive_maximum = NonZeroU16::new(2)));
    h.publish("a", "1", QoS::AtLeastOnce);
    h.publish("a", "2", QoS::AtLeastOnce);
    assert_eq!(
        h.publish("a", "3", QoS::AtLeastOnce),
        ["persist put-out 3 publish"]
    );
    assert_eq!((h.client.in_flight(), h.client.queued()), (2, 1));
    assert_eq!(
        h.recv(Packet::PubAck(PubResponse::new(id(1)))),
        [
            "persist rm-out 1",
            "event published 1",
            "send PUBLISH 'a' qos=1 id=3 dup=0 retain=0"
        ]
    );
    // QoS 0 is not subject to the quota.
    assert_eq!(
        h.publish("b", "0", QoS::AtMostOnce),
        ["send PUBLISH 'b' qos=0 id=- dup=0 retain=0"]
    );
}

/// [MQTT-3.3.4-8], [MQTT-4.9.0-3]: a full quota does not delay PUBREL; a released QoS 2
/// message still counts until PUBCOMP.
#[test]
fn pubrel_is_not_delayed_by_the_quota() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| p.receive_maximum = NonZeroU16::new(1)));
    h.publish("a", "1", QoS::ExactlyOnce);
    assert_eq!(
        h.publish("a", "2", QoS::ExactlyOnce),
        ["persist put-out 2 publish"]
    );
    assert_eq!(
        h.recv(Packet::PubRec(PubResponse::new(id(1)))),
        ["persist put-out 1 pubrel", "send PUBREL 1"]
    );
    assert_eq!(
        h.recv(Packet::PubComp(PubResponse::new(id(1)))),
        [
            "persist rm-out 1",
            "event published 1",
            "send PUBLISH 'a' qos=2 id=2 dup=0 retain=0"
        ]
    );
}

/// The queue of waiting messages is bounded; a full queue is a local error.
#[test]
fn queue_is_bounded() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.max_queued = 2;
    let mut h = Harness::new(config);
    let m = || Message::new(topic("a"), "x").with_qos(QoS::AtLeastOnce);
    assert!(h.client.publish(h.now, m()).is_ok());
    assert!(h.client.publish(h.now, m()).is_ok());
    assert_eq!(h.client.publish(h.now, m()), Err(PublishError::QueueFull));
    assert_eq!(
        h.drain(),
        ["persist put-out 1 publish", "persist put-out 2 publish"]
    );
    // Once connected the queue drains.
    assert_eq!(
        h.connect(),
        [
            "persist client-id c1",
            "event connected present=0 id=c1",
            "send PUBLISH 'a' qos=1 id=1 dup=0 retain=0",
            "send PUBLISH 'a' qos=1 id=2 dup=0 retain=0"
        ]
    );
}

/// [MQTT-3.2.2-15]: nothing larger than the server's Maximum Packet Size is sent.
#[test]
fn maximum_packet_size_refuses_large_publishes() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(20)
    }));
    let big = Message::new(topic("a"), "0123456789abcdefghij");
    assert_eq!(
        h.client.publish(h.now, big),
        Err(PublishError::PacketTooLarge { size: 26, max: 20 })
    );
    assert_eq!(
        h.publish("a", "small", QoS::AtMostOnce),
        ["send PUBLISH 'a' qos=0 id=- dup=0 retain=0"]
    );
}

/// [MQTT-3.14.2-3]: the Reason String is dropped when it would make DISCONNECT exceed the
/// server's Maximum Packet Size.
#[test]
fn reason_string_dropped_to_fit() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(10)
    }));
    let mut d = Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL);
    d.properties.reason_string = Some(MqttString::from_static("a long goodbye message"));
    h.client.disconnect(h.now, d).unwrap();
    h.drain();
    let sent = h
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Send(Packet::Disconnect(d)) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(sent, Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL));
}

/// [MQTT-3.3.2-9]: automatic aliases stay within the server's Topic Alias Maximum; a
/// known topic goes as an empty name with its alias.
#[test]
fn automatic_outbound_aliases() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.automatic_topic_aliases = crate::client::AutomaticAliases::FirstTopics;
    let mut h = Harness::new(config);
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(1)));
    assert_eq!(
        h.publish("long/topic", "1", QoS::AtMostOnce),
        ["send PUBLISH 'long/topic' qos=0 id=- dup=0 retain=0 alias=1"]
    );
    assert_eq!(
        h.publish("long/topic", "2", QoS::AtMostOnce),
        ["send PUBLISH '' qos=0 id=- dup=0 retain=0 alias=1"]
    );
    assert_eq!(
        h.publish("other", "3", QoS::AtMostOnce),
        ["send PUBLISH 'other' qos=0 id=- dup=0 retain=0"]
    );
    // [MQTT-3.3.2-7]: a new connection starts with no aliases.
    h.client.handle_closed(h.now);
    h.drain();
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(1)));
    assert_eq!(
        h.publish("long/topic", "4", QoS::AtMostOnce),
        ["send PUBLISH 'long/topic' qos=0 id=- dup=0 retain=0 alias=1"]
    );
}

/// [MQTT-3.2.2-18], [MQTT-3.3.2-9]: an alias the server did not allow is a local error.
#[test]
fn explicit_alias_beyond_the_maximum() {
    let mut h = Harness::v5();
    h.connect();
    let mut m = Message::new(topic("a"), "x");
    m.properties.topic_alias = NonZeroU16::new(1);
    assert!(matches!(
        h.client.publish(h.now, m),
        Err(PublishError::TopicAlias(_))
    ));
}

/// A resent QoS 1 message never relies on an alias from an earlier connection.
#[test]
fn explicit_alias_with_empty_topic_is_resolved_for_resends() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(4)));
    let mut m = Message::new(topic("x/y"), "1").with_qos(QoS::AtLeastOnce);
    m.properties.topic_alias = NonZeroU16::new(4);
    h.client.publish(h.now, m).unwrap();
    let mut m = Message::new(TopicName::default(), "2").with_qos(QoS::AtLeastOnce);
    m.properties.topic_alias = NonZeroU16::new(4);
    h.client.publish(h.now, m).unwrap();
    assert_eq!(
        h.drain(),
        [
            "persist put-out 1 publish",
            "send PUBLISH 'x/y' qos=1 id=1 dup=0 retain=0 alias=4",
            "persist put-out 2 publish",
            "send PUBLISH '' qos=1 id=2 dup=0 retain=0 alias=4"
        ]
    );
    h.client.handle_closed(h.now);
    h.drain();
    let mut ack = connack_with(|p| p.topic_alias_maximum = Some(4));
    ack.session_present = true;
    let out = h.connect_with(ack);
    assert_eq!(
        out[1..],
        [
            "send PUBLISH 'x/y' qos=1 id=1 dup=1 retain=0 alias=4",
            "send PUBLISH '' qos=1 id=2 dup=1 retain=0 alias=4"
        ]
    );
}

/// [MQTT-3.3.2-10]: aliases up to the client's maximum resolve; above it is 0x94, and an
/// empty topic with an unbound alias is a Protocol Error.
#[test]
fn inbound_aliases() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.topic_alias_maximum = Some(3);
    let mut h = Harness::new(config);
    h.connect();
    let aliased = |t: &'static str, a: u16| {
        let mut p = Publish::new(TopicName::from_static(t), "m");
        p.properties.topic_alias = NonZeroU16::new(a);
        Packet::Publish(p)
    };
    assert_eq!(h.recv(aliased("s/1", 3)), ["event message 's/1' m qos=0"]);
    assert_eq!(h.recv(aliased("", 3)), ["event message 's/1' m qos=0"]);
    assert_eq!(
        h.recv(aliased("", 2)),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82",
            "close"
        ]
    );
    h.connect();
    assert_eq!(
        h.recv(aliased("s/2", 4)),
        [
            "send DISCONNECT 0x94",
            "event disconnected ProtocolViolation rc=0x94",
            "close"
        ]
    );
}

/// [MQTT-3.3.4-9]: a server must not exceed the client's Receive Maximum; the client
/// closes with 0x93.
#[test]
fn inbound_receive_maximum() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.receive_maximum = NonZeroU16::new(1);
    let mut h = Harness::new(config);
    h.connect();
    h.recv(incoming("t", "1", QoS::ExactlyOnce, 1));
    assert_eq!(
        h.recv(incoming("t", "2", QoS::ExactlyOnce, 2)),
        [
            "send DISCONNECT 0x93",
            "event disconnected ProtocolViolation rc=0x93 MQTT-3.3.4-9",
            "close"
        ]
    );
}

/// [MQTT-3.2.2-17]: the client never sends a Topic Alias above the server's Topic Alias
/// Maximum: an explicit one above it is a local error, one at it goes out, and automatic
/// aliases stop at it.
#[test]
fn outbound_aliases_stay_within_the_servers_maximum() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(2)));
    let with_alias = |t: &'static str, a: u16| {
        let mut m = Message::new(topic(t), "x");
        m.properties.topic_alias = NonZeroU16::new(a);
        m
    };
    assert!(matches!(
        h.client.publish(h.now, with_alias("a", 3)),
        Err(PublishError::TopicAlias(_))
    ));
    h.client.publish(h.now, with_alias("a", 2)).unwrap();
    assert_eq!(
        h.drain(),
        ["send PUBLISH 'a' qos=0 id=- dup=0 retain=0 alias=2"]
    );

    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.automatic_topic_aliases = crate::client::AutomaticAliases::FirstTopics;
    let mut h = Harness::new(config);
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(2)));
    for t in ["t/1", "t/2", "t/3", "t/4"] {
        h.publish(t, "x", QoS::AtMostOnce);
    }
    let aliases: Vec<u16> = h
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Packet::Publish(p)) => {
                Some(p.properties.topic_alias.map_or(0, |a| a.get()))
            }
            _ => None,
        })
        .collect();
    assert!(aliases.iter().all(|&a| a <= 2), "{aliases:?}");
}

/// [MQTT-3.1.2-27]: a client that sent no Topic Alias Maximum accepts no Topic Alias: the
/// server's PUBLISH with one is refused with 0x94 (Topic Alias invalid).
/// [MQTT-3.3.2-11]: nor one above the maximum it sent.
#[test]
fn the_server_must_keep_to_the_clients_alias_maximum() {
    let aliased = |a: u16| {
        let mut p = Publish::new(TopicName::from_static("s"), "m");
        p.properties.topic_alias = NonZeroU16::new(a);
        Packet::Publish(p)
    };
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(aliased(1)),
        [
            "send DISCONNECT 0x94",
            "event disconnected ProtocolViolation rc=0x94",
            "close"
        ]
    );
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.properties.topic_alias_maximum = Some(5);
    let mut h = Harness::new(config);
    h.connect();
    assert_eq!(h.recv(aliased(5)), ["event message 's' m qos=0"]);
    assert_eq!(h.recv(aliased(6))[0], "send DISCONNECT 0x94");
}

/// [MQTT-3.14.2-4]: User Properties are dropped too when they would make the DISCONNECT
/// exceed the server's Maximum Packet Size; the reason code still goes.
#[test]
fn disconnect_user_properties_dropped_to_fit() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(16)
    }));
    let mut d = Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL);
    d.properties.user_properties.push((
        MqttString::from_static("why"),
        MqttString::from_static("long enough to overflow"),
    ));
    h.client.disconnect(h.now, d).unwrap();
    h.drain();
    let Some(Action::Send(Packet::Disconnect(sent))) = h
        .actions
        .iter()
        .find(|a| matches!(a, Action::Send(Packet::Disconnect(_))))
    else {
        panic!()
    };
    assert_eq!(sent, &Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL));
    // One that fits is sent whole.
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.maximum_packet_size = NonZeroU32::new(64)
    }));
    let mut d = Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL);
    d.properties
        .user_properties
        .push((MqttString::from_static("k"), MqttString::from_static("v")));
    h.client.disconnect(h.now, d.clone()).unwrap();
    h.drain();
    assert!(h.actions.contains(&Action::Send(Packet::Disconnect(d))));
}

/// [MQTT-4.9.0-1]: the initial send quota is the server's Receive Maximum: of five QoS 1
/// messages waiting, exactly three go out after a CONNACK with Receive Maximum 3, and all
/// five (65,535 by default) under 3.1.1.
#[test]
fn initial_send_quota_is_the_receive_maximum() {
    for mut h in [Harness::v5(), Harness::v3()] {
        for n in ["1", "2", "3", "4", "5"] {
            h.client
                .publish(
                    h.now,
                    Message::new(topic("q"), n).with_qos(QoS::AtLeastOnce),
                )
                .unwrap();
        }
        h.drain();
        let v5 = h.client.protocol().is_v5();
        let out = h.connect_with(connack_with(|p| {
            if v5 {
                p.receive_maximum = NonZeroU16::new(3);
            }
        }));
        let sent = out.iter().filter(|l| l.starts_with("send PUBLISH")).count();
        assert_eq!(sent, if v5 { 3 } else { 5 });
        assert_eq!(h.client.in_flight(), sent);
    }
}

/// [MQTT-3.3.2-9]: with least-recently-used aliasing every topic takes an alias within the
/// server's maximum; a new topic takes over the alias used longest ago and goes in full
/// with it once.
#[test]
fn least_recently_used_outbound_aliases() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.automatic_topic_aliases = crate::client::AutomaticAliases::LeastRecentlyUsed;
    let mut h = Harness::new(config);
    h.connect_with(connack_with(|p| p.topic_alias_maximum = Some(2)));
    let mut out = Vec::new();
    for t in ["a/1", "b/2", "a/1", "c/3", "c/3", "b/2"] {
        out.extend(h.publish(t, "x", QoS::AtMostOnce));
    }
    assert_eq!(
        out,
        [
            "send PUBLISH 'a/1' qos=0 id=- dup=0 retain=0 alias=1",
            "send PUBLISH 'b/2' qos=0 id=- dup=0 retain=0 alias=2",
            "send PUBLISH '' qos=0 id=- dup=0 retain=0 alias=1",
            "send PUBLISH 'c/3' qos=0 id=- dup=0 retain=0 alias=2",
            "send PUBLISH '' qos=0 id=- dup=0 retain=0 alias=2",
            "send PUBLISH 'b/2' qos=0 id=- dup=0 retain=0 alias=1"
        ]
    );
}

/// A PUBLISH with no room for an alias under the server's Maximum Packet Size goes in full
/// and binds nothing: the next one on that topic must not rely on an alias the server never
/// saw. A shorter topic still takes the alias.
#[test]
fn no_alias_bound_by_a_packet_sent_without_it() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, MqttString::from_static("c1"));
    config.automatic_topic_aliases = crate::client::AutomaticAliases::FirstTopics;
    let mut h = Harness::new(config);
    h.connect_with(connack_with(|p| {
        p.topic_alias_maximum = Some(1);
        // 'long/topic' with payload "x" is 16 bytes: no room for the 3 to 4 of an alias.
        p.maximum_packet_size = NonZeroU32::new(17);
    }));
    let mut out = Vec::new();
    for t in ["long/topic", "long/topic", "s", "s"] {
        out.extend(h.publish(t, "x", QoS::AtMostOnce));
    }
    assert_eq!(
        out,
        [
            "send PUBLISH 'long/topic' qos=0 id=- dup=0 retain=0",
            "send PUBLISH 'long/topic' qos=0 id=- dup=0 retain=0",
            "send PUBLISH 's' qos=0 id=- dup=0 retain=0 alias=1",
            "send PUBLISH '' qos=0 id=- dup=0 retain=0 alias=1"
        ]
    );
}
