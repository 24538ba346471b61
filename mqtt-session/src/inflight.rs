//! Outgoing QoS 1/2 messages in their handshakes, and incoming QoS 2 identifiers awaiting
//! PUBREL: the delivery state a session keeps for one direction. Used by either role.
//!
//! [`Outbound`] keeps messages in the order they were first handed over. A message is
//! *queued* until it goes on the wire, *published* until PUBACK (QoS 1) or PUBREC (QoS 2)
//! arrives, and *released* (PUBREL sent) until PUBCOMP arrives. It counts the messages that
//! use the peer's Receive Maximum ([MQTT-3.3.4-7], [MQTT-4.9.0-2]): published ones on the
//! current connection and released ones. When the connection is lost every entry waits to
//! be sent again, in its original order ([MQTT-4.4.0-1], [MQTT-4.6.0-1]).

use crate::collections::{BTreeMap, BTreeSet, HashMap};
use alloc::boxed::Box;
use alloc::vec::Vec;

use mqtt_codec::{PacketId, Publish, QoS};

/// Where an outgoing message is in its handshake. Whether its packet is on the wire is
/// told by the [`OutgoingEntry`] that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per message
pub enum OutgoingState {
    /// The PUBLISH waits to be sent, or is sent and waits for PUBACK / PUBREC.
    Publish {
        /// The message, topic in full (aliases are applied when it is sent).
        publish: Publish,
    },
    /// PUBREC arrived; the PUBREL is sent (or waits to be sent again) and PUBCOMP is awaited.
    PubRel,
}

/// One outgoing message: its identifier, its place in the sending order, and its state.
///
/// The two flags sit here rather than in [`OutgoingState`] so that the state takes no
/// more room than its PUBLISH: an entry is moved in every store operation that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEntry {
    /// The sending order: lower goes first.
    pub seq: u64,
    /// The packet identifier.
    pub packet_id: PacketId,
    /// A PUBLISH with this identifier has been sent before (on this or an earlier
    /// connection): it is sent again with DUP set ([MQTT-3.3.1-1]). Always set once
    /// released ([`OutgoingState::PubRel`]).
    pub sent: bool,
    /// The packet of the state (the PUBLISH, or the PUBREL once released) was sent on the
    /// current connection and is not yet acknowledged.
    pub on_wire: bool,
    /// The handshake state.
    pub state: OutgoingState,
}

/// What the next packet to send for an outgoing message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextSend {
    /// The PUBLISH of the entry `seq` (DUP set if it was sent before).
    Publish(u64),
    /// The PUBREL of the entry `seq`.
    PubRel(u64),
}

/// How a PUBREC was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, returned once per PUBREC
pub(crate) enum PubRecOutcome {
    /// Success: the entry is now released and its PUBREL must be sent. A released entry
    /// moves to the end of the order, so PUBRELs (sent again after a reconnect too) go in
    /// the order their PUBRECs arrived ([MQTT-4.6.0-4]): `seq` is its new place, `previous`
    /// the one it had as a PUBLISH.
    Release {
        /// The entry's sequence number as a PUBLISH, now gone.
        previous: u64,
        /// Its sequence number from now on.
        seq: u64,
    },
    /// A PUBREC for an entry already released: send its PUBREL again.
    AlreadyReleased(u64),
    /// A failure reason code: the handshake is over ([MQTT-4.4.0-2]); here is the entry.
    Failed(OutgoingEntry),
}

/// An acknowledgement that matches no message in the state it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownPacketId(pub PacketId);

/// The outgoing QoS 1/2 messages of one session, in order. A session at rest (most of
/// them, on a broker with many idle clients) holds no storage: it costs its sequence
/// counter and one empty pointer. The storage comes with the first message and stays while
/// the connection does, so that a client receiving a few messages at a time does not
/// allocate its indexes again for each; it goes when the connection is lost with nothing
/// left in it, or when the last message of a burst (more than [`KEPT_CAPACITY`]) goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outbound {
    /// The messages and their indexes; `None` while there are none.
    state: Option<Box<Entries>>,
    next_seq: u64,
}

/// How many messages the storage an empty [`Outbound`] keeps may have held at once (its
/// high-water mark: a hash map's `capacity()` falls as removals leave tombstones).
const KEPT_CAPACITY: usize = 32;

