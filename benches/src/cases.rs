//! The packets each case decodes and encodes, built with our codec and encoded once: every
//! codec in a run reads the same bytes.

use core::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use mqtt_codec::{
    Connect, MqttString, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS, QosPid,
    ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter, TopicName, Will,
};

/// One benchmark case: some packets of one protocol version and their encoding.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short identifier, used on the command line (`pub-small`, `mixed`, ...).
    pub id: &'static str,
    /// What the case holds, for the table.
    pub title: &'static str,
    /// The protocol version the packets are encoded in.
    pub version: ProtocolVersion,
    /// The packets, in order.
    pub packets: Vec<Packet>,
    /// All the packets encoded back to back.
    pub wire: Bytes,
}

impl Case {
    fn new(
        id: &'static str,
        title: &'static str,
        version: ProtocolVersion,
        packets: Vec<Packet>,
    ) -> Self {
        let mut wire = Vec::new();
        for p in &packets {
            let b = p
                .to_bytes(version)
                .unwrap_or_else(|e| panic!("case {id} {version}: {e}"));
            wire.extend_from_slice(&b);
        }
        Self {
            id,
            title,
            version,
            packets,
            wire: Bytes::from(wire),
        }
    }

    /// The case's label in tables: identifier and version.
    pub fn label(&self) -> String {
        format!("{} {}", self.id, version_tag(self.version))
    }
}

/// `3.1.1` or `5`.
pub fn version_tag(v: ProtocolVersion) -> &'static str {
    if v.is_v5() { "v5" } else { "v3.1.1" }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap_or_else(|| panic!("packet id {n} is 0"))
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s.to_owned()).unwrap_or_else(|e| panic!("topic {s:?}: {e}"))
}

fn string(s: &str) -> MqttString {
    MqttString::new(s.to_owned()).unwrap_or_else(|e| panic!("string {s:?}: {e}"))
}

