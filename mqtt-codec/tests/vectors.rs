//! Packet vectors from `testdata/`: hex with the decoding or the error the specifications
//! call for. The format is described in the README's "Testing" section and in the header
//! of each vector file.
//!
//! Every valid vector is decoded with `Packet::decode_exact` and from a stream (whole, in
//! every prefix, and twice in one buffer), compared with its expected JSON, re-encoded
//! (byte for byte unless it says `canonical: false`) and decoded again. Every malformed
//! vector must fail both ways with its error kind and rule id. All failures are collected
//! and reported together, by vector name.
#![cfg(feature = "serde")]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use mqtt_codec::{
    Bytes, BytesMut, DecodeContext, DecodeError, DecodeErrorKind, Decoded, Frame, MAX_PACKET_SIZE,
    Packet, PacketRef, PacketType, PropertyId, ProtocolVersion, check_frame,
};
use serde_json::Value;

/// The vector files, in `testdata/`.
const FILES: &[&str] = &[
    "valid-v311.txt",
    "valid-v5.txt",
    "spec-examples.txt",
    "malformed-v311.txt",
    "malformed-v5.txt",
    "reason-codes-v5.txt",
    "spec-coverage-v311.txt",
    "spec-coverage-v5.txt",
];

/// What a vector expects.
#[derive(Debug, Clone)]
enum Expect {
    /// Decodes to this packet (its JSON).
    Packet(Value),
    /// Fails with this error.
    Error(ExpectedError),
    /// A stream decoder needs this many more bytes; a whole-packet decoder finds it short.
    Incomplete(usize),
}

#[derive(Debug, Clone)]
struct ExpectedError {
    kind: String,
    rule_id: Option<String>,
    /// `size=`, `max=` (PacketTooLarge) and `level=` (UnsupportedProtocolVersion).
    params: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
struct Vector {
    file: &'static str,
    line: usize,
    name: String,
    /// The text after `version:`.
    version_text: String,
    version: Option<ProtocolVersion>,
    bytes: Vec<u8>,
    expect: Expect,
    max_packet_size: u32,
    canonical: bool,
}

impl Vector {
    fn cx(&self) -> DecodeContext {
        DecodeContext {
            version: self.version,
            max_packet_size: self.max_packet_size,
        }
    }

    fn label(&self) -> String {
        format!("{} ({}:{})", self.name, self.file, self.line)
    }
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("bad hex {:?}", &digits[i..i + 2]))
        })
        .collect()
}

fn parse_error(s: &str) -> Result<ExpectedError, String> {
    let mut words = s.split_whitespace();
    let kind = words.next().ok_or("empty error:")?.to_string();
    let params_allowed: &[&str] = match kind.as_str() {
        "Malformed" | "ProtocolError" => &[],
        "PacketTooLarge" => &["size", "max"],
        "UnsupportedProtocolVersion" => &["level"],
        _ => return Err(format!("unknown error kind {kind:?}")),
    };
    let rule = words.next().ok_or("error: needs a rule id or -")?;
    let rule_id = match rule {
        "-" => None,
        r if r.starts_with("MQTT-") => Some(r.to_string()),
        r => return Err(format!("rule must be MQTT-x.y.z-n or -, not {r:?}")),
    };
    let mut params = BTreeMap::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or(format!("expected key=value, not {w:?}"))?;
        if !params_allowed.contains(&k) {
            return Err(format!("{kind} takes no parameter {k:?}"));
        }
        let v = v.parse().map_err(|_| format!("bad number in {w:?}"))?;
        params.insert(k.to_string(), v);
    }
    if params.len() != params_allowed.len() {
        return Err(format!("{kind} needs {}", params_allowed.join("= and ")));
    }
    Ok(ExpectedError {
        kind,
        rule_id,
        params,
    })
}

