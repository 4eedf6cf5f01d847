//! A one-block SHA-1 input composed in registers: eight little-endian words, each made from a
//! template word and the windows of a text and a tail that fall in it, then written to the
//! block with one store per 16-byte lane.
//!
//! Why not bytes: SHA-1's x86 compression (SHA-NI) reads its block 16 bytes at a time, and a
//! load that spans several narrower stores cannot take its data from them: it waits until they
//! have reached the cache, which in a loop of evaluations means until the previous compression
//! has retired. On the machine this was measured on (a 2-core Xeon VM), `OneKeyHasher::bucket`
//! over 1,024 rotated `user-N` ids took 63-65 ns with the block written by byte copies (one
//! compression of a block already in the cache: 42), and 52-53 composed here. For the same
//! reason a small integer's digits are computed in a register ([`int_text`]) rather than
//! formatted in memory and read back (integer ids: about 77 ns, then 66-71).

/// A 64-byte SHA-1 block as eight words: bytes `8k..8k + 8` of the block are
/// `words[k].to_le_bytes()`.
pub(super) type Words = [u64; 8];

/// The words of a block holding `bytes` (at most 64) from its start, zeros after.
pub(super) fn words_of(bytes: &[u8]) -> Words {
    let mut block = [0u8; 64];
    let n = bytes.len().min(64);
    block[..n].copy_from_slice(&bytes[..n]);
    let (lanes, _) = block.as_chunks::<8>();
    std::array::from_fn(|k| u64::from_le_bytes(lanes[k]))
}

/// What follows the text in the block: the end of the message and, last, the padding's 0x80
/// (at most 8 bytes in all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tail {
    /// The bytes, little-endian, zero above them.
    word: u64,
    len: usize,
}

impl Tail {
    /// `end` (at most 7 bytes) followed by the padding's 0x80.
    pub(super) const fn new(end: &[u8]) -> Self {
        let mut bytes = [0u8; 8];
        let mut i = 0;
        while i < end.len() && i < 7 {
            bytes[i] = end[i];
            i += 1;
        }
        bytes[i] = 0x80;
        Self {
            word: u64::from_le_bytes(bytes),
            len: i + 1,
        }
    }
}

/// The block `template` with `text` from byte `start`, the `tail` right after it, and the
/// message's length in bits (everything before the tail's 0x80) in its last eight bytes,
/// big-endian, as SHA-1's padding puts it. The template's bytes where the text and the tail
/// go must be zero. `None` when they do not end before byte 56.
///
/// A text that fits in a [`Piece`] with its tail (up to 16 bytes: ids, plans, small numbers)
/// is ORed in whole; a longer one word by word, from the windows of the text and the tail
/// that fall in each.
#[inline(always)]
pub(super) fn compose(template: &Words, text: &[u8], start: usize, tail: Tail) -> Option<Words> {
    match Piece::of_text(text, tail) {
        Some(piece) => piece.compose(template, start),
        None => fill(template, text, start, tail),
    }
}

/// [`compose`] for a text of at most 8 bytes given as a little-endian word (`len` bytes, zero
/// above them): the digits of a small integer from [`int_text`], which formatted in memory
/// would be read back across narrower stores, the stall this module avoids.
#[inline(always)]
pub(super) fn compose_word(
    template: &Words,
    text: u64,
    len: usize,
    start: usize,
    tail: Tail,
) -> Option<Words> {
    Piece::of_word(text, len.min(8), tail).compose(template, start)
}

/// A text and its tail of at most 16 bytes in all, as one little-endian 128-bit number (zero
/// above its bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    bytes: u128,
    len: usize,
}

