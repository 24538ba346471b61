//! SUBSCRIBE / UNSUBSCRIBE and their acknowledgements.

use mqtt_codec::{
    Packet, QoS, ReasonCode, SubAck, SubscribeProperties, SubscriptionId, SubscriptionOptions,
    TopicFilter, UnsubAck, UnsubscribeProperties,
};

use super::*;
use crate::client::SubscribeError;

fn filters(list: &[(&'static str, QoS)]) -> Vec<(TopicFilter, SubscriptionOptions)> {
    list.iter()
        .map(|&(f, q)| (TopicFilter::from_static(f), SubscriptionOptions::qos(q)))
        .collect()
}

fn suback(pid: u16, codes: &[u8]) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: id(pid),
        properties: Default::default(),
        reason_codes: codes.iter().map(|&c| ReasonCode(c)).collect(),
    })
}

/// [MQTT-2.2.1-6], [MQTT-3.9.3-1]: the SUBACK is matched to its SUBSCRIBE by identifier and
/// its codes to the filters in order.
#[test]
fn subscribe_and_suback() {
    let mut h = Harness::v5();
    h.connect();
    let fs = filters(&[("a/+", QoS::AtLeastOnce), ("b/#", QoS::ExactlyOnce)]);
    let pid = h
        .client
        .subscribe(h.now, fs, SubscribeProperties::default())
        .unwrap();
    assert_eq!(pid, id(1));
    assert_eq!(
        h.drain(),
        ["persist put-sub 1", "send SUBSCRIBE 1 a/+:1,b/#:2"]
    );
    assert_eq!(
        h.recv(suback(1, &[0x01, 0x80])),
        ["persist rm-req 1", "event subscribed 1 0x01,0x80"]
    );
    let Some(Action::Event(Event::Subscribed(s))) = h.actions.last() else {
        panic!()
    };
    assert_eq!(s.filters[1].0.as_str(), "b/#");
}

/// [MQTT-3.9.3-2] (3.1.1 [MQTT-3.8.4-5]): one code per filter, else the server is wrong.
#[test]
fn suback_with_wrong_count_is_a_protocol_error() {
    let mut h = Harness::v5();
    h.connect();
    let fs = filters(&[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]);
    h.client
        .subscribe(h.now, fs.clone(), Default::default())
        .unwrap();
    h.drain();
    assert_eq!(
        h.recv(suback(1, &[0x00])),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.9.3-2",
            "close"
        ]
    );
    let mut h = Harness::v3();
    h.connect();
    h.client.subscribe(h.now, fs, Default::default()).unwrap();
    h.drain();
    assert_eq!(
        h.recv(suback(1, &[0x00])),
        [
            "event disconnected ProtocolViolation rc=0x82 MQTT-3.8.4-5",
            "close"
        ]
    );
}

/// [MQTT-2.2.1-6]: an acknowledgement nobody asked for.
#[test]
fn suback_for_unknown_identifier() {
    let mut h = Harness::v5();
    h.connect();
    assert_eq!(
        h.recv(suback(4, &[0x00])),
        [
            "send DISCONNECT 0x82",
            "event disconnected ProtocolViolation rc=0x82 MQTT-2.2.1-6",
            "close"
        ]
    );
}

#[test]
fn unsubscribe_v311_and_v5() {
    let mut h = Harness::v3();
    h.connect();
    h.client
        .unsubscribe(
            h.now,
            vec![TopicFilter::from_static("a/#")],
            Default::default(),
        )
        .unwrap();
    assert_eq!(h.drain(), ["persist put-unsub 1", "send UNSUBSCRIBE 1 a/#"]);
    let ack = UnsubAck {
        packet_id: id(1),
        properties: Default::default(),
        reason_codes: vec![],
    };
    assert_eq!(
        h.recv(Packet::UnsubAck(ack)),
        ["persist rm-req 1", "event unsubscribed 1 0x00"]
    );

    let mut h = Harness::v5();
    h.connect();
    h.client
        .unsubscribe(
            h.now,
            vec![TopicFilter::from_static("a"), TopicFilter::from_static("b")],
            UnsubscribeProperties::default(),
        )
        .unwrap();
    h.drain();
    let ack = UnsubAck {
        packet_id: id(1),
        properties: Default::default(),
        reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
    };
    assert_eq!(
        h.recv(Packet::UnsubAck(ack)),
        ["persist rm-req 1", "event unsubscribed 1 0x00,0x11"]
    );
}

