//! Packet identifier allocation for one sender ([MQTT-2.2.1-3], [MQTT-2.2.1-4]).
//!
//! A sender numbers its QoS 1/2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets with identifiers
//! that are "currently unused": an identifier is taken from the moment it is allocated until
//! the handshake that uses it completes. [`PacketIds`] hands out the next free identifier
//! after the last one given, so identifiers are reused as late as possible, and says so
//! (`None`) when all 65,535 are taken rather than failing in any other way.

use alloc::boxed::Box;
use mqtt_codec::PacketId;

const WORDS: usize = 65_536 / 64;

/// The set of packet identifiers in use by one sender, and where allocation resumes.
#[derive(Clone)]
pub(crate) struct PacketIds {
    /// Bit `n` set: identifier `n` is in use (bit 0 is never set).
    used: Box<[u64; WORDS]>,
    in_use: usize,
    /// The identifier the next allocation tries first.
    next: u16,
}

impl core::fmt::Debug for PacketIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketIds")
            .field("in_use", &self.in_use)
            .field("next", &self.next)
            .finish()
    }
}

impl Default for PacketIds {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketIds {
    /// The most identifiers that can be in use at once.
    pub(crate) const CAPACITY: usize = u16::MAX as usize;

    /// No identifier in use; the first allocation gives 1.
    pub(crate) fn new() -> Self {
        Self {
            used: Box::new([0; WORDS]),
            in_use: 0,
            next: 1,
        }
    }

    /// Takes the next free identifier, or `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use >= Self::CAPACITY {
            return None;
        }
        let mut n = self.next;
        loop {
            let id = PacketId::new(n)?;
            if !self.is_used(id) {
                self.set(id, true);
                self.next = n.checked_add(1).unwrap_or(1);
                return Some(id);
            }
            n = n.checked_add(1).unwrap_or(1);
        }
    }

    /// Marks `id` as in use (when restoring a session). Returns false if it already was.
    pub(crate) fn claim(&mut self, id: PacketId) -> bool {
        if self.is_used(id) {
            return false;
        }
        self.set(id, true);
        true
    }

    /// Frees `id` once its handshake is complete. Returns false if it was not in use.
    pub(crate) fn release(&mut self, id: PacketId) -> bool {
        if !self.is_used(id) {
            return false;
        }
        self.set(id, false);
        true
    }

    /// Whether `id` is in use.
    pub(crate) fn is_used(&self, id: PacketId) -> bool {
        let n = usize::from(id.get());
        self.used[n / 64] & (1 << (n % 64)) != 0
    }

    #[cfg(test)]
    /// How many identifiers are in use.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// The identifier the next allocation tries first (for a session snapshot).
    pub(crate) fn next(&self) -> u16 {
        self.next
    }

    /// Sets where allocation resumes (when restoring a session); 0 counts as 1.
    pub(crate) fn set_next(&mut self, next: u16) {
        self.next = next.max(1);
    }

    fn set(&mut self, id: PacketId, on: bool) {
        let n = usize::from(id.get());
        let bit = 1u64 << (n % 64);
        if on {
            self.used[n / 64] |= bit;
            self.in_use += 1;
        } else {
            self.used[n / 64] &= !bit;
            self.in_use -= 1;
        }
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
