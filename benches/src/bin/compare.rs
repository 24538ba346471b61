//! Our codec against the other Rust MQTT codecs, on the same bytes, in one interleaved race;
//! prints Markdown tables.
//!
//! ```text
//! cargo run --release -p benches --bin compare                  # the race (about a minute)
//! cargo run --release -p benches --bin compare -- --callgrind   # also instructions per packet
//! ```
//!
//! Options: `--rounds N` (default 60), `--budget SECONDS` (default 120), `--case ID`
//! (only cases with this identifier, e.g. `pub-small`; repeatable), `--no-race` (with
//! `--callgrind`: instruction counts only). `--child CASE CODEC KIND` is what the
//! callgrind mode runs under valgrind: one job of one case, the measured run inside
//! `measured_region`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, ExitCode};
use std::time::Duration;

use benches::cases::{self, Case};
use benches::race::{Entry, Kind, measured_region, plan, race};
use benches::{Op, repeats};

const OURS: &str = "mqtt-codec (ours)";

struct Args {
    rounds: usize,
    budget: Duration,
    cases: Vec<String>,
    callgrind: bool,
    race: bool,
    child: Option<(usize, String, Kind)>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        rounds: 60,
        budget: Duration::from_secs(120),
        cases: Vec::new(),
        callgrind: false,
        race: true,
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => a.rounds = value("--rounds")?.parse().map_err(|e| format!("{e}"))?,
            "--budget" => {
                let s: u64 = value("--budget")?.parse().map_err(|e| format!("{e}"))?;
                a.budget = Duration::from_secs(s);
            }
            "--case" => a.cases.push(value("--case")?),
            "--callgrind" => a.callgrind = true,
            "--no-race" => a.race = false,
            "--child" => {
                let case = value("--child")?.parse().map_err(|e| format!("{e}"))?;
                let codec = value("--child")?;
                let kind = value("--child")?;
                let kind = Kind::parse(&kind).ok_or(format!("unknown kind {kind}"))?;
                a.child = Some((case, codec, kind));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: compare [--rounds N] [--budget SECONDS] [--case ID]... \
                            [--callgrind] [--no-race]"
                        .into(),
                );
            }
            // `cargo bench` passes `--bench` to every target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cases = cases::all();
    if !args.cases.is_empty() {
        cases.retain(|c| args.cases.iter().any(|id| id == c.id));
    }
    if let Some((case, codec, kind)) = &args.child {
        return child(&cases, *case, codec, *kind);
    }

    eprintln!("checking every codec on every case ...");
    let mut entries = plan(&cases, None);
    if args.race {
        eprintln!(
            "racing {} jobs, up to {} rounds or {} s ...",
            entries.iter().filter(|e| e.job.is_ok()).count(),
            args.rounds,
            args.budget.as_secs()
        );
        race(&mut entries, args.rounds, args.budget);
        let rounds = entries.iter().map(|e| e.samples.len()).max().unwrap_or(0);
        print!("{}", race_tables(&cases, &entries, rounds));
    }
    if args.callgrind {
        match callgrind(&cases, &entries) {
            Ok(counts) => print!("{}", callgrind_tables(&cases, &entries, &counts)),
            Err(e) => {
                eprintln!("callgrind: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The codec names in table order: ours first, then the peers as `plan` lists them.
fn codec_columns(entries: &[Entry], kind: Kind) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for e in entries.iter().filter(|e| e.kind == kind) {
        if !names.contains(&e.codec) {
            names.push(e.codec);
        }
    }
    names
}

fn si(v: f64, unit: &str) -> String {
    let (d, p) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x >= 100.0 {
        format!("{x:.0} {p}{unit}")
    } else if x >= 10.0 {
        format!("{x:.1} {p}{unit}")
    } else {
        format!("{x:.2} {p}{unit}")
    }
}

/// Footnotes for cells that hold no measurement, deduplicated.
#[derive(Default)]
struct Notes {
    list: Vec<String>,
}

impl Notes {
    fn add(&mut self, text: String) -> usize {
        if let Some(i) = self.list.iter().position(|t| *t == text) {
            return i + 1;
        }
        self.list.push(text);
        self.list.len()
    }

    fn render(&self, out: &mut String) {
        for (i, t) in self.list.iter().enumerate() {
            let _ = writeln!(out, "{}. {t}", i + 1);
        }
    }
}

fn case_label(c: &Case) -> String {
    let per = c.wire.len() / c.packets.len().max(1);
    if c.packets.len() == 1 {
        format!("{} ({} B)", c.label(), c.wire.len())
    } else {
        format!("{} ({} packets, avg {per} B)", c.label(), c.packets.len())
    }
}

fn race_tables(cases: &[Case], entries: &[Entry], rounds: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Interleaved race: {rounds} rounds, every job once per round in turn. Cells: median \
         packets/s and bytes/s; ratio: our median throughput over the best peer's median \
         (in brackets: the same from each one's fastest round).\n"
    );
    let mut notes = Notes::default();
    for (kind, title) in [
        (Kind::Codec(Op::Decode), "Decode"),
        (Kind::Codec(Op::Encode), "Encode into a reused buffer"),
        (
            Kind::Vectored,
            "Encode for a vectored write (header bytes + payload by reference)",
        ),
    ] {
        let cols = codec_columns(entries, kind);
        if cols.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        let mut head = String::from("| case |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(head, " {c} |");
            rule.push_str("---|");
        }
        let with_memcpy = kind != Kind::Vectored;
        if with_memcpy {
            head.push_str(" memcpy |");
            rule.push_str("---|");
        }
        let ours_cols = ours_columns(&cols);
        for c in &ours_cols {
            let _ = write!(head, " {} / best peer |", ratio_label(c));
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for (ci, case) in cases.iter().enumerate() {
            let row: Vec<&Entry> = entries
                .iter()
                .filter(|e| e.case == ci && e.kind == kind)
                .collect();
            if row.is_empty() {
                continue;
            }
            let mut line = format!("| {} |", case_label(case));
            for c in &cols {
                let cell = match row.iter().find(|e| e.codec == *c) {
                    Some(e) => cell(e, &mut notes),
                    None => "".into(),
                };
                let _ = write!(line, " {cell} |");
            }
            if with_memcpy {
                let m = entries
                    .iter()
                    .find(|e| e.case == ci && e.kind == Kind::Memcpy);
                let cell = m.map(|e| cell(e, &mut notes)).unwrap_or_default();
                let _ = write!(line, " {cell} |");
            }
            for c in &ours_cols {
                let _ = write!(line, " {} |", ratio(&row, c, Entry::median, Entry::min));
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    if !notes.list.is_empty() {
        out.push_str("Not measured:\n\n");
        notes.render(&mut out);
        out.push('\n');
    }
    out
}

fn cell(e: &Entry, notes: &mut Notes) -> String {
    match (&e.job, e.median()) {
        (Ok(_), Some(t)) => format!(
            "{} · {}",
            si(e.packets_per_sec(t), "pkt/s"),
            si(e.bytes_per_sec(t), "B/s")
        ),
        (Ok(_), None) => "not run".into(),
        (Err(why), _) => {
            let n = notes.add(format!("{}: {}", e.codec, why));
            format!("n/a ({n})")
        }
    }
}

/// Our columns (the owned decoder and encoder first, then the borrowing decoder): each
/// gets a ratio column.
fn ours_columns(cols: &[&'static str]) -> Vec<&'static str> {
    cols.iter()
        .copied()
        .filter(|c| c.starts_with(OURS))
        .collect()
}

/// The name of one of our columns in its ratio's heading.
fn ratio_label(codec: &str) -> &'static str {
    if codec.ends_with("borrowed") {
        "ours, borrowed"
    } else {
        "ours"
    }
}

/// The throughput of our codec `ours` over the best peer's, by median and (in brackets)
/// by minimum.
fn ratio(
    row: &[&Entry],
    ours: &str,
    median: fn(&Entry) -> Option<Duration>,
    min: fn(&Entry) -> Option<Duration>,
) -> String {
    let pick = |f: fn(&Entry) -> Option<Duration>| -> Option<f64> {
        let ours = row.iter().find(|e| e.codec == ours)?;
        let ours = f(ours)?.as_secs_f64();
        let best = row
            .iter()
            .filter(|e| !e.codec.starts_with(OURS) && e.kind != Kind::Memcpy)
            .filter_map(|e| f(e))
            .min()?
            .as_secs_f64();
        Some(best / ours)
    };
    match (pick(median), pick(min)) {
        (Some(a), Some(b)) => format!("{a:.2}x ({b:.2}x)"),
        (Some(a), None) => format!("{a:.2}x"),
        _ => "no peer".into(),
    }
}

/// Runs one job under callgrind's eye: setup and a warm-up run outside the measured
/// region, then one run inside it.
fn child(cases: &[Case], case: usize, codec: &str, kind: Kind) -> ExitCode {
    let Some(c) = cases.get(case) else {
        eprintln!("no case {case}");
        return ExitCode::FAILURE;
    };
    let mut entries = plan(std::slice::from_ref(c), Some((codec, kind)));
    let Some(Entry { job: Ok(job), .. }) = entries.first_mut() else {
        eprintln!("no job for {codec} {} on case {case}", kind.name());
        return ExitCode::FAILURE;
    };
    job.setup();
    job.run();
    job.setup();
    measured_region(job.as_mut());
    ExitCode::SUCCESS
}

/// Instructions of one run of each job, counted by callgrind in a child process per job.
fn callgrind(cases: &[Case], entries: &[Entry]) -> Result<BTreeMap<usize, u64>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("mqtt-bench-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut counts = BTreeMap::new();
    let todo: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].job.is_ok())
        .collect();
    for (n, &i) in todo.iter().enumerate() {
        let e = &entries[i];
        let case_index = e.case;
        let file = dir.join(format!("{i}.out"));
        eprintln!(
            "callgrind {}/{}: {} {} {}",
            n + 1,
            todo.len(),
            cases[e.case].label(),
            e.codec,
            e.kind.name()
        );
        let mut cmd = Command::new("valgrind");
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg("--toggle-collect=*measured_region*")
            .arg(&exe);
        // The child sees the same case list (same `--case` filters), indexed the same.
        for c in cases
            .iter()
            .map(|c| c.id)
            .collect::<std::collections::BTreeSet<_>>()
        {
            cmd.arg("--case").arg(c);
        }
        cmd.arg("--child")
            .arg(case_index.to_string())
            .arg(e.codec)
            .arg(e.kind.name());
        let status = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run valgrind: {e}"))?;
        if !status.success() {
            return Err(format!("valgrind failed for {} {}", e.codec, e.kind.name()));
        }
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let total = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .ok_or("no totals in callgrind output")?;
        counts.insert(i, total);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(counts)
}

fn callgrind_tables(cases: &[Case], entries: &[Entry], counts: &BTreeMap<usize, u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Instructions per packet under callgrind (one run of each job; exact and repeatable, \
         but callgrind counts a memcpy per byte, so large copies weigh more than they take). \
         Ratio: the best peer's count over ours.\n"
    );
    let mut notes = Notes::default();
    for (kind, title) in [
        (Kind::Codec(Op::Decode), "Decode, instructions per packet"),
        (Kind::Codec(Op::Encode), "Encode, instructions per packet"),
        (Kind::Vectored, "Vectored encode, instructions per packet"),
    ] {
        let cols = codec_columns(entries, kind);
        if cols.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        let mut head = String::from("| case |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(head, " {c} |");
            rule.push_str("---|");
        }
        if kind != Kind::Vectored {
            head.push_str(" memcpy |");
            rule.push_str("---|");
        }
        let ours_cols = ours_columns(&cols);
        for c in &ours_cols {
            let _ = write!(head, " best peer / {} |", ratio_label(c));
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for (ci, case) in cases.iter().enumerate() {
            let per_packet = |i: usize| -> Option<f64> {
                let e = &entries[i];
                counts.get(&i).map(|&n| n as f64 / e.packets as f64)
            };
            let row: Vec<usize> = (0..entries.len())
                .filter(|&i| entries[i].case == ci && entries[i].kind == kind)
                .collect();
            if row.is_empty() {
                continue;
            }
            let mut line = format!("| {} |", case_label(case));
            for c in &cols {
                let cell = match row.iter().find(|&&i| entries[i].codec == *c) {
                    Some(&i) => match (&entries[i].job, per_packet(i)) {
                        (Ok(_), Some(v)) => format!("{v:.0}"),
                        (Ok(_), None) => "not run".into(),
                        (Err(why), _) => {
                            let n = notes.add(format!("{}: {why}", entries[i].codec));
                            format!("n/a ({n})")
                        }
                    },
                    None => String::new(),
                };
                let _ = write!(line, " {cell} |");
            }
            if kind != Kind::Vectored {
                let m = (0..entries.len())
                    .find(|&i| entries[i].case == ci && entries[i].kind == Kind::Memcpy);
                let cell = m
                    .and_then(per_packet)
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_default();
                let _ = write!(line, " {cell} |");
            }
            let best = row
                .iter()
                .filter(|&&i| !entries[i].codec.starts_with(OURS))
                .filter_map(|&i| per_packet(i))
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
            for c in &ours_cols {
                let ours = row
                    .iter()
                    .find(|&&i| entries[i].codec == *c)
                    .and_then(|&i| per_packet(i));
                let r = match (ours, best) {
                    (Some(o), Some(b)) => format!("{:.2}x", b / o),
                    _ => "no peer".into(),
                };
                let _ = write!(line, " {r} |");
            }
            line.push('\n');
            out.push_str(&line);
        }
        out.push('\n');
    }
    if !notes.list.is_empty() {
        out.push_str("Not measured:\n\n");
        notes.render(&mut out);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "One run processes each case repeated to about 256 KiB (for example {} copies of \
         the small PUBLISH).",
        cases.first().map(repeats).unwrap_or(0)
    );
    out
}
