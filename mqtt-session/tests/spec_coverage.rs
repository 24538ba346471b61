//! Which normative statements of the specifications the tests cite, kept true in the README.
//!
//! The ids come from `testdata/spec-ids-v5.txt` and `testdata/spec-ids-v311.txt`. A
//! statement counts as covered when a test cites it:
//! - a vector in `testdata/` whose `version:` is 3.1.1 (or 3.1) covers 3.1.1 ids, any other
//!   vector covers 5.0 ids; the id is the vector's expected `error:` rule or written in its
//!   name or a comment right above it;
//! - Rust test code (files under a `tests/` directory, and `#[cfg(test)]` modules in `src/`)
//!   covers a 3.1.1 id where the line citing it says `3.1.1`, `v311` or `V3_1_1`, and a 5.0
//!   id where it does not (or names `5.0`/`v5`/`V5` as well).
//!
//! The README's `spec-coverage` section must equal what this test computes; run it with
//! `UPDATE_SPEC_COVERAGE=1` to rewrite that section.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_ids(file: &str) -> Vec<String> {
    fs::read_to_string(root().join("testdata").join(file))
        .unwrap_or_else(|e| panic!("testdata/{file}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("MQTT-"))
        .map(String::from)
        .collect()
}

/// Every `MQTT-...` id written in `text`, in brackets or after `rule`/`error:` words.
fn ids_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("MQTT-") {
        let start = i + pos;
        let mut end = start + 5;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.' || b[end] == b'-') {
            end += 1;
        }
        let id = text[start..end].trim_end_matches(['.', '-']);
        if id.len() > 5 && id[5..].contains('-') {
            out.push(id.to_string());
        }
        i = end;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

const V3_MARKERS: [&str; 3] = ["3.1.1", "v311", "V3_1_1"];
/// On a line that also names 3.1.1, these say the id is cited for 5.0 as well.
const V5_MARKERS: [&str; 3] = ["5.0", "v5", "V5"];

/// The ids cited by tests: (5.0 ids, 3.1.1 ids).
fn cited() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut v5 = BTreeSet::new();
    let mut v3 = BTreeSet::new();
    // Vectors.
    let Ok(entries) = fs::read_dir(root().join("testdata")) else {
        panic!("no testdata/");
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".txt") || name.starts_with("spec-ids") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        let mut block = String::new();
        let mut flush = |block: &mut String| {
            let is_v3 = block
                .lines()
                .any(|l| matches!(l.trim(), "version: 3.1.1" | "version: 3.1"));
            for id in ids_in(block) {
                if is_v3 { &mut v3 } else { &mut v5 }.insert(id);
            }
            block.clear();
        };
        for line in text.lines() {
            if line.trim().is_empty() {
                flush(&mut block);
            } else {
                block.push_str(line);
                block.push('\n');
            }
        }
        flush(&mut block);
    }
    // Rust tests.
    let mut files = Vec::new();
    for krate in ["mqtt-codec", "mqtt-session", "benches"] {
        rust_files(&root().join(krate), &mut files);
    }
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        let in_tests_dir = f.components().any(|c| c.as_os_str() == "tests");
        let test_part = if in_tests_dir {
            &text[..]
        } else if let Some(pos) = text.find("#[cfg(test)]") {
            &text[pos..]
        } else {
            continue;
        };
        if f.ends_with("spec_coverage.rs") {
            continue;
        }
        for line in test_part.lines() {
            let is_v3 = V3_MARKERS.iter().any(|m| line.contains(m));
            let is_v5 = !is_v3 || V5_MARKERS.iter().any(|m| line.contains(m));
            for id in ids_in(line) {
                if is_v5 {
                    v5.insert(id.clone());
                }
                if is_v3 {
                    v3.insert(id);
                }
            }
        }
    }
    (v5, v3)
}

/// The chapter an id belongs to, for the table: `1`, `2`, `3.1` ... `3.15`, `4.x`, `6`.
fn chapter(id: &str) -> String {
    let nums = &id[5..id.rfind('-').unwrap_or(id.len())];
    let parts: Vec<&str> = nums.split('.').collect();
    match parts.as_slice() {
        ["3", x, ..] => format!("3.{x}"),
        [a, ..] => (*a).to_string(),
        [] => String::new(),
    }
}

