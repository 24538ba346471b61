//! ntex-mqtt's codecs (`v3::codec` for 3.1.1, `v5::codec` for 5.0), driven without a
//! runtime.

use bytes::Bytes;
use mqtt_codec::ProtocolVersion;
use ntex_bytes::{BytePageSize, BytePages, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::{v3, v5};

use crate::Codec;

/// ntex-mqtt: the `Decoder` in a loop over an ntex `BytesMut`, the `Encoder` into a reused
/// `BytePages`. It decodes a PUBLISH as a header and a payload `Bytes`, and its encoder
/// appends payloads over 4 KiB to the pages by reference (a vectored write) instead of
/// copying them. Its encoder takes packets by value: the copies it consumes are made
/// before timing.
pub struct NtexMqtt;

/// A decoded packet of either version: a packet, or a PUBLISH header and its payload.
#[derive(Debug, Clone)]
pub enum NtexPacket {
    /// MQTT 3.1.1.
    V3(v3::codec::Encoded),
    /// MQTT 5.0.
    V5(v5::codec::Encoded),
}

impl Codec for NtexMqtt {
    const NAME: &'static str = "ntex-mqtt 8.0";
    type Packet<'a> = NtexPacket;
    type Input = BytesMut;
    type EncodeInput = Vec<NtexPacket>;
    type Output = BytePages;

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> BytesMut {
        BytesMut::copy_from_slice(&wire[..])
    }

    fn decode_all(
        input: &mut BytesMut,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(NtexPacket),
    ) -> Result<usize, String> {
        let mut n = 0;
        if version.is_v5() {
            let codec = v5::codec::Codec::new();
            while !input.is_empty() {
                match codec.decode(input).map_err(|e| e.to_string())? {
                    Some(v5::codec::Decoded::Packet(p, _)) => {
                        sink(NtexPacket::V5(v5::codec::Encoded::Packet(p)))
                    }
                    Some(v5::codec::Decoded::Publish(p, payload, _)) => sink(NtexPacket::V5(
                        v5::codec::Encoded::Publish(p, Some(payload)),
                    )),
                    Some(v5::codec::Decoded::PayloadChunk(..)) => {
                        return Err("unexpected payload chunk".into());
                    }
                    None => return Err("buffer ends inside a packet".into()),
                }
                n += 1;
            }
        } else {
            let codec = v3::codec::Codec::new();
            while !input.is_empty() {
                match codec.decode(input).map_err(|e| e.to_string())? {
                    Some(v3::codec::Decoded::Packet(p, _)) => {
                        sink(NtexPacket::V3(v3::codec::Encoded::Packet(p)))
                    }
                    Some(v3::codec::Decoded::Publish(p, payload, _)) => sink(NtexPacket::V3(
                        v3::codec::Encoded::Publish(p, Some(payload)),
                    )),
                    Some(v3::codec::Decoded::PayloadChunk(..)) => {
                        return Err("unexpected payload chunk".into());
                    }
                    None => return Err("buffer ends inside a packet".into()),
                }
                n += 1;
            }
        }
        Ok(n)
    }

    fn encode_input(packets: &[NtexPacket]) -> Vec<NtexPacket> {
        packets.to_vec()
    }

    fn output(_: usize) -> BytePages {
        BytePages::new(BytePageSize::default())
    }

    fn encode_all(
        _: &[NtexPacket],
        input: &mut Vec<NtexPacket>,
        _: ProtocolVersion,
        out: &mut BytePages,
    ) -> Result<(), String> {
        out.clear();
        let c3 = v3::codec::Codec::new();
        let c5 = v5::codec::Codec::new();
        for p in input.drain(..) {
            match p {
                NtexPacket::V3(p) => c3.encodev(p, out).map_err(|e| e.to_string())?,
                NtexPacket::V5(p) => c5.encodev(p, out).map_err(|e| e.to_string())?,
            }
        }
        Ok(())
    }

    fn output_bytes(out: &BytePages) -> Vec<u8> {
        out.iter().flat_map(|s| s.iter().copied()).collect()
    }
}
