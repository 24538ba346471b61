//! SUBSCRIBE / SUBACK and UNSUBSCRIBE / UNSUBACK, matched by packet identifier.

use crate::time::Instant;
use alloc::vec::Vec;

use mqtt_codec::{
    Packet, PacketId, ReasonCode, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, UnsubAck, Unsubscribe, UnsubscribeProperties,
};

use super::{Client, ConnectionState, DropReason, Event, SubscribeError, Subscribed, Unsubscribed};
use crate::rules::Violation;
use crate::store::{Request, SessionOp};

impl Client {
    /// Sends SUBSCRIBE for `filters` and returns its packet identifier; [`Event::Subscribed`]
    /// reports the SUBACK. Needs an open connection. Under v5, filters the server said it
    /// does not support (wildcards, shared subscriptions, subscription identifiers) are
    /// refused here. A request unanswered when the connection drops is sent again after
    /// the next CONNACK.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<PacketId, SubscribeError> {
        if self.state != ConnectionState::Connected {
            return Err(SubscribeError::NotConnected);
        }
        if filters.is_empty() {
            return Err(SubscribeError::NoFilters);
        }
        let l = &self.limits;
        if !l.wildcard_subscription_available && filters.iter().any(|(f, _)| f.has_wildcards()) {
            return Err(SubscribeError::WildcardNotSupported);
        }
        if !l.shared_subscription_available && filters.iter().any(|(f, _)| f.shared().is_some()) {
            return Err(SubscribeError::SharedNotSupported);
        }
        if !l.subscription_identifiers_available && properties.subscription_identifier.is_some() {
            return Err(SubscribeError::SubscriptionIdentifiersNotSupported);
        }
        let placeholder = PacketId::new(1).ok_or(SubscribeError::PacketIdsExhausted)?;
        let mut sub = Subscribe {
            packet_id: placeholder,
            properties,
            filters,
        };
        self.check_size(&Packet::Subscribe(sub.clone()))?;
        sub.packet_id = self
            .ids
            .allocate()
            .ok_or(SubscribeError::PacketIdsExhausted)?;
        self.requests
            .insert(sub.packet_id, Request::Subscribe(sub.clone()));
        self.persist(SessionOp::PutRequest(Request::Subscribe(sub.clone())));
        let id = sub.packet_id;
        self.send(now, Packet::Subscribe(sub));
        Ok(id)
    }

    /// Sends UNSUBSCRIBE for `filters` and returns its packet identifier;
    /// [`Event::Unsubscribed`] reports the UNSUBACK. Needs an open connection.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<PacketId, SubscribeError> {
        if self.state != ConnectionState::Connected {
            return Err(SubscribeError::NotConnected);
        }
        if filters.is_empty() {
            return Err(SubscribeError::NoFilters);
        }
        let placeholder = PacketId::new(1).ok_or(SubscribeError::PacketIdsExhausted)?;
        let mut unsub = Unsubscribe {
            packet_id: placeholder,
            properties,
            filters,
        };
        self.check_size(&Packet::Unsubscribe(unsub.clone()))?;
        unsub.packet_id = self
            .ids
            .allocate()
            .ok_or(SubscribeError::PacketIdsExhausted)?;
        self.requests
            .insert(unsub.packet_id, Request::Unsubscribe(unsub.clone()));
        self.persist(SessionOp::PutRequest(Request::Unsubscribe(unsub.clone())));
        let id = unsub.packet_id;
        self.send(now, Packet::Unsubscribe(unsub));
        Ok(id)
    }

    fn check_size(&self, packet: &Packet) -> Result<(), SubscribeError> {
        let size = packet.encoded_len(self.protocol())?;
        let max = self.limits.maximum_packet_size;
        if size > max as usize {
            return Err(SubscribeError::PacketTooLarge { size, max });
        }
        Ok(())
    }

    /// After a CONNACK: the requests never answered go again, in identifier order. One
    /// that this server's Maximum Packet Size no longer admits ([MQTT-3.2.2-15]) is
    /// dropped and reported ([`Event::RequestDropped`]).
    pub(super) fn resend_requests(&mut self, now: Instant) {
        let pending: Vec<Packet> = self
            .requests
            .values()
            .map(|r| match r {
                Request::Subscribe(s) => Packet::Subscribe(s.clone()),
                Request::Unsubscribe(u) => Packet::Unsubscribe(u.clone()),
            })
            .collect();
        for p in pending {
            if self.check_size(&p).is_ok() {
                self.send(now, p);
                continue;
            }
            let id = match &p {
                Packet::Subscribe(s) => s.packet_id,
                Packet::Unsubscribe(u) => u.packet_id,
                _ => continue,
            };
            self.answered(id);
            self.emit(Event::RequestDropped {
                packet_id: id,
                reason: DropReason::PacketTooLarge,
            });
        }
    }

    fn unknown_request(&mut self, now: Instant) {
        let rule = if self.protocol().is_v5() {
            "[MQTT-2.2.1-6] SUBACK or UNSUBACK for an identifier with no request awaiting it"
        } else {
            "[MQTT-2.3.1-7] SUBACK or UNSUBACK for an identifier with no request awaiting it"
        };
        self.protocol_violation(now, Violation::protocol(rule));
    }

    fn answered(&mut self, id: PacketId) {
        self.requests.remove(&id);
        self.release_id(id);
        self.persist(SessionOp::RemoveRequest(id));
    }

    pub(super) fn on_suback(&mut self, now: Instant, ack: SubAck) {
        let Some(Request::Subscribe(sub)) = self.requests.get(&ack.packet_id) else {
            return self.unknown_request(now);
        };
        if sub.filters.len() != ack.reason_codes.len() {
            let rule = if self.protocol().is_v5() {
                "[MQTT-3.9.3-2] SUBACK needs one reason code per topic filter"
            } else {
                "[MQTT-3.8.4-5] SUBACK needs one return code per topic filter"
            };
            return self.protocol_violation(now, Violation::protocol(rule));
        }
        let filters = sub
            .filters
            .iter()
            .zip(&ack.reason_codes)
            .map(|((f, o), rc)| (f.clone(), *o, *rc))
            .collect();
        self.answered(ack.packet_id);
        self.emit(Event::Subscribed(Subscribed {
            packet_id: ack.packet_id,
            filters,
            properties: ack.properties,
        }));
    }

    pub(super) fn on_unsuback(&mut self, now: Instant, ack: UnsubAck) {
        let Some(Request::Unsubscribe(unsub)) = self.requests.get(&ack.packet_id) else {
            return self.unknown_request(now);
        };
        let v5 = self.protocol().is_v5();
        if v5 && unsub.filters.len() != ack.reason_codes.len() {
            return self.protocol_violation(
                now,
                Violation::protocol(
                    "[MQTT-3.11.3-2] UNSUBACK needs one reason code per topic filter",
                ),
            );
        }
        let filters = unsub
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let rc = ack
                    .reason_codes
                    .get(i)
                    .copied()
                    .unwrap_or(ReasonCode::SUCCESS);
                (f.clone(), rc)
            })
            .collect();
        self.answered(ack.packet_id);
        self.emit(Event::Unsubscribed(Unsubscribed {
            packet_id: ack.packet_id,
            filters,
            properties: ack.properties,
        }));
    }
}
