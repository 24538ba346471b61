//! Decode and encode timings for the codec.
use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use mqtt_codec::{DecodeContext, Packet, ProtocolVersion};

fn decode(c: &mut Criterion) {
    for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let wire = benches::small_publish(v);
        let cx = DecodeContext::new(v);
        c.bench_function(&format!("decode small publish {v}"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                black_box(Packet::decode(&mut buf, &cx).ok())
            })
        });
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
