//! The broker's files import each other without cycles: the types (connection, session,
//! subscriptions, retained store, timers, events, store operations, the `ServerConnection`)
//! import only one another; `mod.rs` (the `Hub` and its public methods) imports only them;
//! the files of behaviour (`impl Hub` blocks) import the types and `Hub`, never one
//! another; and the facade (`local.rs`, `Broker`) sits on top, importing `Hub`. A `pub use`
//! in `mod.rs` only re-exports: it is not an import. A cycle makes this test fail and name
//! it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every file of `src/broker/` and the sibling modules it imports (`mod` for `mod.rs`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/broker");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("src/broker is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.insert(name, std::fs::read_to_string(&path).expect("a source file"));
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (name, text) in &files {
        // Unit tests are child modules: their `super` is the file itself.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut deps = BTreeSet::new();
        for statement in code
            .split(';')
            .map(|s| s.split_whitespace().collect::<String>())
        {
            let reexport = name == "mod" && statement.starts_with("pubuse");
            let Some(path) = statement
                .find("use")
                .filter(|_| !reexport)
                .filter(|&i| matches!(&statement[..i], "" | "pub" | "pub(crate)" | "pub(super)"))
                .map(|i| &statement[i + 3..])
            else {
                // Not an import: paths written out in code count too.
                for (i, _) in statement.match_indices("super::") {
                    let first = first_segment(&statement[i + 7..]);
                    if modules.contains(&first) {
                        deps.insert(first);
                    }
                }
                continue;
            };
            let path = if name == "mod" {
                path
            } else if let Some(rest) = path.strip_prefix("super::") {
                rest
            } else {
                continue;
            };
            for first in top_level_firsts(path) {
                if modules.contains(&first) && first != "mod" {
                    deps.insert(first);
                } else if name != "mod" && first.starts_with(char::is_uppercase) {
                    // An item of `mod.rs` (`Hub`, or one it re-exports).
                    deps.insert("mod".to_string());
                }
            }
        }
        deps.remove(name);
        graph.insert(name.clone(), deps);
    }
    graph
}

/// The first segment of each path a `use` names: `session` for `session::{A, B}`, and
/// `Broker` and `event` for `{Broker, event::X}`.
fn top_level_firsts(path: &str) -> Vec<String> {
    let Some(inner) = path.strip_prefix('{') else {
        return vec![first_segment(path)];
    };
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(first_segment(&inner[start..]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(first_segment(&inner[start..]));
    out
}

/// The first segment of a path: `session` of `session::{Pending, SessionKey}`.
fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_broker_files_import_each_other_without_cycles() {
    let graph = imports();
    assert!(
        graph.len() > 10,
        "the broker's files were not found: {graph:?}"
    );
    // The parser sees imports at all: `deliver.rs` uses the session types and `Hub`, and
    // the facade `Hub` and the `ServerConnection`.
    assert!(graph["deliver"].contains("session") && graph["deliver"].contains("mod"));
    assert!(graph["local"].contains("mod") && graph["local"].contains("server"));
    assert!(graph["mod"].contains("connection"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_one() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(4));
    graph.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
}
