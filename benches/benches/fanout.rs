//! Broker fan-out in the sans-IO core, with no I/O: one PUBLISH handed to
//! `Broker::handle_packet` and delivered to 1, 100 and 10,000 subscribers.
//!
//! Every subscriber is a connected v5 client subscribed to `sensors/+/temp`; the publisher
//! sends `sensors/42/temp` with a 32-byte payload. One iteration is one publish: the call
//! that routes it, then draining every action the broker hands back, as a driver must.
//! Criterion's throughput is in deliveries (one per subscriber), so publishes per second
//! are deliveries per second divided by the number of subscribers.
//!
//! - `qos0`: the actions are taken and dropped; no packet is encoded.
//! - `qos0_encoded`: each outgoing PUBLISH is also encoded (v5) into a reused buffer, the
//!   work a driver does before writing it; this is the figure to compare with a broker.
//! - `qos1_acked`: QoS 1 publish and QoS 1 subscriptions; each subscriber's PUBACK is handed
//!   back to the broker within the iteration (the full handshake, its actions drained),
//!   nothing encoded.
//!
//! Every packet handed out is reported written (`Broker::handle_written`) as it is taken,
//! as a driver whose socket keeps up does: flow control is in the measured path.
//!
//! Before timing, each case checks that exactly one PUBLISH per subscriber came out.
//!
//! `retained_subscribe` measures the other direction of fan-out: a SUBSCRIBE that finds the
//! retained messages matching its filter among 100,000 (`site/{0..100}/device/{0..1000}/temp`)
//! and sends them, then an UNSUBSCRIBE, all actions drained. Throughput is in messages
//! sent: 1 for an exact filter, 100 for `site/+/device/42/temp`, 1,000 for `site/7/#`.
use mqtt_session::time::Instant;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_codec::{
    BytesMut, Connect, MqttString, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS,
    QosPid, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use mqtt_session::broker::{Broker, BrokerAction, BrokerConfig, ConnectionId};

const SIZES: [u64; 3] = [1, 100, 10_000];
const PUBLISHER: ConnectionId = ConnectionId(0);

/// Takes every action, reporting each packet written.
fn drain(b: &mut Broker, now: Instant) {
    while let Some(a) = b.poll_action() {
        written(b, now, &a);
    }
}

/// A driver whose socket keeps up reports a packet written once it has it.
fn written(b: &mut Broker, now: Instant, a: &BrokerAction) {
    if let BrokerAction::Send {
        connection, len, ..
    } = a
    {
        b.handle_written(now, *connection, *len);
    }
}

/// A broker with `n` subscribers at `qos` (connections 1..=n) and a publisher
/// (connection 0), every setup action drained.
fn broker(now: Instant, n: u64, qos: QoS) -> Broker {
    let mut b = Broker::new(BrokerConfig::default());
    for c in 0..=n {
        let conn = ConnectionId(c);
        b.handle_opened(now, conn);
        let id = MqttString::new(format!("client-{c}")).unwrap();
        let connect = Connect::new(ProtocolVersion::V5, id);
        b.handle_packet(now, conn, Packet::Connect(Box::new(connect)));
        if c > 0 {
            let filter = (
                TopicFilter::from_static("sensors/+/temp"),
                SubscriptionOptions::qos(qos),
            );
            let s = Subscribe::new(PacketId::new(1).unwrap(), vec![filter]);
            b.handle_packet(now, conn, Packet::Subscribe(s));
        }
        drain(&mut b, now);
    }
    b
}

fn message(qos: QoS) -> Publish {
    let mut p = Publish::new(TopicName::from_static("sensors/42/temp"), vec![b'x'; 32]);
    p.qos_pid = QosPid::new(qos, PacketId::new(1)).unwrap();
    p
}

/// Publishes once and drains the actions; returns how many PUBLISH packets went out.
fn publish_qos0(b: &mut Broker, now: Instant, msg: &Publish) -> u64 {
    b.handle_packet(now, PUBLISHER, Packet::Publish(msg.clone()));
    let mut n = 0;
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            packet: Packet::Publish(_),
            ..
        } = &a
        {
            n += 1;
        }
        written(b, now, &a);
        black_box(a);
    }
    n
}

/// Publishes once, encodes every packet sent, and returns the PUBLISH count.
fn publish_qos0_encoded(b: &mut Broker, now: Instant, msg: &Publish, buf: &mut BytesMut) -> u64 {
    b.handle_packet(now, PUBLISHER, Packet::Publish(msg.clone()));
    let mut n = 0;
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            connection,
            version,
            packet,
            len,
        } = &a
        {
            buf.clear();
            packet.encode(*version, buf).unwrap();
            n += u64::from(matches!(packet, Packet::Publish(_)));
            black_box(&buf[..]);
            b.handle_written(now, *connection, *len);
        }
    }
    n
}

