//! Codec benchmarks: our codec and the other Rust MQTT codecs, on the same bytes.
//!
//! - [`cases`]: the packets each case decodes and encodes.
//! - [`Codec`]: how one codec decodes a buffer and encodes packets; [`codecs`] implements it
//!   for ours and for each peer.
//! - [`Job`]: one timed operation (decode or encode one case with one codec), with the
//!   untimed setup split off, so the same job runs under criterion, in the interleaved race
//!   of the `compare` binary, and under callgrind.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cases;
pub mod codecs;
pub mod race;

use std::hint::black_box;

use bytes::Bytes;
use mqtt_codec::{DecodeContext, Packet, ProtocolVersion};

pub use cases::Case;

/// A codec under test.
///
/// `decode_all` and `encode_all` are the measured operations; the rest is setup. Every
/// method that can fail returns a message instead of panicking, so a codec that cannot
/// handle a case shows up in the table as "n/a" with the reason.
pub trait Codec: 'static {
    /// The name in the table.
    const NAME: &'static str;
    /// Whether the codec also encodes (a decode-only path is listed in the decode tables
    /// alone).
    const ENCODES: bool = true;
    /// A decoded packet, which may borrow from the input buffer.
    type Packet<'a>;
    /// The buffer `decode_all` drains (the codec's own buffer type).
    type Input;
    /// What `encode_all` consumes besides the packets: `()`, or owned copies for codecs
    /// whose encoder takes packets by value.
    type EncodeInput;
    /// The reused buffer `encode_all` writes into.
    type Output;

    /// Why the codec cannot handle protocol `version`, if it cannot.
    fn unsupported(version: ProtocolVersion) -> Option<&'static str>;

    /// Copies `wire` into the codec's input buffer (untimed).
    fn input(wire: &Bytes) -> Self::Input;

    /// Decodes every packet in `input`, one after another as a receiver drains its read
    /// buffer, handing each to `sink`. Returns how many there were.
    fn decode_all<'a>(
        input: &'a mut Self::Input,
        version: ProtocolVersion,
        sink: &mut dyn FnMut(Self::Packet<'a>),
    ) -> Result<usize, String>;

    /// Prepares what `encode_all` consumes (untimed).
    fn encode_input(packets: &[Self::Packet<'_>]) -> Self::EncodeInput;

    /// An empty output buffer that holds `capacity` bytes without growing.
    fn output(capacity: usize) -> Self::Output;

    /// The output buffer for checking: like `output`, but `output_bytes` must see every
    /// byte (codecs that only list slices for a vectored write copy them here).
    fn checked_output(capacity: usize) -> Self::Output {
        Self::output(capacity)
    }

    /// Clears `out` and encodes every packet into it, in order: from `packets`, or from
    /// `input` for codecs that take packets by value.
    fn encode_all(
        packets: &[Self::Packet<'_>],
        input: &mut Self::EncodeInput,
        version: ProtocolVersion,
        out: &mut Self::Output,
    ) -> Result<(), String>;

    /// The bytes in `out`, for checking the encoding.
    fn output_bytes(out: &Self::Output) -> Vec<u8>;
}

/// Decode or encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Decode every packet of a buffer.
    Decode,
    /// Encode every packet into a reused buffer.
    Encode,
}

impl Op {
    /// `decode` or `encode`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Decode => "decode",
            Op::Encode => "encode",
        }
    }
}

/// One measured operation with its setup split off.
pub trait Job {
    /// Prepares the next run (untimed): fresh input buffers, cleared output.
    fn setup(&mut self);
    /// The measured operation.
    fn run(&mut self);
}

/// How many copies of the case one run processes: enough for about 256 KiB and at least
/// 64 packets, so that a run takes long enough to time.
pub fn repeats(case: &Case) -> usize {
    let by_bytes = (256 * 1024usize).div_ceil(case.wire.len().max(1));
    let by_packets = 64usize.div_ceil(case.packets.len().max(1));
    by_bytes.max(by_packets).clamp(1, 8192)
}

/// The case's wire bytes repeated `repeats(case)` times, and its packets likewise.
pub fn batch(case: &Case) -> (Bytes, Vec<Packet>) {
    let r = repeats(case);
    let mut wire = Vec::with_capacity(case.wire.len() * r);
    let mut packets = Vec::with_capacity(case.packets.len() * r);
    for _ in 0..r {
        wire.extend_from_slice(&case.wire);
        packets.extend(case.packets.iter().cloned());
    }
    (Bytes::from(wire), packets)
}

/// Checks `C` against our codec on `case` and returns its decoded packets (one batch).
///
/// The codec must decode the batch into as many packets as it holds, and what it encodes
/// from them must decode with our codec into the same packets: a corrupt encoding is not a
/// fast one. The error says which step failed.
pub fn check<C: Codec>(case: &Case, wire: &Bytes, ours: &[Packet]) -> Result<(), String> {
    if let Some(why) = C::unsupported(case.version) {
        return Err(why.to_owned());
    }
    let mut input = C::input(wire);
    let mut decoded = Vec::new();
    let n = C::decode_all(&mut input, case.version, &mut |p| decoded.push(p))
        .map_err(|e| format!("decode: {e}"))?;
    if n != ours.len() || decoded.len() != ours.len() {
        return Err(format!("decode: {n} packets instead of {}", ours.len()));
    }
    Ok(())
}

