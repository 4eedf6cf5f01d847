//! Finding a flag of a set by name: each name's [`NameTag`], its hash, and [`NameIndex`], the
//! open-addressing table from hashes to positions in the set.
//!
//! A lookup by name is the hot path of `LiveFlags::is_enabled(name, ..)`, so it is kept to a
//! few instructions: the tag is read from the name with at most two loads, hashed with one
//! multiplication, and the table holds bare positions, at most half full, so that the first
//! slot probed nearly always holds the flag (or is empty).

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

/// The hash of a flag name in the index. A name of up to [`TAG_EXACT`] bytes is hashed from
/// its tag, which the lookup computes anyway ([`hash_short`]). A longer name is hashed whole
/// with foldhash, as many long names share a tag (the same first and last eight bytes and
/// length: `checkout_v1_enabled`, `checkout_v2_enabled`). Fixed seeds: names come from the
/// store (written by administrators), not from requests, so a keyed hash buys nothing here.
#[inline]
pub(crate) fn hash_name(name: &str, tag: NameTag) -> u64 {
    if name.len() <= TAG_EXACT {
        hash_short(tag)
    } else {
        foldhash::fast::FixedState::with_seed(0x5eed_f1a9_5e7a_11f3).hash_one(name)
    }
}

/// [`hash_name`] of a name of up to [`TAG_EXACT`] bytes: its tag's words mixed and multiplied
/// once. [`NameIndex`] uses the top bits of the product, which every bit of the tag reaches.
#[inline(always)]
pub(crate) fn hash_short(tag: NameTag) -> u64 {
    let mixed = tag.head ^ tag.tail.rotate_left(29) ^ u64::from(tag.len).rotate_right(8);
    mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Positions of a set's flags by name hash: open addressing with linear probing, from the
/// slot given by the hash's top bits. A slot holds a position plus one, or 0 when empty; the
/// table has at least twice as many slots as flags, so probes are short. Lookups confirm each
/// candidate against the flag itself, so two names with one hash cost a probe, never a wrong
/// answer.
#[derive(Clone)]
pub(crate) struct NameIndex {
    slots: Box<[u32]>,
    /// 64 minus log2 of the number of slots: a hash's slot is `hash >> shift`.
    shift: u32,
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
        let len = hashes.len().saturating_mul(2).next_power_of_two().max(2);
        let shift = 64 - len.trailing_zeros();
        let mut slots = vec![0u32; len].into_boxed_slice();
        let mask = len - 1;
        for (position, hash) in hashes.enumerate() {
            let Ok(stored) = u32::try_from(position + 1) else {
                break;
            };
            let mut slot = slot_of(hash, shift);
            // Less than half full, so an empty slot is near.
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = stored;
        }
        Self { slots, shift }
    }

    /// The first `found(position)` that is `Some`, over the positions of flags with this hash.
    #[inline(always)]
    pub(crate) fn find<T>(&self, hash: u64, found: impl Fn(usize) -> Option<T>) -> Option<T> {
        let mask = self.slots.len() - 1;
        let mut slot = slot_of(hash, self.shift);
        loop {
            let stored = *self.slots.get(slot)?;
            if let Some(hit) = found((stored as usize).checked_sub(1)?) {
                return Some(hit);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Bytes held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.slots.len() * size_of::<u32>()
    }
}

#[inline(always)]
fn slot_of(hash: u64, shift: u32) -> usize {
    // `shift` is at least 1 (there are at most 2^63 slots); the result fits a slot number.
    (hash >> shift) as usize
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
        // 2^12: a hash that ignored some byte would put them all in one.
        let shift = 64 - 12;
        for len in 1..=TAG_EXACT {
            let base = vec![b'a'; len];
            let mut seen = std::collections::HashSet::new();
            for at in 0..len {
                for c in b'a'..=b'z' {
                    let mut name = base.clone();
                    name[at] = c;
                    let name = String::from_utf8(name).unwrap();
                    seen.insert(slot_of(tagged(&name), shift));
                }
            }
            let distinct = 1 + 25 * len;
            assert!(
                seen.len() * 10 >= distinct * 9,
                "length {len}: {} slots for {distinct} names",
                seen.len()
            );
        }
    }
}
