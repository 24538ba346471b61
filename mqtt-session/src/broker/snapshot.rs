//! Snapshots of the broker's durable state, and restoring one (the types are in
//! `store.rs`).

use crate::time::Instant;
use alloc::{boxed::Box, vec::Vec};

use super::Hub;
use super::config::BrokerConfig;
use super::retained::Retained;
use super::session::{Expiry, NEVER, Session, SessionKey, SubValue};
use super::store::*;
use super::timers::{Deadline, after_secs};
use crate::inflight::OutgoingState;
use crate::store::SessionState;

impl Hub {
    /// A snapshot of the durable state: every session that outlives its connection, and
    /// every retained message. Restore it with [`Hub::restore`].
    pub fn snapshot(&self) -> BrokerSnapshot {
        let mut out = BrokerSnapshot::default();
        for s in self.sessions.values().filter(|s| s.durable()) {
            let subscriptions = s
                .subscriptions
                .iter()
                .map(|(f, v)| StoredSubscription {
                    filter: f.clone(),
                    options: v.options,
                    id: v.id,
                })
                .collect();
            let state = SessionState {
                client_id: s.client_id.clone(),
                outgoing: s.outbound.iter().cloned().collect(),
                incoming_qos2: s.inbound_qos2.iter().collect(),
                requests: Vec::new(),
                next_packet_id: s.next_id,
            };
            out.sessions.insert(
                s.client_id.clone(),
                SessionSnapshot {
                    expiry_interval: s.expiry_interval,
                    username: s.username.clone(),
                    subscriptions,
                    state,
                    will: s.will.as_deref().cloned(),
                },
            );
        }
        for m in self.retained.iter() {
            out.retained.insert(
                m.publish.topic.clone(),
                RetainedMessage {
                    publish: m.publish.clone(),
                    qos: m.qos,
                },
            );
        }
        out
    }

    /// A broker resuming from `snapshot` at `now`, with no connections: every session waits
    /// for its client, its expiry and its will's delay counting from `now`.
    pub fn restore(
        config: BrokerConfig,
        snapshot: BrokerSnapshot,
        now: Instant,
    ) -> Result<Self, RestoreError> {
        let mut b = Self::new(config);
        for (client_id, snap) in snapshot.sessions {
            b.next_session += 1;
            let key = SessionKey(b.next_session);
            let mut s = Session::new(client_id.clone(), snap.expiry_interval);
            s.username = snap.username;
            for sub in snap.subscriptions {
                let value = SubValue {
                    options: sub.options,
                    id: sub.id,
                };
                if b.router
                    .tree
                    .insert(sub.filter.as_str(), key, value)
                    .is_err()
                {
                    return Err(RestoreError::InvalidFilter {
                        client_id,
                        filter: sub.filter,
                    });
                }
                s.subscriptions.insert(sub.filter, value);
            }
            for entry in snap.state.outgoing {
                let packet_id = entry.packet_id.get();
                let expiry = match &entry.state {
                    OutgoingState::Publish { publish } if !entry.sent => {
                        publish.properties.message_expiry_interval
                    }
                    _ => None,
                };
                let Some(seq) = s.outbound.restore(entry) else {
                    return Err(RestoreError::DuplicatePacketId {
                        client_id,
                        packet_id,
                    });
                };
                if let Some(at) = expiry.and_then(|secs| after_secs(now, secs)) {
                    s.expiries.insert(seq, Expiry::At(at));
                }
            }
            for id in snap.state.incoming_qos2 {
                s.inbound_qos2.insert(id);
            }
            s.next_id = snap.state.next_packet_id.max(1);
            if let Some(w) = snap.will {
                let delay = w.properties.will_delay_interval.unwrap_or(0);
                if let Some(at) = after_secs(now, delay) {
                    b.deadlines.set(Deadline::WillDelay(key), at);
                }
                s.will = Some(Box::new(w));
            }
            if s.expiry_interval != NEVER
                && let Some(at) = after_secs(now, s.expiry_interval)
            {
                b.deadlines.set(Deadline::SessionExpiry(key), at);
            }
            b.by_client_id.insert(client_id, key);
            b.sessions.insert(key, Box::new(s));
        }
        for (_, m) in snapshot.retained {
            let expires_at = m
                .publish
                .properties
                .message_expiry_interval
                .and_then(|secs| after_secs(now, secs));
            b.retained.restore(Retained {
                publish: m.publish,
                qos: m.qos,
                expires_at,
            });
        }
        Ok(b)
    }
}
