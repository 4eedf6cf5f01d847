//! Finding a flag of a set by name: each name's [`NameTag`], its hash, and [`NameIndex`], the
//! open-addressing table from hashes to positions in the set.
//!
//! A lookup by name is the hot path of `LiveFlags::is_enabled(name, ..)`, so it is kept to a
//! few instructions: the tag is read from the name with at most two loads, mixed with the
//! table's seed and multiplied once, and the table holds bare positions, at most half full.
//! The seed is chosen when the table is built, among a few, for the fewest flags that are not
//! in their first slot: in a set of a few dozen flags usually none, so a lookup probes once.

use std::hash::BuildHasher;

/// Names this short are fully determined by their [`NameTag`].
pub(crate) const TAG_EXACT: usize = 16;

/// A name's length and its first and last bytes, held in the entry itself: comparing tags costs
/// no pointer chase, and for names of up to [`TAG_EXACT`] bytes equal tags mean equal names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameTag {
    pub(crate) head: u64,
    pub(crate) tail: u64,
    /// The length, saturated (a name this long is compared in full anyway).
    pub(crate) len: u32,
}

impl NameTag {
    #[inline(always)]
    pub(crate) fn of(name: &str) -> Self {
        let b = name.as_bytes();
        let n = b.len();
        let word = |at: usize| -> u64 {
            b.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let half = |at: usize| -> u64 {
            b.get(at..at + 4)
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
        };
        let byte = |at: usize| -> u64 { b.get(at).copied().map_or(0, u64::from) };
        // Overlapping loads that together cover every byte of a name of up to 16 bytes.
        let (head, tail) = match n {
            0 => (0, 0),
            1..=3 => (byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16, 0),
            4..=7 => (half(0) | half(n - 4) << 32, 0),
            _ => (word(0), word(n - 8)),
        };
        Self {
            head,
            tail,
            len: u32::try_from(n).unwrap_or(u32::MAX),
        }
    }
}

/// The hash of a flag name in the index, before the table's seed and multiplication
/// ([`NameIndex`]). A name of up to [`TAG_EXACT`] bytes is hashed from its tag, which the
/// lookup computes anyway ([`hash_short`]). A longer name is hashed whole with foldhash, as
/// many long names share a tag (the same first and last eight bytes and length:
/// `checkout_v1_enabled`, `checkout_v2_enabled`). Fixed seeds: names come from the store
/// (written by administrators), not from requests, so a keyed hash buys nothing here.
#[inline]
pub(crate) fn hash_name(name: &str, tag: NameTag) -> u64 {
    if name.len() <= TAG_EXACT {
        hash_short(tag)
    } else {
        foldhash::fast::FixedState::with_seed(0x5eed_f1a9_5e7a_11f3).hash_one(name)
    }
}

/// [`hash_name`] of a name of up to [`TAG_EXACT`] bytes: its tag's words mixed into one, which
/// [`NameIndex`] multiplies after the seed, so that every bit of the tag reaches the top bits
/// it takes the slot from.
#[inline(always)]
pub(crate) fn hash_short(tag: NameTag) -> u64 {
    tag.head ^ tag.tail.rotate_left(29) ^ u64::from(tag.len).rotate_right(8)
}

/// The odd multiplier of [`NameIndex`]'s slots (2^64 over the golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// How many seeds a table of at most [`SEEDED_MAX`] flags tries before it keeps the best.
const SEED_TRIES: u64 = 8;

/// The most flags for which more than one seed is tried: for more, about a fifth of them share
/// a first slot whatever the seed, which would change little but the cost of each change.
const SEEDED_MAX: usize = 256;

/// Positions of a set's flags by name hash: open addressing with linear probing, from the
/// slot given by the top bits of `(hash ^ seed) * MULTIPLIER`. A slot holds a position plus
/// one, or 0 when empty; the table has at least twice as many slots as flags, so probes are
/// short. Lookups confirm each candidate against the flag itself, so two names with one slot
/// cost a probe, never a wrong answer.
///
/// The seed is the first of a few that puts every flag in its first slot, or else the one that
/// leaves the fewest elsewhere: a flag in another slot costs a probe (a load of the flag and
/// its comparison) at every lookup.
#[derive(Clone)]
pub(crate) struct NameIndex {
    slots: Box<[u32]>,
    /// 64 minus log2 of the number of slots: a hash's slot is
    /// `(hash ^ seed).wrapping_mul(MULTIPLIER) >> shift`.
    shift: u32,
    seed: u64,
}

impl Default for NameIndex {
    fn default() -> Self {
        Self::new(std::iter::empty())
    }
}

impl NameIndex {
    /// The index of flags whose hashes, in position order, are `hashes` (at most `u32::MAX - 1`
    /// of them; the rest are left out).
    pub(crate) fn new(hashes: impl ExactSizeIterator<Item = u64>) -> Self {
        let max = usize::try_from(u32::MAX - 1).unwrap_or(usize::MAX);
        let hashes: Vec<u64> = hashes.take(max).collect();
        let len = hashes.len().saturating_mul(2).next_power_of_two().max(2);
        let shift = 64 - len.trailing_zeros();
        let tries = if hashes.len() <= SEEDED_MAX {
            SEED_TRIES
        } else {
            1
        };
        // Seeds far apart in every bit, from 0; each kept only if it displaces fewer flags.
        let mut best = Self::build(&hashes, len, shift, 0);
        for k in 1..tries {
            if best.1 == 0 {
                break;
            }
            let next = Self::build(&hashes, len, shift, k.wrapping_mul(MULTIPLIER));
            if next.1 < best.1 {
                best = next;
            }
        }
        best.0
    }

