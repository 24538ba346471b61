//! The subscription tree against a naive model: a list of (filter, subscriber) scanned
//! linearly with the codec's one-filter matcher. Random filters and topics from a small
//! alphabet (so they collide often), with inserts and removes interleaved.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_codec::matches_filter;
use mqtt_session::topic_tree::{Match, TopicTree};
use proptest::prelude::*;

/// Levels a topic name may have: empty ones, `$`-prefixed ones, and look-alikes of each
/// other ([MQTT-4.7.3-4]: no normalisation).
const TOPIC_LEVELS: &[&str] = &["a", "b", "", "$s", "A", "a "];

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOPIC_LEVELS), 1..5).prop_map(|l| l.join("/"))
}

fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        3 => prop::sample::select(TOPIC_LEVELS),
        2 => Just("+"),
    ];
    (
        prop::collection::vec(level, 0..4),
        any::<bool>(),
        prop::sample::select(&["", "", "", "$share/g/", "$share/h/"][..]),
    )
        .prop_map(|(levels, hash, share)| {
            let mut f = levels.join("/");
            if hash {
                f = if levels.is_empty() {
                    "#".into()
                } else {
                    f + "/#"
                };
            }
            // A filter is at least one character long ([MQTT-4.7.3-1]): a lone empty level
            // becomes `/`, two empty levels.
            if f.is_empty() {
                f.push('/');
            }
            format!("{share}{f}")
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8, u16),
    Remove(String, u8),
    Lookup(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (filter(), 0..4u8, any::<u16>()).prop_map(|(f, k, v)| Op::Insert(f, k, v)),
        3 => (filter(), 0..4u8).prop_map(|(f, k)| Op::Remove(f, k)),
        4 => topic().prop_map(Op::Lookup),
    ]
}

/// The inner filter of a shared subscription, or the filter itself.
fn inner(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => filter,
    }
}

type Model = BTreeMap<(String, u8), u16>;

/// What the model says matches: every (filter, key, value), a shared group's members under
/// their full filter.
fn model_matches(model: &Model, topic: &str) -> Vec<(String, u8, u16)> {
    model
        .iter()
        .filter(|((f, _), _)| matches_filter(inner(f), topic))
        .map(|((f, k), v)| (f.clone(), *k, *v))
        .collect()
}

/// What the tree says matches, in the same shape; and a check that each shared group comes
/// once.
fn tree_matches(tree: &TopicTree<u8, (String, u16)>, topic: &str) -> Vec<(String, u8, u16)> {
    let mut out = Vec::new();
    let mut groups = BTreeSet::new();
    tree.matches(topic, |m| match m {
        Match::Subscription(k, (f, v)) => out.push((f.clone(), *k, *v)),
        Match::Shared(g) => {
            assert!(!g.is_empty());
            let filter = &g.members()[0].1.0;
            assert!(groups.insert(filter.clone()), "group {filter} twice");
            for (k, (f, v)) in g.members() {
                assert_eq!(f, filter, "one group, one filter");
                out.push((f.clone(), *k, *v));
            }
        }
    });
    out.sort();
    out
}

fn check(tree: &TopicTree<u8, (String, u16)>, model: &Model, topic: &str) {
    let want = model_matches(model, topic);
    assert_eq!(tree_matches(tree, topic), want, "topic {topic:?}");
    assert_eq!(tree.has_match(topic), !want.is_empty(), "topic {topic:?}");
}

proptest! {
    // 512 cases by default; PROPTEST_CASES asks for another count.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        ..ProptestConfig::default()
    })]

    /// [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.2-1] [MQTT-4.7.3-4]
    #[test]
    fn tree_matches_like_a_linear_scan(
        ops in prop::collection::vec(op(), 1..60),
        topics in prop::collection::vec(topic(), 8),
    ) {
        let mut tree: TopicTree<u8, (String, u16)> = TopicTree::new();
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Insert(f, k, v) => {
                    let old = tree.insert(&f, k, (f.clone(), v)).unwrap();
                    prop_assert_eq!(old.map(|o| o.1), model.insert((f, k), v));
                }
                Op::Remove(f, k) => {
                    let old = tree.remove(&f, &k);
                    prop_assert_eq!(old.map(|o| o.1), model.remove(&(f, k)));
                }
                Op::Lookup(t) => check(&tree, &model, &t),
            }
            prop_assert_eq!(tree.len(), model.len());
        }
        for t in &topics {
            check(&tree, &model, t);
        }
        for ((f, k), v) in &model {
            prop_assert_eq!(tree.get(f, k).map(|o| o.1), Some(*v));
        }
        let mut listed = Vec::new();
        tree.for_each(|f, k, (stored, v)| {
            assert_eq!(f, stored);
            listed.push((f.to_string(), *k, *v));
        });
        listed.sort();
        let all: Vec<_> = model.iter().map(|((f, k), v)| (f.clone(), *k, *v)).collect();
        prop_assert_eq!(listed, all);
        // Emptying the tree frees every node but the root.
        for (f, k) in model.keys() {
            prop_assert!(tree.remove(f, k).is_some());
        }
        prop_assert!(tree.is_empty());
        prop_assert_eq!(tree.node_count(), 1);
    }
}
