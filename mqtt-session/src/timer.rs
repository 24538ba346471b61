//! One small table of deadlines per state machine: the next wake-up is its minimum.
//!
//! The machine never reads a clock: deadlines are computed from the `now` each input
//! carries, and [`TimerTable::next`] is what `poll_timeout` reports.

use crate::time::Instant;
use core::marker::PhantomData;

/// A kind of timer a state machine keeps: a small `Copy` enum with a dense index.
pub(crate) trait Timer: Copy + 'static {
    /// Every timer of this kind, in index order.
    const ALL: &'static [Self];
    /// This timer's slot in the table (below `ALL.len()`).
    fn index(self) -> usize;
}

/// Deadlines for the `N` timers of kind `T`; each is set or stopped.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable<T, const N: usize> {
    at: [Option<Instant>; N],
    _kind: PhantomData<T>,
}

impl<T: Timer, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Timer, const N: usize> TimerTable<T, N> {
    /// A table with every timer stopped.
    pub(crate) fn new() -> Self {
        Self {
            at: [None; N],
            _kind: PhantomData,
        }
    }

    /// Sets `timer` to fire at `at`, replacing any earlier setting.
    pub(crate) fn set(&mut self, timer: T, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: T) {
        self.at[timer.index()] = None;
    }

    /// Stops every timer.
    pub(crate) fn stop_all(&mut self) {
        self.at = [None; N];
    }

    /// When `timer` fires, if it is set.
    pub(crate) fn get(&self, timer: T) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// The earliest deadline of all timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Stops and returns the first timer (in index order) whose deadline is at or before
    /// `now`; call until `None` to handle every expired timer.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<T> {
        for &t in T::ALL {
            if let Some(at) = self.at[t.index()]
                && at <= now
            {
                self.at[t.index()] = None;
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum T {
        A,
        B,
    }
    impl Timer for T {
        const ALL: &'static [Self] = &[T::A, T::B];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn next_is_the_minimum_and_expired_timers_pop_once() {
        let t0 = crate::test_epoch();
        let mut table: TimerTable<T, 2> = TimerTable::new();
        assert_eq!(table.next(), None);
        table.set(T::A, t0 + Duration::from_secs(5));
        table.set(T::B, t0 + Duration::from_secs(2));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(3)), Some(T::B));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(3)), None);
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(5)));
        table.stop(T::A);
        assert_eq!(table.next(), None);
    }
}