#[derive(Debug, Clone, Default)]
struct Entries {
    entries: BTreeMap<u64, OutgoingEntry>,
    by_id: HashMap<PacketId, u64>,
    unsent_publish: BTreeSet<u64>,
    unsent_pubrel: BTreeSet<u64>,
    in_flight: usize,
    /// The [`message_size`] of every PUBLISH held.
    bytes: usize,
    /// The most messages held at once (what the indexes grew to hold).
    peak: usize,
}

/// What a message costs in a byte bound (`max_retained_bytes`, `max_queued_bytes`): its
/// topic, payload and properties.
pub(crate) fn message_size(p: &Publish) -> usize {
    let pr = &p.properties;
    let strings = pr.response_topic.as_ref().map_or(0, |t| t.len())
        + pr.correlation_data.as_ref().map_or(0, |d| d.len())
        + pr.content_type.as_ref().map_or(0, |c| c.len())
        + pr.user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    p.topic.len() + p.payload.len() + strings
}

/// The bytes an entry counts for.
fn entry_size(state: &OutgoingState) -> usize {
    match state {
        OutgoingState::Publish { publish, .. } => message_size(publish),
        OutgoingState::PubRel => 0,
    }
}

impl Outbound {
    /// No messages.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a new QoS 1/2 message at the end of the order and returns its sequence number.
    /// The caller has given it an unused identifier (in `publish.qos_pid`); a QoS 0 message
    /// or an identifier already present is refused (`None`).
    pub(crate) fn push(&mut self, publish: Publish) -> Option<u64> {
        let packet_id = publish.qos_pid.packet_id()?;
        self.insert(OutgoingEntry {
            seq: self.next_seq,
            packet_id,
            sent: false,
            on_wire: false,
            state: OutgoingState::Publish { publish },
        })
    }

    /// Adds an entry restored from a stored session; it waits to be sent again. Entries must
    /// come in their original order; returns `None` for a duplicate identifier or a
    /// PUBLISH whose identifier does not match.
    pub(crate) fn restore(&mut self, mut entry: OutgoingEntry) -> Option<u64> {
        if let OutgoingState::Publish { publish } = &entry.state
            && publish.qos_pid.packet_id() != Some(entry.packet_id)
        {
            return None;
        }
        entry.on_wire = false;
        entry.seq = entry.seq.max(self.next_seq);
        self.insert(entry)
    }

    fn insert(&mut self, entry: OutgoingEntry) -> Option<u64> {
        let s = self.state.get_or_insert_with(Box::default);
        if s.by_id.contains_key(&entry.packet_id) {
            return None;
        }
        let seq = entry.seq;
        self.next_seq = seq + 1;
        s.by_id.insert(entry.packet_id, seq);
        s.bytes += entry_size(&entry.state);
        match entry.state {
            OutgoingState::Publish { .. } => {
                if entry.on_wire {
                    s.in_flight += 1;
                } else {
                    s.unsent_publish.insert(seq);
                }
            }
            OutgoingState::PubRel => {
                s.in_flight += 1;
                if !entry.on_wire {
                    s.unsent_pubrel.insert(seq);
                }
            }
        }
        s.entries.insert(seq, entry);
        s.peak = s.peak.max(s.entries.len());
        Some(seq)
    }

