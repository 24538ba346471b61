//! What a seed draws: the clients, the broker's settings, and the steps of the run
//! (workload and faults, each at its time).

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// A random source for one seed: the same seed always draws the same run.
pub fn rng(seed: u64, stream: u8) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = stream;
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Topics the workload publishes to. `s/...` ones are read through the shared
/// subscription only, so that a message never reaches a client by two routes.
pub const TOPICS: [&str; 4] = ["t/a", "t/b", "s/x", "s/y"];
/// Filters of ordinary subscriptions (overlapping on purpose).
pub const FILTERS: [&str; 5] = ["t/a", "t/b", "t/+", "t/#", "+/b"];
/// The one shared subscription (v5 clients with durable sessions only).
pub const SHARED: &str = "$share/g/s/+";

/// How long a client's session outlives its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Session Expiry Interval of a day (v5) or Clean Session 0 (3.1.1): it must survive
    /// everything the run does.
    Durable,
    /// v5 Session Expiry Interval of this many seconds: it may expire while away.
    Short(u32),
    /// Session Expiry Interval 0 or Clean Session 1: it ends with the connection.
    Clean,
}

/// One client of the world.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub v5: bool,
    pub durability: Durability,
    pub keep_alive: u16,
    /// A will on `w/{index}`, with this Will Delay Interval (v5; 0 for 3.1.1).
    pub will: Option<u32>,
    /// v5 Receive Maximum the client announces.
    pub receive_maximum: u16,
    /// v5 Topic Alias Maximum the client announces, and whether it gives aliases itself.
    pub topic_aliases: bool,
}

impl ClientSpec {
    pub fn durable(&self) -> bool {
        self.durability == Durability::Durable
    }

    /// The Session Expiry Interval in effect, in seconds.
    pub fn expiry(&self) -> u32 {
        match self.durability {
            Durability::Durable => DURABLE_EXPIRY,
            Durability::Short(s) => s,
            Durability::Clean => 0,
        }
    }
}

pub const DURABLE_EXPIRY: u32 = 86_400;

/// The broker's settings a seed varies.
#[derive(Debug, Clone)]
pub struct BrokerKnobs {
    pub write_budget: usize,
    pub pause_publishers_at: usize,
    pub receive_maximum: u16,
    pub max_in_flight: u16,
    pub topic_alias_maximum: u16,
    pub outbound_topic_aliases: bool,
    pub write_timeout_secs: u64,
}

/// One step of a run; after it, the world runs for the step's `wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Connect(usize),
    /// DISCONNECT: normal (0x00), or v5 0x04 Disconnect with Will Message.
    Disconnect(usize, bool),
    Subscribe(usize, usize, u8),
    SubscribeShared(usize, u8),
    Unsubscribe(usize, usize),
    /// Publish to a topic at a QoS; retained; retained with an empty payload (deletes).
    Publish {
        client: usize,
        topic: usize,
        qos: u8,
        retain: bool,
        delete: bool,
    },
    /// The client's link is cut; whether the broker's side learns of it (else only its
    /// keep-alive or a takeover ends it).
    Sever(usize, bool),
    /// Nothing moves from the client to the broker for this long.
    HoldUp(usize, u64),
    /// The client reads nothing for this long.
    StopReading(usize, u64),
    /// Every clock jumps forward by this many seconds.
    ClockJump(u64),
    /// The broker process dies after this many more of its actions, and starts again from
    /// its store.
    RestartBroker(usize),
    /// The client process dies after this many more of its actions, and starts again from
    /// its store (a durable client) or afresh, and connects.
    RestartClient(usize, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// Milliseconds to run after it.
    pub wait: u64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub clients: Vec<ClientSpec>,
    pub broker: BrokerKnobs,
    pub steps: Vec<Step>,
}

