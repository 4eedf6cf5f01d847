//! String literals, as CPython 3.11's C scanner (`scanstring_unicode`) reads them.

use super::error::{RawError, raw};

/// A lone surrogate escape (`\ud800` without its pair), which Python keeps in a `str` and a
/// Rust `String` cannot hold. A value that contains one is "tainted": parsing goes on (the
/// document may be one Python rejects anyway, or the string may be dropped by a repeated key)
/// and the error is reported only if the taint reaches the finished document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lone {
    /// Byte offset of the backslash.
    pub(super) pos: usize,
    /// The UTF-16 code unit.
    pub(super) unit: u32,
}

impl Lone {
    /// The error for a document whose value holds this surrogate.
    pub(super) fn error(self) -> RawError {
        raw(
            self.pos,
            format!("lone surrogate \\u{:04x} is not supported", self.unit),
        )
    }
}

/// The taint that comes first in the document.
pub(super) fn first(a: Option<Lone>, b: Option<Lone>) -> Option<Lone> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.pos < a.pos { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A string literal read from the text.
pub(super) struct Scanned {
    pub(super) value: String,
    /// The first lone surrogate in it.
    pub(super) taint: Option<Lone>,
    /// Byte offset just after the closing quote.
    pub(super) end: usize,
}

/// Reads the string literal whose opening `"` is at byte offset `quote` of `text`.
pub(super) fn read_string(text: &str, quote: usize) -> Result<Scanned, RawError> {
    let bytes = text.as_bytes();
    let mut value = String::new();
    let mut taint = None;
    // Start of the current run of plain characters.
    let mut run = quote + 1;
    let mut i = run;
    loop {
        // Like Python: look for the closing quote or a backslash, rejecting control
        // characters on the way. `"` and `\` are ASCII, so slicing at them is safe.
        let Some(&b) = bytes.get(i) else {
            return Err(raw(quote, "Unterminated string starting at"));
        };
        match b {
            b'"' => {
                let tail = &text[run..i];
                if value.is_empty() {
                    value = tail.to_owned();
                } else {
                    value.push_str(tail);
                }
                return Ok(Scanned {
                    value,
                    taint,
                    end: i + 1,
                });
            }
            b'\\' => {
                value.push_str(&text[run..i]);
                i = escape(bytes, i, quote, &mut value, &mut taint)?;
                run = i;
            }
            0..=0x1f => return Err(raw(i, "Invalid control character at")),
            _ => i += 1 + ordinary_len(&bytes[i + 1..]),
        }
    }
}

/// The string whose opening quote is at `quote`, when it has no escape: its text and the
/// offset after its closing quote. `None` for an escape, a control character or no closing
/// quote, which [`read_string`] reads (and words the error).
#[inline]
pub(super) fn read_plain(text: &str, quote: usize) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut i = quote + 1;
    loop {
        i += ordinary_len(bytes.get(i..)?);
        match *bytes.get(i)? {
            b'"' => return Some((text.get(quote + 1..i)?.to_owned(), i + 1)),
            b'\\' | 0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// How many bytes at the start of `bytes` are neither `"`, `\` nor control characters,
/// eight at a time while it lasts.
fn ordinary_len(bytes: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        // Exact tests for a byte below 0x20, equal to `"`, equal to `\`.
        let special = w.wrapping_sub(LO * 0x20) & !w & HI
            | has_zero_byte(w ^ (LO * u64::from(b'"')))
            | has_zero_byte(w ^ (LO * u64::from(b'\\')));
        if special != 0 {
            break;
        }
        n += 8;
    }
    n
}

/// The escape whose backslash is at `bs`: appends it to `out`, returns the offset after it.
fn escape(
    bytes: &[u8],
    bs: usize,
    quote: usize,
    out: &mut String,
    taint: &mut Option<Lone>,
) -> Result<usize, RawError> {
    let Some(&kind) = bytes.get(bs + 1) else {
        return Err(raw(quote, "Unterminated string starting at"));
    };
    let c = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(bytes, bs, out, taint),
        _ => return Err(raw(bs, "Invalid \\escape")),
    };
    out.push(c);
    Ok(bs + 2)
}

/// Four hex digits, either case.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0, |v, &b| char::from(b).to_digit(16).map(|d| v << 4 | d))
}

