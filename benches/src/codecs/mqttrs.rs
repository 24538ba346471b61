//! mqttrs (MQTT 3.1.1 only).

use bytes::Bytes;
use mqtt_codec::ProtocolVersion;

use super::frame_len;
use crate::Codec;

/// mqttrs: `decode_slice` in a loop over a byte slice (packets borrow from it),
/// `encode_slice` into a reused byte buffer. `decode_slice` does not say how many bytes it
/// read, so the loop reads each packet's length from its fixed header (`frame_len`).
pub struct Mqttrs;

/// A reused output buffer and how much of it is written.
pub struct SliceOut {
    buf: Vec<u8>,
    len: usize,
}

impl Codec for Mqttrs {
    const NAME: &'static str = "mqttrs 0.4";
    type Packet<'a> = mqttrs::Packet<'a>;
    type Input = Bytes;
    type EncodeInput = ();
    type Output = SliceOut;

    fn unsupported(version: ProtocolVersion) -> Option<&'static str> {
        version.is_v5().then_some("MQTT 3.1.1 only")
    }

    fn input(wire: &Bytes) -> Bytes {
        // Decoding reads a slice and never writes it, so the input needs no copy.
        wire.clone()
    }

    fn decode_all<'a>(
        input: &'a mut Bytes,
        _: ProtocolVersion,
        sink: &mut dyn FnMut(mqttrs::Packet<'a>),
    ) -> Result<usize, String> {
        let input: &'a Bytes = input;
        let mut rest: &'a [u8] = input;
        let mut n = 0;
        while !rest.is_empty() {
            match mqttrs::decode_slice(rest) {
                Ok(Some(p)) => sink(p),
                Ok(None) => return Err("buffer ends inside a packet".into()),
                Err(e) => return Err(format!("{e:?}")),
            }
            let len = frame_len(rest).ok_or("bad frame")?;
            rest = &rest[len..];
            n += 1;
        }
        Ok(n)
    }

    fn encode_input(_: &[mqttrs::Packet<'_>]) {}

    fn output(capacity: usize) -> SliceOut {
        SliceOut {
            buf: vec![0; capacity],
            len: 0,
        }
    }

    fn encode_all(
        packets: &[mqttrs::Packet<'_>],
        _: &mut (),
        _: ProtocolVersion,
        out: &mut SliceOut,
    ) -> Result<(), String> {
        out.len = 0;
        for p in packets {
            let n =
                mqttrs::encode_slice(p, &mut out.buf[out.len..]).map_err(|e| format!("{e:?}"))?;
            out.len += n;
        }
        Ok(())
    }

    fn output_bytes(out: &SliceOut) -> Vec<u8> {
        out.buf[..out.len].to_vec()
    }
}
