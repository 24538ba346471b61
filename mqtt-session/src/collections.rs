//! The collections the machines use, from `alloc` and `hashbrown`, the same with and
//! without std.

pub(crate) use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::topic_tree::BuildLevelHasher;

/// A hash table keyed with the crate's hasher (see `topic_tree/hash.rs`).
pub(crate) type HashMap<K, V, S = BuildLevelHasher> = hashbrown::HashMap<K, V, S>;
