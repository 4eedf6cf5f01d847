//! The consistent hash: `int(sha1(json.dumps(sorted(checks))).hexdigest(), 16) % 100`, with the
//! hash input written straight into SHA-1's block (a stack buffer, or for a prepared one-name
//! hasher, words composed in registers) and the SHA-1 compression run on it.

use sha1::{Digest, Sha1};

use super::RANDOMIZER;
use super::words::{self, Tail, Words, words_of};
use crate::Value;
use crate::checks::{Checks, Var, name_key, same_bytes};
use crate::json::{self, Output};

/// Whether a consistent-hash bucketer hashes this check: whitelisted (every check when the
/// whitelist is empty), and never `randomizer`.
#[inline]
fn is_hashed(name: &str, whitelist: &[String]) -> bool {
    name != RANDOMIZER
        && (whitelist.is_empty()
            || whitelist
                .iter()
                .any(|k| same_bytes(k.as_bytes(), name.as_bytes())))
}

/// Most evaluations carry a handful of checks: sort their indices on the stack.
const INLINE_CHECKS: usize = 16;

/// The hashed checks of one evaluation, sorted by name (Python sorts `str` by code point,
/// which is UTF-8 byte order), as indices into the checks: on the stack for up to
/// [`INLINE_CHECKS`] checks.
struct Picked<'c> {
    entries: &'c [Var],
    inline: [u8; INLINE_CHECKS],
    inline_len: usize,
    /// Used instead of `inline` when there are more checks.
    heap: Vec<usize>,
}

impl<'c> Picked<'c> {
    #[inline]
    fn new(checks: &'c Checks, whitelist: &[String]) -> Self {
        let entries = checks.vars();
        let mut picked = Self {
            entries,
            inline: [0; INLINE_CHECKS],
            inline_len: 0,
            heap: Vec::new(),
        };
        if entries.len() > INLINE_CHECKS {
            picked.heap = (0..entries.len())
                .filter(|&i| is_hashed(&entries[i].name, whitelist))
                .collect();
            picked
                .heap
                .sort_unstable_by(|&a, &b| entries[a].name.cmp(&entries[b].name));
            return picked;
        }
        let idx = &mut picked.inline;
        let mut n = 0;
        for (i, Var { name, .. }) in entries.iter().enumerate() {
            if is_hashed(name, whitelist) {
                // Insertion sort: n is tiny.
                let mut j = n;
                while j > 0 && entries[usize::from(idx[j - 1])].name > *name {
                    idx[j] = idx[j - 1];
                    j -= 1;
                }
                idx[j] = i as u8;
                n += 1;
            }
        }
        picked.inline_len = n;
        picked
    }

    /// The picked variables, in order.
    #[inline]
    fn iter(&self) -> impl Iterator<Item = &'c Var> + '_ {
        let entries = self.entries;
        self.inline[..self.inline_len]
            .iter()
            .map(|&i| usize::from(i))
            .chain(self.heap.iter().copied())
            .map(move |i| &entries[i])
    }
}

