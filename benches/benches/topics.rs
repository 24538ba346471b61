//! Topic matching in the broker core: the subscription tree against a linear scan and
//! against the topic-matching crates users pick, at 10k, 100k and 1M subscriptions.
//!
//! The subscriptions have the shape of a device fleet: `site/{s}/device/{d}/#` for every
//! device (100 sites), plus `site/+/device/+/temp`, `site/{s}/device/+/status` and `site/{s}/#`
//! per site, exact `site/{s}/device/{d}/temp` for every hundredth device and some exact
//! `$SYS/...` topics. Lookups cycle through 4,096 publish topics drawn from the same fleet
//! (`site/{s}/device/{d}/{temp,status,humidity,cfg/rate}` and a few `$SYS/...`), each matching
//! 1 to 15 subscriptions. Insert and remove add and take out subscriptions of new devices.
//!
//! Peers get their topic already split into their own type outside the timed loop (their
//! best case); the tree takes the topic as a `&str`. Every implementation's match count is
//! checked against the linear scan before anything is timed.
//!
//! After the criterion groups of each size comes a race: every implementation answers all the
//! topics once per round, in turn, for `TOPICS_RACE_ROUNDS` rounds (default 30); the run ends
//! with a Markdown table of the minimum and median per lookup, which hold still on a noisy
//! machine better than criterion's estimates.
//!
//! `TOPICS_SIZES=10000,100000` limits the sizes (default: 10000,100000,1000000).
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_codec::matches_filter;
use mqtt_session::topic_tree::{Combine, Match, PerSubscriber, TopicTree};
use mqtt_topic_engine::{
    CacheStrategy, QoS, SubscriptionId, TopicPath, TopicPatternPath, TopicRouter,
};

const SITES: u32 = 100;
const TOPICS: usize = 4096;
/// New subscriptions per insert/remove round.
const FRESH: usize = 4096;

/// A deterministic xorshift generator, so every run and every implementation sees the same
/// topics.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

struct Shape {
    /// (filter, subscriber) pairs, exactly `n` of them.
    subs: Vec<(String, u32)>,
    /// Publish topics to look up.
    topics: Vec<String>,
    /// Filters of new devices, for insert and remove.
    fresh: Vec<(String, u32)>,
}

fn shape(n: usize) -> Shape {
    let devices = (n as u32 / SITES).max(1);
    let mut extra: Vec<(String, u32)> = Vec::new();
    let mut key = 10_000_000u32;
    let mut push = |v: &mut Vec<(String, u32)>, f: String| {
        key += 1;
        v.push((f, key));
    };
    for _ in 0..10 {
        push(&mut extra, "site/+/device/+/temp".into());
    }
    for s in 1..=SITES {
        push(&mut extra, format!("site/{s}/device/+/status"));
        push(&mut extra, format!("site/{s}/#"));
    }
    for s in 1..=SITES {
        for d in (100..=devices).step_by(100) {
            push(&mut extra, format!("site/{s}/device/{d}/temp"));
        }
    }
    for i in 0..100 {
        push(&mut extra, format!("$SYS/broker/clients/{i}"));
    }
    let mut subs: Vec<(String, u32)> = Vec::with_capacity(n);
    'fill: for d in 1..=devices {
        for s in 1..=SITES {
            if subs.len() + extra.len() == n {
                break 'fill;
            }
            subs.push((format!("site/{s}/device/{d}/#"), subs.len() as u32));
        }
    }
    subs.extend(extra);
    assert_eq!(subs.len(), n);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let leaves = ["temp", "status", "humidity", "cfg/rate"];
    let topics = (0..TOPICS)
        .map(|i| {
            if i % 64 == 0 {
                format!("$SYS/broker/clients/{}", rng.below(200))
            } else {
                let s = 1 + rng.below(SITES);
                let d = 1 + rng.below(devices);
                let leaf = leaves[rng.below(leaves.len() as u32) as usize];
                format!("site/{s}/device/{d}/{leaf}")
            }
        })
        .collect();
    let fresh = (0..FRESH)
        .map(|j| {
            let s = 1 + (j as u32 % SITES);
            let d = devices + 1 + j as u32 / SITES;
            (format!("site/{s}/device/{d}/#"), 20_000_000 + j as u32)
        })
        .collect();
    Shape {
        subs,
        topics,
        fresh,
    }
}

