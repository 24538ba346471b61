//! The plan (which codec runs which case, or why it cannot) and the interleaved race.
//!
//! The race times every job once per round, in turn, for many rounds, and keeps each
//! job's samples: on a shared, noisy machine the minimum and the median of interleaved
//! samples hold still far better than one long run per codec.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::Packet;

use crate::codecs::{Visit, visit_all, visit_vectored};
use crate::{Case, Codec, DecodeJob, EncodeJob, Job, MemcpyJob, Op, batch, check, check_encode};

/// What one entry measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A codec decoding or encoding.
    Codec(Op),
    /// A codec encoding for a vectored write (the 64 KiB case only).
    Vectored,
    /// `memcpy` of the same bytes.
    Memcpy,
}

/// One cell of the table: a job, or why there is none.
pub struct Entry {
    /// Index into the case list.
    pub case: usize,
    /// The codec's name (`memcpy` for the reference).
    pub codec: &'static str,
    /// What is measured.
    pub kind: Kind,
    /// Packets one run processes.
    pub packets: usize,
    /// Bytes one run processes.
    pub bytes: usize,
    /// The job, or why the codec cannot do it.
    pub job: Result<Box<dyn Job>, String>,
    /// Time of each run, in the order taken.
    pub samples: Vec<Duration>,
}

impl Kind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Codec(op) => op.name(),
            Kind::Vectored => "vectored",
            Kind::Memcpy => "memcpy",
        }
    }

    /// The kind named `s` on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "decode" => Kind::Codec(Op::Decode),
            "encode" => Kind::Codec(Op::Encode),
            "vectored" => Kind::Vectored,
            "memcpy" => Kind::Memcpy,
            _ => return None,
        })
    }
}

impl Entry {
    /// The fastest run.
    pub fn min(&self) -> Option<Duration> {
        self.samples.iter().min().copied()
    }

    /// The median run.
    pub fn median(&self) -> Option<Duration> {
        let mut s = self.samples.clone();
        if s.is_empty() {
            return None;
        }
        s.sort_unstable();
        Some(s[s.len() / 2])
    }

    /// Packets per second at the given run time.
    pub fn packets_per_sec(&self, t: Duration) -> f64 {
        self.packets as f64 / t.as_secs_f64()
    }

    /// Bytes per second at the given run time.
    pub fn bytes_per_sec(&self, t: Duration) -> f64 {
        self.bytes as f64 / t.as_secs_f64()
    }
}

struct Planner<'a> {
    case_index: usize,
    case: &'a Case,
    wire: &'a Bytes,
    packets: &'a [Packet],
    vectored: bool,
    only: Option<(&'a str, Kind)>,
    out: &'a mut Vec<Entry>,
}

impl Planner<'_> {
    fn wanted(&self, codec: &str, kind: Kind) -> bool {
        self.only.is_none_or(|(c, k)| c == codec && k == kind)
    }

    fn push(&mut self, codec: &'static str, kind: Kind, job: Result<Box<dyn Job>, String>) {
        self.out.push(Entry {
            case: self.case_index,
            codec,
            kind,
            packets: self.packets.len(),
            bytes: self.wire.len(),
            job,
            samples: Vec::new(),
        });
    }
}

impl Visit for Planner<'_> {
    fn visit<C: Codec>(&mut self) {
        let (case, wire, version) = (self.case, self.wire, self.case.version);
        let kinds: &[Kind] = if self.vectored {
            &[Kind::Vectored]
        } else {
            &[Kind::Codec(Op::Decode), Kind::Codec(Op::Encode)]
        };
        if !kinds.iter().any(|&k| self.wanted(C::NAME, k)) {
            return;
        }
        let decoded = check::<C>(case, wire, self.packets);
        for &kind in kinds {
            if !self.wanted(C::NAME, kind) || (kind == Kind::Codec(Op::Encode) && !C::ENCODES) {
                continue;
            }
            let job: Result<Box<dyn Job>, String> = match (&decoded, kind) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), Kind::Codec(Op::Decode)) => {
                    Ok(Box::new(DecodeJob::<C>::new(wire.clone(), version)))
                }
                (Ok(()), _) => check_encode::<C>(case, wire, self.packets).and_then(|()| {
                    EncodeJob::<C>::new(wire, version).map(|j| Box::new(j) as Box<dyn Job>)
                }),
            };
            self.push(C::NAME, kind, job);
        }
    }
}

/// Every entry for `cases`: per case the `memcpy` reference, then each codec's decode and
/// encode, checked first; for the 64 KiB PUBLISH also the vectored encodings. With `only`
/// (a codec name and kind), just that entry of each case.
pub fn plan(cases: &[Case], only: Option<(&str, Kind)>) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (wire, packets) = batch(case);
        let mut p = Planner {
            case_index: i,
            case,
            wire: &wire,
            packets: &packets,
            vectored: false,
            only,
            out: &mut out,
        };
        if p.wanted("memcpy", Kind::Memcpy) {
            p.push(
                "memcpy",
                Kind::Memcpy,
                Ok(Box::new(MemcpyJob::new(wire.clone()))),
            );
        }
        visit_all(&mut p);
        if case.id == "pub-64k" {
            p.vectored = true;
            visit_vectored(&mut p);
        }
    }
    out
}

/// Runs every job once (untimed), then `rounds` rounds in which each job runs once, in
/// turn, starting one further along each round; stops early when `budget` is spent.
pub fn race(entries: &mut [Entry], rounds: usize, budget: Duration) {
    for e in entries.iter_mut() {
        if let Ok(job) = &mut e.job {
            job.setup();
            job.run();
        }
    }
    let start = Instant::now();
    let n = entries.len();
    for round in 0..rounds {
        for k in 0..n {
            let e = &mut entries[(k + round) % n];
            if let Ok(job) = &mut e.job {
                job.setup();
                let t = Instant::now();
                job.run();
                e.samples.push(t.elapsed());
            }
        }
        if start.elapsed() > budget && round >= 10 {
            break;
        }
    }
}

/// The measured region under callgrind: `--toggle-collect` names this function, so only
/// the job's run is counted, not its setup.
#[inline(never)]
pub fn measured_region(job: &mut dyn Job) {
    job.run();
}