/// Publishes at QoS 1, then hands back every subscriber's PUBACK; returns the PUBLISH count.
fn publish_qos1_acked(
    b: &mut Broker,
    now: Instant,
    msg: &Publish,
    acks: &mut Vec<(ConnectionId, PacketId)>,
) -> u64 {
    b.handle_packet(now, PUBLISHER, Packet::Publish(msg.clone()));
    acks.clear();
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            connection,
            packet: Packet::Publish(p),
            ..
        } = &a
            && let Some(id) = p.qos_pid.packet_id()
        {
            acks.push((*connection, id));
        }
        written(b, now, &a);
        black_box(a);
    }
    for &(conn, id) in acks.iter() {
        b.handle_packet(now, conn, Packet::PubAck(PubResponse::new(id)));
    }
    while let Some(a) = b.poll_action() {
        written(b, now, &a);
        black_box(a);
    }
    acks.len() as u64
}

fn fanout(c: &mut Criterion) {
    let now = Instant::ZERO;
    let mut g = c.benchmark_group("fanout");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);
    for &n in &SIZES {
        g.throughput(Throughput::Elements(n));

        let mut b = broker(now, n, QoS::AtMostOnce);
        let msg = message(QoS::AtMostOnce);
        assert_eq!(publish_qos0(&mut b, now, &msg), n);
        g.bench_function(BenchmarkId::new("qos0", n), |bench| {
            bench.iter(|| publish_qos0(&mut b, now, &msg))
        });

        let mut buf = BytesMut::with_capacity(256);
        assert_eq!(publish_qos0_encoded(&mut b, now, &msg, &mut buf), n);
        g.bench_function(BenchmarkId::new("qos0_encoded", n), |bench| {
            bench.iter(|| publish_qos0_encoded(&mut b, now, &msg, &mut buf))
        });

        let mut b = broker(now, n, QoS::AtLeastOnce);
        let msg = message(QoS::AtLeastOnce);
        let mut acks = Vec::new();
        assert_eq!(publish_qos1_acked(&mut b, now, &msg, &mut acks), n);
        g.bench_function(BenchmarkId::new("qos1_acked", n), |bench| {
            bench.iter(|| publish_qos1_acked(&mut b, now, &msg, &mut acks))
        });
        // Every message was acknowledged: nothing piles up between iterations.
        assert_eq!(b.queued("client-1"), Some((0, 0)));
    }
    g.finish();
}

/// A broker holding `sites` x `devices` retained messages and one connected subscriber
/// (connection 1).
fn retained_broker(now: Instant, sites: u32, devices: u32) -> Broker {
    let mut b = Broker::new(BrokerConfig::default());
    for c in 0..=1 {
        let conn = ConnectionId(c);
        b.handle_opened(now, conn);
        let id = MqttString::new(format!("client-{c}")).unwrap();
        let connect = Connect::new(ProtocolVersion::V5, id);
        b.handle_packet(now, conn, Packet::Connect(Box::new(connect)));
    }
    for s in 0..sites {
        for d in 0..devices {
            let topic = TopicName::new(format!("site/{s}/device/{d}/temp")).unwrap();
            let mut p = Publish::new(topic, vec![b'x'; 8]);
            p.retain = true;
            b.handle_packet(now, PUBLISHER, Packet::Publish(p));
            drain(&mut b, now);
        }
    }
    drain(&mut b, now);
    b
}

/// Subscribes connection 1 to `filter`, unsubscribes it again, and returns the PUBLISH
/// packets sent.
fn subscribe_retained(b: &mut Broker, now: Instant, filter: &TopicFilter) -> u64 {
    let conn = ConnectionId(1);
    let o = SubscriptionOptions::qos(QoS::AtMostOnce);
    let s = Subscribe::new(PacketId::new(1).unwrap(), vec![(filter.clone(), o)]);
    b.handle_packet(now, conn, Packet::Subscribe(s));
    let u = mqtt_codec::Unsubscribe::new(PacketId::new(2).unwrap(), vec![filter.clone()]);
    b.handle_packet(now, conn, Packet::Unsubscribe(u));
    let mut n = 0;
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            packet: Packet::Publish(_),
            ..
        } = &a
        {
            n += 1;
        }
        written(b, now, &a);
        black_box(a);
    }
    n
}

fn retained_subscribe(c: &mut Criterion) {
    let now = Instant::ZERO;
    let mut b = retained_broker(now, 100, 1000);
    let mut g = c.benchmark_group("retained_subscribe");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);
    for (name, filter, n) in [
        ("exact", "site/7/device/42/temp", 1),
        ("plus", "site/+/device/42/temp", 100),
        ("hash", "site/7/#", 1000),
    ] {
        let filter = TopicFilter::new(filter).unwrap();
        assert_eq!(subscribe_retained(&mut b, now, &filter), n);
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |bench| {
            bench.iter(|| subscribe_retained(&mut b, now, &filter))
        });
    }
    g.finish();
}

criterion_group!(benches, fanout, retained_subscribe);
criterion_main!(benches);
