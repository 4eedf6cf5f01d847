//! Error positions and messages: byte offsets become Python's `JSONDecodeError` positions,
//! UTF-8 errors get Python's `UnicodeDecodeError` wording.

use std::borrow::Cow;
use std::str::Utf8Error;

use super::ParseError;

/// An error at a byte offset of the text being parsed.
pub(super) struct RawError {
    pub(super) pos: usize,
    pub(super) message: Cow<'static, str>,
}

impl RawError {
    /// Positions the error in `text` (which it was found in).
    pub(super) fn locate(self, text: &str) -> ParseError {
        locate(text, self.pos, self.message.into_owned())
    }
}

/// A [`RawError`] at byte offset `pos`.
pub(super) fn raw(pos: usize, message: impl Into<Cow<'static, str>>) -> RawError {
    RawError {
        pos,
        message: message.into(),
    }
}

/// Turns a byte offset into Python's `JSONDecodeError` position: `offset` counts characters,
/// `line` counts `\n` before it (only `\n`: a lone `\r` does not start a line), and `column`
/// is 1-based within the line.
pub(super) fn locate(text: &str, byte_pos: usize, message: String) -> ParseError {
    // Error positions are always char boundaries; stay safe regardless.
    let mut end = byte_pos.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = &text[..end];
    let line_start = prefix.rfind('\n').map_or(0, |nl| nl + 1);
    let line = prefix[..line_start].bytes().filter(|&b| b == b'\n').count() + 1;
    let column = prefix[line_start..].chars().count() + 1;
    let offset = prefix[..line_start].chars().count() + column - 1;
    ParseError {
        message,
        line,
        column,
        offset,
    }
}

/// Python's `bytes.decode("utf-8")` error for `bytes`, positioned (in characters) at the end
/// of the valid prefix; the message names the byte offset, e.g.
/// `'utf-8' codec can't decode byte 0xff in position 3: invalid start byte`.
pub(super) fn utf8_error(bytes: &[u8], err: Utf8Error) -> ParseError {
    let start = err.valid_up_to();
    let len = err.error_len().unwrap_or(bytes.len() - start);
    let first = bytes.get(start).copied().unwrap_or(0);
    let reason = match err.error_len() {
        None => "unexpected end of data",
        // A lead byte whose sequence is cut short, overlong, a surrogate or beyond U+10FFFF.
        Some(_) if (0xc2..=0xf4).contains(&first) => "invalid continuation byte",
        Some(_) => "invalid start byte",
    };
    let what = if len <= 1 {
        format!("byte 0x{first:02x} in position {start}")
    } else {
        format!("bytes in position {start}-{}", start + len - 1)
    };
    let message = format!("'utf-8' codec can't decode {what}: {reason}");
    // The prefix is valid UTF-8 by definition of `valid_up_to`.
    let prefix = std::str::from_utf8(&bytes[..start]).unwrap_or_default();
    locate(prefix, start, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, byte_pos: usize) -> (usize, usize, usize) {
        let e = locate(text, byte_pos, String::new());
        (e.line, e.column, e.offset)
    }

    #[test]
    fn positions_count_characters_and_newlines_like_python() {
        assert_eq!(at("", 0), (1, 1, 0));
        assert_eq!(at("abc", 2), (1, 3, 2));
        assert_eq!(at("a\nbc", 2), (2, 1, 2));
        assert_eq!(at("a\nbc", 3), (2, 2, 3));
        assert_eq!(at("a\n\nbc\n", 6), (4, 1, 6));
        // Only `\n` separates lines.
        assert_eq!(at("a\r\rb", 3), (1, 4, 3));
        assert_eq!(at("a\r\nb", 3), (2, 1, 3));
        // Characters, not bytes.
        assert_eq!(at("é😀x", 6), (1, 3, 2));
        assert_eq!(at("é\n😀x", 7), (2, 2, 3));
        // Not a char boundary (never produced): rounds down, no panic.
        assert_eq!(at("é", 1), (1, 1, 0));
        assert_eq!(at("ab", 99), (1, 3, 2));
    }

    fn decode_error(bytes: &[u8]) -> ParseError {
        let err = std::str::from_utf8(bytes).unwrap_err();
        utf8_error(bytes, err)
    }

    #[test]
    fn utf8_errors_use_python_wording() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff", "byte 0xff in position 0: invalid start byte"),
            (b"\x80", "byte 0x80 in position 0: invalid start byte"),
            (b"\xc0\xaf", "byte 0xc0 in position 0: invalid start byte"),
            (
                b"ab\xe4\xb8",
                "bytes in position 2-3: unexpected end of data",
            ),
            (b"ab\xe4", "byte 0xe4 in position 2: unexpected end of data"),
            (
                b"ab\xe4\xb8x",
                "bytes in position 2-3: invalid continuation byte",
            ),
            (
                b"\xe0\x80",
                "byte 0xe0 in position 0: invalid continuation byte",
            ),
            (
                b"\xed\xa0\x80",
                "byte 0xed in position 0: invalid continuation byte",
            ),
            (
                b"\xf4\x90\x80\x80",
                "byte 0xf4 in position 0: invalid continuation byte",
            ),
            (
                b"\xf0\x9f\x98",
                "bytes in position 0-2: unexpected end of data",
            ),
        ];
        for &(bytes, expected) in cases {
            let e = decode_error(bytes);
            assert_eq!(e.message, format!("'utf-8' codec can't decode {expected}"));
        }
    }

    #[test]
    fn utf8_error_position_is_in_characters() {
        let mut bytes = "[\"é\",\n\"😀".as_bytes().to_vec();
        bytes.push(0xff);
        let e = decode_error(&bytes);
        assert_eq!(
            e.message,
            "'utf-8' codec can't decode byte 0xff in position 12: invalid start byte"
        );
        assert_eq!((e.line, e.column, e.offset), (2, 3, 8));
    }
}