/// Writes `json.dumps(picked)` for the picked variables (`[name, value]` each), in order.
fn write_hash_input<'a, O: Output + ?Sized>(picked: impl Iterator<Item = &'a Var>, out: &mut O) {
    out.push_str("[");
    for (i, Var { name, value, .. }) in picked.enumerate() {
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
    write_hash_input(Picked::new(checks, key_whitelist).iter(), &mut out);
    out
}

/// The bucket (0..=99) of these checks: `int(sha1(hash_input).hexdigest(), 16) % 100`.
pub fn consistent_hash_bucket(checks: &Checks, key_whitelist: &[String]) -> u8 {
    // One whitelisted name (the usual bucketer): at most one check is hashed, nothing to sort.
    if let [_] = key_whitelist {
        let picked = checks
            .vars()
            .iter()
            .find(|v| is_hashed(&v.name, key_whitelist));
        let mut block = Block::new();
        if block.write(picked.into_iter()).is_some() {
            return digest_mod_100(&block.digest());
        }
    }
    let picked = Picked::new(checks, key_whitelist);
    let mut block = Block::new();
    let digest = match block.write(picked.iter()) {
        Some(()) => block.digest(),
        None => {
            let mut sink = HashSink::new();
            write_hash_input(picked.iter(), &mut sink);
            sink.finish()
        }
    };
    digest_mod_100(&digest)
}

/// The consistent hash of a bucketer that hashes one check (a `key_whitelist` of one name, the
/// usual bucketer), prepared once for many evaluations: the name's key, and the start of the
/// SHA-1 block (`[["name", `) already written. For a check whose value is a plain string, an
/// `i64`, a boolean or null, and whose input fits in one block, a bucket is that block
/// composed with the value and the padding (in registers, see `words.rs`) and one
/// compression; anything else goes to [`consistent_hash_bucket`].
///
/// ```
/// use flipper_core::{Checks, bucketing::{OneKeyHasher, consistent_hash_bucket}};
/// let hasher = OneKeyHasher::new("user_id").unwrap();
/// let checks = Checks::new().with("user_id", "user-42").with("plan", "pro");
/// assert_eq!(hasher.bucket(&checks), consistent_hash_bucket(&checks, &["user_id".into()]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OneKeyHasher {
    whitelist: [String; 1],
    key: u128,
    /// The block's start for an unquoted value, `[["name", `, and for a string, `[["name", "`,
    /// followed by zeros.
    templates: [Words; 2],
    /// The bucket when the checks lack the name (the input is `[]`).
    missing: u8,
}

impl OneKeyHasher {
    /// The hasher of the whitelist `[name]`; `None` for a name this shortcut does not take
    /// (`randomizer`, which is never hashed, a name that needs escaping, or one longer than 40
    /// bytes), which [`consistent_hash_bucket`] handles.
    pub fn new(name: &str) -> Option<Self> {
        let n = name.len();
        if name == RANDOMIZER || n > 40 || !json::is_plain(name.as_bytes()) {
            return None;
        }
        let bare = format!("[[\"{name}\", ");
        let whitelist = [name.to_owned()];
        Some(Self {
            missing: consistent_hash_bucket(&Checks::new(), &whitelist),
            key: name_key(name),
            whitelist,
            templates: [
                words_of(bare.as_bytes()),
                words_of(format!("{bare}\"").as_bytes()),
            ],
        })
    }

    /// [`consistent_hash_bucket`]`(checks, [name])`.
    #[inline]
    pub fn bucket(&self, checks: &Checks) -> u8 {
        match checks.get_keyed(self.key, &self.whitelist[0]) {
            Some(value) => self
                .value_bucket(value)
                .unwrap_or_else(|| consistent_hash_bucket(checks, &self.whitelist)),
            None => self.missing,
        }
    }

    /// The bucket of `[["name", value]]` when the value is one the block takes.
    #[inline]
    fn value_bucket(&self, value: &Value) -> Option<u8> {
        // `[["name", ` (n + 6 bytes), then the text, quoted or not, then `]]`.
        const QUOTED: Tail = Tail::new(b"\"]]");
        const BARE: Tail = Tail::new(b"]]");
        let at = self.whitelist[0].len() + 6;
        let mut digits = itoa::Buffer::new();
        // The kinds in order of how often ids have them, each tested by one comparison.
        let words = match value {
            Value::Str(s) => {
                let text = s.as_bytes();
                let words = words::compose(&self.templates[1], text, at + 1, QUOTED)?;
                if !json::is_plain(text) {
                    return None;
                }
                words
            }
            // A small integer's digits, in registers.
            Value::Int(n) if let Some((word, len)) = n.as_i64().and_then(words::int_text) => {
                words::compose_word(&self.templates[0], word, len, at, BARE)?
            }
            // The unquoted rest (strings were taken above).
            _ => {
                let (text, false) = value_text(value, &mut digits)? else {
                    return None;
                };
                words::compose(&self.templates[0], text, at, BARE)?
            }
        };
        Some(words_mod_100(sha1_words(&words::block_bytes(&words))))
    }
}

