//! Subscriptions: matching, overlapping subscriptions, shared groups, subscription options,
//! UNSUBSCRIBE, disabled features and authorisation.

use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::{Authorizer, BrokerConfig, ClientInfo};

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn sub_with(
    h: &mut Harness,
    name: &str,
    id: u16,
    filter: &str,
    o: SubscriptionOptions,
    sid: Option<u32>,
) {
    let mut s = Subscribe::new(
        pid(id),
        vec![(TopicFilter::new(filter.to_string()).unwrap(), o)],
    );
    s.properties.subscription_identifier = sid.and_then(SubscriptionId::new);
    h.send(name, Packet::Subscribe(s));
}

/// [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-4]: overlapping subscriptions of one client
/// give one copy, at the highest QoS of them, with all their Subscription Identifiers.
#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.connect("p", V5, true);
    sub_with(
        &mut h,
        "s",
        1,
        "a/+",
        SubscriptionOptions::qos(QoS::AtMostOnce),
        Some(1),
    );
    sub_with(
        &mut h,
        "s",
        2,
        "a/#",
        SubscriptionOptions::qos(QoS::AtLeastOnce),
        Some(2),
    );
    sub_with(
        &mut h,
        "s",
        3,
        "a/b",
        SubscriptionOptions::qos(QoS::AtMostOnce),
        None,
    );
    h.transcript();
    h.publish("p", "a/b", "x", QoS::ExactlyOnce, 1);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH a/b q2 id=1 'x'
            s <- PUBLISH a/b q1 id=1 sub_ids=1,2 'x'
            p <- PUBREC 1
            "
        )
    );
}

/// [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.2-1], section 4.7.3: `+` one level, `#` the
/// parent and everything below, empty levels are levels, and `$` topics are not matched by
/// filters starting with a wildcard; the clients speak 3.1.1: 3.1.1 [MQTT-4.7.2-1].
#[test]
fn wildcards_empty_levels_and_dollar_topics() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V311, true);
    for (name, filter) in [
        ("hash", "#"),
        ("plus", "+/+"),
        ("sport", "sport/#"),
        ("sys", "$SYS/#"),
        ("empty", "/+"),
    ] {
        h.connect(name, V311, true);
        h.subscribe(name, 1, &[(filter, QoS::AtMostOnce)]);
    }
    h.transcript();
    for topic in ["sport", "sport/x", "/x", "$SYS/up", "a//b"] {
        h.publish("p", topic, "m", QoS::AtMostOnce, 0);
    }
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| !l.starts_with("p "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            hash <- PUBLISH sport q0 'm'
            sport <- PUBLISH sport q0 'm'
            hash <- PUBLISH sport/x q0 'm'
            plus <- PUBLISH sport/x q0 'm'
            sport <- PUBLISH sport/x q0 'm'
            hash <- PUBLISH /x q0 'm'
            plus <- PUBLISH /x q0 'm'
            empty <- PUBLISH /x q0 'm'
            sys <- PUBLISH $SYS/up q0 'm'
            hash <- PUBLISH a//b q0 'm'
            "
        )
    );
}

/// [MQTT-4.8.2-3] and section 4.8.2: each shared group gets one copy, its members taking
/// turns; a non-shared subscription of a member still gets its own copy.
#[test]
fn shared_subscriptions_deliver_to_one_member_per_group() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    for (name, filter) in [
        ("w1", "$share/work/jobs/+"),
        ("w2", "$share/work/jobs/+"),
        ("audit", "$share/audit/jobs/#"),
        ("plain", "jobs/+"),
    ] {
        h.connect(name, V5, true);
        h.subscribe(name, 1, &[(filter, QoS::AtLeastOnce)]);
    }
    h.subscribe("w1", 2, &[("jobs/1", QoS::AtMostOnce)]);
    h.transcript();
    h.publish("p", "jobs/1", "j1", QoS::AtMostOnce, 0);
    h.publish("p", "jobs/2", "j2", QoS::AtMostOnce, 0);
    h.publish("p", "jobs/3", "j3", QoS::AtMostOnce, 0);
    let mut got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| !l.starts_with("p "))
        .collect();
    got.sort();
    assert_eq!(
        got,
        lines(
            "
            audit <- PUBLISH jobs/1 q0 'j1'
            audit <- PUBLISH jobs/2 q0 'j2'
            audit <- PUBLISH jobs/3 q0 'j3'
            plain <- PUBLISH jobs/1 q0 'j1'
            plain <- PUBLISH jobs/2 q0 'j2'
            plain <- PUBLISH jobs/3 q0 'j3'
            w1 <- PUBLISH jobs/1 q0 'j1'
            w1 <- PUBLISH jobs/1 q0 'j1'
            w1 <- PUBLISH jobs/3 q0 'j3'
            w2 <- PUBLISH jobs/2 q0 'j2'
            "
        )
    );
}