/// A payload of `n` bytes that is not all one value.
fn payload(n: usize) -> Bytes {
    (0..n)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A topic name of exactly `n` bytes (`n` at least 4), in levels.
fn topic_of_len(n: usize) -> TopicName {
    let mut s = String::from("dev/");
    let mut i = 0;
    while s.len() < n {
        if s.len() % 9 == 8 && s.len() + 1 < n {
            s.push('/');
        } else {
            s.push((b'a' + (i % 26) as u8) as char);
            i += 1;
        }
    }
    topic(&s)
}

/// Case 1: PUBLISH QoS 0, 10-byte topic, 32-byte payload.
pub fn small_publish() -> Packet {
    Packet::Publish(Publish::new(topic("abcde/ghij"), payload(32)))
}

/// Case 2: PUBLISH QoS 1, 64-byte topic, 1 KiB payload.
pub fn kib_publish() -> Packet {
    let mut p = Publish::new(topic_of_len(64), payload(1024));
    p.qos_pid = QosPid::AtLeastOnce(pid(42));
    Packet::Publish(p)
}

/// Case 3: PUBLISH QoS 1, 64 KiB payload (16-byte topic).
pub fn large_publish() -> Packet {
    let mut p = Publish::new(topic("sensors/raw/blob"), payload(64 * 1024));
    p.qos_pid = QosPid::AtLeastOnce(pid(7));
    Packet::Publish(p)
}

/// Case 4: v5 PUBLISH QoS 1 with Content Type, 3 User Properties, Message Expiry Interval
/// and Topic Alias (20-byte topic, 64-byte payload).
pub fn props_publish() -> Packet {
    let mut p = Publish::new(topic("site/12/device/3456"), payload(64));
    p.qos_pid = QosPid::AtLeastOnce(pid(99));
    p.properties.content_type = Some(string("application/json"));
    p.properties.message_expiry_interval = Some(3600);
    p.properties.topic_alias = NonZeroU16::new(5);
    p.properties.user_properties = vec![
        (string("trace-id"), string("4bf92f3577b34da6")),
        (string("source"), string("gateway-7")),
        (string("schema"), string("v2")),
    ]
    .into();
    Packet::Publish(p)
}

/// Case 5: CONNECT with a Will, user name and password; for v5 also CONNECT and Will
/// properties.
pub fn connect(v: ProtocolVersion) -> Packet {
    let mut c = Connect::new(v, string("client-0123456789"));
    c.keep_alive = 30;
    c.clean_start = true;
    c.username = Some(string("user-name"));
    c.password = Some(Bytes::from_static(b"pass-word"));
    let mut will = Will {
        topic: topic("clients/client-0123456789/status"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    };
    if v.is_v5() {
        c.properties.session_expiry_interval = Some(300);
        c.properties.receive_maximum = NonZeroU16::new(100);
        c.properties.maximum_packet_size = NonZeroU32::new(1 << 20);
        c.properties.topic_alias_maximum = Some(16);
        c.properties.user_properties = vec![(string("region"), string("eu-west"))].into();
        will.properties.will_delay_interval = Some(10);
        will.properties.message_expiry_interval = Some(600);
        will.properties.content_type = Some(string("text/plain"));
        will.properties.user_properties = vec![(string("reason"), string("lost"))].into();
    }
    c.will = Some(will);
    Packet::Connect(Box::new(c))
}

/// Case 6: SUBSCRIBE with 10 filters (wildcards included).
pub fn subscribe() -> Packet {
    let filters = [
        "site/+/device/+/temp",
        "site/1/device/#",
        "alerts/#",
        "cmd/client-0123456789/+",
        "a/b/c/d/e/f",
        "telemetry/+/+/humidity",
        "config/client-0123456789",
        "+/status",
        "fleet/truck-42/gps",
        "logs/+/error",
    ];
    let filters = filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let qos = match i % 3 {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            let f = TopicFilter::new((*f).to_owned()).unwrap_or_else(|e| panic!("{f}: {e}"));
            (f, SubscriptionOptions::qos(qos))
        })
        .collect();
    Packet::Subscribe(Subscribe::new(pid(11), filters))
}

/// Case 7: 10,000 small packets of a busy connection, in a fixed pseudo-random order:
/// PUBLISH QoS 0 and 1 (10 to 40-byte topics, 8 to 200-byte payloads), PUBACK, the QoS 2
/// exchange, SUBACK, PINGREQ and PINGRESP.
pub fn mixed(v: ProtocolVersion) -> Vec<Packet> {
    let mut seed: u32 = 0x1234_5678;
    let mut next = move || {
        // xorshift32: a fixed sequence, so every run decodes the same bytes.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let topics: Vec<TopicName> = (0..16)
        .map(|i| topic_of_len(10 + (i * 2) as usize))
        .collect();
    let mut out = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        let r = next();
        let id = pid((i % 60_000 + 1) as u16);
        let p = match r % 20 {
            0..=7 => {
                let t = topics[(r >> 8) as usize % topics.len()].clone();
                Packet::Publish(Publish::new(t, payload(8 + (r >> 12) as usize % 193)))
            }
            8..=11 => {
                let t = topics[(r >> 8) as usize % topics.len()].clone();
                let mut p = Publish::new(t, payload(8 + (r >> 12) as usize % 193));
                p.qos_pid = QosPid::AtLeastOnce(id);
                Packet::Publish(p)
            }
            12..=14 => Packet::PubAck(PubResponse::new(id)),
            15 => Packet::PubRec(PubResponse::new(id)),
            16 => Packet::PubRel(PubResponse::new(id)),
            17 => Packet::PubComp(PubResponse::new(id)),
            18 => {
                let code = if v.is_v5() {
                    ReasonCode::GRANTED_QOS_1
                } else {
                    ReasonCode(1)
                };
                Packet::SubAck(SubAck {
                    packet_id: id,
                    properties: Default::default(),
                    reason_codes: vec![code, ReasonCode(0)],
                })
            }
            _ => {
                if r & 0x100 == 0 {
                    Packet::PingReq
                } else {
                    Packet::PingResp
                }
            }
        };
        out.push(p);
    }
    out
}

/// Every case, in table order.
pub fn all() -> Vec<Case> {
    use ProtocolVersion::{V3_1_1, V5};
    let mut cases = Vec::new();
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "pub-small",
            "PUBLISH QoS 0, 10 B topic, 32 B payload",
            v,
            vec![small_publish()],
        ));
    }
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "pub-1k",
            "PUBLISH QoS 1, 64 B topic, 1 KiB payload",
            v,
            vec![kib_publish()],
        ));
    }
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "pub-64k",
            "PUBLISH QoS 1, 64 KiB payload",
            v,
            vec![large_publish()],
        ));
    }
    cases.push(Case::new(
        "pub-props",
        "PUBLISH QoS 1 with content type, 3 user properties, expiry, topic alias",
        V5,
        vec![props_publish()],
    ));
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "connect",
            "CONNECT with will, user name, password (v5: and properties)",
            v,
            vec![connect(v)],
        ));
    }
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "subscribe",
            "SUBSCRIBE with 10 filters",
            v,
            vec![subscribe()],
        ));
    }
    for v in [V3_1_1, V5] {
        cases.push(Case::new(
            "mixed",
            "10,000 mixed small packets drained from one buffer",
            v,
            mixed(v),
        ));
    }
    cases
}