/// A hashed value's JSON text and whether it is quoted (a string, still to be checked for
/// escapes), for the values the block writers take: strings, integers that fit in an `i64`,
/// booleans and null.
#[inline(always)]
fn value_text<'v>(value: &'v Value, digits: &'v mut itoa::Buffer) -> Option<(&'v [u8], bool)> {
    Some(match value {
        Value::Str(s) => (s.as_bytes(), true),
        Value::Int(n) => (digits.format(n.as_i64()?).as_bytes(), false),
        Value::Bool(true) => (b"true", false),
        Value::Bool(false) => (b"false", false),
        Value::Null => (b"null", false),
        Value::Float(_) | Value::List(_) | Value::Object(_) => return None,
    })
}

/// SHA-1's state words after compressing `blocks` (whole, padded 64-byte blocks) from the
/// initial state.
#[inline]
fn sha1_words(blocks: &[u8]) -> [u32; 5] {
    let mut state = SHA1_INIT;
    for block in blocks.chunks_exact(64) {
        let block = sha1::digest::generic_array::GenericArray::from_slice(block);
        sha1::compress(&mut state, std::slice::from_ref(block));
    }
    state
}

/// The longest hash input [`Block`] writes: room for the padding in two SHA-1 blocks, and for
/// reading a whole word past the last byte written.
const BLOCK_INPUT_MAX: usize = 112;

/// The hash input of the usual checks written straight into SHA-1's block buffer: names and
/// string values in plain ASCII (nothing to escape), integers that fit in an `i64`, booleans
/// and nulls, [`BLOCK_INPUT_MAX`] bytes in all. Anything else is left to the general writer
/// (the JSON writer over a [`HashSink`]), which writes the same bytes.
struct Block {
    buf: [u8; 128],
    len: usize,
}

impl Block {
    #[inline]
    fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }

    /// Writes `json.dumps(picked)`; `None` when a piece is not one this writer takes.
    #[inline]
    fn write<'a>(&mut self, picked: impl Iterator<Item = &'a Var>) -> Option<()> {
        self.put(b"[")?;
        for (i, Var { name, value, .. }) in picked.enumerate() {
            self.put(if i == 0 { b"[" } else { b", [" })?;
            self.put_str(name)?;
            self.put(b", ")?;
            match value_text(value, &mut itoa::Buffer::new())? {
                (text, true) => self.put_str(text)?,
                (text, false) => self.put(text)?,
            }
            self.put(b"]")?;
        }
        self.put(b"]")
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        if end > BLOCK_INPUT_MAX {
            return None;
        }
        copy_small(self.buf.get_mut(self.len..end)?, bytes);
        self.len = end;
        Some(())
    }

    /// `"s"`, when `s` needs no escaping (checked in the string itself: reading back bytes
    /// just written would stall on store forwarding).
    #[inline(always)]
    fn put_str(&mut self, s: impl AsRef<[u8]>) -> Option<()> {
        let s = s.as_ref();
        if !json::is_plain(s) {
            return None;
        }
        self.put(b"\"")?;
        self.put(s)?;
        self.put(b"\"")
    }

    /// SHA-1 of what was written: padded in place (0x80, zeros, the bit length as a 64-bit
    /// big-endian number), then one or two blocks through the compression function. The
    /// zeros are already there: the buffer starts zeroed and writes stop at `len`.
    #[inline]
    fn digest(&mut self) -> [u8; 20] {
        let len = self.len;
        let end = if len <= 55 { 64 } else { 128 };
        debug_assert!(
            self.buf[len..].iter().all(|&b| b == 0),
            "a block is written once, from zero"
        );
        self.buf[len] = 0x80;
        self.buf[end - 8..end].copy_from_slice(&(len as u64 * 8).to_be_bytes());
        let mut digest = [0u8; 20];
        for (out, word) in digest.chunks_exact_mut(4).zip(sha1_words(&self.buf[..end])) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }
}

