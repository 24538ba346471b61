//! The subscription tree, rule by rule: which filters match which topic names (section 4.7),
//! which filters are refused, shared subscription groups, and folding a subscriber's
//! overlapping subscriptions into one delivery.

use mqtt_codec::StringError;
use mqtt_session::topic_tree::{Combine, Match, PerSubscriber, TopicTree};

/// A tree whose value is the filter itself, so a match says which filter matched.
fn tree(filters: &[&str]) -> TopicTree<u32, String> {
    let mut t = TopicTree::new();
    for (i, f) in filters.iter().enumerate() {
        assert_eq!(t.insert(f, i as u32, f.to_string()), Ok(None), "{f}");
    }
    t
}

/// The filters (with their key) that match `topic`, sorted; a shared group shows as
/// `group:filter` once, whatever its members.
fn matching(t: &TopicTree<u32, String>, topic: &str) -> Vec<String> {
    let mut out = Vec::new();
    t.matches(topic, |m| match m {
        Match::Subscription(_, filter) => out.push(filter.clone()),
        Match::Shared(g) => out.push(format!("{}:{}", g.name(), g.members()[0].1)),
    });
    out.sort();
    out
}

fn matches(filter: &str, topic: &str) -> bool {
    let t = tree(&[filter]);
    let found = !matching(&t, topic).is_empty();
    assert_eq!(t.has_match(topic), found);
    found
}

#[test]
fn multi_level_wildcard_matches_the_parent_and_every_level_below() {
    // [MQTT-4.7.1-1] the examples of section 4.7.1.2
    for topic in [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
    ] {
        assert!(matches("sport/tennis/player1/#", topic), "{topic}");
    }
    assert!(matches("sport/#", "sport"));
    assert!(matches("sport/#", "sport/"));
    assert!(!matches("sport/#", "sports"));
    assert!(!matches("sport/tennis/player1/#", "sport/tennis/player2"));
    for topic in ["a", "a/b/c", "/", "", "+", "sport/#"] {
        assert!(matches("#", topic), "{topic}");
    }
    // `/#` is the empty first level and everything below it.
    assert!(matches("/#", "/"));
    assert!(matches("/#", "/a/b"));
    assert!(!matches("/#", "a"));
}

#[test]
fn multi_level_wildcard_must_be_a_whole_last_level() {
    // [MQTT-4.7.1-1] "sport/tennis#" and "sport/tennis/#/ranking" are not valid
    let mut t: TopicTree<u32> = TopicTree::new();
    for bad in [
        "sport/tennis#",
        "sport/tennis/#/ranking",
        "#/a",
        "##",
        "a/#b",
        "$share/g/a#",
    ] {
        assert_eq!(
            t.insert(bad, 1, ()),
            Err(StringError::MisplacedMultiLevelWildcard),
            "{bad}"
        );
    }
    assert!(t.is_empty());
    assert_eq!(t.node_count(), 1, "a refused filter leaves no node behind");
}

#[test]
fn single_level_wildcard_matches_exactly_one_level() {
    // [MQTT-4.7.1-2] the examples of section 4.7.1.3
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
    assert!(matches("+/tennis/#", "sport/tennis"));
    assert!(matches("+/tennis/#", "sport/tennis/player1/ranking"));
    assert!(matches("+", "a"));
    assert!(matches("+", ""));
    assert!(!matches("+", "a/b"));
    assert!(matches("+/+/+", "a//b"));
}

#[test]
fn single_level_wildcard_must_fill_a_whole_level() {
    // [MQTT-4.7.1-2] "sport+" is not valid
    let mut t: TopicTree<u32> = TopicTree::new();
    for bad in ["sport+", "sport/+tennis", "++", "a/b+/c", "$share/g/a+"] {
        assert_eq!(
            t.insert(bad, 1, ()),
            Err(StringError::MisplacedSingleLevelWildcard),
            "{bad}"
        );
    }
    assert!(t.is_empty());
}

