//! Encoder and decoder for every MQTT 3.1.1 and 5.0 control packet (and MQTT 3.1 CONNECT).
//!
//! - **Streaming**: [`Packet::decode`] takes one packet off the front of a [`BytesMut`], or
//!   says it needs more bytes ([`Packet::decode_stream`] says how many) and consumes nothing.
//! - **Zero-copy**: payloads, topics and strings of a decoded packet are slices of the input
//!   buffer ([`Bytes`], and [`MqttString`]/[`TopicName`]/[`TopicFilter`] wrapping them).
//! - **Strict**: every malformed or illegal input is a [`DecodeError`] naming the packet,
//!   the rule it broke (with its normative statement id, such as `[MQTT-3.3.2-2]`) and the
//!   reason code to answer with. Decoding never panics.
//! - **Bounded**: [`DecodeContext::max_packet_size`] is checked from the fixed header,
//!   before the body is buffered; nothing a peer declares makes the decoder allocate.
//!
//! One struct serves each packet in both versions; v5-only data lives in the properties
//! and reason codes, and encoding something 3.1.1 cannot carry is an [`EncodeError`].
//!
//! ```
//! use bytes::BytesMut;
//! use mqtt_codec::{DecodeContext, Packet, ProtocolVersion, Publish, QoS, QosPid, PacketId, TopicName};
//!
//! // Encode a QoS 1 PUBLISH for MQTT 5.0.
//! let mut publish = Publish::new(TopicName::new("sensors/kitchen/temp")?, "21.5");
//! publish.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut wire)?;
//!
//! // Decode it again, as a receiver would, from a stream that arrives in pieces.
//! let cx = DecodeContext::new(ProtocolVersion::V5);
//! let mut rx = BytesMut::from(&wire[..5]);
//! assert_eq!(Packet::decode(&mut rx, &cx)?, None); // incomplete: nothing consumed
//! rx.extend_from_slice(&wire[5..]);
//! let Some(Packet::Publish(got)) = Packet::decode(&mut rx, &cx)? else { panic!() };
//! assert_eq!(got, publish);
//! assert_eq!(got.qos(), QoS::AtLeastOnce);
//! assert!(rx.is_empty());
//!
//! // A wildcard in a PUBLISH topic is refused with the rule it breaks.
//! let bad = [0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#'];
//! let err = Packet::decode(&mut BytesMut::from(&bad[..]), &cx).unwrap_err();
//! assert_eq!(err.rule_id(), Some("MQTT-3.3.2-2"));
//! assert_eq!(err.reason_code().0, 0x81); // Malformed Packet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
// `unsafe` is denied everywhere but in `in_place` and `ascii`, which say why they need it.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;

mod ascii;
mod coding;
mod error;
mod in_place;
mod list;
mod packet;
mod properties;
mod reason;
mod string;
mod types;

#[cfg(feature = "tokio-util")]
mod codec;
#[cfg(feature = "tokio-util")]
pub use codec::{CodecError, MqttCodec};

pub use bytes::{Bytes, BytesMut};
pub use bytestring::ByteString;

pub use coding::MAX_VARIABLE_BYTE_INTEGER;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use list::{List, SubscriptionIds};
pub use packet::{
    Auth, ConnAck, Connect, DecodeContext, Decoded, Disconnect, Frame, MAX_PACKET_SIZE, Packet,
    PacketRef, PubResponse, Publish, PublishRef, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will, check_frame,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    EmptyProperties, Properties, PropertyId, PublishProperties, SubscribeProperties,
    SubscriptionId, UnsubscribeProperties, UserProperty, WillProperties,
};
pub use reason::ReasonCode;
pub use string::{MqttString, StringError, TopicFilter, TopicName, matches_filter};
pub use types::{PacketId, PacketType, ProtocolVersion, QoS, QosPid};

/// Serializes a payload as text when it is UTF-8, else as hex, so that logs stay readable.
#[cfg(feature = "serde")]
fn serde_payload<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match core::str::from_utf8(b) {
        Ok(text) => s.serialize_str(text),
        Err(_) => {
            let mut st = s.serialize_struct("Binary", 1)?;
            let hex: alloc::string::String = b.iter().map(|x| alloc::format!("{x:02x}")).collect();
            st.serialize_field("hex", &hex)?;
            st.end()
        }
    }
}

/// [`serde_payload`] for an optional field.
#[cfg(feature = "serde")]
fn serde_opt_payload<S: serde::Serializer>(b: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => serde_payload(b, s),
        None => s.serialize_none(),
    }
}