/// The 160-bit big-endian digest mod 100.
#[inline]
fn digest_mod_100(d: &[u8; 20]) -> u8 {
    let mut words = [0u32; 5];
    for (word, bytes) in words.iter_mut().zip(d.chunks_exact(4)) {
        *word = u32::from_be_bytes(bytes.try_into().unwrap_or_default());
    }
    words_mod_100(words)
}

/// The digest as SHA-1's five big-endian 32-bit words `w0..w4`, mod 100. As 2^32, 2^64, 2^96
/// and 2^128 are 96, 16, 36 and 56 mod 100, the digest is congruent to
/// `56·w0 + 36·w1 + 16·w2 + 96·w3 + w4`, which fits in 64 bits: one remainder, after
/// multiplications that run side by side, instead of a chain of them.
#[inline]
fn words_mod_100(words: [u32; 5]) -> u8 {
    let [w0, w1, w2, w3, w4] = words.map(u64::from);
    ((56 * w0 + 36 * w1 + 16 * w2 + 96 * w3 + w4) % 100) as u8
}

/// Buffers small writes on the stack and feeds SHA-1 in large chunks: the general writer's
/// output, for inputs [`Block`] does not take.
struct HashSink {
    hasher: Sha1,
    buf: [u8; 128],
    len: usize,
}

impl HashSink {
    fn new() -> Self {
        Self {
            hasher: Sha1::new(),
            buf: [0; 128],
            len: 0,
        }
    }