impl Piece {
    /// `text` then `tail`, when they take at most 16 bytes.
    #[inline(always)]
    fn of_text(text: &[u8], tail: Tail) -> Option<Self> {
        let v = text.len();
        if v + tail.len > 16 {
            return None;
        }
        let word = |at: usize| {
            text.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, |b| u128::from(u64::from_le_bytes(b)))
        };
        // From 8 bytes on, two loads that may overlap: where they do, they hold the same
        // bytes, so ORing them is exact.
        let bytes = match v.checked_sub(8) {
            Some(rest) => word(0) | word(rest) << (8 * rest),
            None => u128::from(short_word(text)),
        };
        Some(Self::with_tail(bytes, v, tail))
    }

    /// A text of `len` (at most 8) bytes given as a word, then `tail`.
    #[inline(always)]
    fn of_word(text: u64, len: usize, tail: Tail) -> Self {
        Self::with_tail(u128::from(text), len, tail)
    }

    /// `text` (`len` bytes, at most 15, zero above them) then `tail`; the caller has checked
    /// that they take at most 16 bytes.
    #[inline(always)]
    fn with_tail(text: u128, len: usize, tail: Tail) -> Self {
        Self {
            bytes: text | u128::from(tail.word) << (8 * len),
            len: len + tail.len,
        }
    }

    /// The block `template` with this piece from byte `start` and the bit length: the piece
    /// falls in at most three words, the first of which is `start / 8`. (One arm per first
    /// word, each with fixed positions, so that the words stay in registers; which arm a
    /// prepared hasher takes depends on the value's kind only, and is predicted.)
    #[inline(always)]
    fn compose(self, template: &Words, start: usize) -> Option<Words> {
        let end = start + self.len;
        if end > 56 {
            return None;
        }
        let shift = 8 * (start % 8) as u32;
        let low = self.bytes << shift;
        // The bytes shifted past the low 128 bits (none for a shift of 0: two steps, so that
        // no step shifts by 128).
        let high = (self.bytes >> 1 >> (127 - shift)) as u64;
        let mut words = *template;
        // `start` is at most 55 (the piece is not empty and ends by 56).
        match start / 8 {
            0 => place::<0>(&mut words, low, high),
            1 => place::<1>(&mut words, low, high),
            2 => place::<2>(&mut words, low, high),
            3 => place::<3>(&mut words, low, high),
            4 => place::<4>(&mut words, low, high),
            5 => place::<5>(&mut words, low, high),
            _ => place::<6>(&mut words, low, high),
        }
        words[7] = bit_length(end);
        Some(words)
    }
}

/// ORs the three words `low` (two) and `high` into `words` from word `I`; what falls past word
/// 7 is zero.
#[inline(always)]
fn place<const I: usize>(words: &mut Words, low: u128, high: u64) {
    // `as` keeps the low 64 bits: one word each.
    for (word, part) in words[I..]
        .iter_mut()
        .zip([low as u64, (low >> 64) as u64, high])
    {
        *word |= part;
    }
}

/// The last word of a block whose message ends with its padding's 0x80 at byte `end - 1`: the
/// message's length in bits, big-endian.
#[inline(always)]
fn bit_length(end: usize) -> u64 {
    let bits = (end - 1) as u64 * 8;
    u64::from_le_bytes(bits.to_be_bytes())
}

/// [`compose`] for a text too long for a [`Piece`] (so at least 9 bytes): each word ORed with
/// the windows of the text and the tail that fall in it.
#[inline(always)]
fn fill(template: &Words, text: &[u8], start: usize, tail: Tail) -> Option<Words> {
    let end = start + text.len() + tail.len;
    if end > 56 {
        return None;
    }
    // Offsets are below 64: the casts are exact.
    let (start, v) = (start as isize, text.len() as isize);
    let mut words = *template;
    // A constant trip count (unrolled), so that the words stay in registers.
    for (k, word) in words[..7].iter_mut().enumerate() {
        let o = 8 * k as isize - start;
        *word |= long_window(text, o) | short_window(tail.word, o - v);
    }
    words[7] = bit_length(end);
    Some(words)
}

