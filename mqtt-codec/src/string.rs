//! Validated strings: [`MqttString`], [`TopicName`] and [`TopicFilter`].
//!
//! Each wraps a [`ByteString`] (a [`Bytes`] known to hold UTF-8), so a decoded string is a
//! slice of the packet's buffer, and its invariants hold from construction on: encoding a
//! packet never meets an invalid string.

use alloc::string::String;
use core::{fmt, ops::Deref};

use bytes::Bytes;
use bytestring::ByteString;

use crate::ascii::{self, special_bytes};

/// Why a string cannot be used where MQTT asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Longer than the 65,535 bytes a two-byte length prefix can describe ([MQTT-4.7.3-3]).
    #[error("[MQTT-1.5.4-1] string longer than 65,535 bytes")]
    TooLong,
    /// Not well-formed UTF-8, or UTF-8 encoding a surrogate ([MQTT-1.5.4-1]).
    #[error("[MQTT-1.5.4-1] ill-formed UTF-8")]
    NotUtf8,
    /// Contains U+0000 ([MQTT-1.5.4-2]).
    #[error("[MQTT-1.5.4-2] string contains U+0000")]
    Null,
    /// A topic name or filter is empty ([MQTT-4.7.3-1]).
    #[error("[MQTT-4.7.3-1] topic is empty")]
    EmptyTopic,
    /// A topic name contains `+` or `#` ([MQTT-3.3.2-2]).
    #[error("[MQTT-3.3.2-2] topic name contains a wildcard")]
    WildcardInTopicName,
    /// A `#` that is not alone in the last level of a filter ([MQTT-4.7.1-1]).
    #[error("[MQTT-4.7.1-1] '#' must be the whole last level of a topic filter")]
    MisplacedMultiLevelWildcard,
    /// A `+` that does not fill a whole level of a filter ([MQTT-4.7.1-2]).
    #[error("[MQTT-4.7.1-2] '+' must fill a whole level of a topic filter")]
    MisplacedSingleLevelWildcard,
    /// A `$share/` filter whose ShareName contains `+` or `#`, or is not followed by `/` and
    /// a filter ([MQTT-4.8.2-2]).
    #[error("[MQTT-4.8.2-2] shared subscription needs $share/{{ShareName}}/{{filter}}")]
    InvalidSharedSubscription,
    /// A `$share/` filter with an empty ShareName ([MQTT-4.8.2-1]).
    #[error("[MQTT-4.8.2-1] shared subscription has an empty ShareName")]
    EmptyShareName,
}

/// A UTF-8 Encoded String as MQTT defines it: well-formed UTF-8, no U+0000, at most 65,535
/// bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct MqttString(ByteString);

/// What one scan of a string's bytes found.
struct Scan {
    null: bool,
    plus: bool,
    hash: bool,
}

/// For each byte value, the bit `scan` records: 1 for NUL, 2 for `+`, 4 for `#`.
const SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0] = 1;
    t[b'+' as usize] = 2;
    t[b'#' as usize] = 4;
    t
};

#[inline]
fn scan(b: &[u8]) -> Scan {
    if b.len() < 32 {
        // Short strings (most topics): one table load per byte. Longer ones take the
        // loop below, which the compiler turns into wide compares.
        let f = b.iter().fold(0, |f, &c| f | SPECIAL[usize::from(c)]);
        return Scan {
            null: f & 1 != 0,
            plus: f & 2 != 0,
            hash: f & 4 != 0,
        };
    }
    let mut s = Scan {
        null: false,
        plus: false,
        hash: false,
    };
    for &c in b {
        s.null |= c == 0;
        s.plus |= c == b'+';
        s.hash |= c == b'#';
    }
    s
}

/// Whether `b` contains U+0000. A loop without an early exit, which the compiler turns
/// into wide compares: MQTT strings are mostly short, where `memchr` (behind
/// `contains`) spends more on setting up than on searching.
#[inline]
fn has_nul(b: &[u8]) -> bool {
    b.iter().fold(false, |nul, &c| nul | (c == 0))
}