/// A SUBACK cannot answer an UNSUBSCRIBE.
#[test]
fn suback_for_an_unsubscribe_is_a_protocol_error() {
    let mut h = Harness::v5();
    h.connect();
    h.client
        .unsubscribe(
            h.now,
            vec![TopicFilter::from_static("a")],
            Default::default(),
        )
        .unwrap();
    h.drain();
    assert_eq!(
        h.recv(suback(1, &[0x00]))[1],
        "event disconnected ProtocolViolation rc=0x82 MQTT-2.2.1-6"
    );
}

/// What the CONNACK said the server lacks is refused locally.
#[test]
fn unsupported_subscription_features() {
    let mut h = Harness::v5();
    h.connect_with(connack_with(|p| {
        p.wildcard_subscription_available = Some(false);
        p.shared_subscription_available = Some(false);
        p.subscription_identifiers_available = Some(false);
    }));
    let sub = |f| filters(&[(f, QoS::AtMostOnce)]);
    assert_eq!(
        h.client.subscribe(h.now, sub("a/+"), Default::default()),
        Err(SubscribeError::WildcardNotSupported)
    );
    assert_eq!(
        h.client
            .subscribe(h.now, sub("$share/g/a"), Default::default()),
        Err(SubscribeError::SharedNotSupported)
    );
    let props = SubscribeProperties {
        subscription_identifier: SubscriptionId::new(3),
        ..Default::default()
    };
    assert_eq!(
        h.client.subscribe(h.now, sub("a"), props),
        Err(SubscribeError::SubscriptionIdentifiersNotSupported)
    );
    assert_eq!(
        h.client.subscribe(h.now, vec![], Default::default()),
        Err(SubscribeError::NoFilters)
    );
    assert_eq!(h.drain(), Vec::<String>::new());
}

#[test]
fn subscribe_needs_a_connection() {
    let mut h = Harness::v5();
    assert_eq!(
        h.client.subscribe(
            h.now,
            filters(&[("a", QoS::AtMostOnce)]),
            Default::default()
        ),
        Err(SubscribeError::NotConnected)
    );
}

/// A request the server never answered is sent again after the next CONNACK.
#[test]
fn unanswered_subscribe_is_resent_after_reconnect() {
    let mut h = Harness::v5();
    h.connect();
    h.client
        .subscribe(
            h.now,
            filters(&[("a", QoS::AtLeastOnce)]),
            Default::default(),
        )
        .unwrap();
    h.drain();
    h.client.handle_closed(h.now);
    h.drain();
    let out = h.connect();
    assert_eq!(out.last().unwrap(), "send SUBSCRIBE 1 a:1");
    assert_eq!(
        h.recv(suback(1, &[0x01])),
        ["persist rm-req 1", "event subscribed 1 0x01"]
    );
}

/// Section 3.8.3.1: the v5 subscription options and the Subscription Identifier reach the
/// wire as given.
#[test]
fn v5_subscription_options_on_the_wire() {
    let mut h = Harness::v5();
    h.connect();
    let opts = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: mqtt_codec::RetainHandling::DoNotSend,
    };
    let props = SubscribeProperties {
        subscription_identifier: SubscriptionId::new(42),
        ..Default::default()
    };
    h.client
        .subscribe(
            h.now,
            vec![(TopicFilter::from_static("a/#"), opts)],
            props.clone(),
        )
        .unwrap();
    h.drain();
    let Some(Action::Send(Packet::Subscribe(s))) = h.actions.last() else {
        panic!()
    };
    assert_eq!(s.filters, [(TopicFilter::from_static("a/#"), opts)]);
    assert_eq!(s.properties, props);
}

/// [MQTT-3.2.2-15]: a request resent after a reconnect must fit the new server's Maximum
/// Packet Size; one that does not is dropped with an event (not silently kept forever),
/// its identifier freed, and the rest still go.
#[test]
fn resent_request_too_large_for_the_new_server() {
    let mut h = Harness::v5();
    h.connect();
    let long = TopicFilter::new("f/".repeat(20) + "#").unwrap();
    h.client
        .subscribe(
            h.now,
            vec![(long, SubscriptionOptions::default())],
            Default::default(),
        )
        .unwrap();
    h.client
        .unsubscribe(
            h.now,
            vec![TopicFilter::from_static("a")],
            Default::default(),
        )
        .unwrap();
    h.drain();
    h.client.handle_closed(h.now);
    h.drain();
    let out = h.connect_with(connack_with(|p| {
        p.maximum_packet_size = std::num::NonZeroU32::new(30)
    }));
    assert_eq!(
        out[2..],
        [
            "persist rm-req 1",
            "event request-dropped 1 PacketTooLarge",
            "send UNSUBSCRIBE 2 a"
        ]
    );
    assert!(
        h.client
            .session_state()
            .requests
            .iter()
            .all(|r| r.packet_id() != id(1))
    );
}