/// Section 4.8.2: a shared group prefers a connected member; a message that went to a
/// member's persistent session waits for that member ([MQTT-4.8.2-4]).
#[test]
fn shared_groups_prefer_connected_members() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    for name in ["w1", "w2"] {
        h.connect_v5_session(name, false, 300);
        h.subscribe(name, 1, &[("$share/g/t", QoS::AtLeastOnce)]);
    }
    h.sever("w1");
    h.transcript();
    h.publish("p", "t", "a", QoS::AtLeastOnce, 1);
    h.publish("p", "t", "b", QoS::AtLeastOnce, 2);
    h.sever("w2");
    h.publish("p", "t", "c", QoS::AtLeastOnce, 3);
    let got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| !l.starts_with("p "))
        .collect();
    assert_eq!(
        got,
        lines(
            "
            w2 <- PUBLISH t q1 id=1 'a'
            w2 <- PUBLISH t q1 id=2 'b'
            w2 -- severed
            "
        )
    );
    let queued = [
        h.broker.queued("w1").unwrap().0,
        h.broker.queued("w2").unwrap().0,
    ];
    assert_eq!(
        queued.iter().sum::<usize>(),
        3,
        "c waits in one member's session"
    );
}

/// [MQTT-3.8.3-3] No Local: not sent back to the publishing client; [MQTT-3.3.1-12],
/// [MQTT-3.3.1-13] Retain As Published keeps RETAIN, otherwise it is cleared for
/// established subscriptions (3.1.1 [MQTT-3.3.1-9]).
#[test]
fn no_local_and_retain_as_published() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("me", V5, true);
    h.connect("rap", V5, true);
    h.connect("v3", V311, true);
    let no_local = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    sub_with(&mut h, "me", 1, "t", no_local, None);
    let rap = SubscriptionOptions {
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    sub_with(&mut h, "rap", 1, "t", rap, None);
    h.subscribe("v3", 1, &[("t", QoS::AtMostOnce)]);
    h.transcript();
    let mut p = Publish::new(TopicName::from_static("t"), "r");
    p.retain = true;
    h.send("me", Packet::Publish(p));
    assert_eq!(
        h.transcript(),
        lines(
            "
            me -> PUBLISH t q0 retain 'r'
            rap <- PUBLISH t q0 retain 'r'
            v3 <- PUBLISH t q0 'r'
            "
        )
    );
}

