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
mod plan;
mod world;

use std::time::Instant as WallClock;

use plan::Plan;
use world::{Plant, World};

struct Args {
    seeds: u64,
    from: u64,
    one: Option<u64>,
    transcript: bool,
    plant: Option<Plant>,
    plants: bool,
}

fn args() -> Args {
    let mut a = Args {
        seeds: 500,
        from: 0,
        one: None,
        transcript: false,
        plant: None,
        plants: true,
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
         [--plant drop-outgoing-persist|reuse-packet-id]"
    );
    std::process::exit(2)
}

/// Runs one seed's plan (or a shortened one); `record` keeps the transcript.
fn run(
    seed: u64,
    plan: Plan,
    plant: Option<Plant>,
    record: bool,
) -> (Result<(), check::Violation>, World) {
    let mut w = World::new(plan, seed, plant, record);
    let r = w.run();
    (r, w)
}

/// Removes steps while the run still breaks the same rule: chunks first, then single
/// steps, within a budget of runs.
fn shrink(seed: u64, plan: &Plan, plant: Option<Plant>, rule: &str) -> Plan {
    let mut best = plan.clone();
    let mut budget = 2_000;
    let mut chunk = best.steps.len() / 2;
    while chunk >= 1 && budget > 0 {
        let mut i = 0;
        let mut progress = false;
        while i < best.steps.len() && budget > 0 {
            let mut trial = best.clone();
            let end = (i + chunk).min(trial.steps.len());
            trial.steps.drain(i..end);
            budget -= 1;
            match run(seed, trial.clone(), plant, false).0 {
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

fn report(seed: u64, plant: Option<Plant>, v: &check::Violation) {
    let plan = Plan::draw(seed);
    eprintln!("seed {seed} fails: {v}");
    let small = shrink(seed, &plan, plant, v.rule);
    let (r, w) = run(seed, small.clone(), plant, true);
    eprintln!(
        "shortest failing run: {} of {} steps; clients {:?}; broker {:?}",
        small.steps.len(),
        plan.steps.len(),
        small.clients,
        small.broker
    );
    for line in w.log.unwrap_or_default() {
        eprintln!("  {line}");
    }
    match r {
        Err(v) => eprintln!("  => {v}"),
        Ok(()) => eprintln!("  => (the shortened run passes when replayed: flaky harness?)"),
    }
    eprintln!(
        "replay: cargo test --release -p mqtt-session --test simulate -- --seed {seed} --transcript"
    );
}

fn main() {
    let a = args();
    if let Some(seed) = a.one {
        let (r, w) = run(seed, Plan::draw(seed), a.plant, a.transcript);
        for line in w.log.iter().flatten() {
            println!("{line}");
        }
        match r {
            Ok(()) => println!("seed {seed} passes"),
            Err(v) => {
                report(seed, a.plant, &v);
                std::process::exit(1);
            }
        }
        return;
    }
    let start = WallClock::now();
    let mut totals = [0usize; 5];
    for seed in a.from..a.from + a.seeds {
        let plan = Plan::draw(seed);
        let clients = plan.clients.len();
        let steps = plan.steps.len();
        let (r, w) = run(seed, plan, a.plant, false);
        match r {
            Ok(()) => {
                totals[0] += clients;
                totals[1] += steps;
                totals[2] += w.model.messages();
                totals[3] += w.model.broker_restarts as usize;
                totals[4] += w.model.client_restarts as usize;
            }
            Err(v) if a.plant.is_some() => {
                println!("planted bug caught by seed {seed}: {v}");
                return;
            }
            Err(v) => {
                report(seed, None, &v);
                std::process::exit(1);
            }
        }
    }
    if a.plant.is_some() {
        eprintln!("the planted bug went unnoticed over {} seeds", a.seeds);
        std::process::exit(1);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "simulate: seeds {}..{} pass: {:.0} runs/s ({:.1} s); {} clients, {} steps, {} messages, \
         {} broker and {} client restarts in all",
        a.from,
        a.from + a.seeds,
        a.seeds as f64 / secs,
        secs,
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4]
    );
    if a.plants {
        // The harness can fail: each planted bug is caught within the first seeds.
        for plant in [Plant::DropOutgoingPersist, Plant::ReusePacketId] {
            let caught = (0..200).find_map(|seed| {
                run(seed, Plan::draw(seed), Some(plant), false)
                    .0
                    .err()
                    .map(|v| (seed, v))
            });
            match caught {
                Some((seed, v)) => println!("planted {plant:?}: caught by seed {seed}: {v}"),
                None => {
                    eprintln!("planted {plant:?}: not caught in 200 seeds");
                    std::process::exit(1);
                }
            }
        }
    }
}
