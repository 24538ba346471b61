//! How much heap the client holds, counted by an instrumented allocator: at rest once
//! connected, and per QoS 1 message in flight (the README quotes the figures this test
//! prints). It runs the library with and without std alike.
//!
//! The messages use a static topic and payload, so what is counted is the client's own
//! bookkeeping, not the message's bytes (which a `Bytes` payload shares with the caller).

use std::alloc::System;

use mqtt_codec::{MqttString, Packet, ProtocolVersion, PubResponse, QoS, TopicName};
use mqtt_session::client::{Client, ClientConfig, Message};
use mqtt_session::time::Instant;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed since `region` began.
fn held(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

fn connected(version: ProtocolVersion) -> Client {
    let now = Instant::ZERO;
    let config = ClientConfig::new(version, MqttString::from_static("sensor-0001"));
    let mut client = Client::new(config);
    client.connect(now).unwrap();
    client.handle_packet(now, Packet::ConnAck(Box::default()));
    while client.poll_action().is_some() {}
    client
}

/// The client's heap at rest, and per QoS 1 message in flight, under both versions. Run
/// with `--nocapture` to see the figures.
#[test]
fn the_client_holds_little_at_rest_and_per_message_in_flight() {
    const N: usize = 1000;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let now = Instant::ZERO;
        let region = Region::new(GLOBAL);
        let mut client = connected(version);
        let at_rest = held(&region);

        let region = Region::new(GLOBAL);
        let mut ids = Vec::with_capacity(N);
        let ids_bytes = held(&region);
        for _ in 0..N {
            let msg = Message::new(
                TopicName::from_static("sensors/kitchen/temperature"),
                "21.5",
            )
            .with_qos(QoS::AtLeastOnce);
            ids.push(client.publish(now, msg).unwrap().unwrap());
            while client.poll_action().is_some() {}
        }
        assert_eq!(client.in_flight() + client.queued(), N);
        let per_message = (held(&region) - ids_bytes) / N as isize;

        // Once acknowledged, the bookkeeping goes (tables may keep their capacity).
        for id in ids.drain(..) {
            client.handle_packet(now, Packet::PubAck(PubResponse::new(id)));
            while client.poll_action().is_some() {}
        }
        assert_eq!(client.in_flight() + client.queued(), 0);
        let after = held(&region) - ids_bytes;

        println!(
            "{version:?}: at rest {at_rest} bytes; per QoS 1 message in flight {per_message} \
             bytes; after all {N} were acknowledged {after} bytes still held (spare capacity)"
        );
        assert!(at_rest > 0 && at_rest < 2048, "at rest: {at_rest} bytes");
        assert!(
            per_message > 0 && per_message < 768,
            "per message: {per_message} bytes"
        );
        assert!(after < 4096, "after: {after} bytes");
    }
}
