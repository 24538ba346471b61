//! mqtt5-protocol (MQTT 5.0, and 3.1.1 through its protocol-version argument).

use bytes::{Buf, Bytes, BytesMut};
use mqtt_codec::ProtocolVersion;
use mqtt5_protocol::packet::pingreq::PingReqPacket;
use mqtt5_protocol::packet::pingresp::PingRespPacket;
use mqtt5_protocol::packet::{FixedHeader, MqttPacket, Packet};

use crate::Codec;

/// mqtt5-protocol: `FixedHeader::decode`, then the body split off the `BytesMut` (it has
/// no stream decoder of its own: the split is the same as ours) and
/// `Packet::decode_from_body_with_version`. Encoding uses `MqttPacket::encode`, and for
/// PUBLISH the faster `encode_body_direct` after a `FixedHeader`.
pub struct Mqtt5Protocol;

impl Codec for Mqtt5Protocol {
    const NAME: &'static str = "mqtt5-protocol 0.16";
    type Packet<'a> = Packet;
    type Input = BytesMut;
    type EncodeInput = ();
    type Output = BytesMut;

    fn unsupported(_: ProtocolVersion) -> Option<&'static str> {
        None
    }

    fn input(wire: &Bytes) -> BytesMut {
        BytesMut::from(&wire[..])
    }

    fn decode_all(
        input: &mut BytesMut,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Packet),
    ) -> Result<usize, String> {
        let level = version.level();
        let mut n = 0;
        while !input.is_empty() {
            let mut head: &[u8] = input;
            let fh = FixedHeader::decode(&mut head).map_err(|e| e.to_string())?;
            let header_len = input.len() - head.remaining();
            let total = header_len + fh.remaining_length as usize;
            if input.len() < total {
                return Err("buffer ends inside a packet".into());
            }
            let mut body = input.split_to(total).freeze();
            body.advance(header_len);
            let p = Packet::decode_from_body_with_version(fh.packet_type, &fh, &mut body, level)
                .map_err(|e| e.to_string())?;
            sink(p);
            n += 1;
        }
        Ok(n)
    }

    fn encode_input(_: &[Packet]) {}

    fn output(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    fn encode_all(
        packets: &[Packet],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        out.clear();
        for p in packets {
            match p {
                Packet::Publish(p) => {
                    let fh = FixedHeader::new(
                        mqtt5_protocol::PacketType::Publish,
                        p.flags(),
                        p.body_encoded_size() as u32,
                    );
                    fh.encode(out).and_then(|()| p.encode_body_direct(out))
                }
                Packet::Connect(p) => p.encode(out),
                Packet::ConnAck(p) => p.encode(out),
                Packet::PubAck(p) => p.encode(out),
                Packet::PubRec(p) => p.encode(out),
                Packet::PubRel(p) => p.encode(out),
                Packet::PubComp(p) => p.encode(out),
                Packet::Subscribe(p) => p.encode(out),
                Packet::SubAck(p) => p.encode(out),
                Packet::Unsubscribe(p) => p.encode(out),
                Packet::UnsubAck(p) => p.encode(out),
                Packet::PingReq => PingReqPacket::default().encode(out),
                Packet::PingResp => PingRespPacket::default().encode(out),
                Packet::Disconnect(p) => p.encode(out),
                Packet::Auth(p) => p.encode(out),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn output_bytes(out: &BytesMut) -> Vec<u8> {
        out.to_vec()
    }
}