#[test]
fn wildcard_filters_do_not_match_dollar_topics() {
    // [MQTT-4.7.2-1] the examples of section 4.7.2
    assert!(!matches("#", "$SYS/monitor/Clients"));
    assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(!matches("+", "$SYS"));
    assert!(!matches("+/#", "$SYS/x"));
    assert!(!matches("$share/g/#", "$SYS/x"));
    assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
    assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert!(matches("$SYS/#", "$SYS"));
    assert!(matches("$share/g/$SYS/+", "$SYS/x"));
    // Only a `$` that starts the topic name is special.
    assert!(matches("+/$x", "a/$x"));
    assert!(matches("a/+", "a/$x"));
    assert!(matches("a/#", "a/$x/y"));
    assert!(matches("#", "a$"));
    assert!(matches("+/a", "/a"));
}

#[test]
fn filters_must_be_at_least_one_character_long() {
    // [MQTT-4.7.3-1]
    let mut t: TopicTree<u32> = TopicTree::new();
    assert_eq!(t.insert("", 1, ()), Err(StringError::EmptyTopic));
    assert_eq!(
        t.insert("$share/g/", 1, ()),
        Err(StringError::InvalidSharedSubscription)
    );
    assert_eq!(
        t.insert("/", 1, ()),
        Ok(None),
        "one character: two empty levels"
    );
}

#[test]
fn filters_must_not_contain_null() {
    // [MQTT-4.7.3-2]
    let mut t: TopicTree<u32> = TopicTree::new();
    assert_eq!(t.insert("a/\0", 1, ()), Err(StringError::Null));
    assert_eq!(t.insert("$share/\0/a", 1, ()), Err(StringError::Null));
}

#[test]
fn filters_must_fit_in_65535_bytes() {
    // [MQTT-4.7.3-3]
    let mut t: TopicTree<u32> = TopicTree::new();
    let longest = "a".repeat(65_535);
    assert_eq!(t.insert(&longest, 1, ()), Ok(None));
    assert_eq!(
        t.insert(&"a".repeat(65_536), 1, ()),
        Err(StringError::TooLong)
    );
    assert!(t.has_match(&longest));
}

#[test]
fn no_normalisation_of_names_or_filters() {
    // [MQTT-4.7.3-4] byte-for-byte comparison: no case folding, no Unicode normalisation, no
    // collapsing of separators, no trimming
    assert!(!matches("a/b", "a//b"));
    assert!(!matches("a/b", "A/b"));
    assert!(!matches("a/b", "a/b/"));
    assert!(!matches("a/b", "/a/b"));
    assert!(!matches("a/b", "a/b "));
    assert!(!matches("caf\u{e9}", "cafe\u{301}"));
    assert!(matches("cafe\u{301}", "cafe\u{301}"));
    assert!(
        !matches("a/+", "a/b/"),
        "the trailing empty level is a level"
    );
    // Unusual characters are ordinary characters.
    assert!(matches(
        "\u{1}/\u{ffff}/\u{10ffff}",
        "\u{1}/\u{ffff}/\u{10ffff}"
    ));
    let t = tree(&["a", "A", "a/", "/a", "a//"]);
    assert_eq!(matching(&t, "a/"), ["a/"]);
    assert_eq!(matching(&t, "a//"), ["a//"]);
}

#[test]
fn empty_levels_are_levels() {
    let t = tree(&[
        "a//b", "a/+/b", "a/#", "+/+/+", "/", "+/+", "/+", "+", "+/#", "//",
    ]);
    assert_eq!(
        matching(&t, "a//b"),
        ["+/#", "+/+/+", "a/#", "a/+/b", "a//b"]
    );
    assert_eq!(matching(&t, "/"), ["+/#", "+/+", "/", "/+"]);
    assert_eq!(matching(&t, "//"), ["+/#", "+/+/+", "//"]);
    assert_eq!(matching(&t, ""), ["+", "+/#"]);
    assert_eq!(matching(&t, "a"), ["+", "+/#", "a/#"]);
}

#[test]
fn a_topic_is_matched_by_every_overlapping_filter_once() {
    let t = tree(&[
        "site/1/device/7/temp",
        "site/+/device/+/temp",
        "site/1/device/7/#",
        "site/1/#",
        "site/+/device/#",
        "#",
        "+/+/+/+/+",
        "site/1/device/7",
        "site/1/device/+/temp/#",
    ]);
    assert_eq!(
        matching(&t, "site/1/device/7/temp"),
        [
            "#",
            "+/+/+/+/+",
            "site/+/device/#",
            "site/+/device/+/temp",
            "site/1/#",
            "site/1/device/+/temp/#",
            "site/1/device/7/#",
            "site/1/device/7/temp",
        ]
    );
    assert_eq!(
        matching(&t, "site/1/device/7"),
        [
            "#",
            "site/+/device/#",
            "site/1/#",
            "site/1/device/7",
            "site/1/device/7/#"
        ]
    );
    assert_eq!(matching(&t, "site/2/other"), ["#"]);
}

