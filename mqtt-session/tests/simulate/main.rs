//! The simulation: real clients and the broker in one seeded world with faults, every
//! guarantee checked after every run.
//!
//! ```sh
//! cargo test --release -p mqtt-session --test simulate -- --seeds 10000
//! cargo test --release -p mqtt-session --test simulate -- --seed 1234 --transcript
//! ```
//!
//! Without arguments (as `cargo test` runs it) it runs 500 seeds, then shows that the
//! invariants catch two bugs planted in the harness. A failing seed is printed with the
//! shortest run that still fails (steps removed while it fails) and its transcript.

#![allow(clippy::disallowed_methods)] // the runner times itself; the world's clock is simulated

mod check;
#[path = "../common/mod.rs"]
mod common;
mod plan;
mod world;

use std::time::Instant as WallClock;

use plan::Plan;
use world::{Plant, Storage, World};

struct Args {
    seeds: u64,
    from: u64,
    one: Option<u64>,
    transcript: bool,
    plant: Option<Plant>,
    plants: bool,
    /// The broker's store is the redb file of `persist`, not the one in memory.
    file: bool,
    /// Seeds run with the file store after the others, when no seed was asked for.
    #[cfg_attr(not(feature = "persist"), allow(dead_code))]
    file_seeds: u64,
}

fn args() -> Args {
    let mut a = Args {
        seeds: 500,
        from: 0,
        one: None,
        transcript: false,
        plant: None,
        plants: true,
        file: false,
        file_seeds: 20,
    };
    let mut it = std::env::args().skip(1);
    let mut explicit = false;
    while let Some(arg) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&arg))
        };
        match arg.as_str() {
            "--seeds" => {
                a.seeds = num();
                explicit = true;
            }
            "--from" => a.from = num(),
            "--seed" => {
                a.one = Some(num());
                explicit = true;
            }
            "--transcript" => a.transcript = true,
            "--store" => match it.next().as_deref() {
                Some("file") => a.file = true,
                Some("memory") => a.file = false,
                _ => usage("--store"),
            },
            "--plant" => {
                a.plant = match it.next().as_deref() {
                    Some("drop-outgoing-persist") => Some(Plant::DropOutgoingPersist),
                    Some("reuse-packet-id") => Some(Plant::ReusePacketId),
                    _ => usage("--plant"),
                };
                explicit = true;
            }
            "-h" | "--help" => usage(""),
            // What libtest's own flags and filters would be (cargo test passes them on to
            // every test binary): nothing to do here.
            _ => {}
        }
    }
    a.plants = !explicit;
    a
}

fn usage(bad: &str) -> ! {
    if !bad.is_empty() {
        eprintln!("simulate: bad or incomplete argument {bad}");
    }
    eprintln!(
        "usage: simulate [--seeds N] [--from K] [--seed S [--transcript]] \
         [--store memory|file] [--plant drop-outgoing-persist|reuse-packet-id]"
    );
    std::process::exit(2)
}

/// How a run is set up besides its plan: a planted bug, and which store the broker has.
#[derive(Clone, Copy)]
struct Setup {
    plant: Option<Plant>,
    file: bool,
}

/// Runs one seed's plan (or a shortened one); `record` keeps the transcript.
fn run(seed: u64, plan: Plan, setup: Setup, record: bool) -> (Result<(), check::Violation>, World) {
    let store = if setup.file {
        file_store(seed)
    } else {
        Storage::Memory(Default::default())
    };
    let mut w = World::new(plan, seed, setup.plant, record, store);
    let r = w.run();
    (r, w)
}

#[cfg(feature = "persist")]
fn file_store(seed: u64) -> Storage {
    Storage::file(seed).unwrap_or_else(|v| {
        eprintln!("simulate: {v}");
        std::process::exit(1)
    })
}

#[cfg(not(feature = "persist"))]
fn file_store(_: u64) -> Storage {
    eprintln!("simulate: --store file needs the persist feature");
    std::process::exit(2)
}