/// Parses one file: blocks of `key: value` lines separated by blank lines; `#` starts a
/// comment line.
fn parse_file(file: &'static str, text: &str) -> Result<Vec<Vector>, Vec<String>> {
    let mut vectors = Vec::new();
    let mut errors = Vec::new();
    let mut block: Vec<(usize, &str, &str)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, raw) in lines.iter().enumerate().chain([(lines.len(), &"")]) {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if !line.is_empty() {
            match line.split_once(':') {
                Some((k, v)) => block.push((i + 1, k.trim(), v.trim())),
                None => errors.push(format!("{file}:{}: expected `key: value`", i + 1)),
            }
            continue;
        }
        if block.is_empty() {
            continue;
        }
        let start = block[0].0;
        match parse_block(file, &block) {
            Ok(v) => vectors.push(v),
            Err(e) => errors.push(format!("{file}:{start}: {e}")),
        }
        block.clear();
    }
    if errors.is_empty() {
        Ok(vectors)
    } else {
        Err(errors)
    }
}

fn parse_block(file: &'static str, block: &[(usize, &str, &str)]) -> Result<Vector, String> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut hex = String::new();
    for &(_, k, v) in block {
        match k {
            // A long hex string may continue on further `hex:` lines.
            "hex" => {
                hex.push(' ');
                hex.push_str(v);
            }
            "name" | "version" | "expect" | "error" | "incomplete" | "max_packet_size"
            | "canonical" => {
                if fields.insert(k, v.to_string()).is_some() {
                    return Err(format!("`{k}:` given twice"));
                }
            }
            _ => return Err(format!("unknown key `{k}:`")),
        }
    }
    let name = fields.remove("name").ok_or("missing `name:`")?;
    let err = |e: String| format!("{name}: {e}");
    let version_text = fields
        .remove("version")
        .ok_or(err("missing `version:`".into()))?;
    let version = match version_text.as_str() {
        "3.1" => Some(ProtocolVersion::V3_1),
        "3.1.1" => Some(ProtocolVersion::V3_1_1),
        "5" => Some(ProtocolVersion::V5),
        "none" => None,
        v => {
            return Err(err(format!(
                "version must be 3.1, 3.1.1, 5 or none, not {v:?}"
            )));
        }
    };
    if hex.trim().is_empty() {
        return Err(err("missing `hex:`".into()));
    }
    let bytes = parse_hex(&hex).map_err(err)?;
    let expect = match (
        fields.remove("expect"),
        fields.remove("error"),
        fields.remove("incomplete"),
    ) {
        (Some(json), None, None) => Expect::Packet(
            serde_json::from_str(&json).map_err(|e| err(format!("bad JSON in expect: {e}")))?,
        ),
        (None, Some(e), None) => Expect::Error(parse_error(&e).map_err(err)?),
        (None, None, Some(n)) => {
            Expect::Incomplete(n.parse().map_err(|_| err(format!("bad incomplete: {n}")))?)
        }
        _ => {
            return Err(err(
                "needs exactly one of `expect:`, `error:`, `incomplete:`".into(),
            ));
        }
    };
    let max_packet_size = match fields.remove("max_packet_size") {
        Some(m) => m
            .parse()
            .map_err(|_| err(format!("bad max_packet_size {m}")))?,
        None => MAX_PACKET_SIZE,
    };
    let canonical = match fields.remove("canonical").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(c) => return Err(err(format!("canonical must be true or false, not {c}"))),
    };
    if !canonical && !matches!(expect, Expect::Packet(_)) {
        return Err(err("`canonical:` only applies to valid vectors".into()));
    }
    Ok(Vector {
        file,
        line: block[0].0,
        name,
        version_text,
        version,
        bytes,
        expect,
        max_packet_size,
        canonical,
    })
}

fn load() -> Vec<Vector> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for &file in FILES {
        let text = std::fs::read_to_string(testdata().join(file))
            .unwrap_or_else(|e| panic!("cannot read testdata/{file}: {e}"));
        match parse_file(file, &text) {
            Ok(v) => all.extend(v),
            Err(e) => errors.extend(e),
        }
    }
    assert!(
        errors.is_empty(),
        "bad vector files:\n{}",
        errors.join("\n")
    );
    all
}

