//! Heap allocations per packet, decoding and encoding each case with each codec: backs the
//! zero-copy claim with counts instead of timings (`cargo run --release -p benches --bin
//! allocs`). A counting global allocator sees every allocation the measured run makes.
#![forbid(unsafe_code)]

use std::alloc::System;
use std::fmt::Write as _;

use benches::cases;
use benches::race::{Kind, plan};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let cases = cases::all();
    let mut entries = plan(&cases, None);
    let mut cols: Vec<&'static str> = Vec::new();
    for e in &entries {
        if matches!(e.kind, Kind::Codec(_)) && !cols.contains(&e.codec) {
            cols.push(e.codec);
        }
    }
    // Allocations of one run, per packet.
    let mut counts = Vec::new();
    for e in entries.iter_mut() {
        let Ok(job) = &mut e.job else {
            counts.push(None);
            continue;
        };
        job.setup();
        job.run();
        job.setup();
        let region = Region::new(GLOBAL);
        job.run();
        let stats = region.change();
        counts.push(Some(stats.allocations as f64 / e.packets as f64));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Heap allocations per packet (one run; `-` = the codec cannot do this case, see the \
         `compare` notes).\n"
    );
    for (kind, title) in [
        (Kind::Codec(benches::Op::Decode), "Decode"),
        (
            Kind::Codec(benches::Op::Encode),
            "Encode into a reused buffer",
        ),
    ] {
        let _ = writeln!(out, "### {title}\n");
        let mut head = String::from("| case |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(head, " {c} |");
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for (ci, case) in cases.iter().enumerate() {
            let mut line = format!("| {} |", case.label());
            for c in &cols {
                let v = entries
                    .iter()
                    .zip(&counts)
                    .find(|(e, _)| e.case == ci && e.kind == kind && e.codec == *c)
                    .and_then(|(_, n)| *n);
                let cell = match v {
                    Some(0.0) => "0".to_owned(),
                    Some(n) if n < 0.01 => format!("{n:.4}"),
                    Some(n) => format!("{n:.2}"),
                    None => "-".to_owned(),
                };
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    print!("{out}");
}