/// What a broker folds per subscriber: the highest QoS and the subscription identifiers.
#[derive(Default)]
struct Delivery {
    qos: u8,
    ids: Vec<u32>,
}

impl Combine<(u8, u32)> for Delivery {
    fn start(&mut self, &(qos, id): &(u8, u32)) {
        self.qos = qos;
        self.ids.clear();
        self.ids.push(id);
    }
    fn add(&mut self, &(qos, id): &(u8, u32)) {
        self.qos = self.qos.max(qos);
        self.ids.push(id);
    }
}

type Tree = TopicTree<u32, (u8, u32)>;

fn tree_count(tree: &Tree, topic: &str) -> usize {
    let mut n = 0;
    tree.matches(topic, |m| match m {
        Match::Subscription(..) => n += 1,
        Match::Shared(g) => n += g.len(),
    });
    n
}

fn mte_pattern(f: &str) -> TopicPatternPath {
    TopicPatternPath::new_from_string(f, CacheStrategy::NoCache).expect("valid filter")
}

fn mte_insert(r: &mut TopicRouter<u32>, f: &str, k: u32) -> SubscriptionId {
    r.add_subscription(mte_pattern(f), QoS::AtLeastOnce, k).1
}

fn quill_pattern(f: &str) -> quill::Pattern {
    quill::Pattern::parse(f).expect("valid filter")
}

/// Times `op` over `iters` fresh subscriptions, `FRESH` at a time, calling `undo` on each
/// chunk outside the timing so the structure returns to its size.
fn chunked(
    iters: u64,
    mut op: impl FnMut(usize, usize),
    mut undo: impl FnMut(usize, usize),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let k = left.min(FRESH);
        let t0 = Instant::now();
        op(0, k);
        total += t0.elapsed();
        undo(0, k);
        left -= k;
    }
    total
}

