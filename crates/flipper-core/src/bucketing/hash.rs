//! The consistent hash: `int(sha1(json.dumps(sorted(checks))).hexdigest(), 16) % 100`, with the
//! hash input written straight into a stack buffer and the SHA-1 compression run on it.

use sha1::{Digest, Sha1};

use super::RANDOMIZER;
use crate::Value;
use crate::checks::Checks;
use crate::json::{self, Output};

/// Whether a consistent-hash bucketer hashes this check: whitelisted (every check when the
/// whitelist is empty), and never `randomizer`.
#[inline]
fn is_hashed(name: &str, whitelist: &[String]) -> bool {
    name != RANDOMIZER && (whitelist.is_empty() || whitelist.iter().any(|k| k == name))
}

/// Most evaluations carry a handful of checks: sort their indices on the stack.
const INLINE_CHECKS: usize = 16;

/// Writes `json.dumps(sorted(filtered.items()))` for the hashed checks, sorted by name (Python
/// sorts `str` by code point, which is UTF-8 byte order). Allocates only beyond
/// [`INLINE_CHECKS`] checks.
#[inline]
fn write_hashed_checks<O: Output + ?Sized>(checks: &Checks, whitelist: &[String], out: &mut O) {
    let entries = checks.entries();
    if entries.len() > INLINE_CHECKS {
        let mut picked: Vec<&(String, Value)> = entries
            .iter()
            .filter(|(name, _)| is_hashed(name, whitelist))
            .collect();
        picked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        return write_hash_input(picked.into_iter(), out);
    }
    let mut idx = [0u8; INLINE_CHECKS];
    let mut n = 0;
    for (i, (name, _)) in entries.iter().enumerate() {
        if is_hashed(name, whitelist) {
            // Insertion sort: n is tiny.
            let mut j = n;
            while j > 0 && entries[usize::from(idx[j - 1])].0 > *name {
                idx[j] = idx[j - 1];
                j -= 1;
            }
            idx[j] = i as u8;
            n += 1;
        }
    }
    write_hash_input(idx[..n].iter().map(|&i| &entries[usize::from(i)]), out);
}

/// Writes `json.dumps(picked)` for the picked `(name, value)` pairs, in order.
#[inline]
fn write_hash_input<'a, O: Output + ?Sized>(
    picked: impl Iterator<Item = &'a (String, Value)>,
    out: &mut O,
) {
    out.push_str("[");
    for (i, (name, value)) in picked.enumerate() {
        out.push_str(if i == 0 { "[" } else { ", [" });
        json::write_str(name, out);
        out.push_str(", ");
        json::write_value(value, out);
        out.push_str("]");
    }
    out.push_str("]");
}

/// The exact bytes flipper-client's consistent-hash bucketer feeds to SHA-1 for these checks.
///
/// ```
/// use flipper_core::{Checks, bucketing::consistent_hash_input};
/// let checks = Checks::new().with("user_id", 1).with("org_id", 2);
/// assert_eq!(consistent_hash_input(&checks, &[]), br#"[["org_id", 2], ["user_id", 1]]"#);
/// ```
pub fn consistent_hash_input(checks: &Checks, key_whitelist: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    write_hashed_checks(checks, key_whitelist, &mut out);
    out
}

/// The bucket (0..=99) of these checks: `int(sha1(hash_input).hexdigest(), 16) % 100`.
pub fn consistent_hash_bucket(checks: &Checks, key_whitelist: &[String]) -> u8 {
    let mut sink = HashSink::new();
    write_hashed_checks(checks, key_whitelist, &mut sink);
    digest_mod_100(&sink.finish())
}

/// The 160-bit big-endian digest `a·2^128 + b·2^64 + c`, mod 100, with three independent
/// 64-bit remainders instead of 20 dependent byte steps (2^64 ≡ 16 and 2^128 ≡ 56 mod 100).
#[inline]
fn digest_mod_100(d: &[u8; 20]) -> u8 {
    let [a0, a1, a2, a3, rest @ ..] = *d;
    let a = u64::from(u32::from_be_bytes([a0, a1, a2, a3]));
    let (b, c) = rest.split_at(8);
    let b = u64::from_be_bytes(b.try_into().unwrap_or_default());
    let c = u64::from_be_bytes(c.try_into().unwrap_or_default());
    (((a % 100) * 56 + (b % 100) * 16 + c % 100) % 100) as u8
}

/// Buffers small writes on the stack and feeds SHA-1 in large chunks; short inputs (the usual
/// case) are hashed in one call.
struct HashSink {
    hasher: Option<Sha1>,
    buf: [u8; 128],
    len: usize,
}

impl HashSink {
    fn new() -> Self {
        Self {
            hasher: None,
            buf: [0; 128],
            len: 0,
        }
    }

