//! Reading: CPython 3.11's `json.loads` (the C scanner in `Modules/_json.c`).
//!
//! The parser works on bytes and keeps byte offsets; positions are converted to Python's
//! character-based line / column / offset only when an error is reported. Containers are
//! parsed with an explicit stack, so deep input cannot overflow the call stack.

use std::borrow::Cow;

use num_bigint::BigInt;

use super::ParseError;
use crate::{Int, Object, Value};

/// The deepest nesting of arrays and objects accepted.
pub(super) const MAX_DEPTH: usize = 1000;

/// Python 3.11's default `sys.get_int_max_str_digits()`.
const MAX_INT_DIGITS: usize = 4300;

/// An error at a byte offset of the text.
struct RawError {
    pos: usize,
    message: Cow<'static, str>,
}

fn raw(pos: usize, message: impl Into<Cow<'static, str>>) -> RawError {
    RawError {
        pos,
        message: message.into(),
    }
}

/// Turns a byte offset into Python's `JSONDecodeError` position: `offset` counts characters,
/// `line` counts `\n` before it (only `\n`), `column` is 1-based within the line.
fn locate(text: &str, byte_pos: usize, message: String) -> ParseError {
    // Error positions are always char boundaries; `floor_char_boundary`-like fallback anyway.
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

/// `json.loads(text)`.
pub(super) fn parse(text: &str) -> Result<Value, ParseError> {
    if text.starts_with('\u{feff}') {
        return Err(locate(
            text,
            0,
            "Unexpected UTF-8 BOM (decode using utf-8-sig)".to_owned(),
        ));
    }
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let result = match parser.document() {
        Ok((value, None)) => Ok(value),
        // Python accepts the document, with a lone surrogate in a string we cannot hold.
        Ok((_, Some(lone))) => Err(raw(
            lone.pos,
            format!("lone surrogate \\u{:04x} is not supported", lone.unit),
        )),
        Err(e) => Err(e),
    };
    result.map_err(|e| locate(text, e.pos, e.message.into_owned()))
}

/// `json.loads(bytes.decode("utf-8"))`, with Python's `UnicodeDecodeError` wording.
pub(super) fn parse_bytes(bytes: &[u8]) -> Result<Value, ParseError> {
    let err = match std::str::from_utf8(bytes) {
        Ok(text) => return parse(text),
        Err(err) => err,
    };
    let start = err.valid_up_to();
    let len = err.error_len().unwrap_or(bytes.len() - start);
    let first = bytes.get(start).copied().unwrap_or(0);
    let reason = match err.error_len() {
        None => "unexpected end of data",
        Some(_) if (0xc2..=0xf4).contains(&first) => "invalid continuation byte",
        Some(_) => "invalid start byte",
    };
    let what = if len <= 1 {
        format!("byte 0x{first:02x} in position {start}")
    } else {
        format!("bytes in position {start}-{}", start + len - 1)
    };
    let message = format!("'utf-8' codec can't decode {what}: {reason}");
    // The prefix is valid UTF-8 by construction.
    let prefix = std::str::from_utf8(&bytes[..start]).unwrap_or_default();
    Err(locate(prefix, start, message))
}

/// A lone surrogate escape (`\ud800` without its pair), which Python keeps in a `str` and a
/// Rust `String` cannot hold. A value that contains one is "tainted": parsing goes on (the
/// document may be one Python rejects anyway, or the string may be dropped by a repeated key)
/// and the error is reported only if the taint reaches the finished document.
#[derive(Clone, Copy)]
struct Lone {
    /// Byte offset of the backslash.
    pos: usize,
    unit: u32,
}

/// The taint that comes first in the document.
fn first(a: Option<Lone>, b: Option<Lone>) -> Option<Lone> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.pos < a.pos { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A taint of one object member, in its key (permanent) or in its current value.
struct MemberTaint {
    index: usize,
    in_key: bool,
    lone: Lone,
}

/// A container being filled.
enum Frame {
    List {
        items: Vec<Value>,
        taint: Option<Lone>,
    },
    Object {
        members: Object,
        /// The key whose value is being parsed, and its taint.
        key: String,
        key_taint: Option<Lone>,
        /// Empty (so not allocated) unless lone surrogates occur.
        taints: Vec<MemberTaint>,
    },
}

impl Frame {
    fn list() -> Self {
        Self::List {
            items: Vec::new(),
            taint: None,
        }
    }

    fn object((key, key_taint): (String, Option<Lone>)) -> Self {
        Self::Object {
            members: Object::new(),
            key,
            key_taint,
            taints: Vec::new(),
        }
    }

    fn into_value(self) -> (Value, Option<Lone>) {
        match self {
            Self::List { items, taint } => (Value::List(items), taint),
            Self::Object {
                members, taints, ..
            } => {
                let taint = taints.iter().map(|t| Some(t.lone)).fold(None, first);
                (Value::Object(members), taint)
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn hex4(bytes: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &b in bytes {
        let d = char::from(b).to_digit(16)?;
        v = v << 4 | d;
    }
    Some(v)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// The whole text: one value between optional whitespace.
    fn document(&mut self) -> Result<(Value, Option<Lone>), RawError> {
        self.skip_ws();
        let value = self.value()?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(raw(self.pos, "Extra data"));
        }
        Ok(value)
    }

    /// A value starting at `self.pos` (whitespace already skipped), containers included.
    fn value(&mut self) -> Result<(Value, Option<Lone>), RawError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            let (mut value, mut taint) = match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    if stack.len() >= MAX_DEPTH {
                        let what = if open == b'[' { "array" } else { "object" };
                        return Err(raw(
                            self.pos,
                            format!(
                                "maximum nesting depth ({MAX_DEPTH}) exceeded \
                                 while decoding a JSON {what}"
                            ),
                        ));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if open == b'[' {
                        if self.peek() == Some(b']') {
                            self.pos += 1;
                            (Value::List(Vec::new()), None)
                        } else {
                            stack.push(Frame::list());
                            continue 'value;
                        }
                    } else if self.peek() == Some(b'}') {
                        self.pos += 1;
                        (Value::Object(Object::new()), None)
                    } else {
                        stack.push(Frame::object(self.key()?));
                        continue 'value;
                    }
                }
                _ => self.scalar()?,
            };
            // Hand the finished value to its container, closing containers as they end.
            loop {
                match stack.last_mut() {
                    None => return Ok((value, taint)),
                    Some(Frame::List {
                        items,
                        taint: list_taint,
                    }) => {
                        items.push(value);
                        *list_taint = first(*list_taint, taint);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                continue 'value;
                            }
                            Some(b']') => self.pos += 1,
                            _ => return Err(raw(self.pos, "Expecting ',' delimiter")),
                        }
                    }
                    Some(Frame::Object {
                        members,
                        key,
                        key_taint,
                        taints,
                    }) => {
                        // Python dict semantics: a repeated key keeps its first position and
                        // takes the new value (dropping the old value's taint).
                        let (index, old) = members.insert_full(std::mem::take(key), value);
                        if old.is_some() && !taints.is_empty() {
                            taints.retain(|t| t.in_key || t.index != index);
                        }
                        for (lone, in_key) in [(taint, false), (key_taint.take(), true)] {
                            if let Some(lone) = lone {
                                taints.push(MemberTaint {
                                    index,
                                    in_key,
                                    lone,
                                });
                            }
                        }
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                (*key, *key_taint) = self.key()?;
                                continue 'value;
                            }
                            Some(b'}') => self.pos += 1,
                            _ => return Err(raw(self.pos, "Expecting ',' delimiter")),
                        }
                    }
                }
                match stack.pop() {
                    Some(frame) => (value, taint) = frame.into_value(),
                    None => return Err(raw(self.pos, "Expecting value")),
                }
            }
        }
    }

    /// An object key and its `:` delimiter, leaving `self.pos` at the value.
    fn key(&mut self) -> Result<(String, Option<Lone>), RawError> {
        if self.peek() != Some(b'"') {
            return Err(raw(
                self.pos,
                "Expecting property name enclosed in double quotes",
            ));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(raw(self.pos, "Expecting ':' delimiter"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(key)
    }

    /// Anything but a container.
    fn scalar(&mut self) -> Result<(Value, Option<Lone>), RawError> {
        let rest = &self.bytes[self.pos..];
        let (value, len) = match rest.first() {
            Some(b'"') => return self.string().map(|(s, taint)| (Value::Str(s), taint)),
            Some(b'n') if rest.starts_with(b"null") => (Value::Null, 4),
            Some(b't') if rest.starts_with(b"true") => (Value::Bool(true), 4),
            Some(b'f') if rest.starts_with(b"false") => (Value::Bool(false), 5),
            Some(b'N') if rest.starts_with(b"NaN") => (Value::Float(f64::NAN), 3),
            Some(b'I') if rest.starts_with(b"Infinity") => (Value::Float(f64::INFINITY), 8),
            Some(b'-') if rest.starts_with(b"-Infinity") => (Value::Float(f64::NEG_INFINITY), 9),
            _ => return Ok((self.number()?, None)),
        };
        self.pos += len;
        Ok((value, None))
    }

    /// `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`; an int when there is neither fraction nor
    /// exponent. A prefix that does not start a number is "Expecting value".
    fn number(&mut self) -> Result<Value, RawError> {
        let bytes = self.bytes;
        let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
        let start = self.pos;
        let negative = bytes.get(start) == Some(&b'-');
        let mut i = start + usize::from(negative);
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                i += 1;
                while digit_at(i) {
                    i += 1;
                }
            }
            _ => return Err(raw(start, "Expecting value")),
        }
        let int_end = i;
        if bytes.get(i) == Some(&b'.') && digit_at(i + 1) {
            i += 2;
            while digit_at(i) {
                i += 1;
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if digit_at(j) {
                while digit_at(j) {
                    j += 1;
                }
                i = j;
            }
        }
        self.pos = i;
        let literal = &self.text[start..i];
        if i != int_end {
            // Correctly rounded, with overflow to infinity and underflow to zero, as Python's
            // `float()`. The literal always matches Rust's float grammar.
            return literal
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| raw(start, "Expecting value"));
        }
        let digits = &literal[usize::from(negative)..];
        if digits.len() > MAX_INT_DIGITS {
            return Err(raw(
                start,
                format!(
                    "Exceeds the limit ({MAX_INT_DIGITS} digits) for integer string \
                     conversion: value has {} digits; use sys.set_int_max_str_digits() \
                     to increase the limit",
                    digits.len()
                ),
            ));
        }
        if digits.len() <= 18 {
            // Fits in an i64 without overflow checks: 18 digits < 2^63.
            let magnitude = digits
                .bytes()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            return Ok(Value::Int(Int::from(if negative {
                -magnitude
            } else {
                magnitude
            })));
        }
        BigInt::parse_bytes(literal.as_bytes(), 10)
            .map(|b| Value::Int(Int::from_big(b)))
            .ok_or_else(|| raw(start, "Expecting value"))
    }

    /// A string literal starting at the `"` at `self.pos`.
    fn string(&mut self) -> Result<(String, Option<Lone>), RawError> {
        let bytes = self.bytes;
        let quote = self.pos;
        let mut out = String::new();
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
                    self.pos = i + 1;
                    let tail = &self.text[run..i];
                    if out.is_empty() {
                        return Ok((tail.to_owned(), taint));
                    }
                    out.push_str(tail);
                    return Ok((out, taint));
                }
                b'\\' => {
                    out.push_str(&self.text[run..i]);
                    i = self.escape(i, quote, &mut out, &mut taint)?;
                    run = i;
                }
                0..=0x1f => return Err(raw(i, "Invalid control character at")),
                _ => i += 1,
            }
        }
    }

    /// The escape whose backslash is at `bs`; appends it to `out` and returns the offset after it.
    fn escape(
        &self,
        bs: usize,
        quote: usize,
        out: &mut String,
        taint: &mut Option<Lone>,
    ) -> Result<usize, RawError> {
        let bytes = self.bytes;
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
            b'u' => return self.unicode_escape(bs, out, taint),
            _ => return Err(raw(bs, "Invalid \\escape")),
        };
        out.push(c);
        Ok(bs + 2)
    }

    /// `\uXXXX` at `bs`, combining an escaped surrogate pair the way CPython's C scanner does.
    fn unicode_escape(
        &self,
        bs: usize,
        out: &mut String,
        taint: &mut Option<Lone>,
    ) -> Result<usize, RawError> {
        let bytes = self.bytes;
        let len = bytes.len();
        let u = bs + 1;
        let end = u + 5;
        // CPython requires at least one character after the four digits.
        let unit = match bytes.get(u + 1..end) {
            Some(digits) if end < len => hex4(digits),
            _ => None,
        }
        .ok_or_else(|| raw(u, "Invalid \\uXXXX escape"))?;
        let (code, next) = if (0xd800..0xdc00).contains(&unit)
            && end + 6 < len
            && bytes[end] == b'\\'
            && bytes[end + 1] == b'u'
        {
            let low = hex4(&bytes[end + 2..end + 6])
                .ok_or_else(|| raw(end + 1, "Invalid \\uXXXX escape"))?;
            if (0xdc00..0xe000).contains(&low) {
                (0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), end + 6)
            } else {
                (unit, end)
            }
        } else {
            (unit, end)
        };
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
}
