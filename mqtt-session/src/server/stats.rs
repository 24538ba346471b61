//! What a running server counts, and how it shows it: the `$SYS/broker/...` topics (with
//! mosquitto's names) and a Prometheus `/metrics` endpoint.

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::vec::Vec;

use mqtt_codec::{Publish, TopicName};

use crate::broker::{Limit, Undelivered};

/// Traffic counted by the connection tasks, once per read or write (not per packet).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_sent: AtomicU64,
    pub(crate) publish_received: AtomicU64,
    pub(crate) publish_sent: AtomicU64,
    /// TCP connections accepted (before any handshake).
    pub(crate) connections: AtomicU64,
}

impl Traffic {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Packets counted while a batch is decoded or encoded, added to [`Traffic`] once, when
/// dropped.
pub(crate) struct Tally<'a> {
    traffic: &'a Traffic,
    sent: bool,
    pub(crate) packets: u64,
    pub(crate) publishes: u64,
}

impl<'a> Tally<'a> {
    pub(crate) fn received(traffic: &'a Traffic) -> Self {
        Self {
            traffic,
            sent: false,
            packets: 0,
            publishes: 0,
        }
    }

    pub(crate) fn sent(traffic: &'a Traffic) -> Self {
        Self {
            sent: true,
            ..Self::received(traffic)
        }
    }

    pub(crate) fn count(&mut self, packet: &mqtt_codec::Packet) {
        self.packets += 1;
        self.publishes += u64::from(matches!(packet, mqtt_codec::Packet::Publish(_)));
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        let t = self.traffic;
        let (packets, publishes) = if self.sent {
            (&t.packets_sent, &t.publish_sent)
        } else {
            (&t.packets_received, &t.publish_received)
        };
        Traffic::add(packets, self.packets);
        Traffic::add(publishes, self.publishes);
    }
}

/// What the hub's driver counts under its lock, from the hub's events and its own
/// decisions.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Clients connected now (CONNACK sent and connection open).
    pub(crate) connected: u64,
    /// The most connected at once.
    pub(crate) max_connected: u64,
    /// CONNECTs refused by the authenticator or the throttle, by reason code.
    pub(crate) refused: BTreeMap<u8, u64>,
    /// Messages meant for a client and dropped, by reason (a few reasons: a list).
    pub(crate) dropped: Vec<(Undelivered, u64)>,
    /// Limits of the configuration reached, by limit.
    pub(crate) limits: BTreeMap<Limit, u64>,
}

impl Counts {
    pub(crate) fn dropped(&mut self, reason: Undelivered) {
        match self.dropped.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.dropped.push((reason, 1)),
        }
    }
}

/// A snapshot of a running server's counters, from
/// [`RunningServer::stats`](super::RunningServer::stats). Counters count from the start;
/// the others are as of now.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Since the server started.
    pub uptime: Duration,
    /// Clients connected now.
    pub clients_connected: u64,
    /// The most clients connected at once.
    pub clients_maximum: u64,
    /// Sessions the broker holds: clients connected, and disconnected ones whose session
    /// lasts.
    pub sessions: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Subscriptions, all sessions together.
    pub subscriptions: u64,
    /// Retained messages.
    pub retained_messages: u64,
    /// MQTT packets received, of every type.
    pub packets_received: u64,
    /// MQTT packets sent, of every type.
    pub packets_sent: u64,
    /// PUBLISH packets received.
    pub publish_received: u64,
    /// PUBLISH packets sent.
    pub publish_sent: u64,
    /// Bytes received (MQTT bytes; for WebSocket, the frames' payloads).
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// CONNECTs refused by the authenticator or the per-address throttle, by reason code.
    pub connects_refused: BTreeMap<u8, u64>,
    /// Messages meant for a client and dropped, by reason (`QueueFull`, `Expired`, ...).
    pub messages_dropped: BTreeMap<String, u64>,
    /// Limits of the configuration reached, by limit (`Sessions`, `QueuedMessages`, ...).
    pub limits_reached: BTreeMap<String, u64>,
}

/// Rates per minute, averaged over 1, 5 and 15 minutes as mosquitto's `$SYS/broker/load`
/// topics are: each sample moves an average towards the rate since the last sample by
/// `1 - exp(-interval / window)`.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    last: Option<Stats>,
    /// By name: averages over 1, 5 and 15 minutes.
    averages: BTreeMap<&'static str, [f64; 3]>,
}

impl Loads {
    /// Takes a sample `interval` after the last one.
    pub(crate) fn sample(&mut self, now: &Stats, interval: Duration) {
        let secs = interval.as_secs_f64();
        if let Some(last) = &self.last
            && secs > 0.0
        {
            let rates = [
                (
                    "messages/received",
                    now.packets_received - last.packets_received,
                ),
                ("messages/sent", now.packets_sent - last.packets_sent),
                (
                    "publish/received",
                    now.publish_received - last.publish_received,
                ),
                ("publish/sent", now.publish_sent - last.publish_sent),
                ("bytes/received", now.bytes_received - last.bytes_received),
                ("bytes/sent", now.bytes_sent - last.bytes_sent),
                ("connections", now.connections - last.connections),
            ];
            for (name, delta) in rates {
                let rate = delta as f64 * 60.0 / secs;
                let avg = self.averages.entry(name).or_default();
                for (a, window) in avg.iter_mut().zip([60.0, 300.0, 900.0]) {
                    let k = (-secs / window).exp();
                    *a = rate + k * (*a - rate);
                }
            }
        }
        self.last = Some(now.clone());
    }