/// Removes steps while the run still breaks the same rule: chunks first, then single
/// steps, within a budget of runs.
fn shrink(seed: u64, plan: &Plan, setup: Setup, rule: &str) -> Plan {
    let mut best = plan.clone();
    let mut budget = if setup.file { 300 } else { 2_000 };
    let mut chunk = best.steps.len() / 2;
    while chunk >= 1 && budget > 0 {
        let mut i = 0;
        let mut progress = false;
        while i < best.steps.len() && budget > 0 {
            let mut trial = best.clone();
            let end = (i + chunk).min(trial.steps.len());
            trial.steps.drain(i..end);
            budget -= 1;
            match run(seed, trial.clone(), setup, false).0 {
                Err(v) if v.rule == rule => {
                    best = trial;
                    progress = true;
                }
                _ => i += chunk,
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    best
}

fn report(seed: u64, setup: Setup, v: &check::Violation) {
    let plan = Plan::draw(seed);
    eprintln!("seed {seed} fails: {v}");
    let small = shrink(seed, &plan, setup, v.rule);
    let (r, w) = run(seed, small.clone(), setup, true);
    eprintln!(
        "shortest failing run: {} of {} steps; clients {:?}; broker {:?}",
        small.steps.len(),
        plan.steps.len(),
        small.clients,
        small.broker
    );
    for line in w.log.iter().flatten() {
        eprintln!("  {line}");
    }
    match r {
        Err(v) => eprintln!("  => {v}"),
        Ok(()) => eprintln!("  => (the shortened run passes when replayed: flaky harness?)"),
    }
    let store = if setup.file { " --store file" } else { "" };
    eprintln!(
        "replay: cargo test --release -p mqtt-session --test simulate -- --seed {seed}{store} --transcript"
    );
}

/// Runs `count` seeds from `from`; the totals, or the first failure.
fn run_seeds(from: u64, count: u64, setup: Setup) -> Result<[usize; 5], (u64, check::Violation)> {
    let mut totals = [0usize; 5];
    for seed in from..from + count {
        let plan = Plan::draw(seed);
        let clients = plan.clients.len();
        let steps = plan.steps.len();
        let (r, w) = run(seed, plan, setup, false);
        r.map_err(|v| (seed, v))?;
        totals[0] += clients;
        totals[1] += steps;
        totals[2] += w.model.messages();
        totals[3] += w.model.broker_restarts as usize;
        totals[4] += w.model.client_restarts as usize;
    }
    Ok(totals)
}

fn pass(from: u64, count: u64, setup: Setup) {
    let start = WallClock::now();
    let totals = match run_seeds(from, count, setup) {
        Ok(t) => t,
        Err((seed, v)) => {
            report(seed, setup, &v);
            std::process::exit(1);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "simulate ({} store): seeds {from}..{} pass: {:.0} runs/s ({:.1} s); {} clients, {} steps, \
         {} messages, {} broker and {} client restarts in all",
        if setup.file { "file" } else { "memory" },
        from + count,
        count as f64 / secs,
        secs,
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4]
    );
}

fn main() {
    let a = args();
    let setup = Setup {
        plant: a.plant,
        file: a.file,
    };
    if let Some(seed) = a.one {
        let (r, w) = run(seed, Plan::draw(seed), setup, a.transcript);
        for line in w.log.iter().flatten() {
            println!("{line}");
        }
        match r {
            Ok(()) => println!("seed {seed} passes"),
            Err(v) => {
                report(seed, setup, &v);
                std::process::exit(1);
            }
        }
        return;
    }
    if a.plant.is_some() {
        match run_seeds(a.from, a.seeds, setup) {
            Err((seed, v)) => println!("planted bug caught by seed {seed}: {v}"),
            Ok(_) => {
                eprintln!("the planted bug went unnoticed over {} seeds", a.seeds);
                std::process::exit(1);
            }
        }
        return;
    }
    pass(a.from, a.seeds, setup);
    if a.plants {
        // The same world with the crash-safe store on disk, for a few seeds (each commit
        // syncs the file).
        #[cfg(feature = "persist")]
        pass(
            0,
            a.file_seeds,
            Setup {
                plant: None,
                file: true,
            },
        );
        #[cfg(not(feature = "persist"))]
        println!("simulate (file store): not run, the persist feature is off in this build");
        // The harness can fail: each planted bug is caught within the first seeds.
        for plant in [Plant::DropOutgoingPersist, Plant::ReusePacketId] {
            let setup = Setup {
                plant: Some(plant),
                file: false,
            };
            match run_seeds(0, 200, setup) {
                Err((seed, v)) => println!("planted {plant:?}: caught by seed {seed}: {v}"),
                Ok(_) => {
                    eprintln!("planted {plant:?}: not caught in 200 seeds");
                    std::process::exit(1);
                }
            }
        }
    }
}