fn kind_name(k: DecodeErrorKind) -> &'static str {
    match k {
        DecodeErrorKind::Malformed => "Malformed",
        DecodeErrorKind::ProtocolError => "ProtocolError",
        DecodeErrorKind::PacketTooLarge { .. } => "PacketTooLarge",
        DecodeErrorKind::UnsupportedProtocolVersion { .. } => "UnsupportedProtocolVersion",
        _ => "unknown",
    }
}

/// Checks an error against the expectation; `None` when it matches.
fn error_mismatch(got: &DecodeError, want: &ExpectedError) -> Option<String> {
    let mut params = BTreeMap::new();
    match got.kind() {
        DecodeErrorKind::PacketTooLarge { size, max } => {
            params.insert("size".to_string(), size);
            params.insert("max".to_string(), u64::from(max));
        }
        DecodeErrorKind::UnsupportedProtocolVersion { level } => {
            params.insert("level".to_string(), u64::from(level));
        }
        _ => {}
    }
    let ok = kind_name(got.kind()) == want.kind
        && got.rule_id() == want.rule_id.as_deref()
        && params == want.params;
    (!ok).then(|| {
        let p: Vec<String> = params.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        format!(
            "got error: {} {}{} ({got})",
            kind_name(got.kind()),
            got.rule_id().unwrap_or("-"),
            p.concat()
        )
    })
}

fn to_json(p: &Packet) -> Value {
    serde_json::to_value(p).expect("packets serialize")
}

/// The version a decoded packet is encoded in again: a CONNECT carries its own.
fn encode_version(v: &Vector, p: &Packet) -> ProtocolVersion {
    match p {
        Packet::Connect(c) => c.protocol,
        _ => v
            .version
            .expect("only a CONNECT decodes before the version is known"),
    }
}

/// Runs one vector; returns what went wrong, if anything.
fn check(v: &Vector) -> Vec<String> {
    let mut out = Vec::new();
    let cx = v.cx();
    let exact = Packet::decode_exact(Bytes::from(v.bytes.clone()), &cx);
    let mut stream = BytesMut::from(&v.bytes[..]);
    let streamed = Packet::decode_stream(&mut stream, &cx);
    // The borrowing decoder, owned afterwards for comparing.
    let borrowed = PacketRef::decode(&v.bytes, &cx)
        .map(|o| o.map(|(p, len)| (p.to_packet().map_err(|e| e.to_string()), len)));
    match &v.expect {
        Expect::Packet(want) => {
            let p = match exact {
                Ok(p) => p,
                Err(e) => {
                    out.push(format!("decode_exact failed: {e}"));
                    return out;
                }
            };
            let got = to_json(&p);
            if &got != want {
                out.push(format!("decoded to {got}"));
            }
            match streamed {
                Ok(Decoded::Packet(s)) if s == p && stream.is_empty() => {}
                other => out.push(format!(
                    "stream decode gave {other:?} with {} bytes left",
                    stream.len()
                )),
            }
            match &borrowed {
                Ok(Some((Ok(b), len))) if *b == p && *len == v.bytes.len() => {}
                other => out.push(format!("PacketRef::decode gave {other:?}")),
            }
            out.extend(check_prefixes(v, &cx));
            out.extend(check_two_in_a_row(v, &cx, &p));
            let ver = encode_version(v, &p);
            match p.to_bytes(ver) {
                Ok(enc) => {
                    if p.encoded_len(ver).ok() != Some(enc.len()) {
                        out.push("encoded_len differs from the encoded size".into());
                    }
                    let same = enc[..] == v.bytes[..];
                    if v.canonical && !same {
                        out.push(format!("re-encodes to {}", hex(&enc)));
                    }
                    if !v.canonical && same {
                        out.push("says `canonical: false` but re-encodes to the same bytes".into());
                    }
                    match Packet::decode_exact(enc.freeze(), &cx) {
                        Ok(again) if again == p => {}
                        other => out.push(format!("re-encoded bytes decode to {other:?}")),
                    }
                }
                Err(e) => out.push(format!("does not re-encode: {e}")),
            }
        }
        Expect::Error(want) => {
            match &exact {
                Ok(p) => out.push(format!("decode_exact accepted it: {}", to_json(p))),
                Err(e) => out.extend(error_mismatch(e, want).map(|m| format!("decode_exact {m}"))),
            }
            match &streamed {
                Ok(d) => out.push(format!("stream decode accepted it: {d:?}")),
                Err(e) => out.extend(error_mismatch(e, want).map(|m| format!("stream decode {m}"))),
            }
            match &borrowed {
                Ok(d) => out.push(format!("PacketRef::decode accepted it: {d:?}")),
                Err(e) => {
                    out.extend(error_mismatch(e, want).map(|m| format!("PacketRef::decode {m}")))
                }
            }
        }
        Expect::Incomplete(needed) => {
            match &streamed {
                Ok(Decoded::Incomplete { needed: n }) if n == needed => {}
                other => out.push(format!("stream decode gave {other:?}")),
            }
            if stream[..] != v.bytes[..] {
                out.push("an incomplete stream decode consumed bytes".into());
            }
            if !matches!(borrowed, Ok(None)) {
                out.push(format!("PacketRef::decode gave {borrowed:?}"));
            }
            match &exact {
                Err(e) if e.kind() == DecodeErrorKind::Malformed => {}
                other => out.push(format!("decode_exact gave {other:?}, not Malformed")),
            }
        }
    }
    out
}