    /// The table of `len` slots with `seed`, and how many flags are not in their first slot.
    fn build(hashes: &[u64], len: usize, shift: u32, seed: u64) -> (Self, usize) {
        let mut index = Self {
            slots: vec![0u32; len].into_boxed_slice(),
            shift,
            seed,
        };
        let mask = len - 1;
        let mut displaced = 0;
        for (position, &hash) in hashes.iter().enumerate() {
            // `hashes` holds fewer than `u32::MAX` (see `new`).
            let stored = u32::try_from(position + 1).unwrap_or(u32::MAX);
            let mut slot = index.slot_of(hash);
            if index.slots[slot] != 0 {
                displaced += 1;
            }
            // Less than half full, so an empty slot is near.
            while index.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            index.slots[slot] = stored;
        }
        (index, displaced)
    }

    /// The first `found(position)` that is `Some`, over the positions of flags with this hash.
    #[inline(always)]
    pub(crate) fn find<T>(&self, hash: u64, found: impl Fn(usize) -> Option<T>) -> Option<T> {
        let mask = self.slots.len() - 1;
        let mut slot = self.slot_of(hash);
        loop {
            let stored = *self.slots.get(slot)?;
            if let Some(hit) = found((stored as usize).checked_sub(1)?) {
                return Some(hit);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The first slot of a hash.
    #[inline(always)]
    fn slot_of(&self, hash: u64) -> usize {
        // `shift` is at least 1 (there are at most 2^63 slots); the result fits a slot number.
        ((hash ^ self.seed).wrapping_mul(MULTIPLIER) >> self.shift) as usize
    }

    /// Bytes held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.slots.len() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(name: &str) -> u64 {
        hash_name(name, NameTag::of(name))
    }

    #[test]
    fn finds_every_name_and_no_other() {
        for n in [0usize, 1, 2, 3, 7, 8, 100, 1000, 4097] {
            let names: Vec<String> = (0..n).map(|i| format!("flag_{i}")).collect();
            let index = NameIndex::new(names.iter().map(|s| tagged(s)));
            assert!(index.bytes() >= 2 * n * size_of::<u32>());
            for (i, name) in names.iter().enumerate() {
                let found = index.find(tagged(name), |p| (names[p] == *name).then_some(p));
                assert_eq!(found, Some(i), "{name}");
            }
            for missing in ["", "flag_", "flag_-1", "other"] {
                assert_eq!(
                    index.find(tagged(missing), |p| (names[p] == missing).then_some(p)),
                    None
                );
            }
        }
    }

    #[test]
    fn colliding_hashes_probe_on() {
        // Every flag with one hash: all in a row, each found by its own check.
        let index = NameIndex::new(std::iter::repeat_n(42u64, 10));
        for i in 0..10 {
            assert_eq!(index.find(42, |p| (p == i).then_some(p)), Some(i));
        }
        assert_eq!(index.find(42, |_| None::<usize>), None);
    }

    #[test]
    fn short_hashes_spread_over_slots() {
        // Names that differ in one byte anywhere land in many different slots of a table of
        // 2^12, with any seed: a hash that ignored some byte would put them all in one.
        for seed in [0, MULTIPLIER, 5u64.wrapping_mul(MULTIPLIER)] {
            let table = NameIndex {
                slots: Box::new([]),
                shift: 64 - 12,
                seed,
            };
            for len in 1..=TAG_EXACT {
                let base = vec![b'a'; len];
                let mut seen = std::collections::HashSet::new();
                for at in 0..len {
                    for c in b'a'..=b'z' {
                        let mut name = base.clone();
                        name[at] = c;
                        let name = String::from_utf8(name).unwrap();
                        seen.insert(table.slot_of(tagged(&name)));
                    }
                }
                let distinct = 1 + 25 * len;
                assert!(
                    seen.len() * 10 >= distinct * 9,
                    "seed {seed:#x}, length {len}: {} slots for {distinct} names",
                    seen.len()
                );
            }
        }
    }

    /// How many of `hashes` are not in their first slot of `index`.
    fn displaced(index: &NameIndex, hashes: &[u64]) -> usize {
        hashes
            .iter()
            .enumerate()
            .filter(|&(p, &h)| index.slots[index.slot_of(h)] as usize != p + 1)
            .count()
    }

    #[test]
    fn the_seed_kept_leaves_the_fewest_flags_out_of_their_first_slot() {
        for n in [2usize, 3, 5, 8, 13, 40, 200, 1000] {
            for set in 0..20 {
                let hashes: Vec<u64> = (0..n).map(|i| tagged(&format!("f{set}_{i}"))).collect();
                let index = NameIndex::new(hashes.iter().copied());
                let len = index.slots.len();
                let shift = index.shift;
                let tries = if n <= SEEDED_MAX { SEED_TRIES } else { 1 };
                let tried: Vec<usize> = (0..tries)
                    .map(|k| NameIndex::build(&hashes, len, shift, k.wrapping_mul(MULTIPLIER)).1)
                    .collect();
                let kept = displaced(&index, &hashes);
                // The first seed without a displaced flag, or the fewest of all.
                let expected = tried
                    .iter()
                    .position(|&d| d == 0)
                    .map_or_else(|| *tried.iter().min().unwrap(), |_| 0);
                assert_eq!(kept, expected, "{n} flags, set {set}: tried {tried:?}");
            }
        }
    }

    #[test]
    fn a_few_names_that_share_a_first_slot_at_seed_0_get_a_seed_that_parts_them() {
        // `rollout_half` and `static` share their first slot of 8 at seed 0.
        let names = ["rollout_half", "static", "two_conditions"];
        let hashes: Vec<u64> = names.iter().map(|n| tagged(n)).collect();
        assert_eq!(NameIndex::build(&hashes, 8, 61, 0).1, 1);
        let index = NameIndex::new(hashes.iter().copied());
        assert_ne!(index.seed, 0);
        assert_eq!(displaced(&index, &hashes), 0);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                index.find(hashes[i], |p| (names[p] == *name).then_some(p)),
                Some(i)
            );
        }
    }
}
