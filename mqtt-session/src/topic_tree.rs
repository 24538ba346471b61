//! The subscription tree: topic filters to subscribers, matched against topic names.

/// Topic filters mapped to values, matched against topic names (in progress).
#[derive(Debug, Default)]
pub struct TopicTree<T> {
    entries: Vec<(String, T)>,
}

impl<T> TopicTree<T> {
    /// An empty tree.
    pub fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
