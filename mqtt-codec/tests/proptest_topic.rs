//! Properties of topics: `TopicFilter::matches` agrees with a naive matcher written from
//! section 4.7 of the specification, and topic name and filter validation agree with the
//! rules read level by level.

mod strategies;

use mqtt_codec::{TopicFilter, TopicName};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use strategies::*;

/// Section 4.7, read literally. A topic is a list of levels split at `/` (an empty level is
/// still a level, as the examples of 4.7.1.1 show). A filter ending in `#`
/// matches a topic having at least the levels before `#` ("sport/#" matches "sport" too);
/// any other filter matches a topic with exactly as many levels. Level by level, `+`
/// matches anything and other levels match only the same characters, with no
/// normalisation ([MQTT-4.7.3-4]). A filter starting with a wildcard never matches a topic
/// starting with `$` ([MQTT-4.7.2-1]).
fn reference_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    let (fixed, multi) = match f.split_last() {
        Some((&"#", before)) => (before, true),
        _ => (&f[..], false),
    };
    let count_ok = if multi {
        t.len() >= fixed.len()
    } else {
        t.len() == fixed.len()
    };
    count_ok && fixed.iter().zip(&t).all(|(f, t)| *f == "+" || f == t)
}

/// A valid topic filter, by the rules: non-empty ([MQTT-4.7.3-1]), no U+0000
/// ([MQTT-4.7.3-2]), at most 65,535 bytes ([MQTT-4.7.3-3]), `#` only as the whole last
/// level ([MQTT-4.7.1-1]), `+` only as a whole level ([MQTT-4.7.1-2]).
fn reference_valid_filter(s: &str) -> bool {
    let levels: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && !s.contains('\0')
        && s.len() <= 65_535
        && levels.iter().enumerate().all(|(i, level)| {
            !level.contains(['+', '#']) || *level == "+" || (*level == "#" && i == levels.len() - 1)
        })
}

/// A topic name the filter matches, made by filling its wildcards: `+` with one level, `#`
/// with none or several.
fn instance_of(filter: &str, fills: &[String], extra: usize) -> String {
    let mut fills = fills.iter().cycle();
    let mut out: Vec<String> = Vec::new();
    for level in filter.split('/') {
        match level {
            "+" => out.push(fills.next().unwrap().clone()),
            "#" => out.extend(fills.by_ref().take(extra).cloned()),
            _ => out.push(level.to_string()),
        }
    }
    if out.join("/").is_empty() {
        // A topic name has at least one character ([MQTT-4.7.3-1]): a filter ending in
        // "#" takes one more level, and the only other filter that can leave the topic
        // empty, "+", takes a non-empty one.
        if filter.ends_with('#') {
            out.push("x".into());
        } else {
            out = vec!["x".into()];
        }
    }
    out.join("/")
}

/// Strings over the characters that decide validity and matching.
fn wildcard_heavy() -> impl Strategy<Value = String> {
    vec(select(&['a', '/', '+', '#', '$', '\0', 'é'][..]), 0..10).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn matches_agrees_with_the_reference(filter in topic_filter(), topic in topic_name()) {
        prop_assert_eq!(
            filter.matches(&topic),
            reference_matches(filter.as_str(), topic.as_str()),
            "filter {:?} topic {:?}", filter, topic
        );
    }

    /// Topics made from the filter itself, so that matches are common, and the same topics
    /// with one level changed, so that near misses are too.
    #[test]
    fn matches_agrees_on_instances_of_the_filter(
        filter in plain_topic_filter(),
        fills in vec(topic_level(), 1..4),
        extra in 0usize..4,
        change in any::<proptest::sample::Index>(),
        replacement in topic_level(),
    ) {
        let instance = instance_of(filter.as_str(), &fills, extra);
        let topic = TopicName::new(instance.clone()).unwrap();
        let expected = reference_matches(filter.as_str(), &instance);
        prop_assert_eq!(filter.matches(&topic), expected);
        // [MQTT-4.7.2-1] is the only way an instance of the filter fails to match.
        let wildcard_first = filter.starts_with('+') || filter.starts_with('#');
        prop_assert_eq!(expected, !(instance.starts_with('$') && wildcard_first));

        let mut levels: Vec<&str> = instance.split('/').collect();
        let i = change.index(levels.len());
        levels[i] = &replacement;
        let near = TopicName::new(levels.join("/")).unwrap();
        if !near.is_empty() {
            prop_assert_eq!(filter.matches(&near), reference_matches(filter.as_str(), &near));
        }
    }

    /// A shared subscription's filter part, matched on its own, follows the same rules.
    #[test]
    fn shared_filter_part_matches_like_a_plain_filter(
        filter in shared_topic_filter(),
        topic in topic_name(),
    ) {
        let (_, inner) = filter.shared().unwrap().unwrap();
        let inner = TopicFilter::new(inner.to_string()).unwrap();
        prop_assert_eq!(inner.matches(&topic), reference_matches(inner.as_str(), topic.as_str()));
    }

    #[test]
    fn filter_validation_agrees_with_the_reference(s in wildcard_heavy()) {
        prop_assert_eq!(TopicFilter::new(s.clone()).is_ok(), reference_valid_filter(&s), "{:?}", s);
    }

    /// [MQTT-3.3.2-2]: no wildcard in a topic name; [MQTT-4.7.3-2]: no U+0000.
    #[test]
    fn name_validation_agrees_with_the_reference(s in wildcard_heavy()) {
        let valid = !s.contains(['+', '#', '\0']);
        prop_assert_eq!(TopicName::new(s.clone()).is_ok(), valid, "{:?}", s);
    }
}

/// The examples of sections 4.7.1.2, 4.7.1.3 and 4.7.2, each checked against both matchers.
#[test]
fn specification_examples() {
    let cases = [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "$SYS/monitor/Clients", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("ACCOUNTS", "Accounts", false),
        ("a/\u{FEFF}", "a/\u{FEFF}", true),
        ("a/\u{FEFF}", "a/", false),
    ];
    for (filter, topic, expected) in cases {
        assert_eq!(
            reference_matches(filter, topic),
            expected,
            "{filter} {topic}"
        );
        let f = TopicFilter::new(filter).unwrap();
        let t = TopicName::new(topic).unwrap();
        assert_eq!(f.matches(&t), expected, "{filter} {topic}");
    }
}