    fn topics(&self, out: &mut Vec<(String, String)>) {
        for (name, avg) in &self.averages {
            for (a, window) in avg.iter().zip(["1min", "5min", "15min"]) {
                out.push((format!("load/{name}/{window}"), format!("{a:.2}")));
            }
        }
    }
}

/// The `$SYS/broker/...` topics and their values, mosquitto's names where it has them.
pub(crate) fn sys_topics(s: &Stats, loads: &Loads) -> Vec<(String, String)> {
    let disconnected = s.sessions.saturating_sub(s.clients_connected);
    let mut out: Vec<(String, String)> = [
        (
            "version",
            format!("mqtt-session {}", env!("CARGO_PKG_VERSION")),
        ),
        ("uptime", format!("{} seconds", s.uptime.as_secs())),
        ("clients/connected", s.clients_connected.to_string()),
        ("clients/active", s.clients_connected.to_string()),
        ("clients/disconnected", disconnected.to_string()),
        ("clients/inactive", disconnected.to_string()),
        ("clients/total", s.sessions.to_string()),
        ("clients/maximum", s.clients_maximum.to_string()),
        ("messages/received", s.packets_received.to_string()),
        ("messages/sent", s.packets_sent.to_string()),
        ("publish/messages/received", s.publish_received.to_string()),
        ("publish/messages/sent", s.publish_sent.to_string()),
        (
            "publish/messages/dropped",
            s.messages_dropped.values().sum::<u64>().to_string(),
        ),
        ("bytes/received", s.bytes_received.to_string()),
        ("bytes/sent", s.bytes_sent.to_string()),
        ("subscriptions/count", s.subscriptions.to_string()),
        ("retained messages/count", s.retained_messages.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    loads.topics(&mut out);
    out
}

/// A retained QoS 0 message of the broker's own on `$SYS/broker/{name}`.
pub(crate) fn sys_message(name: &str, value: &str) -> Option<Publish> {
    let topic = TopicName::new(format!("$SYS/broker/{name}")).ok()?;
    let mut p = Publish::new(topic, value.to_string());
    p.retain = true;
    Some(p)
}

/// The counters in Prometheus's text exposition format (version 0.0.4).
pub(crate) fn prometheus(s: &Stats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        out += &format!("# HELP mqtt_{name} {help}\n# TYPE mqtt_{name} {kind}\n");
        for (labels, v) in samples {
            out += &format!("mqtt_{name}{labels} {v}\n");
        }
    };
    let one = |v: u64| [(String::new(), v)];
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
        &one(s.uptime.as_secs()),
    );
    metric(
        "clients_connected",
        "gauge",
        "Clients connected now.",
        &one(s.clients_connected),
    );
    metric(
        "clients_maximum",
        "gauge",
        "The most clients connected at once.",
        &one(s.clients_maximum),
    );
    metric(
        "sessions",
        "gauge",
        "Sessions held, of connected and disconnected clients.",
        &one(s.sessions),
    );
    metric(
        "subscriptions",
        "gauge",
        "Subscriptions, all sessions together.",
        &one(s.subscriptions),
    );
    metric(
        "retained_messages",
        "gauge",
        "Retained messages.",
        &one(s.retained_messages),
    );
    metric(
        "connections_total",
        "counter",
        "TCP connections accepted.",
        &one(s.connections),
    );
    metric(
        "packets_received_total",
        "counter",
        "MQTT packets received.",
        &one(s.packets_received),
    );
    metric(
        "packets_sent_total",
        "counter",
        "MQTT packets sent.",
        &one(s.packets_sent),
    );
    metric(
        "publish_received_total",
        "counter",
        "PUBLISH packets received.",
        &one(s.publish_received),
    );
    metric(
        "publish_sent_total",
        "counter",
        "PUBLISH packets sent.",
        &one(s.publish_sent),
    );
    metric(
        "bytes_received_total",
        "counter",
        "Bytes received.",
        &one(s.bytes_received),
    );
    metric(
        "bytes_sent_total",
        "counter",
        "Bytes sent.",
        &one(s.bytes_sent),
    );
    let by = |label: &str, m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
        m.iter()
            .map(|(k, v)| (format!("{{{label}=\"{}\"}}", escape(k)), *v))
            .collect()
    };
    let refused: BTreeMap<String, u64> = s
        .connects_refused
        .iter()
        .map(|(code, n)| (format!("0x{code:02X}"), *n))
        .collect();
    metric(
        "connects_refused_total",
        "counter",
        "CONNECTs refused by authentication or the per-address throttle, by reason code.",
        &by("reason_code", &refused),
    );
    metric(
        "messages_dropped_total",
        "counter",
        "Messages meant for a client and dropped, by reason.",
        &by("reason", &s.messages_dropped),
    );
    metric(
        "limits_reached_total",
        "counter",
        "Configured limits reached, by limit.",
        &by("limit", &s.limits_reached),
    );
    out
}

/// A label value as the text format writes it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