/// The checks of a topic name from the wire, for [`TopicName::from_wire`] and its borrowed
/// twin [`topic_name_str`]: U+0000, then UTF-8, then wildcards. `plain` takes the common
/// case in one pass (plain ASCII, see `ascii`) or hands the bytes back; `utf8` turns
/// them into the string type after the full scan (`None` if they are not UTF-8).
#[inline]
fn wire_topic<B: AsRef<[u8]>, S>(
    b: B,
    plain: impl FnOnce(B) -> Result<S, B>,
    utf8: impl FnOnce(B) -> Option<S>,
) -> Result<S, StringError> {
    let b = match plain(b) {
        Ok(s) => return Ok(s),
        Err(b) => b,
    };
    let sc = scan(b.as_ref());
    if sc.null {
        return Err(StringError::Null);
    }
    let s = utf8(b).ok_or(StringError::NotUtf8)?;
    if sc.plus || sc.hash {
        return Err(StringError::WildcardInTopicName);
    }
    Ok(s)
}

/// A topic name from wire bytes, borrowed: [`TopicName`]'s checks, so the same error for
/// the same bytes.
#[inline]
pub(crate) fn topic_name_str(b: &[u8]) -> Result<&str, StringError> {
    wire_topic(
        b,
        |b| ascii::plain_ascii_str(b).ok_or(b),
        |b| core::str::from_utf8(b).ok(),
    )
}

impl MqttString {
    /// The empty string.
    pub const fn empty() -> Self {
        Self(ByteString::new())
    }