    /// The [`message_size`] of the messages held (a released QoS 2 message, whose PUBLISH
    /// is done, counts for nothing).
    pub(crate) fn bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.bytes)
    }

    /// Messages that count against the peer's Receive Maximum.
    pub(crate) fn in_flight(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.in_flight)
    }

    /// PUBLISH packets waiting to be sent (new, or to be sent again after a reconnect).
    pub(crate) fn waiting(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.unsent_publish.len())
    }

    /// All entries.
    pub(crate) fn len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.entries.len())
    }

    #[cfg(test)]
    /// Whether there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds storage (for the tests of what a session at rest costs).
    #[cfg(test)]
    pub(crate) fn holds_storage(&self) -> bool {
        self.state.is_some()
    }

    /// The entries in sending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &OutgoingEntry> {
        self.state.iter().flat_map(|s| s.entries.values())
    }

    /// The sequence number the next entry will take (a new message, or one a PUBREC
    /// releases): every entry now present has a lower one.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The entry `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&OutgoingEntry> {
        self.state.as_ref()?.entries.get(&seq)
    }

    /// The sequence number of the entry holding `id`.
    fn seq_of(&self, id: PacketId) -> Option<u64> {
        self.state.as_ref()?.by_id.get(&id).copied()
    }

    /// The entry holding `id`.
    pub(crate) fn by_id(&self, id: PacketId) -> Option<&OutgoingEntry> {
        self.get(self.seq_of(id)?)
    }

    /// What to send next: a PUBREL waiting to be sent (never held back by the quota,
    /// [MQTT-3.3.4-8]), else the oldest waiting PUBLISH if fewer than `receive_maximum`
    /// messages are in flight.
    pub(crate) fn next_to_send(&self, receive_maximum: u16) -> Option<NextSend> {
        let s = self.state.as_ref()?;
        if let Some(&seq) = s.unsent_pubrel.first() {
            return Some(NextSend::PubRel(seq));
        }
        if s.in_flight < usize::from(receive_maximum) {
            return s.unsent_publish.first().map(|&seq| NextSend::Publish(seq));
        }
        None
    }

    /// Records that the packet [`next_to_send`](Self::next_to_send) gave for `seq` went on
    /// the wire.
    pub(crate) fn mark_sent(&mut self, seq: u64) {
        let Some(s) = self.state.as_mut() else {
            return;
        };
        let Some(entry) = s.entries.get_mut(&seq) else {
            return;
        };
        match entry.state {
            OutgoingState::Publish { .. } => {
                if !entry.on_wire {
                    entry.on_wire = true;
                    entry.sent = true;
                    s.in_flight += 1;
                    s.unsent_publish.remove(&seq);
                }
            }
            OutgoingState::PubRel => {
                entry.on_wire = true;
                s.unsent_pubrel.remove(&seq);
            }
        }
    }

    /// Removes the entry `seq` whatever its state (a message that can no longer be sent).
    /// The storage stays for the next message, unless a burst grew it (see
    /// [`connection_lost`](Self::connection_lost)).
    pub(crate) fn remove(&mut self, seq: u64) -> Option<OutgoingEntry> {
        let s = self.state.as_mut()?;
        let entry = s.entries.remove(&seq)?;
        s.by_id.remove(&entry.packet_id);
        s.bytes -= entry_size(&entry.state);
        s.unsent_publish.remove(&seq);
        s.unsent_pubrel.remove(&seq);
        if entry.on_wire || matches!(entry.state, OutgoingState::PubRel) {
            s.in_flight -= 1;
        }
        if s.entries.is_empty() && s.peak > KEPT_CAPACITY {
            self.state = None;
        }
        Some(entry)
    }

    /// A PUBACK arrived: the QoS 1 message `id` sent on this connection is done.
    pub(crate) fn puback(&mut self, id: PacketId) -> Result<OutgoingEntry, UnknownPacketId> {
        match self.by_id(id) {
            Some(OutgoingEntry {
                on_wire: true,
                state: OutgoingState::Publish { publish },
                ..
            }) if publish.qos() == QoS::AtLeastOnce => {}
            _ => return Err(UnknownPacketId(id)),
        }
        let seq = self.seq_of(id).ok_or(UnknownPacketId(id))?;
        self.remove(seq).ok_or(UnknownPacketId(id))
    }

    /// A PUBREC arrived for `id`; `failed` when its reason code is 0x80 or above.
    pub(crate) fn pubrec(
        &mut self,
        id: PacketId,
        failed: bool,
    ) -> Result<PubRecOutcome, UnknownPacketId> {
        let seq = self.seq_of(id).ok_or(UnknownPacketId(id))?;
        let is_publish = match self.get(seq) {
            Some(OutgoingEntry {
                on_wire: true,
                state: OutgoingState::Publish { publish },
                ..
            }) if publish.qos() == QoS::ExactlyOnce => true,
            Some(OutgoingEntry {
                state: OutgoingState::PubRel,
                ..
            }) if !failed => false,
            _ => return Err(UnknownPacketId(id)),
        };
        if is_publish && failed {
            let e = self.remove(seq).ok_or(UnknownPacketId(id))?;
            return Ok(PubRecOutcome::Failed(e));
        }
        let new = self.next_seq;
        let s = self.state.as_mut().ok_or(UnknownPacketId(id))?;
        if !is_publish {
            if let Some(entry) = s.entries.get_mut(&seq) {
                entry.on_wire = false;
            }
            s.unsent_pubrel.insert(seq);
            return Ok(PubRecOutcome::AlreadyReleased(seq));
        }
        // Still counted in flight: PUBCOMP ends it ([MQTT-3.3.4-7]). It moves to the end of
        // the order: PUBRELs go in the order of their PUBRECs.
        if let Some(old) = s.entries.remove(&seq) {
            s.bytes -= entry_size(&old.state);
        }
        s.entries.insert(
            new,
            OutgoingEntry {
                seq: new,
                packet_id: id,
                sent: true,
                on_wire: false,
                state: OutgoingState::PubRel,
            },
        );
        s.by_id.insert(id, new);
        s.unsent_pubrel.insert(new);
        self.next_seq += 1;
        Ok(PubRecOutcome::Release {
            previous: seq,
            seq: new,
        })
    }

    /// A PUBCOMP arrived: the released message `id` is done.
    pub(crate) fn pubcomp(&mut self, id: PacketId) -> Result<OutgoingEntry, UnknownPacketId> {
        match self.by_id(id) {
            Some(OutgoingEntry {
                on_wire: true,
                state: OutgoingState::PubRel,
                ..
            }) => {}
            _ => return Err(UnknownPacketId(id)),
        }
        let seq = self.seq_of(id).ok_or(UnknownPacketId(id))?;
        self.remove(seq).ok_or(UnknownPacketId(id))
    }

    /// The connection is gone: every entry waits to be sent again on the next one, and the
    /// storage goes if nothing is left in it.
    pub(crate) fn connection_lost(&mut self) {
        if self.state.as_ref().is_some_and(|s| s.entries.is_empty()) {
            self.state = None;
        }
        let Some(s) = self.state.as_mut() else {
            return;
        };
        for (&seq, entry) in &mut s.entries {
            match entry.state {
                OutgoingState::Publish { .. } => {
                    if entry.on_wire {
                        s.in_flight -= 1;
                        s.unsent_publish.insert(seq);
                    }
                }
                OutgoingState::PubRel => {
                    s.unsent_pubrel.insert(seq);
                }
            }
            entry.on_wire = false;
        }
    }

    /// The peer has no session: removes and returns every entry that was ever sent (the
    /// session state, [MQTT-3.2.2-5]); messages never sent stay queued.
    pub(crate) fn discard_sent(&mut self) -> Vec<OutgoingEntry> {
        let seqs: Vec<u64> = self
            .iter()
            .filter(|e| e.sent || matches!(e.state, OutgoingState::PubRel))
            .map(|e| e.seq)
            .collect();
        seqs.into_iter().filter_map(|s| self.remove(s)).collect()
    }
}