    fn finish(mut self) -> [u8; 20] {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher.finalize().into()
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
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if b.len() > self.buf.len() {
                self.hasher.update(b);
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
    fn the_block_writer_writes_what_the_json_writer_writes() {
        // Pieces the block writer takes and pieces it must leave to the JSON writer (escapes,
        // non-ASCII, big integers, floats, nested values, inputs past its length limit).
        let names = [
            "user_id",
            "a",
            "",
            "é",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}",
            "del\u{7f}",
            "exactly8",
            "sixteen_bytes_ok",
            "randomizer",
            "a_name_longer_than_sixteen",
        ];
        let big: Value = crate::json::parse("123456789012345678901234567890").unwrap();
        let mut values = vec![
            Value::from(""),
            Value::from("user-42"),
            Value::from("é"),
            Value::from("tab\t"),
            Value::from(0),
            Value::from(-7),
            Value::from(i64::MAX),
            Value::from(i64::MIN),
            big,
            Value::Bool(true),
            Value::Bool(false),
            Value::Null,
            Value::Float(0.5),
            Value::from(vec![1, 2]),
        ];
        values.extend((0..70).step_by(7).map(|n| Value::from("x".repeat(n))));
        // One name (the usual bucketer, hashed without sorting), several, none (every check).
        let whitelists: [&[&str]; 6] = [
            &[],
            &["user_id"],
            &["a", "user_id", "randomizer"],
            &["é"],
            &["randomizer"],
            &["a_name_longer_than_sixteen"],
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut taken, mut left) = (0, 0);
        for _ in 0..20_000 {
            let mut checks = Checks::new();
            for _ in 0..1 + next(5) {
                checks.insert(names[next(names.len())], values[next(values.len())].clone());
            }
            let whitelist: Vec<String> = whitelists[next(whitelists.len())]
                .iter()
                .map(|k| (*k).to_owned())
                .collect();
            let input = consistent_hash_input(&checks, &whitelist);
            let mut block = Block::new();
            match block.write(Picked::new(&checks, &whitelist).iter()) {
                Some(()) => {
                    taken += 1;
                    assert_eq!(&block.buf[..block.len], &input[..], "{checks:?}");
                    let want: [u8; 20] = Sha1::digest(&input).into();
                    assert_eq!(block.digest(), want);
                }
                None => left += 1,
            }
            let want: [u8; 20] = Sha1::digest(&input).into();
            assert_eq!(
                consistent_hash_bucket(&checks, &whitelist),
                digest_mod_100(&want),
                "{checks:?} {whitelist:?}"
            );
        }
        // Both paths were exercised.
        assert!(taken > 2_000 && left > 2_000, "{taken} {left}");
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
    fn one_name_whitelists_bucket_as_the_general_path() {
        // The one-name path (no sort): long names that share a prefix, `randomizer`, a
        // missing name and an empty check set must all bucket as SHA-1 of the general
        // writer's bytes.
        let (a, b) = ("a_very_long_check_name_1", "a_very_long_check_name_2");
        let c = Checks::new()
            .with(b, "two")
            .with(a, 1)
            .with("randomizer", 3)
            .with("user_id", "user-7");
        for checks in [c, Checks::new()] {
            for name in [a, b, "randomizer", "missing", "user_id", ""] {
                let whitelist = [name.to_owned()];
                let input = consistent_hash_input(&checks, &whitelist);
                let want: [u8; 20] = Sha1::digest(&input).into();
                assert_eq!(
                    consistent_hash_bucket(&checks, &whitelist),
                    digest_mod_100(&want),
                    "{name:?}: {}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }

    #[test]
    fn one_key_hashers_bucket_as_the_general_path() {
        let long = "n".repeat(40);
        let names = [
            // Name lengths 0 to 7 put the value at every offset modulo 8.
            "",
            "k",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdef",
            "user_id",
            "a_very_long_check_name_1",
            &long,
            "randomizer",
            "q\"uote",
            "é",
        ];
        let mut values: Vec<Value> = (0..60).map(|n| Value::from("v".repeat(n))).collect();
        // Integers of up to 8 characters are written in registers, longer ones in memory.
        values.extend(
            [
                -1,
                0,
                7,
                -9_999_999,
                -10_000_000,
                12_345_678,
                99_999_999,
                100_000_000,
                i64::MAX,
                i64::MIN,
            ]
            .map(Value::from),
        );
        values.push(crate::json::parse("123456789012345678901234567890").unwrap());
        values.extend([
            Value::Bool(true),
            Value::Bool(false),
            Value::Null,
            Value::Float(0.5),
        ]);
        values.extend(["é", "tab\t", "q\"", "del\u{7f}"].map(Value::from));
        values.push(Value::from(vec![1, 2]));
        let (mut taken, mut left) = (0, 0);
        for name in names {
            let hasher = OneKeyHasher::new(name);
            if name == "randomizer" || name.len() > 40 || name.contains(['"', 'é']) {
                assert!(hasher.is_none(), "{name:?}");
                continue;
            }
            let hasher = hasher.expect("a plain name");
            let whitelist = [name.to_owned()];
            // The name missing, among other checks (one sharing its first 15 bytes), or given.
            let others = Checks::new()
                .with("a_very_long_check_name_2", 1)
                .with("randomizer", 2);
            assert_eq!(
                hasher.bucket(&others),
                consistent_hash_bucket(&others, &whitelist),
                "{name:?} missing"
            );
            for value in &values {
                let mut checks = others.clone();
                checks.insert(name, value.clone());
                checks.insert("z", 3);
                let want = consistent_hash_bucket(&checks, &whitelist);
                assert_eq!(hasher.bucket(&checks), want, "{name:?} = {value:?}");
                match hasher.value_bucket(value) {
                    Some(bucket) => {
                        taken += 1;
                        assert_eq!(bucket, want);
                    }
                    None => left += 1,
                }
            }
        }
        // Both the block and the general path ran.
        assert!(taken > 100 && left > 50, "{taken} {left}");
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