/// [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.8.4-7]: a SUBACK with the SUBSCRIBE's identifier
/// and the granted QoS; [MQTT-3.8.4-3]: subscribing to the same filter again replaces the
/// subscription (one copy, the new QoS); [MQTT-3.10.4-1], [MQTT-3.10.4-2], [MQTT-3.10.4-4],
/// [MQTT-3.10.4-5], [MQTT-3.10.4-6], [MQTT-3.11.3-1]: one UNSUBSCRIBE with two filters
/// removes the exactly matching one, is answered once with a code per filter in order (0x11
/// for none), and no more messages follow. The same for a 3.1.1 client (its UNSUBACK
/// carries no codes):
/// 3.1.1 [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.10.4-1], [MQTT-3.10.4-2],
/// 3.1.1 [MQTT-3.10.4-4], [MQTT-3.10.4-5], [MQTT-3.10.4-6].
#[test]
fn resubscribe_replaces_and_unsubscribe_removes() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.connect("s3", V311, true);
    h.connect("p", V311, true);
    h.subscribe("s", 1, &[("t/+", QoS::AtMostOnce)]);
    h.subscribe("s", 2, &[("t/+", QoS::AtLeastOnce)]);
    h.subscribe("s3", 1, &[("t/+", QoS::AtMostOnce)]);
    h.publish("p", "t/1", "a", QoS::AtLeastOnce, 1);
    let unsub = Unsubscribe::new(
        pid(3),
        vec![
            TopicFilter::from_static("t/+"),
            TopicFilter::from_static("t/#"),
        ],
    );
    h.send("s", Packet::Unsubscribe(unsub.clone()));
    h.send("s3", Packet::Unsubscribe(unsub));
    h.publish("p", "t/1", "b", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript()[6..],
        lines(
            "
            s -> SUBSCRIBE 1 t/+:0
            s <- SUBACK 1 0x00
            s -> SUBSCRIBE 2 t/+:1
            s <- SUBACK 2 0x01
            s3 -> SUBSCRIBE 1 t/+:0
            s3 <- SUBACK 1 0x00
            p -> PUBLISH t/1 q1 id=1 'a'
            s <- PUBLISH t/1 q1 id=1 'a'
            s3 <- PUBLISH t/1 q0 'a'
            p <- PUBACK 1
            s -> UNSUBSCRIBE 3 t/+,t/#
            s <- UNSUBACK 3 0x00,0x11 reason='no subscription with this topic filter existed'
            s3 -> UNSUBSCRIBE 3 t/+,t/#
            s3 <- UNSUBACK 3
            p -> PUBLISH t/1 q1 id=2 'b'
            p <- PUBACK 2
            "
        )[..]
    );
    assert_eq!(h.broker.subscription_count(), 0);
}

/// [MQTT-3.10.4-3]: a QoS 1 message already on its way when the subscription goes is still
/// delivered, also after a reconnect.
#[test]
fn unsubscribe_completes_deliveries_already_started() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("s", false, 60);
    h.connect("p", V5, true);
    h.subscribe("s", 1, &[("t", QoS::AtLeastOnce)]);
    h.publish("p", "t", "started", QoS::AtLeastOnce, 1);
    h.send(
        "s",
        Packet::Unsubscribe(Unsubscribe::new(
            pid(2),
            vec![TopicFilter::from_static("t")],
        )),
    );
    h.sever("s");
    h.transcript();
    h.connect_v5_session("s", false, 60);
    assert_eq!(
        h.transcript(),
        lines(
            "
            s -> CONNECT 5.0 id=s clean=0 expiry=60
            s <- CONNACK 0x00 sp=1
            s <- PUBLISH t q1 id=1 dup 'started'
            "
        )
    );
}

/// [MQTT-4.8.2-6]: a shared subscriber that refuses a message (PUBREC 0x80 or above) ends
/// its handshake, and it is not offered to another member.
#[test]
fn a_refused_shared_message_goes_to_nobody_else() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("p", V5, true);
    for name in ["w1", "w2"] {
        h.connect(name, V5, true);
        h.subscribe(name, 1, &[("$share/g/t", QoS::ExactlyOnce)]);
    }
    h.transcript();
    h.publish("p", "t", "job", QoS::ExactlyOnce, 1);
    let refuse = PubResponse {
        reason_code: ReasonCode::UNSPECIFIED_ERROR,
        ..PubResponse::new(pid(1))
    };
    h.send("w1", Packet::PubRec(refuse));
    h.send("w1", Packet::PingReq);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH t q2 id=1 'job'
            w1 <- PUBLISH t q2 id=1 'job'
            p <- PUBREC 1
            w1 -> PUBREC 1 0x80
            w1 -> PINGREQ
            w1 <- PINGRESP
            "
        )
    );
    assert_eq!(h.broker.queued("w1"), Some((0, 0)));
}