    /// A string from a static literal.
    ///
    /// # Panics
    /// If `s` is longer than 65,535 bytes or contains U+0000: a literal is the program's own
    /// text, so this is a bug to fix, not an input to handle.
    pub const fn from_static(s: &'static str) -> Self {
        let b = s.as_bytes();
        assert!(
            b.len() <= u16::MAX as usize,
            "MQTT string longer than 65,535 bytes"
        );
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != 0, "MQTT string contains U+0000");
            i += 1;
        }
        Self(ByteString::from_static(s))
    }

    /// Validates `s` as an MQTT string.
    pub fn new(s: impl Into<ByteString>) -> Result<Self, StringError> {
        let s = s.into();
        if s.len() > u16::MAX as usize {
            return Err(StringError::TooLong);
        }
        if has_nul(s.as_bytes()) {
            return Err(StringError::Null);
        }
        Ok(Self(s))
    }

    /// Validates wire bytes (at most 65,535 of them, as a length prefix guarantees).
    #[inline]
    pub(crate) fn from_wire(b: Bytes) -> Result<Self, StringError> {
        let s = ByteString::try_from(b).map_err(|_| StringError::NotUtf8)?;
        if has_nul(s.as_bytes()) {
            return Err(StringError::Null);
        }
        Ok(Self(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string's bytes, sharing the buffer it was decoded from.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// The underlying [`ByteString`].
    pub fn into_inner(self) -> ByteString {
        self.0
    }
}

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(s: &str) -> Result<Self, StringError> {
        Self::new(s)
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(s: String) -> Result<Self, StringError> {
        Self::new(s)
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A topic name: an [`MqttString`] without the wildcards `+` and `#` ([MQTT-3.3.2-2]).
///
/// It may be empty only in an MQTT 5.0 PUBLISH that carries a Topic Alias; the packets
/// check that, so this type admits the empty name.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct TopicName(MqttString);

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: impl Into<ByteString>) -> Result<Self, StringError> {
        let s = MqttString::new(s)?;
        let sc = scan(s.as_bytes());
        if sc.plus || sc.hash {
            return Err(StringError::WildcardInTopicName);
        }
        Ok(Self(s))
    }

    /// A topic name from a static literal.
    ///
    /// # Panics
    /// If the literal is not a valid topic name.
    pub fn from_static(s: &'static str) -> Self {
        match Self::new(s) {
            Ok(t) => t,
            Err(e) => panic!("invalid static topic name {s:?}: {e}"),
        }
    }

    #[inline]
    pub(crate) fn from_wire(b: Bytes) -> Result<Self, StringError> {
        // A plain-ASCII name without a second pass (see `ascii`), anything else through
        // the checked constructor.
        wire_topic(b, ascii::plain_ascii_byte_string, |b| {
            ByteString::try_from(b).ok()
        })
        .map(|s| Self(MqttString(s)))
    }

    /// The topic name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic name as an [`MqttString`].
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// Whether the name starts with `$` (a server-specific topic, which filters starting
    /// with a wildcard do not match: [MQTT-4.7.2-1]).
    pub fn is_system(&self) -> bool {
        self.0.as_bytes().first() == Some(&b'$')
    }
}

/// A topic filter: an [`MqttString`] with `#` only as the whole last level and `+` only as
/// whole levels ([MQTT-4.7.1-1], [MQTT-4.7.1-2]), at least one character long
/// ([MQTT-4.7.3-1]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct TopicFilter(MqttString);

fn check_filter(b: &[u8]) -> Result<(), StringError> {
    let Some(last) = b.len().checked_sub(1) else {
        return Err(StringError::EmptyTopic);
    };
    // Only NUL and the wildcards' neighbours matter: find the candidates eight bytes at a
    // time and look at each one found.
    let check = |i: usize| {
        let misplaced = match b[i] {
            0 => return Err(StringError::Null),
            b'#' if !((i == 0 || b[i - 1] == b'/') && i == last) => {
                StringError::MisplacedMultiLevelWildcard
            }
            b'+' if !((i == 0 || b[i - 1] == b'/') && (i == last || b[i + 1] == b'/')) => {
                StringError::MisplacedSingleLevelWildcard
            }
            // A wildcard in its place, or a non-ASCII byte flagged with the candidates.
            _ => return Ok(()),
        };
        // U+0000 anywhere is reported first, as a check of the whole string would.
        Err(if has_nul(&b[i + 1..]) {
            StringError::Null
        } else {
            misplaced
        })
    };
    let (words, tail) = b.as_chunks::<8>();
    for (k, w) in words.iter().enumerate() {
        let mut flagged = special_bytes(u64::from_le_bytes(*w));
        while flagged != 0 {
            check(k * 8 + flagged.trailing_zeros() as usize / 8)?;
            flagged &= flagged - 1;
        }
    }
    let base = words.len() * 8;
    for (j, &c) in tail.iter().enumerate() {
        if matches!(c, 0 | b'+' | b'#') {
            check(base + j)?;
        }
    }
    Ok(())
}

impl TopicFilter {
    /// Validates `s` as a topic filter.
    pub fn new(s: impl Into<ByteString>) -> Result<Self, StringError> {
        let s = MqttString::new(s)?;
        check_filter(s.as_bytes())?;
        Ok(Self(s))
    }

    /// A topic filter from a static literal.
    ///
    /// # Panics
    /// If the literal is not a valid topic filter.
    pub fn from_static(s: &'static str) -> Self {
        match Self::new(s) {
            Ok(t) => t,
            Err(e) => panic!("invalid static topic filter {s:?}: {e}"),
        }
    }

    #[inline]
    pub(crate) fn from_wire(b: Bytes) -> Result<Self, StringError> {
        check_filter(&b)?;
        let s = ByteString::try_from(b).map_err(|_| StringError::NotUtf8)?;
        Ok(Self(MqttString(s)))
    }

    /// The topic filter as written (including any `$share/ShareName/` prefix).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter as an [`MqttString`].
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.as_bytes().iter().any(|&c| c == b'+' || c == b'#')
    }

    /// For an MQTT 5.0 shared subscription `$share/{ShareName}/{filter}`, the share name and
    /// the filter after it; `None` for a filter that does not start with `$share/`.
    ///
    /// Returns `Some(Err(..))` when the filter starts with `$share/` but breaks
    /// [MQTT-4.8.2-1] or [MQTT-4.8.2-2].
    pub fn shared(&self) -> Option<Result<(&str, &str), StringError>> {
        let s = self.as_str();
        Some(split_shared(s.as_bytes())?.map(|n| (&s[7..7 + n], &s[8 + n..])))
    }

    /// Whether `topic` matches this filter by the rules of section 4.7: `+` matches one
    /// level, `#` matches the parent level and any number of levels below, and a topic
    /// starting with `$` is not matched by a filter starting with a wildcard
    /// ([MQTT-4.7.2-1]). A shared subscription's prefix is not stripped: match its
    /// [`shared`](Self::shared) filter instead.
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches_filter(self.as_str(), topic.as_str())
    }
}

/// For a filter starting with `$share/`, the length of its ShareName, checked: not empty
/// ([MQTT-4.8.2-1]), without `+` or `#`, and followed by `/` and a filter ([MQTT-4.8.2-2]).
/// `None` when the filter does not start with `$share/`. The ShareName is `b[7..7 + n]` and
/// the filter `b[8 + n..]` (both split at ASCII `/`, so still UTF-8 when `b` is).
pub(crate) fn split_shared(b: &[u8]) -> Option<Result<usize, StringError>> {
    let rest = b.strip_prefix(b"$share/")?;
    let Some(n) = rest.iter().position(|&c| c == b'/') else {
        return Some(Err(StringError::InvalidSharedSubscription));
    };
    if n == 0 {
        return Some(Err(StringError::EmptyShareName));
    }
    if rest[..n].iter().any(|&c| c == b'+' || c == b'#') || rest.len() == n + 1 {
        return Some(Err(StringError::InvalidSharedSubscription));
    }
    Some(Ok(n))
}

