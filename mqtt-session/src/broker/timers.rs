//! The broker's deadlines: one per connection or session that needs one, ordered by time.
//!
//! A client's [`TimerTable`](crate::timer::TimerTable) has a slot for each of its few
//! timers. A broker has timers per connection (CONNECT timeout, keep-alive) and per session
//! (expiry, will delay), so it keeps them keyed and ordered instead; the next wake-up is the
//! first entry.

use crate::collections::{BTreeSet, HashMap};
use crate::time::Instant;

use super::event::ConnectionId;
use super::session::SessionKey;

/// `secs` seconds after `now`, or `None` if that is beyond what an [`Instant`] can hold
/// (intervals come from peers, up to 136 years): such a deadline never falls due.
pub(crate) fn after_secs(now: Instant, secs: u32) -> Option<Instant> {
    now.checked_add(core::time::Duration::from_secs(u64::from(secs)))
}

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Deadline {
    /// The connection has not sent CONNECT in time.
    ConnectTimeout(ConnectionId),
    /// The connection may have been silent for 1.5 times its keep-alive ([MQTT-3.1.2-22]);
    /// checked against the time it last sent something when it fires.
    KeepAlive(ConnectionId),
    /// The connection has had unwritten bytes, or messages waiting for its Receive Maximum,
    /// since its last progress: checked against the write timeout when it fires.
    WriteStall(ConnectionId),
    /// The disconnected session expires ([MQTT-4.1.0-2]).
    SessionExpiry(SessionKey),
    /// The disconnected session's will is due ([MQTT-3.1.2-8]).
    WillDelay(SessionKey),
}

/// Deadlines by key, ordered by time.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    ordered: BTreeSet<(Instant, Deadline)>,
    at: HashMap<Deadline, Instant>,
}

impl Deadlines {
    /// Sets `d` to fall due at `at`, replacing an earlier setting.
    pub(crate) fn set(&mut self, d: Deadline, at: Instant) {
        if let Some(old) = self.at.insert(d, at) {
            self.ordered.remove(&(old, d));
        }
        self.ordered.insert((at, d));
    }

    /// Cancels `d`.
    pub(crate) fn cancel(&mut self, d: Deadline) {
        if let Some(old) = self.at.remove(&d) {
            self.ordered.remove(&(old, d));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.ordered.first().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest deadline due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        let &(t, d) = self.ordered.first()?;
        if t > now {
            return None;
        }
        self.ordered.remove(&(t, d));
        self.at.remove(&d);
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn deadlines_pop_in_time_order_and_replace() {
        let t0 = crate::test_epoch();
        let mut d = Deadlines::default();
        let a = Deadline::KeepAlive(ConnectionId(1));
        let b = Deadline::SessionExpiry(SessionKey(2));
        d.set(a, t0 + Duration::from_secs(5));
        d.set(b, t0 + Duration::from_secs(3));
        d.set(a, t0 + Duration::from_secs(1));
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + Duration::from_secs(4)), Some(a));
        assert_eq!(d.pop_due(t0 + Duration::from_secs(4)), Some(b));
        assert_eq!(d.pop_due(t0 + Duration::from_secs(9)), None);
        d.set(b, t0);
        d.cancel(b);
        assert_eq!(d.next(), None);
    }
}