/// Encodes with `C` after decoding with `C`, and decodes the result with our codec.
pub fn check_encode<C: Codec>(case: &Case, wire: &Bytes, ours: &[Packet]) -> Result<(), String> {
    let mut input = C::input(wire);
    let mut decoded = Vec::new();
    C::decode_all(&mut input, case.version, &mut |p| decoded.push(p))
        .map_err(|e| format!("decode: {e}"))?;
    let mut ein = C::encode_input(&decoded);
    let mut out = C::checked_output(wire.len());
    C::encode_all(&decoded, &mut ein, case.version, &mut out)
        .map_err(|e| format!("encode: {e}"))?;
    let bytes = C::output_bytes(&out);
    let cx = DecodeContext::new(case.version);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    for (i, want) in ours.iter().enumerate() {
        match Packet::decode(&mut buf, &cx) {
            Ok(Some(got)) if &got == want => {}
            Ok(Some(got)) => {
                return Err(format!(
                    "encoding of packet {i} decodes differently: {}",
                    first_difference(want, &got)
                ));
            }
            Ok(None) => return Err(format!("encoding ends inside packet {i}")),
            Err(e) => return Err(format!("encoding of packet {i} is invalid: {e}")),
        }
    }
    if !buf.is_empty() {
        return Err(format!("{} bytes left over after the encoding", buf.len()));
    }
    Ok(())
}

fn first_difference(want: &Packet, got: &Packet) -> String {
    let (w, g) = (format!("{want:?}"), format!("{got:?}"));
    let at = w
        .bytes()
        .zip(g.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let from = at.saturating_sub(40);
    format!(
        "want ..{}.. got ..{}..",
        w.get(from..(at + 40).min(w.len())).unwrap_or(""),
        g.get(from..(at + 40).min(g.len())).unwrap_or("")
    )
}

/// Decoding a batch with codec `C`.
pub struct DecodeJob<C: Codec> {
    wire: Bytes,
    version: ProtocolVersion,
    input: Option<C::Input>,
}

impl<C: Codec> DecodeJob<C> {
    /// A job decoding `wire`.
    pub fn new(wire: Bytes, version: ProtocolVersion) -> Self {
        Self {
            wire,
            version,
            input: None,
        }
    }
}

impl<C: Codec> Job for DecodeJob<C> {
    fn setup(&mut self) {
        self.input = Some(C::input(&self.wire));
    }

    fn run(&mut self) {
        if let Some(mut input) = self.input.take() {
            // Each packet is handed to the sink and dropped there, as a receiver that
            // processes one packet at a time would.
            let r = C::decode_all(&mut input, self.version, &mut |p| {
                black_box(&p);
                drop(p);
            });
            black_box(r.ok());
            drop(input);
        }
    }
}

/// Encoding a batch with codec `C` into a reused buffer.
pub struct EncodeJob<C: Codec> {
    packets: Vec<C::Packet<'static>>,
    version: ProtocolVersion,
    input: Option<C::EncodeInput>,
    out: C::Output,
}

impl<C: Codec> EncodeJob<C> {
    /// A job encoding what `C` decodes from `wire` (so every codec encodes the same
    /// packets), into a buffer of `wire.len()` bytes.
    ///
    /// The decoded input buffer is leaked, since packets of some codecs borrow from it: a
    /// few per process, each the size of one batch.
    pub fn new(wire: &Bytes, version: ProtocolVersion) -> Result<Self, String> {
        let input: &'static mut C::Input = Box::leak(Box::new(C::input(wire)));
        let mut packets = Vec::new();
        C::decode_all(input, version, &mut |p| packets.push(p))?;
        Ok(Self {
            packets,
            version,
            input: None,
            out: C::output(wire.len()),
        })
    }
}

impl<C: Codec> Job for EncodeJob<C> {
    fn setup(&mut self) {
        self.input = Some(C::encode_input(&self.packets));
    }

    fn run(&mut self) {
        if let Some(mut input) = self.input.take() {
            black_box(C::encode_all(&self.packets, &mut input, self.version, &mut self.out).ok());
            black_box(&self.out);
            drop(input);
        }
    }
}

/// The physical reference: copying the batch's bytes into a reused buffer.
pub struct MemcpyJob {
    wire: Bytes,
    out: Vec<u8>,
}

impl MemcpyJob {
    /// A job copying `wire`.
    pub fn new(wire: Bytes) -> Self {
        let out = Vec::with_capacity(wire.len());
        Self { wire, out }
    }
}

impl Job for MemcpyJob {
    fn setup(&mut self) {}

    fn run(&mut self) {
        self.out.clear();
        self.out.extend_from_slice(black_box(&self.wire));
        black_box(&self.out);
    }
}