/// `\uXXXX` at `bs`, combining an escaped surrogate pair exactly where CPython's C scanner
/// does: only when a `\uXXXX` low surrogate follows *and* at least one more character follows
/// that; it also insists on a character after any escape's four digits.
fn unicode_escape(
    bytes: &[u8],
    bs: usize,
    out: &mut String,
    taint: &mut Option<Lone>,
) -> Result<usize, RawError> {
    let len = bytes.len();
    let u = bs + 1;
    let end = u + 5;
    let unit = match bytes.get(u + 1..end) {
        Some(digits) if end < len => hex4(digits),
        _ => None,
    }
    .ok_or_else(|| raw(u, "Invalid \\uXXXX escape"))?;
    let mut next = end;
    let mut code = unit;
    if (0xd800..0xdc00).contains(&unit)
        && end + 6 < len
        && bytes[end] == b'\\'
        && bytes[end + 1] == b'u'
    {
        let low =
            hex4(&bytes[end + 2..end + 6]).ok_or_else(|| raw(end + 1, "Invalid \\uXXXX escape"))?;
        if (0xdc00..0xe000).contains(&low) {
            code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
            next = end + 6;
        }
    }
    match char::from_u32(code) {
        Some(c) => out.push(c),
        None => {
            // A lone surrogate: Python keeps it; see [`Lone`].
            taint.get_or_insert(Lone {
                pos: bs,
                unit: code,
            });
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string and taint of a whole-text literal, or the error's message and byte offset.
    fn read(text: &str) -> Result<(String, Option<Lone>), (String, usize)> {
        match read_string(text, 0) {
            Ok(s) => {
                assert_eq!(s.end, text.len(), "{text:?}");
                Ok((s.value, s.taint))
            }
            Err(e) => Err((e.message.into_owned(), e.pos)),
        }
    }

    fn ok(text: &str) -> String {
        match read(text) {
            Ok((s, None)) => s,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn err(text: &str) -> (String, usize) {
        read(text).expect_err(text)
    }

    #[test]
    fn ordinary_runs_skip_whole_words_only() {
        assert_eq!(ordinary_len(b"abcdefg"), 0);
        assert_eq!(ordinary_len(b"abcdefgh\""), 8);
        assert_eq!(ordinary_len("é😀abcde\"".as_bytes()), 8);
        for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for at in 0..16 {
                let mut s = [b'a'; 16];
                s[at] = special;
                assert_eq!(ordinary_len(&s), at / 8 * 8, "{special:#x} at {at}");
            }
        }
        // Bytes that are not special, including DEL and non-ASCII.
        assert_eq!(
            ordinary_len(&[0x20, 0x7f, 0x80, 0xff, 0x21, 0x23, 0x5b, 0x5d]),
            8
        );
    }

    #[test]
    fn long_strings() {
        let s = "abcdefgh".repeat(10);
        assert_eq!(ok(&format!("\"{s}\"")), s);
        assert_eq!(ok(&format!("\"{s}\\n{s}\"")), format!("{s}\n{s}"));
        assert_eq!(
            err(&format!("\"{s}\t{s}\"")),
            ("Invalid control character at".into(), 81)
        );
        assert_eq!(
            err(&format!("\"{s}")),
            ("Unterminated string starting at".into(), 0)
        );
    }

    #[test]
    fn plain_and_escaped_text() {
        assert_eq!(ok(r#""""#), "");
        assert_eq!(ok(r#""abc""#), "abc");
        assert_eq!(ok("\"é😀\u{7f}\u{2028}\""), "é😀\u{7f}\u{2028}");
        assert_eq!(ok(r#""\"\\\/\b\f\n\r\t""#), "\"\\/\u{8}\u{c}\n\r\t");
        assert_eq!(ok(r#""a\u00e9b\u00C9\u0000""#), "aébÉ\u{0}");
        assert_eq!(ok(r#""x\ud83d\ude00y""#), "x😀y");
        assert_eq!(ok(r#""\uD83D\uDE00""#), "😀");
        assert_eq!(ok(r#""\udbff\udfff""#), "\u{10ffff}");
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(
            err("\"ab\ncd\""),
            ("Invalid control character at".into(), 3)
        );
        assert_eq!(err("\"\u{0}\""), ("Invalid control character at".into(), 1));
        assert_eq!(err("\"\u{1f}"), ("Invalid control character at".into(), 1));
        // Found before the missing quote is noticed.
        assert_eq!(err("\"ab\t"), ("Invalid control character at".into(), 3));
    }

    #[test]
    fn unterminated_strings_point_at_the_opening_quote() {
        for text in ["\"", "\"abc", "\"abc\\", "\"a\\n", "\"\\\""] {
            assert_eq!(err(text), ("Unterminated string starting at".into(), 0));
        }
    }

    #[test]
    fn invalid_escapes() {
        assert_eq!(err(r#""ab\x""#), ("Invalid \\escape".into(), 3));
        assert_eq!(err(r#""\'""#), ("Invalid \\escape".into(), 1));
        assert_eq!(err("\"\\é\""), ("Invalid \\escape".into(), 1));
        let bad_u = "Invalid \\uXXXX escape".to_owned();
        assert_eq!(err(r#""\u12""#), (bad_u.clone(), 2));
        assert_eq!(err(r#""\u12G4""#), (bad_u.clone(), 2));
        assert_eq!(err(r#""\u+123""#), (bad_u.clone(), 2));
        assert_eq!(err("\"\\u12é4\""), (bad_u.clone(), 2));
        // Python wants a character after the four digits, even at the end of the text.
        assert_eq!(err(r#""\u1234"#), (bad_u.clone(), 2));
        assert_eq!(err(r#""\ud800\uZZZZ""#), (bad_u.clone(), 8));
        // Not followed by one more character, so not read as a pair.
        assert_eq!(err(r#""\ud83d\ude00"#), (bad_u.clone(), 8));
        assert_eq!(err(r#""\ud800\u12""#), (bad_u, 8));
    }

    #[test]
    fn lone_surrogates_taint_the_string() {
        let lone = |pos, unit| Some(Lone { pos, unit });
        assert_eq!(
            read(r#""\ud800""#),
            Ok(("\u{fffd}".into(), lone(1, 0xd800)))
        );
        assert_eq!(
            read(r#""a\udc00""#),
            Ok(("a\u{fffd}".into(), lone(2, 0xdc00)))
        );
        // High then high: the first is lone, the second pairs with the low that follows.
        assert_eq!(
            read(r#""\ud83d\ud83d\ude00""#),
            Ok(("\u{fffd}😀".into(), lone(1, 0xd83d)))
        );
        // Reversed pair: both lone, the first reported.
        assert_eq!(
            read(r#""\ude00\ud83d""#),
            Ok(("\u{fffd}\u{fffd}".into(), lone(1, 0xde00)))
        );
        // High followed by a non-surrogate escape.
        assert_eq!(
            read(r#""\ud800\u0041""#),
            Ok(("\u{fffd}A".into(), lone(1, 0xd800)))
        );
        assert_eq!(
            Lone {
                pos: 1,
                unit: 0xdabc
            }
            .error()
            .message,
            "lone surrogate \\udabc is not supported"
        );
    }

    #[test]
    fn taints_order_by_position() {
        let a = Some(Lone {
            pos: 3,
            unit: 0xd800,
        });
        let b = Some(Lone {
            pos: 9,
            unit: 0xdc00,
        });
        assert_eq!(first(a, b), a);
        assert_eq!(first(b, a), a);
        assert_eq!(first(None, b), b);
        assert_eq!(first(b, None), b);
        assert_eq!(first(None, None), None);
    }
}