/// The identifiers of incoming QoS 2 messages that were delivered and await PUBREL: a
/// PUBLISH with one of them is a duplicate, acknowledged but not delivered again
/// ([MQTT-4.3.3-10]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InboundQos2 {
    ids: BTreeSet<PacketId>,
}

impl InboundQos2 {
    /// None awaiting PUBREL.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records a newly delivered message; false if `id` was already awaiting PUBREL.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        self.ids.insert(id)
    }

    /// Whether `id` awaits PUBREL.
    pub(crate) fn contains(&self, id: PacketId) -> bool {
        self.ids.contains(&id)
    }

    /// PUBREL arrived: forgets `id`; false if it was not awaiting one.
    pub(crate) fn remove(&mut self, id: PacketId) -> bool {
        self.ids.remove(&id)
    }

    /// How many await PUBREL.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    #[cfg(test)]
    /// Whether none await PUBREL.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The identifiers, in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.ids.iter().copied()
    }

    /// Forgets them all and returns them.
    pub(crate) fn take(&mut self) -> Vec<PacketId> {
        core::mem::take(&mut self.ids).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{QosPid, TopicName};

    fn publish(id: u16, qos: QoS) -> Publish {
        let mut p = Publish::new(TopicName::from_static("t"), "x");
        p.qos_pid = QosPid::new(qos, PacketId::new(id)).unwrap();
        p
    }
    fn pid(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    /// [MQTT-3.3.4-7]: no more than Receive Maximum unacknowledged QoS 1/2 PUBLISH; released
    /// (PUBREL sent) messages still count until PUBCOMP.
    #[test]
    fn quota_counts_published_and_released_messages() {
        let mut out = Outbound::new();
        let a = out.push(publish(1, QoS::ExactlyOnce)).unwrap();
        let b = out.push(publish(2, QoS::AtLeastOnce)).unwrap();
        assert_eq!(out.next_to_send(1), Some(NextSend::Publish(a)));
        out.mark_sent(a);
        assert_eq!(out.next_to_send(1), None);
        let Ok(PubRecOutcome::Release { previous, seq: a }) = out.pubrec(pid(1), false) else {
            panic!()
        };
        assert_ne!(previous, a);
        // The PUBREL is not held back by the quota, the next PUBLISH is.
        assert_eq!(out.next_to_send(1), Some(NextSend::PubRel(a)));
        out.mark_sent(a);
        assert_eq!(out.next_to_send(1), None);
        assert!(out.pubcomp(pid(1)).is_ok());
        assert_eq!(out.next_to_send(1), Some(NextSend::Publish(b)));
        assert_eq!(out.in_flight(), 0);
    }

    /// [MQTT-4.4.0-1], [MQTT-4.6.0-1]: after a reconnect, unacknowledged PUBLISH and PUBREL
    /// go again, PUBLISH in their original order.
    #[test]
    fn connection_lost_requeues_in_original_order() {
        let mut out = Outbound::new();
        let a = out.push(publish(7, QoS::AtLeastOnce)).unwrap();
        let b = out.push(publish(3, QoS::ExactlyOnce)).unwrap();
        let c = out.push(publish(5, QoS::ExactlyOnce)).unwrap();
        for s in [a, b, c] {
            out.mark_sent(s);
        }
        let Ok(PubRecOutcome::Release { seq: c, .. }) = out.pubrec(pid(5), false) else {
            panic!()
        };
        out.mark_sent(c);
        out.connection_lost();
        assert_eq!(out.in_flight(), 1);
        assert_eq!(out.next_to_send(10), Some(NextSend::PubRel(c)));
        out.mark_sent(c);
        assert_eq!(out.next_to_send(10), Some(NextSend::Publish(a)));
        out.mark_sent(a);
        assert_eq!(out.next_to_send(10), Some(NextSend::Publish(b)));
        // A PUBACK for a message not yet sent again on this connection matches nothing.
        assert_eq!(out.puback(pid(3)), Err(UnknownPacketId(pid(3))));
    }

    /// [MQTT-4.6.0-4]: PUBRELs go in the order their PUBRECs arrived, also when they are
    /// sent again after a reconnect; the PUBLISH order is untouched.
    #[test]
    fn pubrels_follow_the_order_of_pubrecs() {
        let mut out = Outbound::new();
        let seqs: Vec<u64> = (1..=4)
            .map(|n| out.push(publish(n, QoS::ExactlyOnce)).unwrap())
            .collect();
        for &s in &seqs[..3] {
            out.mark_sent(s);
        }
        let mut released = Vec::new();
        for n in [3, 1, 2] {
            let Ok(PubRecOutcome::Release { seq, .. }) = out.pubrec(pid(n), false) else {
                panic!()
            };
            released.push(seq);
            assert_eq!(out.next_to_send(10), Some(NextSend::PubRel(seq)));
            out.mark_sent(seq);
        }
        out.connection_lost();
        let mut order = Vec::new();
        while let Some(next) = out.next_to_send(10) {
            let seq = match next {
                NextSend::PubRel(s) | NextSend::Publish(s) => s,
            };
            order.push((next, out.get(seq).unwrap().packet_id.get()));
            out.mark_sent(seq);
        }
        assert_eq!(
            order,
            [
                (NextSend::PubRel(released[0]), 3),
                (NextSend::PubRel(released[1]), 1),
                (NextSend::PubRel(released[2]), 2),
                (NextSend::Publish(seqs[3]), 4),
            ]
        );
        // The snapshot order is the same: a restored session keeps it.
        let ids: Vec<u16> = out.iter().map(|e| e.packet_id.get()).collect();
        assert_eq!(ids, [4, 3, 1, 2]);
    }

    #[test]
    fn acks_must_match_the_qos_and_state() {
        let mut out = Outbound::new();
        let a = out.push(publish(1, QoS::AtLeastOnce)).unwrap();
        out.mark_sent(a);
        assert!(out.pubrec(pid(1), false).is_err());
        assert!(out.pubcomp(pid(1)).is_err());
        assert!(out.puback(pid(2)).is_err());
        assert_eq!(out.puback(pid(1)).unwrap().seq, a);
        assert!(out.is_empty());
    }

    /// [MQTT-4.4.0-2]: a PUBREC with a failure code ends the handshake.
    #[test]
    fn failed_pubrec_ends_the_handshake() {
        let mut out = Outbound::new();
        let a = out.push(publish(1, QoS::ExactlyOnce)).unwrap();
        out.mark_sent(a);
        assert!(matches!(
            out.pubrec(pid(1), true),
            Ok(PubRecOutcome::Failed(_))
        ));
        assert_eq!(out.in_flight(), 0);
        assert!(out.is_empty());
    }

    /// [MQTT-3.2.2-5]: with no session at the server, what was sent is discarded; what was
    /// never sent stays.
    #[test]
    fn discard_sent_keeps_unsent_messages() {
        let mut out = Outbound::new();
        let a = out.push(publish(1, QoS::AtLeastOnce)).unwrap();
        let b = out.push(publish(2, QoS::AtLeastOnce)).unwrap();
        out.mark_sent(a);
        out.connection_lost();
        let gone = out.discard_sent();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].seq, a);
        assert_eq!(out.next_to_send(5), Some(NextSend::Publish(b)));
    }

    /// [MQTT-4.3.3-10]: a QoS 2 identifier awaiting PUBREL marks later PUBLISH as duplicates.
    #[test]
    fn inbound_qos2_ids() {
        let mut q = InboundQos2::new();
        assert!(q.insert(pid(4)));
        assert!(!q.insert(pid(4)));
        assert!(q.remove(pid(4)));
        assert!(q.insert(pid(4)));
        assert_eq!(q.take(), vec![pid(4)]);
        assert!(q.is_empty());
    }
}

