//! Criterion benchmarks of every codec on every case (the same jobs as the `compare`
//! binary's race): `cargo bench -p benches --bench codec`, or a subset with a filter such
//! as `cargo bench -p benches --bench codec -- pub-small`.
//!
//! Each benchmark is named `CASE VERSION/CODEC/OP` and reports packets/s and bytes/s. On a
//! noisy machine prefer `cargo run --release -p benches --bin compare`, whose interleaved
//! race gives figures that hold still between runs.
use std::time::{Duration, Instant};

use benches::cases;
use benches::race::plan;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn codecs(c: &mut Criterion) {
    let cases = cases::all();
    let mut entries = plan(&cases, None);
    for (case_index, case) in cases.iter().enumerate() {
        let mut g = c.benchmark_group(case.label());
        for e in entries.iter_mut().filter(|e| e.case == case_index) {
            let Ok(job) = &mut e.job else {
                continue;
            };
            g.throughput(Throughput::ElementsAndBytes {
                elements: e.packets as u64,
                bytes: e.bytes as u64,
            });
            g.bench_function(format!("{}/{}", e.codec, e.kind.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        job.setup();
                        let t = Instant::now();
                        job.run();
                        total += t.elapsed();
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = codecs
}
criterion_main!(benches);
