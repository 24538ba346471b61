//! The hash the tree's tables use: a folded 64x64->128-bit multiply, keyed by a random seed
//! drawn once per process.
//!
//! Topic levels are short strings a peer chooses, so the tables need a hash that is both fast
//! on a few bytes and keyed, so that nobody can precompute a set of colliding levels. The
//! broker's tables of connections, sessions and client identifiers use it too: they are
//! looked up several times per delivered message.

use core::hash::{BuildHasher, Hasher};

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// The process-wide key, drawn from the standard library's random source on first use.
#[cfg(feature = "std")]
pub(crate) fn seed() -> u64 {
    use std::collections::hash_map::RandomState;
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| RandomState::new().hash_one(0x6d71_7474_u64))
}

/// Without std there is no random source to draw the key from: it is fixed, so a peer that
/// knows it could choose topic levels that collide and slow the broker's tables down. A
/// broker for untrusted peers should be built with std.
#[cfg(not(feature = "std"))]
pub(crate) fn seed() -> u64 {
    0x6d71_7474_5f6b_6579
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[inline(always)]
fn read_u32(b: &[u8]) -> u64 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u64::from(u32::from_le_bytes(a))
}

/// The hash of one topic level under `seed` (the value of [`seed`]).
#[inline]
pub(crate) fn hash_level(seed: u64, level: &[u8]) -> u64 {
    let mut h = LevelHasher {
        state: seed,
        key: seed ^ P2,
    };
    h.write(level);
    h.state
}

/// Builds [`LevelHasher`]s keyed with the process-wide seed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildLevelHasher;

impl BuildHasher for BuildLevelHasher {
    type Hasher = LevelHasher;
    #[inline]
    fn build_hasher(&self) -> LevelHasher {
        let s = seed();
        LevelHasher {
            state: s,
            key: s ^ P2,
        }
    }
}

/// A fast keyed hasher for short byte strings and integers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelHasher {
    state: u64,
    key: u64,
}

impl LevelHasher {
    #[inline(always)]
    fn mix(&mut self, a: u64, b: u64) {
        self.state = fold_mul(a ^ self.state ^ P0, b ^ self.key ^ P1);
    }
}

impl Hasher for LevelHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let mut rest = bytes;
        while rest.len() > 16 {
            self.mix(read_u64(rest), read_u64(&rest[8..]));
            rest = &rest[16..];
        }
        let n = rest.len();
        let (a, b) = if n >= 8 {
            (read_u64(rest), read_u64(&rest[n - 8..]))
        } else if n >= 4 {
            (read_u32(rest), read_u32(&rest[n - 4..]))
        } else if n > 0 {
            let x =
                (u64::from(rest[0]) << 16) | (u64::from(rest[n / 2]) << 8) | u64::from(rest[n - 1]);
            (x, 0)
        } else {
            (0, 0)
        };
        self.mix(a, b ^ (len as u64));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i), 0);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i), 0);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i), 0);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i, 0);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64, 0);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: &[u8]) -> u64 {
        hash_level(seed(), b)
    }

    #[test]
    fn equal_inputs_hash_equal_and_near_inputs_differ() {
        assert_eq!(h(b"device"), h(b"device"));
        let inputs: [&[u8]; 12] = [
            b"",
            b"a",
            b"b",
            b"ab",
            b"ba",
            b"abc",
            b"abcd",
            b"abce",
            b"abcdefgh",
            b"abcdefgi",
            b"0123456789abcdefX",
            b"0123456789abcdefY",
        ];
        let hashes: std::collections::BTreeSet<u64> = inputs.iter().map(|b| h(b)).collect();
        assert_eq!(hashes.len(), inputs.len());
    }

    #[test]
    fn zero_padding_is_not_ignored() {
        // Same bytes but different length must not collide.
        assert_ne!(h(b"a"), h(b"a\0"));
        assert_ne!(h(b""), h(b"\0"));
    }
}
