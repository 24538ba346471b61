//! Problem information: refusals explain themselves in a Reason String, within the client's
//! Maximum Packet Size and only to clients that want to know.

use std::num::NonZeroU32;

use mqtt_codec::*;
use mqtt_session::broker::{Authorizer, BrokerConfig, ClientInfo};

use crate::common::{Harness, lines, pid};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Nothing may be published or subscribed to under `private/`.
struct NoPrivate;

impl Authorizer for NoPrivate {
    fn may_publish(&self, _: &ClientInfo<'_>, topic: &TopicName) -> bool {
        !topic.starts_with("private/")
    }
    fn may_subscribe(&self, _: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        !filter.starts_with("private/")
    }
}

/// Connects a v5 client `name` with a Maximum Packet Size and Request Problem Information.
fn connect(h: &mut Harness, name: &'static str, max: Option<u32>, problems: Option<bool>) {
    let mut c = Connect::new(V5, MqttString::from_static(name));
    c.properties.maximum_packet_size = max.and_then(NonZeroU32::new);
    c.properties.request_problem_information = problems;
    h.connect_with(name, c);
}

/// Every refusal the client can provoke on its own: PUBACK and PUBREC refused by the
/// authoriser, a PUBREL answering an unknown PUBREC, a PUBCOMP answering an unknown PUBREL,
/// a SUBACK refused by the authoriser and an UNSUBACK for a filter never subscribed to.
fn provoke(h: &mut Harness, name: &str) {
    h.publish(name, "private/a", "x", QoS::AtLeastOnce, 1);
    h.publish(name, "private/a", "x", QoS::ExactlyOnce, 2);
    h.send(name, Packet::PubRec(PubResponse::new(pid(3))));
    h.send(name, Packet::PubRel(PubResponse::new(pid(4))));
    h.subscribe(name, 5, &[("private/#", QoS::AtMostOnce)]);
    let unsub = Unsubscribe::new(pid(6), vec![TopicFilter::from_static("privat/#")]);
    h.send(name, Packet::Unsubscribe(unsub));
}

fn received(h: &mut Harness, name: &str) -> Vec<String> {
    let prefix = format!("{name} <- ");
    h.transcript()
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

/// [MQTT-3.4.2-2], [MQTT-3.5.2-2], [MQTT-3.6.2-2], [MQTT-3.7.2-2], [MQTT-3.9.2-1],
/// [MQTT-3.11.2-1]: refusing PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK carry a
/// Reason String, but not when it would make the packet larger than the client's Maximum
/// Packet Size: then it is left out and the packet still goes.
#[test]
fn reason_strings_explain_refusals_within_the_clients_maximum_packet_size() {
    let mut h = Harness::new(BrokerConfig::default());
    h.broker.set_authorizer(Box::new(NoPrivate));
    connect(&mut h, "big", None, None);
    connect(&mut h, "small", Some(20), None);
    h.transcript();
    provoke(&mut h, "big");
    assert_eq!(
        received(&mut h, "big"),
        lines(
            "
            big <- PUBACK 1 0x87 reason='not authorized'
            big <- PUBREC 2 0x87 reason='not authorized'
            big <- PUBREL 3 0x92 reason='no QoS 2 message was sent with this identifier'
            big <- PUBCOMP 4 0x92 reason='no QoS 2 message awaits PUBREL with this identifier'
            big <- SUBACK 5 0x87 reason='not authorized'
            big <- UNSUBACK 6 0x11 reason='no subscription with this topic filter existed'
            "
        )
    );
    provoke(&mut h, "small");
    assert_eq!(
        received(&mut h, "small"),
        lines(
            "
            small <- PUBACK 1 0x87
            small <- PUBREC 2 0x87
            small <- PUBREL 3 0x92
            small <- PUBCOMP 4 0x92
            small <- SUBACK 5 0x87
            small <- UNSUBACK 6 0x11
            "
        )
    );
}

/// [MQTT-3.2.2-19]: a refusing CONNACK explains itself in a Reason String, unless that would
/// make it larger than the Maximum Packet Size the CONNECT gave.
#[test]
fn a_refusing_connack_keeps_within_the_clients_maximum_packet_size() {
    let mut h = Harness::new(BrokerConfig::default());
    for (name, max) in [("big", None), ("small", NonZeroU32::new(16))] {
        let mut c = Connect::new(V5, MqttString::from_static(name));
        c.properties.authentication_method = Some(MqttString::from_static("KERBEROS"));
        c.properties.maximum_packet_size = max;
        h.connect_with(name, c);
    }
    assert_eq!(
        h.transcript(),
        lines(
            "
            big -> CONNECT 5.0 id=big clean=1
            big <- CONNACK 0x8C sp=0 reason='no authentication method is supported'
            big <- [closed]
            small -> CONNECT 5.0 id=small clean=1
            small <- CONNACK 0x8C sp=0
            small <- [closed]
            "
        )
    );
}

/// [MQTT-3.1.2-29]: a client that sets Request Problem Information to 0 gets no Reason
/// String on any packet but CONNACK, DISCONNECT and PUBLISH; the DISCONNECT closing it for a
/// violation still says why.
#[test]
fn no_reason_strings_for_clients_that_ask_for_none() {
    let mut h = Harness::new(BrokerConfig::default());
    h.broker.set_authorizer(Box::new(NoPrivate));
    connect(&mut h, "quiet", None, Some(false));
    h.transcript();
    provoke(&mut h, "quiet");
    h.send("quiet", Packet::PingResp);
    let got: Vec<Packet> = std::iter::from_fn(|| h.recv("quiet")).collect();
    assert_eq!(
        received(&mut h, "quiet"),
        lines(
            "
            quiet <- PUBACK 1 0x87
            quiet <- PUBREC 2 0x87
            quiet <- PUBREL 3 0x92
            quiet <- PUBCOMP 4 0x92
            quiet <- SUBACK 5 0x87
            quiet <- UNSUBACK 6 0x11
            quiet <- DISCONNECT 0x82
            quiet <- [closed]
            "
        )
    );
    let Some(Packet::Disconnect(d)) = got.last() else {
        panic!("no DISCONNECT: {got:?}");
    };
    assert!(d.properties.reason_string.is_some());
}