fn pick<T: Copy>(rng: &mut TestRng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

impl Plan {
    pub fn draw(seed: u64) -> Plan {
        let mut rng = rng(seed, 0);
        let n = rng.random_range(3..=6);
        let clients = (0..n)
            .map(|_| {
                let v5 = rng.random_bool(0.6);
                let durability = match rng.random_range(0..10) {
                    0..=5 => Durability::Durable,
                    6 | 7 if v5 => Durability::Short(rng.random_range(2..20)),
                    _ => Durability::Clean,
                };
                ClientSpec {
                    v5,
                    durability,
                    keep_alive: pick(&mut rng, &[0, 5, 10, 30]),
                    will: rng
                        .random_bool(0.5)
                        .then(|| if v5 { pick(&mut rng, &[0, 0, 1, 3]) } else { 0 }),
                    receive_maximum: pick(&mut rng, &[2, 5, 65_535]),
                    topic_aliases: v5 && rng.random_bool(0.3),
                }
            })
            .collect::<Vec<_>>();
        let broker = BrokerKnobs {
            write_budget: pick(&mut rng, &[200, 1_000, 64 * 1024]),
            pause_publishers_at: pick(&mut rng, &[4, 16, 256]),
            receive_maximum: pick(&mut rng, &[2, 10, 65_535]),
            max_in_flight: pick(&mut rng, &[2, 8, 128]),
            topic_alias_maximum: pick(&mut rng, &[0, 3]),
            outbound_topic_aliases: rng.random_bool(0.3),
            write_timeout_secs: pick(&mut rng, &[5, 30]),
        };
        let count = rng.random_range(40..200);
        let mut steps = Vec::with_capacity(count + 3 * n);
        // Everyone starts connected; most subscribe at once.
        for c in 0..n {
            steps.push(Step {
                action: Action::Connect(c),
                wait: 5,
            });
        }
        for (c, spec) in clients.iter().enumerate() {
            for _ in 0..rng.random_range(0..3) {
                let qos = pick(&mut rng, &[0, 1, 2]);
                let action = if spec.v5 && spec.durable() && rng.random_bool(0.3) {
                    Action::SubscribeShared(c, qos)
                } else {
                    Action::Subscribe(c, rng.random_range(0..FILTERS.len()), qos)
                };
                steps.push(Step { action, wait: 5 });
            }
        }
        for _ in 0..count {
            let c = rng.random_range(0..n);
            let spec = &clients[c];
            let qos = pick(&mut rng, &[0, 1, 1, 2, 2]);
            let action = match rng.random_range(0..100) {
                0..=9 => Action::Connect(c),
                10..=21 => {
                    if spec.v5 && spec.durable() && rng.random_bool(0.3) {
                        Action::SubscribeShared(c, qos)
                    } else {
                        Action::Subscribe(c, rng.random_range(0..FILTERS.len()), qos)
                    }
                }
                22..=23 => Action::Unsubscribe(c, rng.random_range(0..FILTERS.len())),
                24..=69 => {
                    let retain = rng.random_bool(0.15);
                    Action::Publish {
                        client: c,
                        topic: rng.random_range(0..TOPICS.len()),
                        qos,
                        retain,
                        delete: retain && rng.random_bool(0.15),
                    }
                }
                70..=74 => Action::Disconnect(c, spec.v5 && rng.random_bool(0.3)),
                75..=80 => Action::Sever(c, rng.random_bool(0.7)),
                81..=84 => Action::HoldUp(c, rng.random_range(100..20_000)),
                85..=88 => Action::StopReading(c, rng.random_range(100..20_000)),
                89..=90 => Action::ClockJump(rng.random_range(1..60)),
                91..=94 => Action::RestartBroker(rng.random_range(0..12)),
                _ => Action::RestartClient(c, rng.random_range(0..6)),
            };
            let wait = match rng.random_range(0..10) {
                0..=5 => rng.random_range(0..20),
                6..=8 => rng.random_range(20..500),
                _ => rng.random_range(500..6_000),
            };
            steps.push(Step { action, wait });
        }
        Plan {
            clients,
            broker,
            steps,
        }
    }
}