/// [MQTT-4.3.3-9]: after a PUBREC with a failure code (here: not authorised), the same
/// identifier starts a new message.
#[test]
fn a_refused_qos2_identifier_is_free_again() {
    let mut h = Harness::new(BrokerConfig::default());
    h.broker.set_authorizer(Box::new(NoAnonymousWildcards));
    h.connect("root", V5, true);
    h.connect("p", V5, true);
    h.subscribe("root", 1, &[("ok", QoS::AtMostOnce)]);
    h.transcript();
    h.publish("p", "admin/x", "no", QoS::ExactlyOnce, 3);
    h.publish("p", "ok", "yes", QoS::ExactlyOnce, 3);
    assert_eq!(
        h.transcript(),
        lines(
            "
            p -> PUBLISH admin/x q2 id=3 'no'
            p <- PUBREC 3 0x87 reason='not authorized'
            p -> PUBLISH ok q2 id=3 'yes'
            root <- PUBLISH ok q0 'yes'
            p <- PUBREC 3
            "
        )
    );
}

/// Section 3.2.2.3: with wildcard and shared subscriptions off, such filters fail with
/// 0xA2 and 0x9E, each filter with its own code in order ([MQTT-3.8.4-6]); a Subscription
/// Identifier when they are off is a Protocol Error closing the connection with 0xA1. Under
/// 3.1.1 they fail with 0x80, in order: 3.1.1 [MQTT-3.8.3-2], [MQTT-3.9.3-1]. An invalid
/// shared filter fails under 3.1.1.
#[test]
fn disabled_features_refuse_subscriptions() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.wildcard_subscription_available = false;
        c.shared_subscription_available = false;
        c.subscription_identifiers_available = false;
        c
    });
    h.connect("s", V5, true);
    h.connect("s3", V311, true);
    let f = [
        ("a/#", QoS::AtMostOnce),
        ("$share/g/a", QoS::AtMostOnce),
        ("a", QoS::AtLeastOnce),
    ];
    h.subscribe("s", 1, &f);
    h.subscribe("s3", 1, &f);
    h.subscribe("s3", 2, &[("$share/g", QoS::AtMostOnce)]);
    sub_with(&mut h, "s", 2, "b", SubscriptionOptions::default(), Some(9));
    assert_eq!(
        h.transcript()[4..],
        lines(
            "
            s -> SUBSCRIBE 1 a/#:0,$share/g/a:0,a:1
            s <- SUBACK 1 0xA2,0x9E,0x01 reason='wildcard subscriptions are not supported'
            s3 -> SUBSCRIBE 1 a/#:0,$share/g/a:0,a:1
            s3 <- SUBACK 1 0x80,0x80,0x01
            s3 -> SUBSCRIBE 2 $share/g:0
            s3 <- SUBACK 2 0x80
            s -> SUBSCRIBE 2 b:0 sub_id=9
            s <- DISCONNECT 0xA1
            s <- [closed]
            "
        )[..]
    );
}

/// Anonymous clients may not subscribe to `#` nor publish under `admin/`.
struct NoAnonymousWildcards;

impl Authorizer for NoAnonymousWildcards {
    fn may_publish(&self, c: &ClientInfo<'_>, topic: &TopicName) -> bool {
        c.username.is_some() || !topic.starts_with("admin/")
    }
    fn may_subscribe(&self, c: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        c.username.is_some() || filter.as_str() != "#"
    }
}