/// Every strict prefix of a valid packet is "need more", consumes nothing, and once the fixed
/// header is complete says exactly how many bytes are missing.
fn check_prefixes(v: &Vector, cx: &DecodeContext) -> Vec<String> {
    let header_len = match check_frame(&v.bytes, cx) {
        Ok(Frame::Complete { header_len, .. }) => header_len,
        other => return vec![format!("check_frame on the whole packet gave {other:?}")],
    };
    let mut out = Vec::new();
    for k in 0..v.bytes.len() {
        let mut buf = BytesMut::from(&v.bytes[..k]);
        match Packet::decode_stream(&mut buf, cx) {
            Ok(Decoded::Incomplete { needed }) => {
                let exact = k >= header_len;
                if (exact && needed != v.bytes.len() - k) || needed == 0 {
                    out.push(format!("prefix of {k} bytes: needed {needed}"));
                }
                if buf.len() != k {
                    out.push(format!("prefix of {k} bytes: consumed bytes"));
                }
            }
            other => {
                out.push(format!("prefix of {k} bytes: {other:?}"));
                break;
            }
        }
    }
    out
}

/// Two copies in one buffer decode as two packets.
fn check_two_in_a_row(v: &Vector, cx: &DecodeContext, p: &Packet) -> Vec<String> {
    if v.version.is_none() {
        // Without a version only the first CONNECT decodes; a session sets it after that.
        return Vec::new();
    }
    let mut buf = BytesMut::from(&v.bytes[..]);
    buf.extend_from_slice(&v.bytes);
    let a = Packet::decode(&mut buf, cx);
    let b = Packet::decode(&mut buf, cx);
    match (a, b) {
        (Ok(Some(a)), Ok(Some(b))) if &a == p && &b == p && buf.is_empty() => Vec::new(),
        other => vec![format!("two copies in one buffer decode to {other:?}")],
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

#[test]
fn every_vector_decodes_as_the_specifications_say() {
    let vectors = load();
    let mut failures = Vec::new();
    for v in &vectors {
        let problems = check(v);
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}", v.label(), problems.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn vector_names_are_unique() {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    let mut dups = Vec::new();
    let vectors = load();
    for v in &vectors {
        if let Some(first) = seen.insert(&v.name, v.label()) {
            dups.push(format!("{} and {first}", v.label()));
        }
    }
    assert!(dups.is_empty(), "duplicate names:\n{}", dups.join("\n"));
}

/// Every valid vector that decodes, with the version it exercises (a CONNECT names its own).
fn valid_packets(vectors: &[Vector]) -> Vec<(&Vector, ProtocolVersion, Packet)> {
    vectors
        .iter()
        .filter(|v| matches!(v.expect, Expect::Packet(_)))
        .filter_map(|v| {
            let p = Packet::decode_exact(Bytes::from(v.bytes.clone()), &v.cx()).ok()?;
            Some((v, encode_version(v, &p), p))
        })
        .collect()
}

#[test]
fn every_packet_type_has_a_valid_vector_in_each_version() {
    let vectors = load();
    let have: BTreeSet<(ProtocolVersion, PacketType)> = valid_packets(&vectors)
        .into_iter()
        .map(|(_, ver, p)| (ver, p.packet_type()))
        .collect();
    let mut missing = Vec::new();
    for nibble in 1..=15 {
        let t = PacketType::from_nibble(nibble).unwrap();
        for ver in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            if t == PacketType::Auth && ver == ProtocolVersion::V3_1_1 {
                continue; // AUTH exists in MQTT 5.0 only
            }
            if !have.contains(&(ver, t)) {
                missing.push(format!("{t} in {ver}"));
            }
        }
    }
    if !have.contains(&(ProtocolVersion::V3_1, PacketType::Connect)) {
        missing.push("CONNECT in 3.1".into());
    }
    assert!(
        missing.is_empty(),
        "no valid vector for: {}",
        missing.join(", ")
    );
}

/// Table 2-4 of MQTT 5.0 (section 2.2.2.2): each property, the JSON field that holds it, and
/// the packets (and Will Properties) that may carry it.
const PROPERTIES: &[(u8, &[&str], &[&str])] = &[
    (0x01, &["payload_format_indicator"], &["PUBLISH", "WILL"]),
    (0x02, &["message_expiry_interval"], &["PUBLISH", "WILL"]),
    (0x03, &["content_type"], &["PUBLISH", "WILL"]),
    (0x08, &["response_topic"], &["PUBLISH", "WILL"]),
    (0x09, &["correlation_data"], &["PUBLISH", "WILL"]),
    (
        0x0B,
        &["subscription_identifier", "subscription_identifiers"],
        &["PUBLISH", "SUBSCRIBE"],
    ),
    (
        0x11,
        &["session_expiry_interval"],
        &["CONNECT", "CONNACK", "DISCONNECT"],
    ),
    (0x12, &["assigned_client_identifier"], &["CONNACK"]),
    (0x13, &["server_keep_alive"], &["CONNACK"]),
    (
        0x15,
        &["authentication_method"],
        &["CONNECT", "CONNACK", "AUTH"],
    ),
    (
        0x16,
        &["authentication_data"],
        &["CONNECT", "CONNACK", "AUTH"],
    ),
    (0x17, &["request_problem_information"], &["CONNECT"]),
    (0x18, &["will_delay_interval"], &["WILL"]),
    (0x19, &["request_response_information"], &["CONNECT"]),
    (0x1A, &["response_information"], &["CONNACK"]),
    (0x1C, &["server_reference"], &["CONNACK", "DISCONNECT"]),
    (
        0x1F,
        &["reason_string"],
        &[
            "CONNACK",
            "PUBACK",
            "PUBREC",
            "PUBREL",
            "PUBCOMP",
            "SUBACK",
            "UNSUBACK",
            "DISCONNECT",
            "AUTH",
        ],
    ),
    (0x21, &["receive_maximum"], &["CONNECT", "CONNACK"]),
    (0x22, &["topic_alias_maximum"], &["CONNECT", "CONNACK"]),
    (0x23, &["topic_alias"], &["PUBLISH"]),
    (0x24, &["maximum_qos"], &["CONNACK"]),
    (0x25, &["retain_available"], &["CONNACK"]),
    (
        0x26,
        &["user_properties"],
        &[
            "CONNECT",
            "CONNACK",
            "PUBLISH",
            "WILL",
            "PUBACK",
            "PUBREC",
            "PUBREL",
            "PUBCOMP",
            "SUBSCRIBE",
            "SUBACK",
            "UNSUBSCRIBE",
            "UNSUBACK",
            "DISCONNECT",
            "AUTH",
        ],
    ),
    (0x27, &["maximum_packet_size"], &["CONNECT", "CONNACK"]),
    (0x28, &["wildcard_subscription_available"], &["CONNACK"]),
    (0x29, &["subscription_identifiers_available"], &["CONNACK"]),
    (0x2A, &["shared_subscription_available"], &["CONNACK"]),
];

fn property_for_field(field: &str) -> Option<u8> {
    PROPERTIES
        .iter()
        .find(|(_, fields, _)| fields.contains(&field))
        .map(|&(id, _, _)| id)
}

#[test]
fn every_property_appears_in_every_packet_that_may_carry_it() {
    let table: BTreeSet<u8> = PROPERTIES.iter().map(|&(id, _, _)| id).collect();
    let all: BTreeSet<u8> = PropertyId::ALL.iter().map(|p| p.0).collect();
    assert_eq!(
        table, all,
        "the table must list all 27 properties of MQTT 5.0"
    );
    assert_eq!(all.len(), 27);

    let vectors = load();
    let mut seen: BTreeSet<(u8, &'static str)> = BTreeSet::new();
    let mut strange = Vec::new();
    for (v, ver, p) in valid_packets(&vectors) {
        if ver != ProtocolVersion::V5 {
            continue;
        }
        let json = to_json(&p);
        let mut sets = vec![(p.packet_type().name(), &json["properties"])];
        if let Some(will) = json.get("will").filter(|w| !w.is_null()) {
            sets.push(("WILL", &will["properties"]));
        }
        for (carrier, props) in sets {
            let Some(props) = props.as_object() else {
                continue;
            };
            for field in props.keys() {
                match property_for_field(field) {
                    Some(id) => {
                        seen.insert((id, carrier));
                    }
                    None => strange.push(format!("{}: unknown property field {field}", v.name)),
                }
            }
        }
    }
    assert!(strange.is_empty(), "{}", strange.join("\n"));
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for &(id, fields, carriers) in PROPERTIES {
        for &c in carriers {
            if !seen.contains(&(id, c)) {
                missing.push(format!("{} (0x{id:02X}) in {c}", fields[0]));
            }
        }
    }
    for &(id, carrier) in &seen {
        let (_, fields, carriers) = PROPERTIES.iter().find(|p| p.0 == id).unwrap();
        if !carriers.contains(&carrier) {
            wrong.push(format!("{} decoded in {carrier}", fields[0]));
        }
    }
    assert!(
        wrong.is_empty(),
        "properties decoded where the spec forbids them: {}",
        wrong.join(", ")
    );
    assert!(
        missing.is_empty(),
        "no valid vector carries: {}",
        missing.join(", ")
    );
}

fn spec_ids(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(testdata().join(file))
        .unwrap_or_else(|e| panic!("cannot read testdata/{file}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Every rule id a malformed vector expects is a normative statement of the version it is
/// decoded in (`none`: a CONNECT, which may be of either).
#[test]
fn expected_rule_ids_exist_in_the_specifications() {
    let v5 = spec_ids("spec-ids-v5.txt");
    let v311 = spec_ids("spec-ids-v311.txt");
    assert!(
        v5.len() > 250 && v311.len() > 130,
        "id lists look truncated"
    );
    let mut bad = Vec::new();
    for v in load() {
        let Expect::Error(e) = &v.expect else {
            continue;
        };
        let Some(id) = &e.rule_id else { continue };
        let known = match v.version {
            Some(ProtocolVersion::V5) => v5.contains(id),
            Some(_) => v311.contains(id),
            None => v5.contains(id) || v311.contains(id),
        };
        if !known {
            bad.push(format!(
                "{}: {id} is not an MQTT {} statement",
                v.label(),
                v.version_text
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
