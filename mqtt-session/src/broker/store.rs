//! The broker's durable state: snapshots ([`BrokerSnapshot`]) and the write-ahead operations
//! ([`StoreOp`]) that describe every change to it.
//!
//! Durable state is what must survive a restart: the sessions that outlive their connection
//! (Session Expiry Interval above 0) with their subscriptions, their QoS 1/2 messages
//! towards the client, the QoS 2 identifiers received from it and awaiting PUBREL, and
//! their wills; and the retained messages. Sessions that end with their connection are not
//! stored.
//!
//! The broker emits `Persist(op)` before the packet that depends on it (a message is stored
//! in the subscriber's session before the publisher's PUBACK, an inbound QoS 2 identifier
//! before its PUBREC). A driver that applies the operations in order holds what
//! [`Hub::snapshot`](super::Hub::snapshot) would return, and [`MemoryStore`] shows
//! exactly what each operation means.
//!
//! [`Hub::restore`](super::Hub::restore) counts the Session Expiry Intervals, Will Delay
//! Intervals and Message Expiry Intervals of a snapshot from the moment of restoring, as if
//! every connection had been lost then. [`MemoryStore`] keeps no time, so its snapshots
//! start every interval again; a store that keeps wall-clock time (the `persist` feature's
//! store) hands `restore` what is left of each instead, counting from when each message was
//! stored and from [`StoreOp::SessionOffline`] (or, for a session connected at the crash,
//! from the store's last commit).

use crate::collections::BTreeMap;
use alloc::boxed::Box;
use alloc::vec::Vec;

use mqtt_codec::{
    MqttString, Publish, QoS, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, Will,
};

use crate::store::{MemorySessionStore as SessionStore, SessionOp, SessionState};

/// One write-ahead operation on the broker's durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Store a session, or update its expiry and user name (the rest is kept).
    PutSession {
        /// The client identifier.
        client_id: MqttString,
        /// The Session Expiry Interval in force (seconds; `u32::MAX` never).
        expiry_interval: u32,
        /// The User Name of the CONNECT that last used it.
        username: Option<MqttString>,
    },
    /// The session's connection ended and the session stays: its expiry, and its will's
    /// delay, count from now. A store that keeps wall-clock time records the moment, so
    /// that a restart can count what passed while the broker was down; the next
    /// [`PutSession`](Self::PutSession) (the client back) ends the count.
    SessionOffline(MqttString),
    /// The session ended: forget it and everything below it.
    RemoveSession(MqttString),
    /// Store a subscription of the session, replacing one with the same filter.
    PutSubscription {
        /// The session.
        client_id: MqttString,
        /// The filter as written.
        filter: TopicFilter,
        /// Its options (QoS as granted).
        options: SubscriptionOptions,
        /// Its Subscription Identifier.
        id: Option<SubscriptionId>,
    },
    /// Forget a subscription.
    RemoveSubscription {
        /// The session.
        client_id: MqttString,
        /// The filter as written.
        filter: TopicFilter,
    },
    /// A change to the session's message state, as a client session stores it: outgoing
    /// messages (here towards the client) and incoming QoS 2 identifiers.
    Session {
        /// The session.
        client_id: MqttString,
        /// The operation.
        op: SessionOp,
    },
    /// Store the session's Will Message.
    PutWill {
        /// The session.
        client_id: MqttString,
        /// The will (boxed: one per CONNECT with a will, and the largest operation).
        will: Box<Will>,
    },
    /// The will was published or discarded.
    RemoveWill(MqttString),
    /// Store a retained message, replacing the topic's previous one.
    PutRetained {
        /// The message (no packet identifier; RETAIN set).
        publish: Publish,
        /// Its QoS.
        qos: QoS,
    },
    /// Forget the retained message of a topic.
    RemoveRetained(TopicName),
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The filter as written (`$share/..` prefix included).
    pub filter: TopicFilter,
    /// Its options (QoS as granted).
    pub options: SubscriptionOptions,
    /// Its Subscription Identifier.
    pub id: Option<SubscriptionId>,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// Session Expiry Interval (seconds; `u32::MAX` never).
    pub expiry_interval: u32,
    /// The User Name of the CONNECT that last used it.
    pub username: Option<MqttString>,
    /// Subscriptions, in filter order.
    pub subscriptions: Vec<StoredSubscription>,
    /// Messages towards the client (in sending order), incoming QoS 2 identifiers, the
    /// client identifier, and where packet identifiers resume.
    pub state: SessionState,
    /// The Will Message, if one is stored (its connection open, or waiting for its delay).
    pub will: Option<Will>,
}