/// The authorisation hook: a refused subscription gets 0x87 (3.1.1: 0x80); a refused QoS 1
/// PUBLISH gets PUBACK 0x87 under v5 and, since 3.1.1 cannot refuse, a plain PUBACK
/// ([MQTT-3.3.5-2] 3.1.1); neither is delivered.
#[test]
fn the_authorizer_refuses_per_topic() {
    let mut h = Harness::new(BrokerConfig::default());
    h.broker.set_authorizer(Box::new(NoAnonymousWildcards));
    let mut c = Connect::new(V5, MqttString::from_static("root"));
    c.username = Some(MqttString::from_static("root"));
    h.connect_with("root", c);
    h.connect("anon", V5, true);
    h.connect("anon3", V311, true);
    h.subscribe("root", 1, &[("#", QoS::AtLeastOnce)]);
    h.subscribe(
        "anon",
        1,
        &[("#", QoS::AtLeastOnce), ("x", QoS::AtLeastOnce)],
    );
    h.subscribe("anon3", 1, &[("#", QoS::AtLeastOnce)]);
    h.publish("anon", "admin/reboot", "now", QoS::AtLeastOnce, 1);
    h.publish("anon3", "admin/reboot", "now", QoS::AtLeastOnce, 1);
    h.publish("anon3", "x", "ok", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.transcript()[6..],
        lines(
            "
            root -> SUBSCRIBE 1 #:1
            root <- SUBACK 1 0x01
            anon -> SUBSCRIBE 1 #:1,x:1
            anon <- SUBACK 1 0x87,0x01 reason='not authorized'
            anon3 -> SUBSCRIBE 1 #:1
            anon3 <- SUBACK 1 0x80
            anon -> PUBLISH admin/reboot q1 id=1 'now'
            anon <- PUBACK 1 0x87 reason='not authorized'
            anon3 -> PUBLISH admin/reboot q1 id=1 'now'
            anon3 <- PUBACK 1
            anon3 -> PUBLISH x q1 id=2 'ok'
            root <- PUBLISH x q1 id=1 'ok'
            anon <- PUBLISH x q1 id=1 'ok'
            anon3 <- PUBACK 2
            "
        )[..]
    );
}

/// Each user reads only its own subtree, whatever it subscribes to.
struct OwnSubtree;

impl Authorizer for OwnSubtree {
    fn may_receive(&self, c: &ClientInfo<'_>, topic: &TopicName) -> bool {
        c.username
            .is_some_and(|u| topic.starts_with(&format!("{}/", u.as_str())))
    }
    fn checks_receipt(&self) -> bool {
        true
    }
}

/// The authorisation hook per delivery: a subscriber to `#` receives only what it may
/// read, live messages and retained ones alike; a QoS 1 publisher whose message nobody may
/// read is told 0x10 No matching subscribers.
#[test]
fn the_authorizer_filters_each_delivery() {
    let mut h = Harness::new(BrokerConfig::default());
    h.broker.set_authorizer(Box::new(OwnSubtree));
    let mut c = Connect::new(V5, MqttString::from_static("a"));
    c.username = Some(MqttString::from_static("alice"));
    h.connect_with("a", c);
    h.connect("p", V5, true);
    for (topic, payload) in [("bob/door", "locked"), ("alice/door", "open")] {
        let mut p = Publish::new(TopicName::new(topic.to_string()).unwrap(), payload);
        p.retain = true;
        h.send("p", Packet::Publish(p));
    }
    h.subscribe("a", 1, &[("#", QoS::AtLeastOnce)]);
    h.publish("p", "bob/light", "on", QoS::AtLeastOnce, 1);
    h.publish("p", "alice/light", "off", QoS::AtLeastOnce, 2);
    let t = h.transcript();
    let tail: Vec<&String> = t
        .iter()
        .filter(|l| l.starts_with("a <- PUBLISH") || l.starts_with("p <- PUBACK"))
        .collect();
    assert_eq!(
        tail,
        lines(
            "
            a <- PUBLISH alice/door q0 retain 'open'
            p <- PUBACK 1 0x10
            a <- PUBLISH alice/light q1 id=1 'off'
            p <- PUBACK 2
            "
        )
        .iter()
        .collect::<Vec<_>>()
    );
}

