//! Writing: CPython 3.11's `json.dumps(v)` with default arguments (the C encoder):
//! `", "` / `": "` separators, `ensure_ascii=True`, ints verbatim, floats as `repr`.
//!
//! Nothing here allocates except writing an int beyond `i64` (rare: big-int formatting).

use std::fmt;

use super::{Output, float};
use crate::{Int, Value};

pub(super) fn write_value<O: Output + ?Sized>(v: &Value, out: &mut O) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => write_int(i, out),
        Value::Float(f) => float::write_float(*f, out),
        Value::Str(s) => write_str(s, out),
        Value::List(items) => {
            let mut items = items.iter();
            match items.next() {
                None => out.push_str("[]"),
                Some(first) => {
                    out.push_str("[");
                    write_value(first, out);
                    for item in items {
                        out.push_str(", ");
                        write_value(item, out);
                    }
                    out.push_str("]");
                }
            }
        }
        Value::Object(members) => {
            let mut members = members.iter();
            match members.next() {
                None => out.push_str("{}"),
                Some((key, value)) => {
                    out.push_str("{");
                    write_str(key, out);
                    out.push_str(": ");
                    write_value(value, out);
                    for (key, value) in members {
                        out.push_str(", ");
                        write_str(key, out);
                        out.push_str(": ");
                        write_value(value, out);
                    }
                    out.push_str("}");
                }
            }
        }
    }
}

/// An int in decimal, as Python's `int.__repr__`.
fn write_int<O: Output + ?Sized>(i: &Int, out: &mut O) {
    match i.as_i64() {
        Some(small) => out.push_str(itoa::Buffer::new().format(small)),
        None => {
            // Writing to an `Output` cannot fail, so neither can this.
            let _ = fmt::write(&mut FmtOutput(out), format_args!("{i}"));
        }
    }
}

/// `fmt::Write` over an [`Output`].
struct FmtOutput<'a, O: ?Sized>(&'a mut O);

impl<O: Output + ?Sized> fmt::Write for FmtOutput<'_, O> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

/// [`ESCAPE`] entry for bytes of non-ASCII characters.
const NON_ASCII: u8 = 0xff;
/// [`ESCAPE`] entry for characters written as `\u00XX`.
const UNICODE: u8 = b'u';

/// How `ensure_ascii` writes each byte: 0 = as is, otherwise the letter after the backslash
/// ([`UNICODE`] for `\u00XX`), or [`NON_ASCII`] for the bytes of a non-ASCII character.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = UNICODE;
        b += 1;
    }
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[0x7f] = UNICODE;
    b = 0x80;
    while b < 0x100 {
        table[b] = NON_ASCII;
        b += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Escape sequences collected on the stack so that a run of them is written in one piece.
struct Escapes {
    buf: [u8; Self::CAPACITY],
    len: usize,
}

impl Escapes {
    const CAPACITY: usize = 96;
    /// The longest single escape: a surrogate pair.
    const LONGEST: usize = 12;

    fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// `\uXXXX` with lowercase hex.
    fn push_unit(&mut self, unit: u32) {
        let hex = |shift: u32| HEX[(unit >> shift & 0xf) as usize];
        self.push(&[b'\\', b'u', hex(12), hex(8), hex(4), hex(0)]);
    }

    fn flush<O: Output + ?Sized>(&mut self, out: &mut O) {
        // Only ASCII is ever pushed, so this always succeeds.
        if let Ok(s) = std::str::from_utf8(&self.buf[..self.len]) {
            out.push_str(s);
        }
        self.len = 0;
    }
}

/// Whether any byte of the eight in `w` must be escaped: a control character, `"`, `\\`,
/// DEL or a byte of a non-ASCII character. (Exact: the bit tricks never miss such a byte.)
fn word_needs_escape(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
    let del_or_above = (w.wrapping_add(LO) | w) & HI;
    let quote = has_zero_byte(w ^ (LO * u64::from(b'"')));
    let backslash = has_zero_byte(w ^ (LO * u64::from(b'\\')));
    below_space | del_or_above | quote | backslash != 0
}

/// How many bytes at the start of `bytes` are written as they are.
fn plain_len(bytes: &[u8]) -> usize {
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        match <[u8; 8]>::try_from(chunk) {
            Ok(word) if !word_needs_escape(u64::from_le_bytes(word)) => n += 8,
            _ => break,
        }
    }
    n + bytes[n..]
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .unwrap_or(bytes.len() - n)
}