/// A stored retained message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    /// The message (no packet identifier; RETAIN set).
    pub publish: Publish,
    /// Its QoS.
    pub qos: QoS,
}

/// The broker's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerSnapshot {
    /// Sessions by client identifier.
    pub sessions: BTreeMap<MqttString, SessionSnapshot>,
    /// Retained messages by topic.
    pub retained: BTreeMap<TopicName, RetainedMessage>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A stored subscription's filter is not a valid filter.
    #[error("session {client_id}: invalid topic filter {filter}")]
    InvalidFilter {
        /// The session.
        client_id: MqttString,
        /// The filter.
        filter: TopicFilter,
    },
    /// Two stored messages of a session use one packet identifier.
    #[error("session {client_id}: packet identifier {packet_id} used twice")]
    DuplicatePacketId {
        /// The session.
        client_id: MqttString,
        /// The identifier.
        packet_id: u16,
    },
}

#[derive(Debug, Clone, Default)]
struct StoredSession {
    expiry_interval: u32,
    username: Option<MqttString>,
    subscriptions: BTreeMap<TopicFilter, (SubscriptionOptions, Option<SubscriptionId>)>,
    messages: SessionStore,
    will: Option<Will>,
}

/// A store that applies [`StoreOp`]s in memory: the reference for what a durable store must
/// do, and a test double. Its [`snapshot`](Self::snapshot) restores a broker.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    sessions: BTreeMap<MqttString, StoredSession>,
    retained: BTreeMap<TopicName, RetainedMessage>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one operation. Operations on a session that is not stored are ignored (the
    /// broker stores a session before anything in it).
    pub fn apply(&mut self, op: &StoreOp) {
        match op {
            StoreOp::PutSession {
                client_id,
                expiry_interval,
                username,
            } => {
                let s = self.sessions.entry(client_id.clone()).or_default();
                s.expiry_interval = *expiry_interval;
                s.username.clone_from(username);
                s.messages.apply(&SessionOp::SetClientId(client_id.clone()));
            }
            // Time does not survive a restart here: see the module's documentation.
            StoreOp::SessionOffline(_) => {}
            StoreOp::RemoveSession(id) => {
                self.sessions.remove(id);
            }
            StoreOp::PutSubscription {
                client_id,
                filter,
                options,
                id,
            } => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.subscriptions.insert(filter.clone(), (*options, *id));
                }
            }
            StoreOp::RemoveSubscription { client_id, filter } => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.subscriptions.remove(filter);
                }
            }
            StoreOp::Session { client_id, op } => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.messages.apply(op);
                }
            }
            StoreOp::PutWill { client_id, will } => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.will = Some((**will).clone());
                }
            }
            StoreOp::RemoveWill(client_id) => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.will = None;
                }
            }
            StoreOp::PutRetained { publish, qos } => {
                self.retained.insert(
                    publish.topic.clone(),
                    RetainedMessage {
                        publish: publish.clone(),
                        qos: *qos,
                    },
                );
            }
            StoreOp::RemoveRetained(topic) => {
                self.retained.remove(topic);
            }
        }
    }

    /// The stored state. Stored messages may have reached the wire before the process
    /// stopped, so each is marked as sent (it goes again with DUP).
    pub fn snapshot(&self) -> BrokerSnapshot {
        let sessions = self
            .sessions
            .iter()
            .map(|(id, s)| {
                let subscriptions = s
                    .subscriptions
                    .iter()
                    .map(|(f, (o, i))| StoredSubscription {
                        filter: f.clone(),
                        options: *o,
                        id: *i,
                    })
                    .collect();
                let snap = SessionSnapshot {
                    expiry_interval: s.expiry_interval,
                    username: s.username.clone(),
                    subscriptions,
                    state: s.messages.state(),
                    will: s.will.clone(),
                };
                (id.clone(), snap)
            })
            .collect();
        BrokerSnapshot {
            sessions,
            retained: self.retained.clone(),
        }
    }
}