fn sizes() -> Vec<usize> {
    std::env::var("TOPICS_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

/// One implementation's turn in a round of the race: every topic once untimed, so that its
/// data is as warm as the others' left it no matter the order, then every topic once timed.
/// Returns nanoseconds per lookup.
fn race_round(topics: usize, mut lookup: impl FnMut(usize) -> usize) -> f64 {
    let mut n = 0;
    for i in 0..topics {
        n += lookup(i);
    }
    let t0 = Instant::now();
    for i in 0..topics {
        n += lookup(i);
    }
    let t = t0.elapsed();
    black_box(n);
    t.as_nanos() as f64 / topics as f64
}

/// The minimum and the median of `v`.
fn min_median(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn topics(c: &mut Criterion) {
    let mut race_rows = Vec::new();
    for n in sizes() {
        let shape = shape(n);
        let t0 = Instant::now();
        let mut tree = Tree::new();
        for (f, k) in &shape.subs {
            tree.insert(f, *k, (1, *k)).expect("valid filter");
        }
        let tree_setup = t0.elapsed();
        let t0 = Instant::now();
        let mut mte = TopicRouter::new();
        for (f, k) in &shape.subs {
            mte_insert(&mut mte, f, *k);
        }
        let mte_setup = t0.elapsed();
        let t0 = Instant::now();
        let quill = quill::Registry::new();
        for (f, k) in &shape.subs {
            quill.subscribe(quill_pattern(f), *k);
        }
        let quill_setup = t0.elapsed();
        eprintln!(
            "topics {n}: setup tree {tree_setup:.2?}, mqtt-topic-engine {mte_setup:.2?}, \
             quill-pubsub {quill_setup:.2?}; tree nodes {}",
            tree.node_count()
        );

        let mte_topics: Vec<TopicPath> = shape
            .topics
            .iter()
            .map(|t| TopicPath::new(t.as_str()).expect("valid topic"))
            .collect();
        let quill_topics: Vec<quill::Topic> = shape
            .topics
            .iter()
            .map(|t| quill::Topic::parse(t).expect("valid topic"))
            .collect();

        // Same answers before any timing.
        let mut total = 0;
        for (i, t) in shape.topics.iter().enumerate().take(512) {
            let want = shape
                .subs
                .iter()
                .filter(|(f, _)| matches_filter(f, t))
                .count();
            assert_eq!(tree_count(&tree, t), want, "tree, {t}");
            assert_eq!(
                mte.get_subscribers(&mte_topics[i]).len(),
                want,
                "mqtt-topic-engine, {t}"
            );
            assert_eq!(
                quill.matching(&quill_topics[i]).len(),
                want,
                "quill-pubsub, {t}"
            );
            total += want;
        }
        eprintln!("topics {n}: {:.2} matches per lookup", total as f64 / 512.0);

        let mut g = c.benchmark_group(format!("topics/lookup/{n}"));
        g.throughput(Throughput::Elements(1));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        let mut i = 0usize;
        g.bench_function("tree", |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                tree_count(&tree, black_box(&shape.topics[i]))
            })
        });
        let mut out = PerSubscriber::<u32, Delivery>::new();
        g.bench_function("tree per subscriber", |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                let mut shared = 0;
                tree.matches_per_subscriber(black_box(&shape.topics[i]), &mut out, |_| shared += 1);
                out.len() + shared
            })
        });
        g.bench_function("mqtt-topic-engine", |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                mte.get_subscribers(black_box(&mte_topics[i])).len()
            })
        });
        g.bench_function("quill-pubsub", |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                let mut k = 0;
                quill.fanout(black_box(&quill_topics[i]), &(), |_, _| k += 1);
                k
            })
        });
        g.sample_size(10);
        g.bench_function("linear scan", |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                let t = black_box(&shape.topics[i]);
                shape
                    .subs
                    .iter()
                    .filter(|(f, _)| matches_filter(f, t))
                    .count()
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("topics/insert/{n}"));
        g.throughput(Throughput::Elements(1));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        let fresh = &shape.fresh;
        g.bench_function(BenchmarkId::from_parameter("tree"), |b| {
            b.iter_custom(|iters| {
                let tree = std::cell::RefCell::new(&mut tree);
                chunked(
                    iters,
                    |a, z| {
                        for (f, k) in &fresh[a..z] {
                            let _ = tree.borrow_mut().insert(black_box(f), *k, (1, *k));
                        }
                    },
                    |a, z| {
                        for (f, k) in &fresh[a..z] {
                            tree.borrow_mut().remove(f, k);
                        }
                    },
                )
            })
        });
        let mut ids = Vec::with_capacity(FRESH);
        g.bench_function(BenchmarkId::from_parameter("mqtt-topic-engine"), |b| {
            b.iter_custom(|iters| {
                let st = std::cell::RefCell::new((&mut mte, &mut ids));
                chunked(
                    iters,
                    |a, z| {
                        let (mte, ids) = &mut *st.borrow_mut();
                        ids.clear();
                        for (f, k) in &fresh[a..z] {
                            ids.push(mte_insert(mte, black_box(f), *k));
                        }
                    },
                    |_, _| {
                        let (mte, ids) = &mut *st.borrow_mut();
                        for id in ids.iter() {
                            let _ = mte.unsubscribe(id);
                        }
                    },
                )
            })
        });
        g.bench_function(BenchmarkId::from_parameter("quill-pubsub"), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |a, z| {
                        for (f, k) in &fresh[a..z] {
                            quill.subscribe(quill_pattern(black_box(f)), *k);
                        }
                    },
                    |a, z| {
                        for (f, k) in &fresh[a..z] {
                            quill.unsubscribe(&quill_pattern(f), k);
                        }
                    },
                )
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("topics/remove/{n}"));
        g.throughput(Throughput::Elements(1));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.bench_function(BenchmarkId::from_parameter("tree"), |b| {
            b.iter_custom(|iters| {
                let tree = std::cell::RefCell::new(&mut tree);
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let k = left.min(FRESH);
                    for (f, key) in &fresh[..k] {
                        let _ = tree.borrow_mut().insert(f, *key, (1, *key));
                    }
                    let t0 = Instant::now();
                    for (f, key) in &fresh[..k] {
                        tree.borrow_mut().remove(black_box(f), key);
                    }
                    total += t0.elapsed();
                    left -= k;
                }
                total
            })
        });
        g.bench_function(BenchmarkId::from_parameter("mqtt-topic-engine"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let k = left.min(FRESH);
                    ids.clear();
                    for (f, key) in &fresh[..k] {
                        ids.push(mte_insert(&mut mte, f, *key));
                    }
                    let t0 = Instant::now();
                    for id in &ids {
                        let _ = mte.unsubscribe(black_box(id));
                    }
                    total += t0.elapsed();
                    left -= k;
                }
                total
            })
        });
        g.bench_function(BenchmarkId::from_parameter("quill-pubsub"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let k = left.min(FRESH);
                    for (f, key) in &fresh[..k] {
                        quill.subscribe(quill_pattern(f), *key);
                    }
                    let t0 = Instant::now();
                    for (f, key) in &fresh[..k] {
                        quill.unsubscribe(&quill_pattern(black_box(f)), key);
                    }
                    total += t0.elapsed();
                    left -= k;
                }
                total
            })
        });
        g.finish();
        assert_eq!(
            tree.len(),
            n,
            "insert and remove rounds leave the tree as it was"
        );

        // The race: each implementation answers all the topics once per round, in turn, so
        // that load from elsewhere on the machine hits them alike; the minimum over the rounds
        // is what each one does when left alone.
        let rounds: usize = std::env::var("TOPICS_RACE_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        let mut times = [const { Vec::new() }; 4];
        for _ in 0..rounds {
            times[0].push(race_round(TOPICS, |i| {
                tree_count(&tree, black_box(&shape.topics[i]))
            }));
            times[1].push(race_round(TOPICS, |i| {
                tree.matches_per_subscriber(black_box(&shape.topics[i]), &mut out, |_| {});
                out.len()
            }));
            times[2].push(race_round(TOPICS, |i| {
                mte.get_subscribers(black_box(&mte_topics[i])).len()
            }));
            times[3].push(race_round(TOPICS, |i| {
                quill.matching(black_box(&quill_topics[i])).len()
            }));
        }
        let [tree_t, per_sub, mte_t, quill_t] = times.map(|mut v| min_median(&mut v));
        race_rows.push(format!(
            "| {n} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1}x / {:.1}x |",
            tree_t.0,
            tree_t.1,
            per_sub.0,
            per_sub.1,
            mte_t.0,
            mte_t.1,
            quill_t.0,
            quill_t.1,
            mte_t.0.min(quill_t.0) / tree_t.0,
            mte_t.1.min(quill_t.1) / tree_t.1,
        ));
    }
    if !race_rows.is_empty() {
        eprintln!(
            "\nTopic lookup race, ns per lookup (min / median over the rounds):\n\n\
             | subscriptions | tree | tree per subscriber | mqtt-topic-engine | quill-pubsub | \
             best peer / tree |\n|---|---|---|---|---|---|"
        );
        for row in race_rows {
            eprintln!("{row}");
        }
    }
}

criterion_group!(benches, topics);
criterion_main!(benches);
