//! The wall clock for `-F`'s `@` sequences, `%I`, `%U` and `%j`: strftime's conversions
//! in the local time zone, as mosquitto_sub prints them, by jiff.

use jiff::Zoned;

/// A moment in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moment(Zoned);

impl Moment {
    /// Now, in the local time zone (`TZ`, else the system's; UTC when neither is known).
    // The program prints the wall-clock time of each message: it is its own driver.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now() -> Self {
        Self(Zoned::now())
    }

    /// `unix` seconds and `nanos` after the epoch, in UTC.
    #[cfg(test)]
    pub(crate) fn at(unix: i64, nanos: u32) -> Self {
        let nanos = i32::try_from(nanos).unwrap_or(0);
        let t = jiff::Timestamp::new(unix, nanos).unwrap_or_default();
        Self(t.to_zoned(jiff::tz::TimeZone::UTC))
    }

    /// Seconds since the epoch.
    pub(crate) fn unix(&self) -> i64 {
        self.0.timestamp().as_second()
    }

    /// Nanoseconds into the second.
    pub(crate) fn nanos(&self) -> u32 {
        u32::try_from(self.0.timestamp().subsec_nanosecond()).unwrap_or(0)
    }

    /// strftime's `%c` for one conversion character `c` (empty for one it lacks).
    pub(crate) fn strftime(&self, c: u8, out: &mut Vec<u8>) {
        let format = match c {
            // C's locale-independent forms, which jiff leaves to the caller.
            b'c' => "%a %b %e %H:%M:%S %Y".to_string(),
            b'D' => "%m/%d/%y".to_string(),
            c if c.is_ascii_alphabetic() || c == b'%' => format!("%{}", c as char),
            _ => return,
        };
        if let Ok(s) = jiff::fmt::strtime::format(format.as_str(), &self.0) {
            out.extend_from_slice(s.as_bytes());
        }
    }

    /// ISO 8601 as `%I` prints it: `2016-08-10T09:47:38+0000`.
    pub(crate) fn iso8601(&self) -> String {
        jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%z", &self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known dates, leap days included, as `date -u` prints them.
    #[test]
    fn civil_dates() {
        let m = Moment::at(1_470_818_858, 786_368_637);
        assert_eq!(m.iso8601(), "2016-08-10T08:47:38+0000");
        let mut v = Vec::new();
        for c in *b"aAbBjuwsy" {
            m.strftime(c, &mut v);
            v.push(b' ');
        }
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "Wed Wednesday Aug August 223 3 3 1470818858 16 "
        );
        assert_eq!(
            Moment::at(951_782_400, 0).iso8601(),
            "2000-02-29T00:00:00+0000"
        );
        assert_eq!(Moment::at(0, 0).iso8601(), "1970-01-01T00:00:00+0000");
        let mut c = Vec::new();
        Moment::at(0, 0).strftime(b'c', &mut c);
        assert_eq!(c, b"Thu Jan  1 00:00:00 1970");
    }
}