/// [MQTT-3.3.2-3]: every PUBLISH a subscriber gets has a Topic Name matching one of its
/// filters, in full even when the publisher used a Topic Alias; one subscriber speaks
/// 3.1.1: 3.1.1 [MQTT-3.3.2-3].
#[test]
fn delivered_topic_names_match_the_subscribers_filters() {
    let mut h = Harness::new({
        let mut c = BrokerConfig::default();
        c.topic_alias_maximum = 4;
        c
    });
    let filters: [(&str, &[&str]); 3] = [
        ("s5", &["a/+/c", "x/#"]),
        ("s3", &["+/b/#", "$SYS/+"]),
        ("sh", &["$share/g/a/#"]),
    ];
    for (name, f) in filters {
        h.connect(name, if name == "s3" { V311 } else { V5 }, true);
        let f: Vec<(&str, QoS)> = f.iter().map(|f| (*f, QoS::AtMostOnce)).collect();
        h.subscribe(name, 1, &f);
    }
    h.connect("p", V5, true);
    for (i, topic) in ["a/b/c", "x", "a/b", "$SYS/up", "q/b", "a/z/c/d"]
        .iter()
        .enumerate()
    {
        let mut p = Publish::new(TopicName::new(topic.to_string()).unwrap(), "m");
        p.properties.topic_alias = std::num::NonZeroU16::new(1 + i as u16 % 4);
        h.send("p", Packet::Publish(p));
        // The same topic again by its alias alone.
        let mut p = Publish::new(TopicName::from_static(""), "m");
        p.properties.topic_alias = std::num::NonZeroU16::new(1 + i as u16 % 4);
        h.send("p", Packet::Publish(p));
    }
    let mut delivered = 0;
    for (name, f) in filters {
        while let Some(p) = h.recv_publish(name) {
            delivered += 1;
            let matched = f.iter().any(|f| {
                let f = TopicFilter::new(f.to_string()).unwrap();
                let f = f
                    .shared()
                    .and_then(Result::ok)
                    .map_or(f.as_str(), |(_, f)| f);
                matches_filter(f, &p.topic)
            });
            assert!(matched, "{name} got {} matching none of {f:?}", p.topic);
        }
    }
    // s5: a/b/c, x; s3: a/b/c, a/b, $SYS/up, q/b; sh: a/b/c, a/b, a/z/c/d; each twice.
    assert_eq!(delivered, 2 * 9);
}

/// [MQTT-3.3.4-5]: when a client gets several copies of one message (its own subscription
/// and a shared one), each carries the Subscription Identifier of its subscription.
#[test]
fn each_copy_carries_its_own_subscription_identifier() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect("s", V5, true);
    h.connect("p", V5, true);
    let o = SubscriptionOptions::qos(QoS::AtMostOnce);
    sub_with(&mut h, "s", 1, "$share/g/t/+", o, Some(7));
    sub_with(&mut h, "s", 2, "t/#", o, Some(9));
    h.transcript();
    h.publish("p", "t/1", "x", QoS::AtMostOnce, 0);
    let mut got: Vec<String> = h
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("s <- "))
        .collect();
    got.sort();
    assert_eq!(
        got,
        lines(
            "
            s <- PUBLISH t/1 q0 sub_ids=7 'x'
            s <- PUBLISH t/1 q0 sub_ids=9 'x'
            "
        )
    );
}

/// [MQTT-4.8.2-5]: a message that went to a shared subscriber's session is not sent to any
/// other member when that session ends before its client comes back.
#[test]
fn a_shared_message_dies_with_the_session_it_went_to() {
    let mut h = Harness::new(BrokerConfig::default());
    h.connect_v5_session("w1", false, 10);
    h.subscribe("w1", 1, &[("$share/g/t", QoS::AtLeastOnce)]);
    h.sever("w1");
    h.connect("p", V5, true);
    h.publish("p", "t", "job", QoS::AtLeastOnce, 1);
    assert_eq!(h.broker.queued("w1"), Some((1, 0)));
    h.connect("w2", V5, true);
    h.subscribe("w2", 1, &[("$share/g/t", QoS::AtLeastOnce)]);
    h.transcript();
    h.advance(Duration::from_secs(10));
    h.send("w2", Packet::PingReq);
    assert!(!h.broker.has_session("w1"));
    assert_eq!(
        h.transcript(),
        lines(
            "
            w2 -> PINGREQ
            w2 <- PINGRESP
            "
        )
    );
    h.publish("p", "t", "next", QoS::AtLeastOnce, 2);
    assert_eq!(
        h.recv_publish("w2").map(|p| p.payload),
        Some(Bytes::from_static(b"next"))
    );
}