/// Whether the topic name `topic` matches the topic filter `filter` (both assumed valid), by
/// the rules of section 4.7. See [`TopicFilter::matches`].
pub fn matches_filter(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

macro_rules! string_traits {
    ($t:ident) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl TryFrom<&str> for $t {
            type Error = StringError;
            fn try_from(s: &str) -> Result<Self, StringError> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = StringError;
            fn try_from(s: String) -> Result<Self, StringError> {
                Self::new(s)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl From<$t> for MqttString {
            fn from(t: $t) -> MqttString {
                t.0
            }
        }
    };
}
string_traits!(TopicName);
string_traits!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::{StringError, check_filter, scan};

    /// The rules of a topic filter stated level by level: not empty ([MQTT-4.7.3-1]), no
    /// U+0000 ([MQTT-1.5.4-2]), `#` only as the whole last level ([MQTT-4.7.1-1]), `+` only
    /// as a whole level ([MQTT-4.7.1-2]); a bad level is reported by its first wildcard.
    fn filter_by_levels(b: &[u8]) -> Result<(), StringError> {
        if b.is_empty() {
            return Err(StringError::EmptyTopic);
        }
        if b.contains(&0) {
            return Err(StringError::Null);
        }
        let levels: Vec<&[u8]> = b.split(|&c| c == b'/').collect();
        for (k, level) in levels.iter().enumerate() {
            let ok = match level {
                [b'+'] => true,
                [b'#'] => k == levels.len() - 1,
                _ => !level.iter().any(|&c| c == b'+' || c == b'#'),
            };
            if !ok {
                let first = level.iter().find(|&&c| c == b'+' || c == b'#');
                return Err(if first == Some(&b'#') {
                    StringError::MisplacedMultiLevelWildcard
                } else {
                    StringError::MisplacedSingleLevelWildcard
                });
            }
        }
        Ok(())
    }

    /// The filter check, which looks eight bytes at a time, agrees with the level-by-level
    /// statement of the rules on every string of up to six symbols from `a / + # NUL 0xC3`,
    /// alone and placed across word boundaries ([MQTT-4.7.1-1], [MQTT-4.7.1-2],
    /// [MQTT-1.5.4-2], [MQTT-4.7.3-1]).
    #[test]
    fn filter_check_agrees_with_the_rules_stated_by_level() {
        const SYMBOLS: [u8; 6] = [b'a', b'/', b'+', b'#', 0, 0xC3];
        let mut checked = 0;
        for len in 0..=6u32 {
            for mut code in 0..SYMBOLS.len().pow(len) {
                let mut s = Vec::new();
                for _ in 0..len {
                    s.push(SYMBOLS[code % SYMBOLS.len()]);
                    code /= SYMBOLS.len();
                }
                for b in [
                    s.clone(),
                    [b"abcdefg/".as_slice(), &s].concat(),
                    [&s, b"/x/yz/uvw".as_slice()].concat(),
                    [b"abcde".as_slice(), &s, b"/abcdefgh".as_slice()].concat(),
                ] {
                    assert_eq!(check_filter(&b), filter_by_levels(&b), "{b:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 200_000);
    }

    /// Both ways of scanning (short strings by table, long ones by wide compares) find
    /// U+0000, `+` and `#` next to every byte value, at the start, middle and end
    /// ([MQTT-1.5.4-2], [MQTT-3.3.2-2]).
    #[test]
    fn scan_finds_nul_and_wildcards_in_short_and_long_strings() {
        for len in [1, 2, 31, 32, 33, 70] {
            for filler in 1..=255u8 {
                let plain = vec![filler; len];
                let s = scan(&plain);
                assert_eq!(
                    (s.null, s.plus, s.hash),
                    (false, filler == b'+', filler == b'#')
                );
                for at in [0, len / 2, len - 1] {
                    for special in [0u8, b'+', b'#'] {
                        let mut b = plain.clone();
                        b[at] = special;
                        let s = scan(&b);
                        assert_eq!(s.null, b.contains(&0), "{b:?}");
                        assert_eq!(s.plus, b.contains(&b'+'), "{b:?}");
                        assert_eq!(s.hash, b.contains(&b'#'), "{b:?}");
                    }
                }
            }
        }
    }
}
