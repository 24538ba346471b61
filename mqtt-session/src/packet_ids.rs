//! Packet identifier allocation for one sender ([MQTT-2.2.1-3], [MQTT-2.2.1-4]).
//!
//! A sender numbers its QoS 1/2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets with identifiers
//! that are "currently unused": an identifier is taken from the moment it is allocated until
//! the handshake that uses it completes. [`PacketIds`] hands out the next free identifier
//! after the last one given, so identifiers are reused as late as possible, and says so
//! (`None`) when all 65,535 are taken rather than failing in any other way.

use mqtt_codec::PacketId;

use crate::collections::BTreeSet;

/// The set of packet identifiers in use by one sender, and where allocation resumes.
///
/// A sorted set of the identifiers in use: nothing at rest and a few bytes per message in
/// flight, where a bitmap of all 65,535 would cost 8 KiB per client, a microcontroller's
/// whole budget for some.
#[derive(Debug, Clone, Default)]
pub(crate) struct PacketIds {
    used: BTreeSet<u16>,
    /// The identifier the next allocation tries first (0 counts as 1).
    next: u16,
}

impl PacketIds {
    /// The most identifiers that can be in use at once.
    pub(crate) const CAPACITY: usize = u16::MAX as usize;

    /// No identifier in use; the first allocation gives 1.
    pub(crate) fn new() -> Self {
        Self {
            used: BTreeSet::new(),
            next: 1,
        }
    }

    /// Takes the next free identifier, or `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.used.len() >= Self::CAPACITY {
            return None;
        }
        let mut n = self.next.max(1);
        while self.used.contains(&n) {
            n = n.checked_add(1).unwrap_or(1);
        }
        self.used.insert(n);
        self.next = n.checked_add(1).unwrap_or(1);
        PacketId::new(n)
    }

    /// Marks `id` as in use (when restoring a session). Returns false if it already was.
    pub(crate) fn claim(&mut self, id: PacketId) -> bool {
        self.used.insert(id.get())
    }

    /// Frees `id` once its handshake is complete. Returns false if it was not in use.
    pub(crate) fn release(&mut self, id: PacketId) -> bool {
        self.used.remove(&id.get())
    }

    #[cfg(test)]
    /// How many identifiers are in use.
    pub(crate) fn in_use(&self) -> usize {
        self.used.len()
    }

    /// The identifier the next allocation tries first (for a session snapshot).
    pub(crate) fn next(&self) -> u16 {
        self.next
    }

    /// Sets where allocation resumes (when restoring a session); 0 counts as 1.
    pub(crate) fn set_next(&mut self, next: u16) {
        self.next = next.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    /// [MQTT-2.2.1-3]: a new packet gets a non-zero identifier that is currently unused.
    #[test]
    fn allocates_in_order_and_skips_ids_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(), Some(id(1)));
        assert!(ids.claim(id(2)));
        assert_eq!(ids.allocate(), Some(id(3)));
        assert!(ids.release(id(1)));
        // Reuse happens only after wrapping around, not straight away.
        assert_eq!(ids.allocate(), Some(id(4)));
        assert_eq!(ids.in_use(), 3);
    }

    #[test]
    fn wraps_after_65535_and_never_gives_zero() {
        let mut ids = PacketIds::new();
        ids.set_next(65_535);
        assert_eq!(ids.allocate(), Some(id(65_535)));
        assert_eq!(ids.allocate(), Some(id(1)));
    }

    #[test]
    fn exhaustion_is_none_and_release_makes_room() {
        let mut ids = PacketIds::new();
        for _ in 0..PacketIds::CAPACITY {
            assert!(ids.allocate().is_some());
        }
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(id(500)));
        assert_eq!(ids.allocate(), Some(id(500)));
        assert!(!ids.claim(id(500)));
        assert!(!ids.release(id(0xFFFF)) || ids.in_use() == PacketIds::CAPACITY - 1);
    }
}