/// Eight spaces: the padding of a short string's word before [`word_needs_escape`] (a space
/// is plain).
const SPACES: u64 = 0x2020_2020_2020_2020;

/// Whether `bytes` are written as they are (nothing to escape): a word at a time, with
/// overlapping loads for the ends, so that short strings take a few instructions.
#[inline]
pub(crate) fn is_plain(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let word = |at: usize| -> u64 {
        bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    };
    let half = |at: usize| -> u64 {
        bytes
            .get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(u64::from(u32::MAX), |w| u64::from(u32::from_le_bytes(w)))
    };
    match n {
        0 => true,
        1..=3 => {
            let byte = |at: usize| u64::from(bytes[at]);
            // The three bytes (some twice) in the low bytes, spaces above.
            let w = byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16 | SPACES << 24;
            !word_needs_escape(w)
        }
        4..=7 => !word_needs_escape(half(0) | half(n - 4) << 32),
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if word_needs_escape(word(at)) {
                    return false;
                }
                at += 8;
            }
            !word_needs_escape(word(n - 8))
        }
    }
}

pub(super) fn write_str<O: Output + ?Sized>(s: &str, out: &mut O) {
    let bytes = s.as_bytes();
    if is_plain(bytes) {
        // The common case (keys, ids): one call, which matters when `out` is a hasher.
        out.push_quoted(s);
        return;
    }
    let mut i = plain_len(bytes);
    out.push_str("\"");
    // `i` is always at a char boundary: the bytes of non-ASCII characters are never plain.
    out.push_str(&s[..i]);
    while i < bytes.len() {
        let mut escapes = Escapes::new();
        while let Some(&b) = bytes.get(i) {
            if escapes.len + Escapes::LONGEST > Escapes::CAPACITY {
                escapes.flush(out);
            }
            match ESCAPE[usize::from(b)] {
                0 => break,
                NON_ASCII => {
                    let Some(c) = s[i..].chars().next() else {
                        break;
                    };
                    let code = u32::from(c);
                    if code > 0xffff {
                        let v = code - 0x10000;
                        escapes.push_unit(0xd800 | v >> 10);
                        escapes.push_unit(0xdc00 | (v & 0x3ff));
                    } else {
                        escapes.push_unit(code);
                    }
                    i += c.len_utf8();
                }
                UNICODE => {
                    escapes.push_unit(u32::from(b));
                    i += 1;
                }
                letter => {
                    escapes.push(&[b'\\', letter]);
                    i += 1;
                }
            }
        }
        escapes.flush(out);
        let run = i;
        i += plain_len(&bytes[i..]);
        if i > run {
            out.push_str(&s[run..i]);
        }
    }
    out.push_str("\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Object;

    fn dumps_str(s: &str) -> String {
        let mut out = String::new();
        write_str(s, &mut out);
        out
    }

    #[test]
    fn plain_strings_are_told_apart_at_every_length_and_place() {
        let escapes = ["\"", "\\", "\u{0}", "\u{1f}", "\u{7f}", "é", "\u{1F600}"];
        for n in 0..40 {
            let plain: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(is_plain(plain.as_bytes()), "{plain:?}");
            for at in 0..=n {
                for e in escapes {
                    let s = format!("{}{e}{}", &plain[..at], &plain[at..]);
                    assert!(!is_plain(s.as_bytes()), "{s:?}");
                    assert_eq!(plain_len(s.as_bytes()), at, "{s:?}");
                }
            }
        }
        assert!(is_plain(b" ~}"));
    }

    #[test]
    fn short_escapes_and_slash() {
        assert_eq!(dumps_str("\"\\/\n\r\t\u{8}\u{c}"), r#""\"\\/\n\r\t\b\f""#);
    }

    #[test]
    fn control_characters_and_del_as_u00xx() {
        assert_eq!(
            dumps_str("\u{0}\u{1}\u{1f} \u{7f}~"),
            r#""\u0000\u0001\u001f \u007f~""#
        );
        for b in 0u8..0x20 {
            let s = dumps_str(&char::from(b).to_string());
            let expected = match b {
                8 => r#""\b""#.to_owned(),
                9 => r#""\t""#.to_owned(),
                10 => r#""\n""#.to_owned(),
                12 => r#""\f""#.to_owned(),
                13 => r#""\r""#.to_owned(),
                _ => format!("\"\\u{b:04x}\""),
            };
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn non_ascii_as_lowercase_hex_and_surrogate_pairs() {
        assert_eq!(dumps_str("ñame"), r#""\u00f1ame""#);
        assert_eq!(dumps_str("😀"), r#""\ud83d\ude00""#);
        assert_eq!(
            dumps_str("\u{10ffff}\u{10000}"),
            r#""\udbff\udfff\ud800\udc00""#
        );
        assert_eq!(
            dumps_str("\u{2028}\u{2029}\u{feff}\u{ffff}\u{80}"),
            r#""\u2028\u2029\ufeff\uffff\u0080""#
        );
        assert_eq!(dumps_str("日本"), r#""\u65e5\u672c""#);
    }

    #[test]
    fn long_runs_of_escapes_are_complete() {
        let s: String = "é😀\n".repeat(100);
        let expected = r#"\u00e9\ud83d\ude00\n"#.repeat(100);
        assert_eq!(dumps_str(&s), format!("\"{expected}\""));
        let mixed: String = (0..300)
            .map(|i| if i % 7 == 0 { 'x' } else { 'ü' })
            .collect();
        let out = dumps_str(&mixed);
        assert_eq!(
            out.matches("\\u00fc").count(),
            mixed.chars().filter(|&c| c == 'ü').count()
        );
        assert_eq!(out.matches('x').count(), 43);
    }

    #[test]
    fn word_test_agrees_with_the_table() {
        // Every byte value in every lane, among plain neighbours.
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut word = *b"abcdefgh";
                word[lane] = b;
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(word)),
                    ESCAPE[usize::from(b)] != 0,
                    "byte {b:#x} in lane {lane}"
                );
            }
        }
        // Neighbours that could carry or borrow into each other.
        for (a, b) in [
            (0xffu8, 0x41u8),
            (0x00, 0x41),
            (0x20, 0x7e),
            (0x7e, 0x7f),
            (0x21, 0x23),
        ] {
            let word = u64::from_le_bytes([a, b, b'x', b'x', b'x', b'x', b'x', b'x']);
            let expected = ESCAPE[usize::from(a)] != 0 || ESCAPE[usize::from(b)] != 0;
            assert_eq!(word_needs_escape(word), expected, "{a:#x} {b:#x}");
        }
    }

    #[test]
    fn plain_len_stops_at_the_first_special_byte() {
        assert_eq!(plain_len(b""), 0);
        assert_eq!(plain_len(b"abc"), 3);
        assert_eq!(plain_len(b"abcdefghijklmnopq"), 17);
        for at in 0..20 {
            let mut s = vec![b'a'; 20];
            s[at] = b'"';
            assert_eq!(plain_len(&s), at);
        }
    }

    #[test]
    fn long_and_short_strings_agree() {
        for len in [63, 64, 65, 200] {
            let s = "a".repeat(len);
            assert_eq!(dumps_str(&s), format!("\"{s}\""));
            let with_escape = format!("{s}\n{s}");
            assert_eq!(dumps_str(&with_escape), format!("\"{s}\\n{s}\""));
        }
    }

    #[test]
    fn plain_strings_pass_through() {
        assert_eq!(dumps_str(""), r#""""#);
        assert_eq!(dumps_str("user_id"), r#""user_id""#);
        assert_eq!(dumps_str("a b'c<>&"), r#""a b'c<>&""#);
    }

    #[test]
    fn ints_verbatim() {
        let cases = [
            (Value::from(0), "0"),
            (Value::from(-1), "-1"),
            (Value::from(i64::MAX), "9223372036854775807"),
            (Value::from(i64::MIN), "-9223372036854775808"),
            (Value::from(u64::MAX), "18446744073709551615"),
            (
                Value::from(-(1i128 << 100)),
                "-1267650600228229401496703205376",
            ),
        ];
        for (v, expected) in cases {
            assert_eq!(super::super::to_string(&v), expected);
        }
    }

    #[test]
    fn containers_and_literals() {
        let mut inner = Object::new();
        inner.insert("z".into(), Value::Null);
        inner.insert("a".into(), Value::List(vec![]));
        let mut o = Object::new();
        o.insert("é".into(), Value::from(inner));
        o.insert("e".into(), Value::from(Object::new()));
        let v = Value::List(vec![
            Value::from(o),
            Value::from(true),
            Value::from(false),
            Value::List(vec![Value::List(vec![])]),
        ]);
        assert_eq!(
            super::super::to_string(&v),
            r#"[{"\u00e9": {"z": null, "a": []}, "e": {}}, true, false, [[]]]"#
        );
    }
}
