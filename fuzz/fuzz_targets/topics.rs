//! The broker's subscription tree against a naive matcher, under arbitrary inserts,
//! removes and lookups built from a small alphabet of levels (wildcards, `$` levels, empty
//! levels and shared subscriptions included).
//!
//! Checks: every lookup visits exactly the (filter, subscriber) pairs whose filter matches
//! by section 4.7 (`mqtt_codec::matches_filter`), each shared group once; `len` agrees with
//! the model; a refused filter changes nothing.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use mqtt_codec::matches_filter;
use mqtt_session::topic_tree::{Match, TopicTree};

const LEVELS: [&str; 8] = ["a", "b", "+", "#", "$s", "", "ab", "c"];

/// A filter or topic of up to four levels, from the next bytes.
fn path(data: &mut &[u8]) -> Option<String> {
    let (&n, rest) = data.split_first()?;
    *data = rest;
    let count = 1 + usize::from(n % 4);
    let mut levels = Vec::with_capacity(count);
    for _ in 0..count {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        levels.push(LEVELS[usize::from(b) % LEVELS.len()]);
    }
    Some(levels.join("/"))
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut tree: TopicTree<u8, u8> = TopicTree::new();
    // (filter as inserted, subscriber) -> value
    let mut model: BTreeMap<(String, u8), u8> = BTreeMap::new();
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let Some(p) = path(&mut data) else { break };
        let key = op >> 4;
        match op % 4 {
            0 | 1 => {
                // Insert, sometimes as a shared subscription of group "g" + key % 2.
                let filter = if op % 4 == 1 {
                    format!("$share/g{}/{p}", key % 2)
                } else {
                    p
                };
                match tree.insert(&filter, key, op) {
                    Ok(old) => {
                        assert_eq!(old, model.insert((filter, key), op));
                    }
                    Err(_) => {
                        // Refused: the filter must really be invalid (as a filter, or as
                        // a shared subscription: [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
                        let invalid = match mqtt_codec::TopicFilter::new(filter.as_str()) {
                            Err(_) => true,
                            Ok(f) => matches!(f.shared(), Some(Err(_))),
                        };
                        assert!(invalid, "refused a valid filter {filter:?}");
                    }
                }
            }
            2 => {
                let removed = tree.remove(&p, &key);
                assert_eq!(removed, model.remove(&(p, key)));
            }
            _ => {
                if p.contains(['+', '#']) {
                    continue;
                }
                let mut got_subs = Vec::new();
                let mut got_groups = Vec::new();
                tree.matches(&p, |m| match m {
                    Match::Subscription(k, v) => got_subs.push((*k, *v)),
                    Match::Shared(g) => got_groups.push(g.name().to_string()),
                });
                let mut want_subs = Vec::new();
                let mut want_groups = BTreeSet::new();
                for ((filter, k), v) in &model {
                    match filter.strip_prefix("$share/") {
                        Some(rest) => {
                            let (name, inner) = rest.split_once('/').unwrap_or((rest, ""));
                            if matches_filter(inner, &p) {
                                want_groups.insert((name.to_string(), inner.to_string()));
                            }
                        }
                        None => {
                            if matches_filter(filter, &p) {
                                want_subs.push((*k, *v));
                            }
                        }
                    }
                }
                // Each matching (filter, subscriber) exactly once: equal as multisets.
                got_subs.sort_unstable();
                want_subs.sort_unstable();
                assert_eq!(got_subs, want_subs, "topic {p:?}");
                assert_eq!(got_groups.len(), want_groups.len(), "topic {p:?}");
            }
        }
        assert_eq!(tree.len(), model.len());
    }
});