#[test]
fn a_subscriber_holds_a_filter_once_and_a_new_subscribe_replaces_it() {
    // [MQTT-3.8.4-3] an identical filter replaces the existing subscription
    let mut t: TopicTree<&str, u8> = TopicTree::new();
    assert_eq!(t.insert("a/+", "c1", 0), Ok(None));
    assert_eq!(t.insert("a/+", "c1", 2), Ok(Some(0)));
    assert_eq!(t.insert("a/+", "c2", 1), Ok(None));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get("a/+", &"c1"), Some(&2));
    *t.get_mut("a/+", &"c2").unwrap() = 0;
    let mut seen = Vec::new();
    t.matches("a/b", |m| {
        if let Match::Subscription(k, v) = m {
            seen.push((*k, *v));
        }
    });
    seen.sort();
    assert_eq!(seen, [("c1", 2), ("c2", 0)]);
    assert_eq!(t.get("a/#", &"c1"), None);
    assert_eq!(t.get("a/+/b", &"c1"), None);
    assert_eq!(t.get("a/+", &"c3"), None);
    assert_eq!(t.get("bad#", &"c1"), None);
}

#[test]
fn remove_takes_out_one_subscription_and_prunes_what_is_left_empty() {
    let mut t: TopicTree<u32, String> = tree(&["a/b/c", "a/+/c", "a/#", "#", "a/b/c/#"]);
    let nodes = t.node_count();
    assert_eq!(t.remove("a/b/c", &1), None, "wrong key");
    assert_eq!(t.remove("a/b/x", &0), None, "no such filter");
    assert_eq!(
        t.remove("a/b/c/", &0),
        None,
        "no normalisation [MQTT-4.7.3-4]"
    );
    assert_eq!(t.remove("a/b/c", &0).as_deref(), Some("a/b/c"));
    assert_eq!(t.remove("a/b/c", &0), None, "already gone");
    assert_eq!(t.node_count(), nodes, "a/b/c/# still needs the nodes");
    assert_eq!(t.remove("a/b/c/#", &4).as_deref(), Some("a/b/c/#"));
    assert_eq!(matching(&t, "a/b/c"), ["#", "a/#", "a/+/c"]);
    assert_eq!(t.remove("a/+/c", &1).as_deref(), Some("a/+/c"));
    assert_eq!(t.remove("a/#", &2).as_deref(), Some("a/#"));
    assert_eq!(t.node_count(), 1, "only the root is left");
    assert_eq!(matching(&t, "a/b/c"), ["#"]);
    assert_eq!(t.len(), 1);
}