/// `n`'s decimal text (`str(n)`) as a little-endian word and its length, when it has at most
/// 8 bytes (-9,999,999 to 99,999,999).
#[inline(always)]
pub(super) fn int_text(n: i64) -> Option<(u64, usize)> {
    let (negative, magnitude) = (n < 0, n.unsigned_abs());
    let limit = if negative { 10_000_000 } else { 100_000_000 };
    let m = u32::try_from(magnitude).ok().filter(|&m| m < limit)?;
    let digits = eight_digits(m);
    // The leading zeros are the low zero bytes; the last digit stays, even a zero.
    let zeros = ((digits | 1 << 56).trailing_zeros() / 8) as usize;
    let text = (digits | 0x3030_3030_3030_3030) >> (8 * zeros);
    let len = 8 - zeros;
    Some(if negative {
        (text << 8 | u64::from(b'-'), len + 1)
    } else {
        (text, len)
    })
}

/// The eight decimal digits of `n` (below 10^8, with leading zeros), the most significant in
/// the lowest byte, as values 0 to 9: split in halves of four digits, each into pairs, each
/// into digits, every lane at once (a division by 100 or 10 of such small numbers is a
/// multiplication and a shift: `v * 10486 >> 20` is `v / 100` below 10,000, `v * 103 >> 10`
/// is `v / 10` below 100, and no lane's product reaches the next lane).
#[inline(always)]
fn eight_digits(n: u32) -> u64 {
    let (high, low) = (u64::from(n / 10_000), u64::from(n % 10_000));
    let x = high | low << 32;
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let x = (x - hundreds * 100) << 16 | hundreds;
    let tens = ((x * 103) >> 10) & 0x000F_000F_000F_000F;
    (x - tens * 10) << 8 | tens
}