#[cfg(test)]
mod storage_tests {
    use super::*;
    use mqtt_codec::{QosPid, TopicName};

    /// A session at rest holds no storage for its outgoing messages: none before the
    /// first, and none once its connection is lost with the last acknowledged; while
    /// connected, it keeps the storage for the next message. Its order goes on.
    #[test]
    fn outbound_holds_storage_only_while_connected_with_messages() {
        let mut o = Outbound::new();
        assert!(!o.holds_storage());
        assert!(core::mem::size_of::<Outbound>() <= 16);
        let id = PacketId::new(1).unwrap();
        let mut p = Publish::new(TopicName::from_static("t"), "x");
        p.qos_pid = QosPid::AtLeastOnce(id);
        let first = o.push(p.clone()).unwrap();
        assert!(o.holds_storage());
        o.mark_sent(first);
        assert_eq!(o.in_flight(), 1);
        o.puback(id).unwrap();
        assert!(o.holds_storage(), "kept while connected");
        assert_eq!((o.len(), o.in_flight(), o.waiting()), (0, 0, 0));
        let second = o.push(p.clone()).unwrap();
        assert!(second > first, "the sending order goes on");
        o.connection_lost();
        assert!(o.holds_storage(), "a message is still held");
        o.remove(second).unwrap();
        o.connection_lost();
        assert!(!o.holds_storage());
        // A burst's storage goes with its last message.
        let ids: Vec<u16> = (1..=100).collect();
        for &n in &ids {
            let mut p = p.clone();
            p.qos_pid = QosPid::AtLeastOnce(PacketId::new(n).unwrap());
            let seq = o.push(p).unwrap();
            o.mark_sent(seq);
        }
        for &n in &ids {
            assert!(o.holds_storage());
            o.puback(PacketId::new(n).unwrap()).unwrap();
        }
        assert!(!o.holds_storage());
    }
}