const CHAPTERS: &[(&str, &str)] = &[
    ("1", "Data representation"),
    ("2", "Control packet format"),
    ("3.1", "CONNECT"),
    ("3.2", "CONNACK"),
    ("3.3", "PUBLISH"),
    ("3.4", "PUBACK"),
    ("3.5", "PUBREC"),
    ("3.6", "PUBREL"),
    ("3.7", "PUBCOMP"),
    ("3.8", "SUBSCRIBE"),
    ("3.9", "SUBACK"),
    ("3.10", "UNSUBSCRIBE"),
    ("3.11", "UNSUBACK"),
    ("3.12", "PINGREQ"),
    ("3.13", "PINGRESP"),
    ("3.14", "DISCONNECT"),
    ("3.15", "AUTH"),
    ("4", "Operational behaviour"),
    ("5", "Security"),
    ("6", "WebSocket transport"),
    ("7", "Conformance"),
];

fn report() -> String {
    let (c5, c3) = cited();
    let all5 = read_ids("spec-ids-v5.txt");
    let all3 = read_ids("spec-ids-v311.txt");
    let tally = |all: &[String], cited: &BTreeSet<String>| {
        let mut m: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
        for id in all {
            let e = m.entry(chapter(id)).or_default();
            e.0 += 1;
            if cited.contains(id) {
                e.1 += 1;
            } else {
                e.2.push(id.clone());
            }
        }
        m
    };
    let t5 = tally(&all5, &c5);
    let t3 = tally(&all3, &c3);
    let cell = |m: &BTreeMap<String, (usize, usize, Vec<String>)>, ch: &str| match m.get(ch) {
        Some((n, c, _)) => format!("{c} / {n}"),
        None => "—".to_string(),
    };
    let total = |m: &BTreeMap<String, (usize, usize, Vec<String>)>| {
        let (n, c) = m.values().fold((0, 0), |(n, c), v| (n + v.0, c + v.1));
        format!("**{c} / {n}**")
    };
    let mut s = String::new();
    s.push_str("| Section | MQTT 5.0 | MQTT 3.1.1 |\n|---|---|---|\n");
    for (ch, title) in CHAPTERS {
        if t5.contains_key(*ch) || t3.contains_key(*ch) {
            s.push_str(&format!(
                "| {ch} {title} | {} | {} |\n",
                cell(&t5, ch),
                cell(&t3, ch)
            ));
        }
    }
    for ch in t5.keys().chain(t3.keys()) {
        assert!(
            CHAPTERS.iter().any(|(c, _)| c == ch),
            "chapter {ch} is missing from CHAPTERS"
        );
    }
    s.push_str(&format!("| All | {} | {} |\n", total(&t5), total(&t3)));
    let missing = |m: &BTreeMap<String, (usize, usize, Vec<String>)>| {
        let mut v: Vec<String> = m.values().flat_map(|e| e.2.clone()).collect();
        v.sort_by_key(|id| {
            id[5..]
                .split(['.', '-'])
                .map(|p| p.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        });
        v.join(", ")
    };
    s.push_str("\n<details><summary>Statements no test cites yet</summary>\n\n");
    s.push_str(&format!(
        "MQTT 5.0: {}\n\nMQTT 3.1.1: {}\n",
        missing(&t5),
        missing(&t3)
    ));
    s.push_str("\n</details>\n");
    s
}

const BEGIN: &str = "<!-- begin generated: spec-coverage -->\n";
const END: &str = "<!-- end generated: spec-coverage -->";

#[test]
fn readme_shows_the_spec_coverage_the_tests_have() {
    let path = root().join("README.md");
    let readme = fs::read_to_string(&path).expect("README.md");
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the generated spec-coverage markers");
    };
    let current = &readme[a + BEGIN.len()..b];
    let want = report();
    if current != want {
        if std::env::var_os("UPDATE_SPEC_COVERAGE").is_some() {
            let new = format!("{}{}{}{}", &readme[..a], BEGIN, want, &readme[b..]);
            fs::write(&path, new).expect("write README.md");
        } else {
            panic!(
                "README.md's spec coverage is stale; rerun with UPDATE_SPEC_COVERAGE=1 \
                 (cargo test -p mqtt-session --test spec_coverage). It should read:\n{want}"
            );
        }
    }
}

#[test]
fn id_scanner_reads_bracketed_and_bare_ids() {
    assert_eq!(
        ids_in("x [MQTT-3.3.2-2] and MQTT-4.7.1-1, not MQTT-5 or MQTT-."),
        vec!["MQTT-3.3.2-2".to_string(), "MQTT-4.7.1-1".to_string()]
    );
    assert_eq!(chapter("MQTT-3.10.4-1"), "3.10");
    assert_eq!(chapter("MQTT-4.7.1-1"), "4");
    assert_eq!(chapter("MQTT-1.5.4-1"), "1");
}
