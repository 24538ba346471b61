//! The borrowing decoder (`PacketRef::decode`): a PUBLISH is a view over the read buffer,
//! and the packets a router spends its time on (messages without properties, their
//! acknowledgements, PINGs) cost no allocation. Its checks and errors are `Packet::decode`'s,
//! which `vectors.rs` and `proptest_decode.rs` compare for every vector and for random input.
//! (One test in this binary, so no other thread allocates while it counts.)

use std::alloc::System;

use mqtt_codec::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A busy connection's packets, encoded back to back.
fn stream(version: ProtocolVersion) -> (Vec<u8>, Vec<Packet>) {
    let mut q1 = Publish::new(TopicName::new("sensors/42/temperature").unwrap(), "21.5");
    q1.qos_pid = QosPid::AtLeastOnce(pid(7));
    let mut q2 = Publish::new(TopicName::new("a/b").unwrap(), vec![0u8; 300]);
    q2.qos_pid = QosPid::ExactlyOnce(pid(8));
    q2.retain = true;
    let packets = vec![
        Packet::Publish(Publish::new(TopicName::new("t").unwrap(), "x")),
        Packet::Publish(q1),
        Packet::PubAck(PubResponse::new(pid(7))),
        Packet::Publish(q2),
        Packet::PubRec(PubResponse::new(pid(8))),
        Packet::PubRel(PubResponse::new(pid(8))),
        Packet::PubComp(PubResponse::new(pid(8))),
        Packet::PingReq,
        Packet::PingResp,
    ];
    let mut wire = BytesMut::new();
    for p in &packets {
        p.encode(version, &mut wire).unwrap();
    }
    (wire.to_vec(), packets)
}

fn a_router_stream_decodes_without_allocating_in_both_versions() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let (wire, want) = stream(version);
        let cx = DecodeContext::new(version);
        let mut views = Vec::with_capacity(want.len());
        let region = Region::new(GLOBAL);
        let mut rest = &wire[..];
        while let Some((p, len)) = PacketRef::decode(rest, &cx).unwrap() {
            views.push(p);
            rest = &rest[len..];
        }
        let allocations = region.change().allocations;
        assert!(rest.is_empty());
        assert_eq!(allocations, 0, "{version:?}");
        let got: Vec<Packet> = views.iter().map(|v| v.to_packet().unwrap()).collect();
        assert_eq!(got, want, "{version:?}");
    }
}

fn a_publish_view_borrows_its_topic_and_payload_from_the_buffer() {
    let (wire, _) = stream(ProtocolVersion::V3_1_1);
    let cx = DecodeContext::new(ProtocolVersion::V3_1_1);
    let (first, len) = PacketRef::decode(&wire, &cx).unwrap().unwrap();
    let (second, _) = PacketRef::decode(&wire[len..], &cx).unwrap().unwrap();
    let PacketRef::Publish(p) = second else {
        panic!("not a PUBLISH: {second:?}");
    };
    assert!(matches!(first, PacketRef::Publish(_)));
    let range = wire.as_ptr_range();
    assert!(range.contains(&p.topic.as_ptr()) && range.contains(&p.payload.as_ptr()));
    assert_eq!(p.topic, "sensors/42/temperature");
    assert_eq!(p.payload, b"21.5");
    assert_eq!(p.qos_pid, QosPid::AtLeastOnce(pid(7)));
    assert_eq!(p.qos(), QoS::AtLeastOnce);
}

fn v5_properties_are_copied_out_once_per_packet() {
    // The property struct and its User Property list: the allocations an owned decode
    // makes for them too, plus the copy of the property block they are read from.
    let mut p = Publish::new(TopicName::new("a/b").unwrap(), "x");
    p.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    p.properties.user_properties =
        vec![(MqttString::new("k").unwrap(), MqttString::new("v").unwrap())].into();
    let packet = Packet::Publish(p);
    let wire = packet.to_bytes(ProtocolVersion::V5).unwrap();
    let cx = DecodeContext::new(ProtocolVersion::V5);

    let region = Region::new(GLOBAL);
    let (view, len) = PacketRef::decode(&wire, &cx).unwrap().unwrap();
    let borrowed = region.change().allocations;
    let mut owned_buf = BytesMut::from(&wire[..]);
    let region = Region::new(GLOBAL);
    let owned = Packet::decode(&mut owned_buf, &cx).unwrap().unwrap();
    let owned_allocs = region.change().allocations;

    assert_eq!(len, wire.len());
    assert_eq!(owned, packet);
    assert_eq!(view.to_packet().unwrap(), packet);
    // `Bytes::copy_from_slice` is one allocation; the rest is what the owned decode makes.
    assert_eq!(
        borrowed,
        owned_allocs + 1,
        "borrowed {borrowed}, owned {owned_allocs}"
    );
}

fn a_packet_cut_short_is_incomplete_and_a_bad_one_the_same_error_as_owned() {
    let (wire, _) = stream(ProtocolVersion::V3_1_1);
    let cx = DecodeContext::new(ProtocolVersion::V3_1_1);
    for k in 0..4 {
        assert_eq!(PacketRef::decode(&wire[..k], &cx), Ok(None), "prefix {k}");
    }
    // [MQTT-3.3.2-2]: a wildcard in a PUBLISH topic name.
    let bad = [0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#'];
    let owned = Packet::decode(&mut BytesMut::from(&bad[..]), &cx).unwrap_err();
    let borrowed = PacketRef::decode(&bad, &cx).unwrap_err();
    assert_eq!(borrowed, owned);
    assert!(
        borrowed.to_string().contains("[MQTT-3.3.2-2]"),
        "{borrowed}"
    );
}

#[test]
fn borrowed_decoding() {
    a_router_stream_decodes_without_allocating_in_both_versions();
    a_publish_view_borrows_its_topic_and_payload_from_the_buffer();
    v5_properties_are_copied_out_once_per_packet();
    a_packet_cut_short_is_incomplete_and_a_bad_one_the_same_error_as_owned();
}
