//! A client's session on the broker: what outlives its network connections.
//!
//! The session state of section 4.1: the subscriptions, the QoS 1/2 messages on their way to
//! the client (queued, in flight, or awaiting PUBCOMP), the QoS 2 messages received from the
//! client and not yet released, and the will. Messages towards the client use the shared
//! [`Outbound`] machinery, so they go out in order, within the client's Receive Maximum, and
//! again with DUP after a reconnect.

use crate::collections::{BTreeMap, HashMap, VecDeque};
use crate::time::Instant;
use alloc::boxed::Box;

use mqtt_codec::{
    MqttString, PacketId, Publish, QoS, SubscriptionId, SubscriptionOptions, TopicFilter, Will,
};

use super::event::ConnectionId;
use crate::inflight::{InboundQos2, Outbound};

/// A session's handle inside the broker: sessions are looked up by client identifier once,
/// at CONNECT, and by this small key everywhere else (the subscription tree holds it).
/// Keys are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionKey(pub(crate) u64);

/// Session Expiry Interval meaning "never" ([MQTT-3.1.2-23] section 3.1.2.11.2).
pub(crate) const NEVER: u32 = u32::MAX;

/// Where a queued message's Message Expiry Interval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Not sent yet: it expires at this instant ([MQTT-3.3.2-5]).
    At(Instant),
    /// Sent with this many seconds left: expiry no longer applies ([MQTT-4.3.3-7]), and a
    /// resend carries the same value as the first sending.
    Sent(u32),
}

/// A message waiting for the connection's write budget, in delivery order: QoS 0 messages
/// that found the budget spent, and retained messages matched by a new subscription (at any
/// QoS; a QoS 1/2 one takes its packet identifier when it moves to [`Outbound`], as the
/// client's Receive Maximum allows). Kept only while the session is connected.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The message, topic in full; no packet identifier yet.
    pub(crate) publish: Publish,
    /// The QoS to deliver it at.
    pub(crate) qos: QoS,
    /// When its Message Expiry Interval runs out.
    pub(crate) expires_at: Option<Instant>,
    /// A retained message sent for a new subscription (it counts against no queue limit:
    /// the retained store bounds it).
    pub(crate) retained: bool,
}

/// One subscription: its options (QoS already capped at the broker's maximum) and its
/// Subscription Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubValue {
    pub(crate) options: SubscriptionOptions,
    pub(crate) id: Option<SubscriptionId>,
}

/// When the outbound messages with a Message Expiry Interval expire, by sequence number;
/// no storage while there are none (most sessions, most of the time).
#[derive(Debug, Default)]
pub(crate) struct Expiries(Option<Box<HashMap<u64, Expiry>>>);

impl Expiries {
    pub(crate) fn insert(&mut self, seq: u64, expiry: Expiry) {
        self.0.get_or_insert_with(Box::default).insert(seq, expiry);
    }

    pub(crate) fn get(&self, seq: &u64) -> Option<&Expiry> {
        self.0.as_ref()?.get(seq)
    }

    pub(crate) fn remove(&mut self, seq: &u64) {
        if let Some(m) = &mut self.0 {
            m.remove(seq);
            if m.is_empty() {
                self.0 = None;
            }
        }
    }
}

/// One session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client_id: MqttString,
    /// The User Name of the connection that last used it (for the authoriser, also when
    /// its will is published).
    pub(crate) username: Option<MqttString>,
    /// The connection using it, once that connection's CONNACK has been sent.
    pub(crate) connection: Option<ConnectionId>,
    /// Seconds the session outlives its connection; 0 ends it with the connection, [`NEVER`]
    /// keeps it forever.
    pub(crate) expiry_interval: u32,
    /// Subscriptions by filter as written (the tree holds them too, for matching).
    pub(crate) subscriptions: BTreeMap<TopicFilter, SubValue>,
    /// QoS 1/2 messages towards the client.
    pub(crate) outbound: Outbound,
    /// The Message Expiry of messages in `outbound` that have one, by sequence number.
    pub(crate) expiries: Expiries,
    /// Where packet identifier allocation resumes.
    pub(crate) next_id: u16,
    /// QoS 2 messages received from the client, routed, and awaiting PUBREL.
    pub(crate) inbound_qos2: InboundQos2,
    /// The Will Message: while connected, the one of the CONNECT; while disconnected, one
    /// waiting for its delay ([MQTT-3.1.2-8]).
    pub(crate) will: Option<Box<Will>>,
    /// Messages dropped for this client so far.
    pub(crate) dropped: u64,
    /// Messages waiting for the connection's write budget (see [`Pending`]).
    pub(crate) pending: VecDeque<Pending>,
    /// QoS 0 messages in `pending` that are not retained ones (bounded by
    /// `max_queued_qos0`).
    pub(crate) pending_qos0: usize,
}

impl Session {
    pub(crate) fn new(client_id: MqttString, expiry_interval: u32) -> Self {
        Self {
            client_id,
            username: None,
            connection: None,
            expiry_interval,
            subscriptions: BTreeMap::new(),
            outbound: Outbound::new(),
            expiries: Expiries::default(),
            next_id: 1,
            inbound_qos2: InboundQos2::new(),
            will: None,
            dropped: 0,
            pending: VecDeque::new(),
            pending_qos0: 0,
        }
    }

    /// Messages the client has yet to take: waiting in `pending`, and QoS 1/2 not yet
    /// sent or not yet acknowledged (they hold places of `max_queued_messages` too). What
    /// backpressure measures.
    pub(crate) fn backlog(&self) -> usize {
        self.pending.len() + self.outbound.len()
    }

    /// Whether the session outlives its connection, and so is kept in storage.
    pub(crate) fn durable(&self) -> bool {
        self.expiry_interval > 0
    }

    /// A packet identifier not used by any message towards the client ([MQTT-2.2.1-4]),
    /// after the last one given; `None` when all 65,535 are in use.
    ///
    /// On the broker's side only PUBLISH packets take identifiers, and [`Outbound`] already
    /// indexes them, so it is the record of which are in use (a
    /// [`PacketIds`](crate::packet_ids::PacketIds) bitmap per session would cost 8 KiB even
    /// for sessions that never receive a QoS 1 message).
    pub(crate) fn allocate_id(&mut self) -> Option<PacketId> {
        if self.outbound.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            let n = self.next_id;
            self.next_id = n.checked_add(1).unwrap_or(1);
            if let Some(id) = PacketId::new(n)
                && self.outbound.by_id(id).is_none()
            {
                return Some(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{Publish, QoS, QosPid, TopicName};

    /// [MQTT-2.2.1-4]: identifiers in use are skipped; 0 is never given.
    #[test]
    fn identifiers_skip_those_in_flight_and_wrap() {
        let mut s = Session::new(MqttString::from_static("c"), 0);
        let a = s.allocate_id().unwrap();
        let mut p = Publish::new(TopicName::from_static("t"), "x");
        p.qos_pid = QosPid::new(QoS::AtLeastOnce, Some(a)).unwrap();
        s.outbound.push(p);
        s.next_id = a.get();
        assert_eq!(s.allocate_id().unwrap().get(), a.get() + 1);
        s.next_id = u16::MAX;
        assert_eq!(s.allocate_id().unwrap().get(), u16::MAX);
        assert_eq!(s.allocate_id().unwrap().get(), 2);
    }
}
