//! Shared inputs for the benchmarks: the packets each case decodes and encodes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use mqtt_codec::{Packet, ProtocolVersion, Publish, TopicName};

/// Case 1: a QoS 0 PUBLISH with a 10-byte topic and a 32-byte payload, encoded for `v`.
pub fn small_publish(v: ProtocolVersion) -> Vec<u8> {
    let p = Publish::new(TopicName::from_static("abcde/ghij"), vec![b'x'; 32]);
    Packet::Publish(p)
        .to_bytes(v)
        .map(|b| b.to_vec())
        .unwrap_or_default()
}
