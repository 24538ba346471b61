//! Time as the machines see it: an [`Instant`] that any driver can make from its own
//! monotonic clock, with or without std.
//!
//! The machines never read a clock. A driver passes the current time into every input and
//! gets deadlines back, as [`Instant`]s: microseconds since an origin the driver picks (boot,
//! the start of the process, a tick counter's zero). Only differences between instants
//! matter, so the origin is the driver's choice, as long as it keeps one per machine.
//!
//! - Without std (a microcontroller): `Instant::from_micros(ticks_us)`, or `from_millis`,
//!   from the platform's monotonic timer (embassy's `Instant::as_micros`, a SysTick count).
//! - With std: a [`Clock`] anchors instants to `std::time::Instant`, both ways:
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use core::time::Duration;
//! use mqtt_session::time::Clock;
//!
//! let clock = Clock::new();
//! let now = clock.now();
//! let deadline = now + Duration::from_secs(60);
//! // To sleep until a deadline the machine gave back:
//! let wake_at: std::time::Instant = clock.to_std(deadline);
//! assert!(wake_at > clock.to_std(now));
//! # }
//! ```
//!
//! Why not `std::time::Instant` itself: it does not exist without std, and it cannot be
//! made from a number, so neither an embedded timer nor a test with simulated time could
//! produce one. Why not a type parameter: every machine, event and snapshot would carry it,
//! for no gain over a plain count (a `u64` of microseconds covers 584,000 years).

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point on the driver's monotonic clock, in microseconds since its origin. See the
/// [module documentation](self).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Self = Self(0);

    /// `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// `millis` milliseconds after the origin (saturating at the largest instant).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// `secs` seconds after the origin (saturating at the largest instant).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` past the largest instant.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        let micros = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_add(micros).map(Self)
    }

    /// `self - d`, or `None` before the origin.
    pub fn checked_sub(self, d: Duration) -> Option<Self> {
        let micros = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_sub(micros).map(Self)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", Duration::from_micros(self.0))
    }
}

/// `instant + duration`, saturating at the largest instant (whole microseconds; a
/// fraction of one is dropped).
impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

/// `instant - duration`, saturating at the origin.
impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_sub(micros))
    }
}

/// `later - earlier`, zero if `earlier` is in fact later (unlike std, never a panic).
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// A std clock for the machines: [`Instant`]s measured from the moment it was made, and
/// back to `std::time::Instant` to sleep until a deadline.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl Clock {
    /// A clock whose origin is now.
    #[allow(clippy::disallowed_methods)] // a clock for drivers, which may read the time
    pub fn new() -> Self {
        Self::starting_at(std::time::Instant::now())
    }

    /// A clock whose origin is `origin`.
    pub fn starting_at(origin: std::time::Instant) -> Self {
        Self { origin }
    }

    /// The current time.
    #[allow(clippy::disallowed_methods)] // a clock for drivers, which may read the time
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// `t` on this clock (the origin if `t` is earlier).
    pub fn from_std(&self, t: std::time::Instant) -> Instant {
        Instant::ZERO + t.saturating_duration_since(self.origin)
    }

    /// `t` as a `std::time::Instant`.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        let since = Duration::from_micros(t.as_micros());
        self.origin.checked_add(since).unwrap_or(self.origin)
    }
}

#[cfg(feature = "std")]
impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_secs(10);
        assert_eq!(
            t + Duration::from_millis(1500),
            Instant::from_micros(11_500_000)
        );
        assert_eq!(t - Duration::from_secs(20), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_secs(4), Duration::from_secs(6));
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::MAX,
            Instant::from_micros(u64::MAX)
        );
        assert_eq!(
            Instant::from_micros(u64::MAX).checked_add(Duration::from_micros(1)),
            None
        );
        assert_eq!(t.checked_sub(Duration::from_secs(10)), Some(Instant::ZERO));
        assert_eq!(t.checked_sub(Duration::from_secs(11)), None);
        assert!(Instant::from_millis(1) < Instant::from_micros(1001));
    }

    #[cfg(feature = "std")]
    #[test]
    fn a_clock_converts_both_ways() {
        #[allow(clippy::disallowed_methods)] // a test may read the clock
        let origin = std::time::Instant::now();
        let clock = Clock::starting_at(origin);
        let later = origin + Duration::from_millis(2500);
        let t = clock.from_std(later);
        assert_eq!(t, Instant::from_millis(2500));
        assert_eq!(clock.to_std(t), later);
        assert_eq!(clock.from_std(origin), Instant::ZERO);
    }
}
