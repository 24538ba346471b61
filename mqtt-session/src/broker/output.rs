//! What the broker hands the driver for a connection: packets fitted to what its client
//! accepts, events, persistence operations, and how a connection ends.

use crate::time::Instant;
use alloc::boxed::Box;

use mqtt_codec::{ConnAck, Disconnect, MqttString, Packet, ReasonCode};

use super::connection::{Stage, WillOnClose};
use super::event::{BrokerEvent, ClientDisconnected, Limit};
use super::session::SessionKey;
use super::timers::Deadline;
use super::{BrokerAction, ConnectionId, Hub};
use crate::event::{CloseCause, Disconnected};
use crate::rules::Violation;

impl Hub {
    /// The session and version of a connection that has completed CONNECT.
    pub(super) fn connected_session(&self, conn: ConnectionId) -> Option<(SessionKey, bool)> {
        let c = self.connections.get(&conn)?;
        match c.stage {
            Stage::Connected => Some((c.session?, c.version.is_v5())),
            _ => None,
        }
    }

    pub(super) fn emit(&mut self, event: BrokerEvent) {
        self.actions.push_back(BrokerAction::Event(event));
    }

    pub(super) fn persist(&mut self, op: super::store::StoreOp) {
        self.actions.push_back(BrokerAction::Persist(op));
    }

    /// `limit` refused something `conn` (or, without a connection, the session `client_id`)
    /// asked for: counted and evented.
    pub(super) fn limit_reached_by(
        &mut self,
        connection: Option<ConnectionId>,
        client_id: Option<MqttString>,
        limit: Limit,
    ) {
        self.limit_counts[limit as usize] += 1;
        self.emit(BrokerEvent::LimitReached {
            connection,
            client_id,
            limit,
        });
    }

    /// [`limit_reached_by`](Self::limit_reached_by) a connection, its client named if known.
    pub(super) fn limit_reached(&mut self, conn: Option<ConnectionId>, limit: Limit) {
        let client_id = conn
            .and_then(|c| self.connections.get(&c))
            .and_then(|c| match &c.stage {
                Stage::Connecting(p)
                    if c.client_id.is_none() && !p.connect.client_id.is_empty() =>
                {
                    Some(p.connect.client_id.clone())
                }
                _ => c.client_id.clone(),
            });
        self.limit_reached_by(conn, client_id, limit);
    }

    /// Queues `packet` for `conn`, fitted to what its client accepts (see
    /// [`Connection::fit`](super::connection::Connection::fit)); a packet that still does
    /// not fit is not sent.
    pub(super) fn send(&mut self, conn: ConnectionId, packet: Packet) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if let Some((packet, len)) = c.fit(packet) {
            c.hand_out(&mut self.actions, conn, packet, len);
        }
    }

    /// The broker closes `conn` because a limit was reached: under v5 a connected client
    /// gets DISCONNECT with `rc` and `reason` as its Reason String first. The will is
    /// published.
    pub(super) fn close_for_limit(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        rc: ReasonCode,
        reason: &'static str,
    ) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        if c.version.is_v5() && matches!(c.stage, Stage::Connected) {
            let mut d = Disconnect::new(rc);
            d.properties.reason_string = Some(MqttString::from_static(reason));
            self.send(conn, Packet::Disconnect(d));
        }
        let why = Disconnected::new(CloseCause::Local, Some(rc));
        self.end_connection(now, conn, why, WillOnClose::Publish, true);
    }

    /// The client broke a rule: the connection closes ([MQTT-4.13.1-1], 3.1.1
    /// [MQTT-4.8.0-1]), after a DISCONNECT with the reason code under v5 once CONNACK is out
    /// ([MQTT-3.14.0-1]), or a CONNACK with it before. The will is published. Other
    /// connections are not touched.
    pub(super) fn violation(&mut self, now: Instant, conn: ConnectionId, v: Violation) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let v5 = c.version.is_v5();
        match c.stage {
            Stage::Connected if v5 => {
                let mut d = Disconnect::new(v.reason_code);
                d.properties.reason_string = Some(MqttString::from_static(v.rule));
                self.send(conn, Packet::Disconnect(d));
            }
            Stage::Connecting(_)
                if v5 && v.reason_code.allowed_in(mqtt_codec::PacketType::ConnAck) =>
            {
                let mut a = ConnAck {
                    reason_code: v.reason_code,
                    ..ConnAck::default()
                };
                a.properties.reason_string = Some(MqttString::from_static(v.rule));
                self.send(conn, Packet::ConnAck(Box::new(a)));
            }
            _ => {}
        }
        self.end_connection(
            now,
            conn,
            Disconnected::violation(v),
            WillOnClose::Publish,
            true,
        );
    }

    /// The connection is over: an event, [`BrokerAction::Close`] if `close` (the driver did not
    /// report it closed), and its session carries on disconnected (or ends).
    pub(super) fn end_connection(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        why: Disconnected,
        will: WillOnClose,
        close: bool,
    ) {
        let Some(c) = self.connections.remove(&conn) else {
            return;
        };
        if matches!(c.stage, Stage::Connecting(_)) {
            self.pending_connects = self.pending_connects.saturating_sub(1);
        }
        self.deadlines.cancel(Deadline::ConnectTimeout(conn));
        self.deadlines.cancel(Deadline::WriteStall(conn));
        self.release_waiters(c.flow.waiters);
        self.emit(BrokerEvent::Disconnected(Box::new(ClientDisconnected {
            connection: conn,
            client_id: c.client_id.clone(),
            disconnected: why,
        })));
        if close {
            self.actions.push_back(BrokerAction::Close(conn));
        }
        if let (Stage::Connected, Some(key)) = (&c.stage, c.session) {
            self.session_disconnected(now, key, will);
        }
    }
}
