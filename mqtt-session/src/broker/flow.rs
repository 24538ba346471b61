//! Flow control from session to socket, and backpressure from subscribers to publishers.
//!
//! The broker hands a connection packets only while the bytes the driver has not yet
//! written stay under [`BrokerConfig::write_budget`](super::BrokerConfig::write_budget);
//! the driver reports progress with [`Hub::handle_written`], and what waited goes out.
//! So a client that keeps reading receives everything, at its own pace, and the driver
//! holds at most one budget of bytes for it.
//!
//! A subscriber that falls behind by `pause_publishers_at` messages pauses the connections
//! that publish to it ([`BrokerAction::PauseReading`](super::BrokerAction::PauseReading)) until it is
//! down to half: publishers slow to the pace of their subscribers instead of having their
//! messages acknowledged and then dropped. A subscriber that makes no progress for
//! `write_timeout` cannot stall everyone: with bytes unwritten it is closed; with its
//! Receive Maximum full (it reads but does not acknowledge) it stops pausing anyone until
//! it makes progress, and its queue limits apply.

use crate::time::Instant;
use alloc::vec::Vec;

use super::event::Limit;
use super::session::SessionKey;
use super::timers::Deadline;
use super::{BrokerAction, ConnectionId, Hub};
use crate::event::{CloseCause, Disconnected};

use super::connection::WillOnClose;

impl Hub {
    /// The driver wrote `bytes` more of what [`BrokerAction::Send`] handed it for `conn` (the
    /// sum of the packets' encoded lengths, as [`Packet::encoded_len`] gives them). What
    /// waited for room goes out; publishers paused for `conn` resume once it has caught up.
    ///
    /// A driver that buffers without bound may report each packet written as soon as it
    /// takes it; one that does so only after the socket accepted the bytes gets flow
    /// control.
    ///
    /// [`Packet::encoded_len`]: mqtt_codec::Packet::encoded_len
    pub fn handle_written(&mut self, now: Instant, conn: ConnectionId, bytes: usize) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        // Only a connection that had spent its budget has anything waiting for room: after
        // every pump the budget is spent, or what waits waits for the Receive Maximum.
        let was_full = c.flow.unwritten >= self.config.write_budget;
        c.flow.unwritten = c.flow.unwritten.saturating_sub(bytes);
        if bytes > 0 {
            c.flow.last_progress = now;
            c.flow.brake_off = false;
        }
        if was_full && let Some((key, _)) = self.connected_session(conn) {
            self.pump(now, key);
        }
    }

    /// Bytes handed to the driver for `conn` and not yet reported written.
    pub fn unwritten(&self, conn: ConnectionId) -> Option<usize> {
        Some(self.connections.get(&conn)?.flow.unwritten)
    }

    /// Whether the broker has asked the driver to stop reading from `conn`
    /// ([`BrokerAction::PauseReading`]).
    pub fn is_paused(&self, conn: ConnectionId) -> bool {
        self.connections
            .get(&conn)
            .is_some_and(|c| c.flow.paused_for > 0)
    }

    /// The client of `conn` acknowledged a message: progress, as much as bytes written.
    pub(super) fn acknowledged(&mut self, now: Instant, conn: ConnectionId) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.flow.last_progress = now;
            c.flow.brake_off = false;
        }
    }

    /// After sending what it could for session `key` on `conn`: if something still waits,
    /// the write timeout watches the connection; if it has caught up, the publishers it
    /// paused resume.
    pub(super) fn after_pump(&mut self, now: Instant, conn: ConnectionId, key: SessionKey) {
        let resume_at = self.config.pause_publishers_at / 2;
        let Some(backlog) = self.sessions.get(&key).map(|s| s.backlog()) else {
            return;
        };
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let behind = backlog > 0 || c.flow.unwritten >= self.config.write_budget;
        if backlog <= resume_at {
            let waiters = core::mem::take(&mut c.flow.waiters);
            self.release_waiters(waiters);
        }
        if behind {
            self.arm_stall(now, conn);
        }
    }

    /// Starts watching `conn` for the write timeout, from now, unless already watched.
    pub(super) fn arm_stall(&mut self, now: Instant, conn: ConnectionId) {
        let timeout = self.config.write_timeout;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if c.flow.stall_armed {
            return;
        }
        c.flow.stall_armed = true;
        c.flow.last_progress = now;
        if let Some(at) = now.checked_add(timeout) {
            self.deadlines.set(Deadline::WriteStall(conn), at);
        }
    }

    /// The write timeout of `conn` may have run out.
    pub(super) fn write_stall_due(&mut self, now: Instant, conn: ConnectionId) {
        let timeout = self.config.write_timeout;
        let backlog = self
            .connected_session(conn)
            .and_then(|(key, _)| self.sessions.get(&key))
            .map_or(0, |s| s.backlog());
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        c.flow.stall_armed = false;
        if c.flow.unwritten == 0 && backlog == 0 {
            return;
        }
        if let Some(due) = c.flow.last_progress.checked_add(timeout)
            && due > now
        {
            c.flow.stall_armed = true;
            return self.deadlines.set(Deadline::WriteStall(conn), due);
        }
        if c.flow.unwritten > 0 {
            // The client stopped reading: nothing more can reach it, not even a DISCONNECT.
            self.limit_reached(Some(conn), Limit::WriteTimeout);
            let why = Disconnected::new(CloseCause::Timeout, None);
            return self.end_connection(now, conn, why, WillOnClose::Publish, true);
        }
        // It reads, but leaves its Receive Maximum full: it slows nobody down any more.
        c.flow.brake_off = true;
        let waiters = core::mem::take(&mut c.flow.waiters);
        self.release_waiters(waiters);
    }

    /// Backpressure: `publisher` just routed a message to the client of `sub`, which is
    /// `pause_publishers_at` or more messages behind: `publisher` pauses until it catches up.
    pub(super) fn brake(&mut self, now: Instant, publisher: ConnectionId, sub: ConnectionId) {
        let pause_at = self.config.pause_publishers_at;
        if sub == publisher {
            return;
        }
        // A publisher that is as far behind itself is not paused: it could be what its
        // subscriber waits for.
        let behind = self
            .connections
            .get(&publisher)
            .and_then(|c| c.session)
            .and_then(|k| self.sessions.get(&k))
            .is_some_and(|s| s.backlog() >= pause_at);
        let Some(c) = self.connections.get_mut(&sub) else {
            return;
        };
        if behind || c.flow.brake_off || c.flow.waiters.contains(&publisher) {
            return;
        }
        c.flow.waiters.push(publisher);
        self.arm_stall(now, sub);
        if let Some(p) = self.connections.get_mut(&publisher) {
            p.flow.paused_for += 1;
            if p.flow.paused_for == 1 {
                self.actions
                    .push_back(BrokerAction::PauseReading(publisher));
            }
        }
    }

    /// The connections in `waiters` no longer wait for the one that paused them; those
    /// that wait for no other resume.
    pub(super) fn release_waiters(&mut self, waiters: Vec<ConnectionId>) {
        for w in waiters {
            if let Some(c) = self.connections.get_mut(&w) {
                c.flow.paused_for = c.flow.paused_for.saturating_sub(1);
                if c.flow.paused_for == 0 {
                    self.actions.push_back(BrokerAction::ResumeReading(w));
                }
            }
        }
    }
}
