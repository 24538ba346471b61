//! What a delivery allocates: a counting global allocator around the broker's handling of
//! one QoS 1 PUBLISH with a user property, decoded from a read buffer as a driver decodes
//! it, up to the subscriber's PUBACK. (One test in this binary, so no other thread
//! allocates while it counts.)

use std::alloc::System;

use mqtt_codec::*;
use mqtt_session::broker::{Broker, BrokerAction, BrokerConfig, ConnectionId};
use mqtt_session::time::Instant;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far.
fn allocations() -> usize {
    let s = GLOBAL.stats();
    s.allocations + s.reallocations
}

const PUBLISHER: ConnectionId = ConnectionId(1);

/// A broker with `subscribers` durable v5 sessions subscribed to `t/#` at QoS 1 (with a
/// Subscription Identifier when `with_id`), and a v5 publisher.
fn broker(subscribers: u64, with_id: bool) -> Broker {
    let now = Instant::ZERO;
    let mut b = Broker::new(BrokerConfig::default());
    let mut connect = |conn: ConnectionId, id: String, durable: bool| {
        b.handle_opened(now, conn);
        let mut c = Connect::new(ProtocolVersion::V5, MqttString::new(id).unwrap());
        if durable {
            c.clean_start = false;
            c.properties.session_expiry_interval = Some(3600);
        }
        b.handle_packet(now, conn, Packet::Connect(Box::new(c)));
    };
    connect(PUBLISHER, "publisher".into(), false);
    for s in 0..subscribers {
        connect(ConnectionId(10 + s), format!("subscriber-{s}"), true);
    }
    for s in 0..subscribers {
        let filter = (
            TopicFilter::new("t/#").unwrap(),
            SubscriptionOptions::qos(QoS::AtLeastOnce),
        );
        let mut sub = Subscribe::new(PacketId::new(1).unwrap(), vec![filter]);
        if with_id {
            sub.properties.subscription_identifier = SubscriptionId::new(7);
        }
        b.handle_packet(now, ConnectionId(10 + s), Packet::Subscribe(sub));
    }
    while b.poll_action().is_some() {}
    b
}

/// A QoS 1 PUBLISH with a user property, decoded from a 64 KiB read buffer.
fn incoming(packet_id: u16, cx: &DecodeContext) -> Packet {
    let mut p = Publish::new(TopicName::new("t/sensor").unwrap(), vec![7u8; 64]);
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(packet_id).unwrap());
    p.properties
        .user_properties
        .push((MqttString::new("k").unwrap(), MqttString::new("v").unwrap()));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    buf.extend_from_slice(&Packet::Publish(p).to_bytes(ProtocolVersion::V5).unwrap());
    Packet::decode(&mut buf, cx).unwrap().unwrap()
}

/// Allocations per message delivered to `subscribers` durable subscribers: from the
/// PUBLISH handed to the broker, through every action (the store operations, the PUBACK,
/// the deliveries and their written reports), to each subscriber's PUBACK and its store
/// operation. The packets handed in are made before counting.
fn per_message(subscribers: u64, with_id: bool) -> f64 {
    let now = Instant::ZERO;
    let mut b = broker(subscribers, with_id);
    let cx = DecodeContext::new(ProtocolVersion::V5);
    let rounds = 50u16;
    let mut total = 0;
    let mut actions = Vec::with_capacity(64);
    for round in 1..=rounds {
        let packet = incoming(round, &cx);
        let acks: Vec<_> = (0..subscribers)
            .map(|s| {
                let ack = Packet::PubAck(PubResponse::new(PacketId::new(round).unwrap()));
                (ConnectionId(10 + s), ack)
            })
            .collect();
        let before = allocations();
        b.handle_packet(now, PUBLISHER, packet);
        let mut delivered = 0;
        while let Some(a) = b.poll_action() {
            actions.push(a);
        }
        for a in actions.drain(..) {
            if let BrokerAction::Send {
                connection, len, ..
            } = a
            {
                if connection != PUBLISHER {
                    delivered += 1;
                }
                b.handle_written(now, connection, len);
            }
        }
        while b.poll_action().is_some() {}
        for (conn, ack) in acks {
            b.handle_packet(now, conn, ack);
            while b.poll_action().is_some() {}
        }
        let spent = allocations() - before;
        assert_eq!(delivered, subscribers, "round {round}");
        // The first rounds grow the broker's reusable buffers.
        if round > 10 {
            total += spent;
        }
    }
    total as f64 / f64::from(rounds - 10)
}

/// The message is copied once out of its read buffer, whatever the number of subscribers
/// (its bytes, their shared count, its properties and its list of User Properties: see
/// `broker/owned.rs`); each durable delivery then shares that copy and allocates nothing,
/// or once for its Subscription Identifier (the properties it shares are copied on write).
#[test]
fn a_durable_qos1_delivery_with_properties_allocates_at_most_once() {
    for with_id in [false, true] {
        let one = per_message(1, with_id);
        let ten = per_message(10, with_id);
        let delivery = (ten - one) / 9.0;
        let copy = one - delivery;
        eprintln!(
            "subscription identifier {with_id}: {one:.2} for one subscriber, {ten:.2} for ten; \
             {delivery:.2} per delivery, {copy:.2} for the message's copy"
        );
        let most = if with_id { 1.0 } else { 0.0 };
        assert!(
            delivery <= most,
            "{delivery:.2} allocations per durable delivery (subscription identifier: {with_id})"
        );
        assert!(copy <= 4.0, "{copy:.2} allocations copying the message");
    }
}
