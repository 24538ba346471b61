//! Topic names that are plain ASCII (most of them), turned into strings without a second
//! pass: the codec's other place with `unsafe` code.
//!
//! A topic name from the wire must be checked for U+0000 and wildcards, and be valid
//! UTF-8. One word-at-a-time pass finds the common case, ASCII without NUL, `+` or `#`,
//! and that pass already proves the bytes are UTF-8. The only safe way from bytes to a
//! `&str` (`core::str::from_utf8`) validates them all over again, which costs a small
//! PUBLISH more than the rest of its decoding does (the README's "ASCII topics" section
//! measures it); `from_utf8_unchecked` does not, and it is `unsafe`. The check and the
//! conversion live together here, so that nothing outside this module can hand the
//! conversion bytes that were not checked.
#![allow(unsafe_code)]

use bytes::Bytes;
use bytestring::ByteString;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = LO << 7;

/// The high bit of every byte of `w` that is not ASCII or is NUL, `+` or `#`: zero for a
/// word of ordinary topic characters.
#[inline]
pub(crate) fn special_bytes(w: u64) -> u64 {
    special_unmasked(w) & HI
}

/// [`special_bytes`] before its other bits are cleared: a word-at-a-time pass ORs these
/// together and masks once at the end.
#[inline(always)]
fn special_unmasked(w: u64) -> u64 {
    // With the high bits cleared, adding 0x7F to a byte carries into its high bit exactly
    // when the byte is not 0, and never into the next byte. `+` (0x2B) and `#` (0x23)
    // differ only in bit 3, and setting it turns exactly these two into 0x2B: one XOR and
    // one test of zero find both.
    let v = w & !HI;
    let k = 0x7F * LO;
    let ordinary = (v + k) & (((v | (0x08 * LO)) ^ (u64::from(b'+') * LO)) + k);
    !ordinary | w
}

/// Non-zero if any of 16 bytes is not ASCII or is NUL, `+` or `#`: byte by byte, without
/// an early exit, which the compiler turns into a few vector instructions.
#[inline(always)]
fn special_block(b: &[u8; 16]) -> u8 {
    b.iter().fold(0, |s, &c| {
        // `c - 1` wraps NUL to 0xFF, so one comparison finds NUL and every byte from 0x80.
        s | u8::from(c.wrapping_sub(1) >= 0x7F) | u8::from(c | 0x08 == b'+')
    })
}

/// Whether `b` is ASCII without NUL, `+` or `#` (most topic names), found 16 bytes at a
/// time (the last block overlapping the one before), or for shorter names in one or two
/// words. `false` decides nothing: the full checks then say what is wrong, if anything.
#[inline(always)]
fn is_plain_ascii(b: &[u8]) -> bool {
    let n = b.len();
    if let Some(last) = b.last_chunk::<16>() {
        let (blocks, _) = b.as_chunks::<16>();
        return blocks
            .iter()
            .fold(special_block(last), |s, w| s | special_block(w))
            == 0;
    }
    let special = if let Some(last) = b.last_chunk::<8>() {
        let (words, _) = b.as_chunks::<8>();
        words
            .iter()
            .fold(special_unmasked(u64::from_le_bytes(*last)), |s, w| {
                s | special_unmasked(u64::from_le_bytes(*w))
            })
    } else if let (Some(first), Some(last)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        // 4 to 7 bytes: two overlapping halves.
        special_unmasked(
            u64::from(u32::from_le_bytes(*first)) | (u64::from(u32::from_le_bytes(*last)) << 32),
        )
    } else if n > 0 {
        // 1 to 3 bytes: the first, middle and last cover them all.
        let w = u32::from_le_bytes([b[0], b[n / 2], b[n - 1], b[0]]);
        special_unmasked(u64::from(w) | (u64::from(w) << 32))
    } else {
        0
    };
    special & HI == 0
}

/// `b` as a string if it is ASCII without NUL, `+` or `#`; `None` decides nothing.
#[inline]
pub(crate) fn plain_ascii_str(b: &[u8]) -> Option<&str> {
    if !is_plain_ascii(b) {
        return None;
    }
    // SAFETY: `is_plain_ascii` found every byte below 0x80, and ASCII is UTF-8.
    Some(unsafe { core::str::from_utf8_unchecked(b) })
}

/// `b` as a [`ByteString`] if it is ASCII without NUL, `+` or `#`; otherwise `b` back.
#[inline]
pub(crate) fn plain_ascii_byte_string(b: Bytes) -> Result<ByteString, Bytes> {
    if !is_plain_ascii(&b) {
        return Err(b);
    }
    // SAFETY: `is_plain_ascii` found every byte below 0x80, and ASCII is UTF-8.
    Ok(unsafe { ByteString::from_bytes_unchecked(b) })
}

#[cfg(test)]
mod tests {
    use super::{is_plain_ascii, plain_ascii_str};

    /// The check accepts exactly the ASCII strings without U+0000, `+` and `#`, whatever
    /// the length (its 1-3, 4-7, 8-15 and 16+ byte branches) and wherever the offending
    /// byte is ([MQTT-1.5.4-2], [MQTT-3.3.2-2]). A string it accepts is handed out without
    /// UTF-8 validation, so every byte value is tried at every place.
    #[test]
    fn plain_ascii_check_rejects_nul_wildcards_and_non_ascii_at_every_position() {
        let plain = |b: &[u8]| {
            b.iter()
                .all(|&c| c.is_ascii() && !matches!(c, 0 | b'+' | b'#'))
        };
        for len in 0..=50 {
            for filler in [b'a', b'/', b'$', 0x7F, 0x01, b'*', b'"', b'+' - 1, b'#' + 1] {
                let base = vec![filler; len];
                assert!(is_plain_ascii(&base), "{base:?}");
                assert_eq!(plain_ascii_str(&base).map(str::as_bytes), Some(&base[..]));
                for at in 0..len {
                    for special in 0..=255u8 {
                        let mut b = base.clone();
                        b[at] = special;
                        assert_eq!(is_plain_ascii(&b), plain(&b), "{b:?}");
                        assert_eq!(plain_ascii_str(&b).is_some(), plain(&b), "{b:?}");
                    }
                }
            }
        }
    }
}