#[test]
fn for_each_lists_every_subscription_as_it_was_written() {
    let filters = [
        "#",
        "/#",
        "/",
        "a",
        "a/#",
        "+/+",
        "a//+/#",
        "$SYS/x",
        "$share/g/a/#",
        "$share/g/#",
        "$share/h/+",
        &"long-level-".repeat(10),
    ];
    let t = tree(&filters);
    let mut listed = Vec::new();
    t.for_each(|f, k, v| {
        assert_eq!(f, filters[*k as usize]);
        listed.push(v.clone());
    });
    listed.sort();
    let mut want: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn a_shared_group_matches_once_whatever_its_members() {
    // [MQTT-4.8.2-1] `$share/{ShareName}/{filter}`: the group is stored under its filter.
    let mut t: TopicTree<&str, u8> = TopicTree::new();
    for m in ["m1", "m2", "m3"] {
        t.insert("$share/workers/jobs/+", m, 1).unwrap();
    }
    t.insert("$share/audit/jobs/#", "a1", 0).unwrap();
    t.insert("jobs/+", "m1", 0).unwrap();
    assert_eq!(t.len(), 5);
    let mut groups = Vec::new();
    let mut plain = Vec::new();
    t.matches("jobs/7", |m| match m {
        Match::Shared(g) => groups.push((g.name().to_string(), g.len())),
        Match::Subscription(k, _) => plain.push(*k),
    });
    groups.sort();
    assert_eq!(groups, [("audit".into(), 1), ("workers".into(), 3)]);
    // A client with a shared and a non-shared subscription gets a copy for each.
    assert_eq!(plain, ["m1"]);
    assert!(!t.has_match("work/7"));
    assert!(
        !t.has_match("$share/workers/jobs/7"),
        "the prefix is no part of the filter"
    );
}

#[test]
fn shared_groups_are_told_apart_by_name_and_by_filter() {
    let mut t: TopicTree<u32> = TopicTree::new();
    t.insert("$share/g/a/+", 1, ()).unwrap();
    t.insert("$share/g/a/#", 2, ()).unwrap();
    t.insert("$share/G/a/+", 3, ()).unwrap();
    t.insert("$share/g/+/+", 4, ()).unwrap();
    let mut seen = Vec::new();
    t.matches("a/b", |m| {
        if let Match::Shared(g) = m {
            seen.push((g.name().to_string(), g.members()[0].0));
        }
    });
    seen.sort();
    assert_eq!(
        seen,
        [
            ("G".into(), 3),
            ("g".into(), 1),
            ("g".into(), 2),
            ("g".into(), 4)
        ]
    );
    assert_eq!(t.get("$share/g/a/+", &1), Some(&()));
    assert_eq!(t.get("$share/G/a/+", &1), None);
    assert_eq!(t.get("a/+", &1), None, "a member is not a plain subscriber");
}

#[test]
fn invalid_shared_subscriptions_are_refused() {
    // [MQTT-4.8.2-1] a ShareName at least one character long; [MQTT-4.8.2-2] without `/`,
    // `+` or `#`, followed by `/` and a filter
    let mut t: TopicTree<u32> = TopicTree::new();
    for bad in [
        "$share//a",
        "$share/g",
        "$share/g/",
        "$share/+/a",
        "$share/g+/a",
        "$share/#/a",
        "$share/",
    ] {
        assert_eq!(
            t.insert(bad, 1, ()),
            Err(StringError::InvalidSharedSubscription),
            "{bad}"
        );
    }
    // Not a shared subscription at all: ordinary filters that start with `$`.
    assert_eq!(t.insert("$share", 1, ()), Ok(None));
    assert_eq!(t.insert("$shared/g/a", 1, ()), Ok(None));
    assert!(t.has_match("$share"));
}

#[test]
fn a_shared_group_picks_its_members_round_robin() {
    let mut t: TopicTree<u32, bool> = TopicTree::new();
    for m in 1..=3 {
        t.insert("$share/g/q", m, true).unwrap();
    }
    let pick = |t: &TopicTree<u32, bool>| {
        let mut got = None;
        t.matches("q", |m| {
            if let Match::Shared(g) = m {
                got = g.pick(|_, online| *online).map(|(k, _)| *k);
            }
        });
        got
    };
    let picks: Vec<_> = (0..7).map(|_| pick(&t).unwrap()).collect();
    assert_eq!(picks, [1, 2, 3, 1, 2, 3, 1]);
    // An offline member is skipped; the others keep their turn.
    *t.get_mut("$share/g/q", &3).unwrap() = false;
    let picks: Vec<_> = (0..4).map(|_| pick(&t).unwrap()).collect();
    assert_eq!(picks, [2, 1, 2, 1]);
    // A leaving member is replaced in its place by the last one.
    assert_eq!(t.remove("$share/g/q", &1), Some(true));
    *t.get_mut("$share/g/q", &3).unwrap() = true;
    let picks: Vec<_> = (0..3).map(|_| pick(&t).unwrap()).collect();
    assert_eq!(picks, [2, 3, 2]);
    // Nobody eligible: no pick.
    for m in [2, 3] {
        *t.get_mut("$share/g/q", &m).unwrap() = false;
    }
    assert_eq!(pick(&t), None);
}

#[test]
fn the_last_member_leaving_removes_the_group() {
    let mut t: TopicTree<u32> = TopicTree::new();
    t.insert("$share/g/a/b", 1, ()).unwrap();
    t.insert("$share/g/a/b", 2, ()).unwrap();
    assert_eq!(t.remove("$share/h/a/b", &1), None, "another group");
    assert_eq!(t.remove("$share/g/a/b", &1), Some(()));
    assert!(t.has_match("a/b"));
    assert_eq!(t.remove("$share/g/a/b", &2), Some(()));
    assert!(!t.has_match("a/b"));
    assert_eq!(t.node_count(), 1);
    assert!(t.is_empty());
}

/// A delivery as a broker builds it: the highest QoS of the matching subscriptions and every
/// subscription identifier.
#[derive(Default, Debug, PartialEq)]
struct Delivery {
    qos: u8,
    ids: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Options {
    qos: u8,
    id: Option<u32>,
}

impl Combine<Options> for Delivery {
    fn start(&mut self, o: &Options) {
        self.qos = o.qos;
        self.ids.clear();
        self.ids.extend(o.id);
    }
    fn add(&mut self, o: &Options) {
        self.qos = self.qos.max(o.qos);
        self.ids.extend(o.id);
    }
}

#[test]
fn overlapping_subscriptions_fold_into_one_delivery_per_subscriber() {
    // [MQTT-3.3.4-2] the maximum QoS of all matching subscriptions; [MQTT-3.3.4-3]
    // [MQTT-3.3.4-4] every subscription identifier of the matching subscriptions
    let mut t: TopicTree<&str, Options> = TopicTree::new();
    let o = |qos, id| Options { qos, id };
    t.insert("a/+/c", "alice", o(0, Some(1))).unwrap();
    t.insert("a/#", "alice", o(2, Some(2))).unwrap();
    t.insert("a/b/c", "alice", o(1, None)).unwrap();
    t.insert("#", "bob", o(1, Some(9))).unwrap();
    t.insert("a/b/+", "carol", o(0, None)).unwrap();
    t.insert("$share/g/a/#", "alice", o(0, Some(5))).unwrap();
    let mut out = PerSubscriber::<&str, Delivery>::new();
    let mut shared = Vec::new();
    t.matches_per_subscriber("a/b/c", &mut out, |g| shared.push(g.name()));
    let mut got: Vec<_> = out
        .as_slice()
        .iter()
        .map(|(k, d)| {
            let mut ids = d.ids.clone();
            ids.sort();
            (*k, d.qos, ids)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alice", 2, vec![1, 2]),
            ("bob", 1, vec![9]),
            ("carol", 0, vec![]),
        ]
    );
    assert_eq!(
        shared,
        ["g"],
        "the shared copy is separate from alice's own"
    );

    // The same set, reused for the next topic, starts afresh.
    t.matches_per_subscriber("a/x", &mut out, |_| {});
    let got: Vec<_> = out
        .as_slice()
        .iter()
        .map(|(k, d)| (*k, d.qos, d.ids.clone()))
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(got, [("alice", 2, vec![2]), ("bob", 1, vec![9])]);
    t.matches_per_subscriber("$SYS/x", &mut out, |_| {});
    assert!(out.is_empty());
}

#[test]
fn many_subscribers_with_overlaps_are_each_delivered_once() {
    // [MQTT-3.3.4-2] enough subscribers that the fold indexes them
    let mut t: TopicTree<u32, Options> = TopicTree::new();
    for k in 0..200 {
        t.insert(
            "t/+",
            k,
            Options {
                qos: 0,
                id: Some(k),
            },
        )
        .unwrap();
        if k % 3 == 0 {
            t.insert("t/#", k, Options { qos: 1, id: None }).unwrap();
        }
    }
    for k in 200..250 {
        t.insert("t/#", k, Options { qos: 2, id: None }).unwrap();
    }
    let mut out = PerSubscriber::<u32, Delivery>::new();
    t.matches_per_subscriber("t/x", &mut out, |_| {});
    assert_eq!(out.len(), 250);
    let mut keys: Vec<u32> = out.as_slice().iter().map(|(k, _)| *k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 250);
    for (k, d) in out.as_slice() {
        let want_qos = if *k >= 200 { 2 } else { u8::from(k % 3 == 0) };
        let want_ids = if *k < 200 { vec![*k] } else { vec![] };
        assert_eq!((d.qos, &d.ids), (want_qos, &want_ids), "subscriber {k}");
    }
}