    fn finish(&mut self) -> [u8; 20] {
        if let Some(mut hasher) = self.hasher.take() {
            hasher.update(&self.buf[..self.len]);
            return hasher.finalize().into();
        }
        let len = self.len;
        if len > self.buf.len() - 9 {
            return Sha1::digest(&self.buf[..len]).into();
        }
        // Short input (the usual case): pad in place (0x80, zeros, the bit length as a 64-bit
        // big-endian number) and run the compression function directly.
        let end = if len <= 55 { 64 } else { 128 };
        self.buf[len] = 0x80;
        self.buf[len + 1..end - 8].fill(0);
        self.buf[end - 8..end].copy_from_slice(&(len as u64 * 8).to_be_bytes());
        let mut state = SHA1_INIT;
        for block in self.buf[..end].chunks_exact(64) {
            let block = sha1::digest::generic_array::GenericArray::from_slice(block);
            sha1::compress(&mut state, std::slice::from_ref(block));
        }
        let mut digest = [0u8; 20];
        for (out, word) in digest.chunks_exact_mut(4).zip(state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }
}

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

impl Output for HashSink {
    #[inline]
    fn push_quoted(&mut self, plain: &str) {
        let b = plain.as_bytes();
        let end = self.len + b.len() + 2;
        if end > self.buf.len() {
            self.push_str("\"");
            self.push_str(plain);
            self.push_str("\"");
            return;
        }
        self.buf[self.len] = b'"';
        copy_small(&mut self.buf[self.len + 1..end - 1], b);
        self.buf[end - 1] = b'"';
        self.len = end;
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        let b = s.as_bytes();
        if self.len + b.len() > self.buf.len() {
            let hasher = self.hasher.get_or_insert_with(Sha1::new);
            hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if b.len() > self.buf.len() {
                hasher.update(b);
                return;
            }
        }
        copy_small(&mut self.buf[self.len..self.len + b.len()], b);
        self.len += b.len();
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short pieces JSON is made of:
/// fixed-size (overlapping) copies, which compile to a few moves.
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_small_copies_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = [0u8; 40];
            copy_small(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "length {n}");
            assert!(
                dst[n..].iter().all(|&b| b == 0),
                "length {n} wrote past the end"
            );
        }
    }

    #[test]
    fn hash_sink_matches_sha1_at_every_length() {
        for len in 0..400 {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut sink = HashSink::new();
            // Feed in uneven pieces to cross the buffer boundary in different places.
            for piece in text.as_bytes().chunks(7) {
                sink.push_str(std::str::from_utf8(piece).unwrap());
            }
            let want: [u8; 20] = Sha1::digest(text.as_bytes()).into();
            assert_eq!(sink.finish(), want, "length {len}");
        }
    }

    #[test]
    fn digest_mod_100_matches_byte_folding() {
        let mut d = [0u8; 20];
        for seed in 0..2000u32 {
            for (i, b) in d.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).rotate_left(i as u32 * 7) >> 3) as u8;
            }
            let folded = d
                .iter()
                .fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % 100);
            assert_eq!(u32::from(digest_mod_100(&d)), folded);
        }
        assert_eq!(digest_mod_100(&[0xff; 20]), 75); // (2^160 - 1) mod 100
    }

    #[test]
    fn spec_table_for_user_ids() {
        // flipper-spec §4.4: bucket of user_id 1..=20 with whitelist ["user_id"].
        let expected = [
            48, 94, 79, 59, 15, 34, 7, 29, 81, 72, 33, 29, 35, 73, 39, 22, 40, 76, 24, 16,
        ];
        let wl = vec!["user_id".to_owned()];
        for (uid, want) in (1..=20).zip(expected) {
            let checks = Checks::new().with("user_id", uid);
            assert_eq!(consistent_hash_bucket(&checks, &wl), want, "user_id={uid}");
        }
    }

    #[test]
    fn empty_checks_score_like_upstream_tests() {
        assert_eq!(consistent_hash_bucket(&Checks::new(), &[]), 32);
        let c = Checks::new().with("foo", "bar");
        assert_eq!(consistent_hash_bucket(&c, &[]), 79);
        let c = Checks::new()
            .with("foo", "bar")
            .with("herp", 99)
            .with("derp", false);
        assert_eq!(consistent_hash_bucket(&c, &[]), 67);
    }

    #[test]
    fn names_sharing_a_long_prefix_are_told_apart() {
        // Same length, same first 15 bytes.
        let (a, b) = ("a_very_long_check_name_1", "a_very_long_check_name_2");
        let c = Checks::new().with(b, 2).with(a, 1).with("randomizer", 3);
        assert_eq!(
            consistent_hash_input(&c, &[a.to_owned()]),
            br#"[["a_very_long_check_name_1", 1]]"#
        );
        assert_eq!(
            consistent_hash_input(&c, &[b.to_owned(), "randomizer".to_owned()]),
            br#"[["a_very_long_check_name_2", 2]]"#
        );
        // A long whitelist.
        let mut long: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        long.push(a.to_owned());
        assert_eq!(
            consistent_hash_input(&c, &long),
            br#"[["a_very_long_check_name_1", 1]]"#
        );
    }

    #[test]
    fn randomizer_is_never_hashed() {
        let c = Checks::new()
            .with("org", "acme")
            .with("user_id", 42)
            .with("randomizer", 5);
        assert_eq!(
            consistent_hash_input(&c, &[]),
            br#"[["org", "acme"], ["user_id", 42]]"#
        );
    }
}