/// The word of bytes `o..o + 8` of `text` (at least 8 bytes long; zero where outside it), for
/// any `o`: one in-bounds load, shifted. (Branches, not selects: within a run of same-length
/// values they are predicted, and selects lengthen the chain before the store.)
#[inline(always)]
fn long_window(text: &[u8], o: isize) -> u64 {
    let v = text.len() as isize;
    let load = |at: isize| {
        usize::try_from(at)
            .ok()
            .and_then(|at| text.get(at..at.checked_add(8)?)?.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    if o <= -8 || o >= v {
        0
    } else if o < 0 {
        load(0) << (8 * -o)
    } else if o + 8 <= v {
        load(o)
    } else {
        load(v - 8) >> (8 * (o + 8 - v))
    }
}

/// The word of bytes `o..o + 8` of a piece of at most 8 bytes given as a little-endian word,
/// zero above its bytes.
#[inline(always)]
fn short_window(piece: u64, o: isize) -> u64 {
    if o <= -8 || o >= 8 {
        0
    } else if o < 0 {
        piece << (8 * -o)
    } else {
        piece >> (8 * o)
    }
}

/// The little-endian word of a text of fewer than 8 bytes: overlapping loads, no loop.
#[inline(always)]
fn short_word(text: &[u8]) -> u64 {
    let v = text.len();
    let byte = |i: usize| text.get(i).map_or(0, |&b| u64::from(b));
    let quad = |i: usize| {
        text.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    };
    match v {
        0 => 0,
        1..=3 => byte(0) | byte(v / 2) << (8 * (v / 2)) | byte(v - 1) << (8 * (v - 1)),
        _ => quad(0) | quad(v.saturating_sub(4)) << (8 * v.saturating_sub(4)),
    }
}

/// The block's bytes, written one 16-byte lane per store (see the module's text).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(super) fn block_bytes(words: &Words) -> [u8; 64] {
    use safe_arch::{set_i64_m128i, store_unaligned_m128i};
    let mut block = [0u8; 64];
    let (lanes, _) = block.as_chunks_mut::<16>();
    for (lane, pair) in lanes.iter_mut().zip(words.chunks_exact(2)) {
        // `as` reinterprets the bits, which is what a lane holds.
        store_unaligned_m128i(lane, set_i64_m128i(pair[1] as i64, pair[0] as i64));
    }
    block
}

/// The block's bytes elsewhere than on x86-64, where no SHA-1 here reads in 16-byte loads.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(super) use word_stores as block_bytes;

/// The block's bytes, a word per store.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
pub(super) fn word_stores(words: &Words) -> [u8; 64] {
    let mut block = [0u8; 64];
    let (lanes, _) = block.as_chunks_mut::<8>();
    for (lane, word) in lanes.iter_mut().zip(words) {
        *lane = word.to_le_bytes();
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same block written byte by byte.
    fn by_bytes(template: &[u8], text: &[u8], start: usize, end: &[u8]) -> [u8; 64] {
        let mut block = [0u8; 64];
        block[..template.len()].copy_from_slice(template);
        let mut at = start;
        for piece in [text, end, b"\x80"] {
            block[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        }
        block[56..].copy_from_slice(&((at - 1) as u64 * 8).to_be_bytes());
        block
    }

    #[test]
    fn composes_every_text_length_at_every_offset() {
        let text: Vec<u8> = (1..=56).collect();
        let ends: [&[u8]; 4] = [b"", b"]", b"\"]]", b"1234567"];
        for start in 0..56 {
            let template: Vec<u8> = (0..start).map(|i| 0xA0 | (i as u8 & 0x0F)).collect();
            let words = words_of(&template);
            for v in 0..=56 {
                for end in ends {
                    let got = compose(&words, &text[..v], start, Tail::new(end));
                    if start + v + end.len() + 1 > 56 {
                        assert_eq!(got, None, "start {start}, length {v}, end {end:?}");
                        continue;
                    }
                    let got = block_bytes(&got.expect("fits"));
                    let want = by_bytes(&template, &text[..v], start, end);
                    assert_eq!(got, want, "start {start}, length {v}, end {end:?}");
                }
            }
        }
    }

    #[test]
    fn int_text_is_str_of_every_small_integer() {
        let mut digits = itoa::Buffer::new();
        let edges = [
            -10_000_000,
            -9_999_999,
            -1,
            0,
            1,
            9,
            10,
            99_999_999,
            100_000_000,
        ];
        let samples = (-10_000_100..-9_999_900)
            .chain(-100_000..100_000_000)
            .step_by(7);
        for n in edges.into_iter().chain(samples).chain([i64::MIN, i64::MAX]) {
            let want = digits.format(n).as_bytes();
            match int_text(n) {
                Some((word, len)) => {
                    assert_eq!(&word.to_le_bytes()[..len], want, "{n}");
                    assert!(
                        len == 8 || word >> (8 * len) == 0,
                        "{n}: bytes above the text"
                    );
                }
                other => assert!(want.len() > 8 && other.is_none(), "{n}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_word_text_composes_as_its_bytes() {
        let template = words_of(b"[[\"k\", ");
        for n in [-9_999_999, -5, 0, 7, 12_345_678, 99_999_999] {
            let bytes = n.to_string();
            let Some((word, len)) = int_text(n) else {
                panic!("{n} fits")
            };
            for start in [8, 9, 13, 40, 47] {
                assert_eq!(
                    compose_word(&template, word, len, start, Tail::new(b"]]")),
                    compose(&template, bytes.as_bytes(), start, Tail::new(b"]]")),
                    "{n} at {start}"
                );
            }
        }
    }

    #[test]
    fn both_ways_of_storing_write_the_same_bytes() {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..1000 {
            let words: Words = std::array::from_fn(|_| {
                x = x.rotate_left(23).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5851_F42D;
                x
            });
            assert_eq!(block_bytes(&words), word_stores(&words));
        }
    }

    #[test]
    fn words_of_reads_little_endian_and_pads_with_zeros() {
        let words = words_of(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09");
        assert_eq!(words[0], 0x0807_0605_0403_0201);
        assert_eq!(words[1], 0x09);
        assert!(words[2..].iter().all(|&w| w == 0));
        assert_eq!(
            block_bytes(&words)[..9],
            *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09"
        );
    }
}
