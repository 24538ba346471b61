//! The packets that travel most stay small to move, and properties that are absent cost
//! no allocation: v5 properties of PUBLISH, DISCONNECT and AUTH sit behind one shared
//! pointer (`Properties`), allocated only where a packet carries some.

use std::mem::size_of;

use mqtt_codec::*;

#[test]
fn the_hot_packets_fit_in_96_bytes() {
    // A PUBLISH is its topic and payload (two `Bytes`), a pointer to its properties, and a
    // few flags; a `Packet` is no larger than its largest variant.
    assert!(
        size_of::<Publish>() <= 80,
        "Publish is {} bytes",
        size_of::<Publish>()
    );
    assert!(
        size_of::<Packet>() <= 96,
        "Packet is {} bytes",
        size_of::<Packet>()
    );
    assert_eq!(
        size_of::<Properties<PublishProperties>>(),
        size_of::<usize>()
    );
}

#[test]
fn absent_properties_read_as_empty_and_compare_equal_to_empty_ones() {
    let mut a = Publish::new(TopicName::new("a").unwrap(), "x");
    let b = a.clone();
    assert!(a.properties.is_empty());
    assert_eq!(a.properties.topic_alias, None);
    // Written once, then cleared: equal to one that never had any.
    a.properties.message_expiry_interval = Some(5);
    assert_ne!(a, b);
    a.properties.message_expiry_interval = None;
    assert_eq!(a, b);
    assert_eq!(a.properties, Properties::default());
}

#[test]
fn copies_share_properties_until_one_changes_them() {
    let mut p = Publish::new(TopicName::new("a").unwrap(), "x");
    p.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    let mut copy = p.clone();
    copy.properties.message_expiry_interval = Some(9);
    // Copy on write: the original keeps what it had.
    assert_eq!(p.properties.message_expiry_interval, None);
    assert_eq!(copy.properties.content_type, p.properties.content_type);
    assert!(copy.properties.get_mut().is_some());
    let mut none = Publish::new(TopicName::new("a").unwrap(), "x");
    assert!(
        none.properties.get_mut().is_none(),
        "get_mut allocates nothing"
    );
}

#[test]
fn decoding_a_packet_without_properties_allocates_none() {
    // A v5 PUBLISH with a Property Length of 0, and one with a Message Expiry Interval.
    static BARE: [u8; 7] = [0x30, 0x05, 0x00, 0x01, b'a', 0x00, b'x'];
    static WITH: [u8; 12] = [0x30, 0x0a, 0x00, 0x01, b'a', 0x05, 0x02, 0, 0, 0, 9, b'x'];
    let cx = DecodeContext::new(ProtocolVersion::V5);
    let Packet::Publish(mut p) = Packet::decode_exact(Bytes::from_static(&BARE), &cx).unwrap()
    else {
        panic!("a PUBLISH");
    };
    assert!(p.properties.get_mut().is_none());
    let Packet::Publish(mut p) = Packet::decode_exact(Bytes::from_static(&WITH), &cx).unwrap()
    else {
        panic!("a PUBLISH");
    };
    assert_eq!(
        p.properties.get_mut().map(|p| p.message_expiry_interval),
        Some(Some(9))
    );
    assert_eq!(p.payload, "x");
}

#[test]
fn empty_properties_set_at_once_allocate_nothing_and_a_publish_measures_itself() {
    let mut p = Publish::new(TopicName::new("a/b").unwrap(), "x");
    p.properties = PublishProperties::default().into();
    assert!(p.properties.get_mut().is_none());
    p.properties = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    }
    .into();
    assert!(p.properties.get_mut().is_some());
    // The same length as the packet's, with no `Packet` around it.
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let q = Publish::new(TopicName::new("a/b").unwrap(), "x");
        assert_eq!(
            q.encoded_len(version),
            Packet::Publish(q.clone()).encoded_len(version)
        );
    }
    assert_eq!(
        p.encoded_len(ProtocolVersion::V5),
        Packet::Publish(p.clone()).encoded_len(ProtocolVersion::V5)
    );
    // A v5 property cannot go out under 3.1.1: the same error either way.
    assert_eq!(
        p.encoded_len(ProtocolVersion::V3_1_1),
        Packet::Publish(p.clone()).encoded_len(ProtocolVersion::V3_1_1)
    );
    assert!(p.encoded_len(ProtocolVersion::V3_1_1).is_err());
}
