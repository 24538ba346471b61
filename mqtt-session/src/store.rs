//! What a session must keep to survive a restart, as a snapshot ([`SessionState`]) and as
//! the write-ahead operations ([`SessionOp`]) a state machine emits while it runs.
//!
//! A state machine emits `Persist(op)` in its action queue *before* the packet that depends
//! on it (the PUBLISH of a new message, the PUBREL that replaces it, the PUBREC of a
//! delivered QoS 2 message, the PUBCOMP that ends one) and removals once a handshake is
//! complete. A driver that applies the operations in order to durable storage holds, at
//! every moment, enough to resume: [`MemorySessionStore`] is that storage, in memory, and shows
//! the exact meaning of each operation.

use crate::collections::{BTreeMap, BTreeSet, HashMap};
use alloc::vec::Vec;

use mqtt_codec::{MqttString, PacketId, Subscribe, Unsubscribe};

pub use crate::inflight::{OutgoingEntry, OutgoingState};

/// A SUBSCRIBE or UNSUBSCRIBE waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A SUBSCRIBE awaiting SUBACK.
    Subscribe(Subscribe),
    /// An UNSUBSCRIBE awaiting UNSUBACK.
    Unsubscribe(Unsubscribe),
}

impl Request {
    /// The request's packet identifier.
    pub fn packet_id(&self) -> PacketId {
        match self {
            Self::Subscribe(s) => s.packet_id,
            Self::Unsubscribe(u) => u.packet_id,
        }
    }
}

/// One write-ahead operation on a session's durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOp {
    /// Store this outgoing message, or replace the stored entry with the same packet
    /// identifier (a QoS 2 message moving on to PUBREL).
    PutOutgoing(OutgoingEntry),
    /// The outgoing message with this identifier is done (or dropped): forget it.
    RemoveOutgoing(PacketId),
    /// An incoming QoS 2 message with this identifier was delivered; PUBREL is awaited.
    PutIncoming(PacketId),
    /// The incoming QoS 2 identifier is released: forget it.
    RemoveIncoming(PacketId),
    /// A SUBSCRIBE or UNSUBSCRIBE was sent and awaits its acknowledgement.
    PutRequest(Request),
    /// The request with this identifier was answered: forget it.
    RemoveRequest(PacketId),
    /// The client identifier of the session (as configured, or as the server assigned it).
    SetClientId(MqttString),
}

/// Everything needed to resume a session in a new process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The client identifier the session belongs to.
    pub client_id: MqttString,
    /// Outgoing QoS 1/2 messages not yet completely acknowledged, in sending order.
    pub outgoing: Vec<OutgoingEntry>,
    /// Incoming QoS 2 identifiers delivered and awaiting PUBREL.
    pub incoming_qos2: Vec<PacketId>,
    /// SUBSCRIBE and UNSUBSCRIBE requests awaiting acknowledgement, by identifier.
    pub requests: Vec<Request>,
    /// Where packet identifier allocation resumes.
    pub next_packet_id: u16,
}

/// A store that applies [`SessionOp`]s in memory: the reference for what a durable store
/// must do, and a test double.
#[derive(Debug, Clone, Default)]
pub struct MemorySessionStore {
    client_id: MqttString,
    outgoing: BTreeMap<u64, OutgoingEntry>,
    outgoing_ids: HashMap<PacketId, u64>,
    incoming: BTreeSet<PacketId>,
    requests: BTreeMap<PacketId, Request>,
    max_id: u16,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: &SessionOp) {
        match op {
            SessionOp::PutOutgoing(entry) => {
                if let Some(old) = self.outgoing_ids.insert(entry.packet_id, entry.seq) {
                    self.outgoing.remove(&old);
                }
                self.outgoing.insert(entry.seq, entry.clone());
                self.max_id = self.max_id.max(entry.packet_id.get());
            }
            SessionOp::RemoveOutgoing(id) => {
                if let Some(seq) = self.outgoing_ids.remove(id) {
                    self.outgoing.remove(&seq);
                }
            }
            SessionOp::PutIncoming(id) => {
                self.incoming.insert(*id);
            }
            SessionOp::RemoveIncoming(id) => {
                self.incoming.remove(id);
            }
            SessionOp::PutRequest(r) => {
                self.max_id = self.max_id.max(r.packet_id().get());
                self.requests.insert(r.packet_id(), r.clone());
            }
            SessionOp::RemoveRequest(id) => {
                self.requests.remove(id);
            }
            SessionOp::SetClientId(id) => self.client_id = id.clone(),
        }
    }

    /// The state to resume from. A stored PUBLISH may have reached the wire before the
    /// process stopped, so each is marked as sent: it goes again with DUP set.
    pub fn state(&self) -> SessionState {
        let outgoing = self
            .outgoing
            .values()
            .map(|e| {
                let mut e = e.clone();
                if let OutgoingState::Publish { .. } = e.state {
                    e.sent = true;
                    e.on_wire = false;
                }
                e
            })
            .collect();
        SessionState {
            client_id: self.client_id.clone(),
            outgoing,
            incoming_qos2: self.incoming.iter().copied().collect(),
            requests: self.requests.values().cloned().collect(),
            next_packet_id: self.max_id.checked_add(1).unwrap_or(1),
        }
    }
}
