//! The wall clock for `-F`'s `@` sequences, `%I`, `%U` and `%j`: strftime's common
//! conversions, in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment, broken down in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moment {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub(crate) unix: i64,
    /// Nanoseconds into the second.
    pub(crate) nanos: u32,
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 for Sunday.
    weekday: u32,
    /// 0 for the 1st of January.
    yearday: u32,
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Moment {
    /// Now.
    // The program prints the wall-clock time of each message: it is its own driver.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self::at(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        )
    }

    /// `unix` seconds and `nanos` after the epoch.
    pub(crate) fn at(unix: i64, nanos: u32) -> Self {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yearday = BEFORE[month as usize - 1] + day - 1 + u32::from(leap && month > 2);
        Self {
            unix,
            nanos,
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yearday,
        }
    }

    /// strftime's `%c` for one conversion character `c` (empty for one it lacks).
    pub(crate) fn strftime(&self, c: u8, out: &mut Vec<u8>) {
        let s = match c {
            b'Y' => self.year.to_string(),
            b'C' => format!("{:02}", self.year / 100),
            b'y' => format!("{:02}", self.year % 100),
            b'm' => format!("{:02}", self.month),
            b'd' => format!("{:02}", self.day),
            b'e' => format!("{:2}", self.day),
            b'H' => format!("{:02}", self.hour),
            b'I' => format!("{:02}", (self.hour + 11) % 12 + 1),
            b'M' => format!("{:02}", self.minute),
            b'S' => format!("{:02}", self.second),
            b'p' => (if self.hour < 12 { "AM" } else { "PM" }).into(),
            b'j' => format!("{:03}", self.yearday + 1),
            b'a' => WEEKDAYS[self.weekday as usize][..3].into(),
            b'A' => WEEKDAYS[self.weekday as usize].into(),
            b'b' | b'h' => MONTHS[self.month as usize - 1][..3].into(),
            b'B' => MONTHS[self.month as usize - 1].into(),
            b'u' => (if self.weekday == 0 { 7 } else { self.weekday }).to_string(),
            b'w' => self.weekday.to_string(),
            b's' => self.unix.to_string(),
            b'z' => "+0000".into(),
            b'Z' => "UTC".into(),
            b'n' => "\n".into(),
            b't' => "\t".into(),
            b'%' => "%".into(),
            b'F' => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
            b'T' => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
            b'R' => format!("{:02}:{:02}", self.hour, self.minute),
            b'D' => format!("{:02}/{:02}/{:02}", self.month, self.day, self.year % 100),
            b'c' => {
                let mut v = Vec::new();
                for (i, c) in b"a b e T Y".iter().enumerate() {
                    if i % 2 == 1 {
                        v.push(b' ');
                    } else {
                        self.strftime(*c, &mut v);
                    }
                }
                String::from_utf8_lossy(&v).into_owned()
            }
            _ => String::new(),
        };
        out.extend_from_slice(s.as_bytes());
    }

    /// ISO 8601 as `%I` prints it: `2016-08-10T09:47:38+0000`.
    pub(crate) fn iso8601(&self) -> String {
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
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
