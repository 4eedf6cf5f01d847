//! Reading: CPython 3.11's `json.loads` (the C scanner in `Modules/_json.c`).
//!
//! The parser works on bytes and keeps byte offsets; positions are converted to Python's
//! character-based line / column / offset only when an error is reported. Containers are
//! parsed with an explicit stack, so deep input cannot overflow the call stack.

use super::ParseError;
use super::error::{RawError, locate, raw, utf8_error};
use super::number::read_number;
use super::string::{Lone, first, read_plain, read_string};
use crate::{Object, Value};

/// The deepest nesting of arrays and objects accepted.
pub(super) const MAX_DEPTH: usize = 1000;

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
    match parser.document() {
        Ok((value, None)) => Ok(value),
        // Python accepts the document, with a lone surrogate in a string we cannot hold.
        Ok((_, Some(lone))) => Err(lone.error().locate(text)),
        Err(e) => Err(e.locate(text)),
    }
}

/// One value at the start of `text` (after whitespace), and the byte offset where it ends:
/// Python's `JSONDecoder.raw_decode`, which also allows leading whitespace here.
pub(super) fn parse_prefix(text: &str) -> Result<(Value, usize), ParseError> {
    // A string without escapes (most names and values) needs no parser.
    let start = text.bytes().take_while(|&b| is_ws(b)).count();
    if text.as_bytes().get(start) == Some(&b'"')
        && let Some((s, end)) = read_plain(text, start)
    {
        return Ok((Value::Str(s), end));
    }
    parse_prefix_general(text)
}

/// [`parse_prefix`] by the parser alone.
fn parse_prefix_general(text: &str) -> Result<(Value, usize), ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_ws();
    match parser.value() {
        Ok((value, None)) => Ok((value, parser.pos)),
        Ok((_, Some(lone))) => Err(lone.error().locate(text)),
        Err(e) => Err(e.locate(text)),
    }
}

/// `json.loads(bytes.decode("utf-8"))`.
pub(super) fn parse_bytes(bytes: &[u8]) -> Result<Value, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(err) => Err(utf8_error(bytes, err)),
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
                (Value::from(members), taint)
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
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
                        (Value::from(Object::new()), None)
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

    /// A number (or "Expecting value" where none starts).
    fn number(&mut self) -> Result<Value, RawError> {
        let (value, end) = read_number(self.text, self.pos)?;
        self.pos = end;
        Ok(value)
    }

    /// A string literal starting at the `"` at `self.pos`.
    fn string(&mut self) -> Result<(String, Option<Lone>), RawError> {
        let scanned = read_string(self.text, self.pos)?;
        self.pos = scanned.end;
        Ok((scanned.value, scanned.taint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_string;

    #[test]
    fn strings_without_escapes_read_as_the_parser_reads_them() {
        for text in [
            r#""""#,
            r#""user-42", 1"#,
            " \t\r\n\"plan\":",
            r#""é 😀 long enough to pass eight bytes""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            r#""\ud800""#,
            "\"tab\there\"",
            "\"nul\u{0}\"",
            r#""unterminated"#,
            r#"""#,
            r#""x"#,
            "\"\u{7f}\"",
            "42",
        ] {
            assert_eq!(parse_prefix(text), parse_prefix_general(text), "{text:?}");
        }
    }

    /// `json.dumps(json.loads(text))`.
    fn round(text: &str) -> String {
        match parse(text) {
            Ok(v) => to_string(&v),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    /// The error as Python's `JSONDecodeError` prints it.
    fn err(text: &str) -> String {
        match parse(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn expecting_value() {
        assert_eq!(err(""), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(err(" \n "), "Expecting value: line 2 column 2 (char 3)");
        assert_eq!(err("["), "Expecting value: line 1 column 2 (char 1)");
        assert_eq!(err("[1,]"), "Expecting value: line 1 column 4 (char 3)");
        assert_eq!(err("[1,\n  ]"), "Expecting value: line 2 column 3 (char 6)");
        assert_eq!(
            err(r#"{"a":}"#),
            "Expecting value: line 1 column 6 (char 5)"
        );
        for text in [
            "-", "-a", "nul", "tru", "-Inf", "+1", ".5", "x", "é x", "'a'",
        ] {
            assert_eq!(
                err(text),
                "Expecting value: line 1 column 1 (char 0)",
                "{text:?}"
            );
        }
    }

    #[test]
    fn expecting_delimiters_and_names() {
        assert_eq!(
            err("[1 2]"),
            "Expecting ',' delimiter: line 1 column 4 (char 3)"
        );
        assert_eq!(
            err("[1"),
            "Expecting ',' delimiter: line 1 column 3 (char 2)"
        );
        assert_eq!(
            err("{\"a\":1 \"b\"}"),
            "Expecting ',' delimiter: line 1 column 8 (char 7)"
        );
        assert_eq!(
            err("{\"a\" 1}"),
            "Expecting ':' delimiter: line 1 column 6 (char 5)"
        );
        assert_eq!(
            err("{\"a\""),
            "Expecting ':' delimiter: line 1 column 5 (char 4)"
        );
        let name = "Expecting property name enclosed in double quotes";
        assert_eq!(err("{"), format!("{name}: line 1 column 2 (char 1)"));
        assert_eq!(err("{1:2}"), format!("{name}: line 1 column 2 (char 1)"));
        assert_eq!(err("{'a':2}"), format!("{name}: line 1 column 2 (char 1)"));
        assert_eq!(
            err("{\"a\":1,}"),
            format!("{name}: line 1 column 8 (char 7)")
        );
        assert_eq!(
            err("{\"a\":1,\n\t2}"),
            format!("{name}: line 2 column 2 (char 9)")
        );
    }

    #[test]
    fn string_errors_are_positioned_in_the_document() {
        assert_eq!(
            err("[\"abc"),
            "Unterminated string starting at: line 1 column 2 (char 1)"
        );
        assert_eq!(
            err("{\"é\": \"a\nb\"}"),
            "Invalid control character at: line 1 column 9 (char 8)"
        );
        assert_eq!(
            err("\n[\"\\x\"]"),
            "Invalid \\escape: line 2 column 3 (char 3)"
        );
        assert_eq!(
            err("[\"😀\\u12\"]"),
            "Invalid \\uXXXX escape: line 1 column 5 (char 4)"
        );
        assert_eq!(
            err("{\"k\": \"\\ud800\"}"),
            "lone surrogate \\ud800 is not supported: line 1 column 8 (char 7)"
        );
    }

    #[test]
    fn extra_data() {
        assert_eq!(err("1 2"), "Extra data: line 1 column 3 (char 2)");
        assert_eq!(err("[1]\n  x"), "Extra data: line 2 column 3 (char 6)");
        assert_eq!(err("truex"), "Extra data: line 1 column 5 (char 4)");
        assert_eq!(err("nullnull"), "Extra data: line 1 column 5 (char 4)");
        // Numbers end where the grammar does.
        assert_eq!(err("01"), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("1."), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("1.e5"), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("1e"), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("1e+"), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("-0x1"), "Extra data: line 1 column 3 (char 2)");
        assert_eq!(err("NaNa"), "Extra data: line 1 column 4 (char 3)");
        // Only space, tab, newline and carriage return are whitespace.
        assert_eq!(err("1\u{a0}"), "Extra data: line 1 column 2 (char 1)");
        assert_eq!(err("1\u{c}"), "Extra data: line 1 column 2 (char 1)");
    }

    #[test]
    fn bom_is_rejected() {
        assert_eq!(
            err("\u{feff}[]"),
            "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
        );
        // Elsewhere U+FEFF is an ordinary character (and not whitespace).
        assert_eq!(round("\"\u{feff}\""), r#""\ufeff""#);
        assert_eq!(
            err(" \u{feff}"),
            "Expecting value: line 1 column 2 (char 1)"
        );
    }

    #[test]
    fn literals_and_whitespace() {
        assert_eq!(
            round(" \t\r\n[ true ,false\n,null ] \r\n"),
            "[true, false, null]"
        );
        assert_eq!(round("{ \"a\" :\t1 }"), r#"{"a": 1}"#);
        assert_eq!(round("[[],{},[{}],[[]]]"), "[[], {}, [{}], [[]]]");
    }

    #[test]
    fn repeated_keys_keep_the_first_position_and_the_last_value() {
        assert_eq!(
            round(r#"{"b":1,"a":2,"b":3,"c":4,"a":5}"#),
            r#"{"b": 3, "a": 5, "c": 4}"#
        );
        assert_eq!(round(r#"{"a":1,"\u0061":2}"#), r#"{"a": 2}"#);
    }

    #[test]
    fn lone_surrogates_only_fail_when_they_survive() {
        // Dropped by a repeated key: Python's result has no surrogate, neither has ours.
        assert_eq!(round(r#"{"a": "\ud800", "a": 1}"#), r#"{"a": 1}"#);
        assert_eq!(round(r#"{"a": {"b": ["\udc00"]}, "a": 2}"#), r#"{"a": 2}"#);
        // In a key, it stays even when the value is replaced.
        assert_eq!(
            err(r#"{"\ud800": 1, "\ud800": 2}"#),
            "lone surrogate \\ud800 is not supported: line 1 column 3 (char 2)"
        );
        // A replaced value does not clear another member's taint; the first one is reported.
        assert_eq!(
            err(r#"[{"x": "\ud801", "y": "\ud802", "x": 0}, "\ud803"]"#),
            "lone surrogate \\ud802 is not supported: line 1 column 24 (char 23)"
        );
        // A document Python rejects gets Python's error.
        assert_eq!(
            err(r#"["\ud800", ]"#),
            "Expecting value: line 1 column 12 (char 11)"
        );
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&objects).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let e = parse(&deep).unwrap_err();
        assert_eq!(
            e.message,
            "maximum nesting depth (1000) exceeded while decoding a JSON array"
        );
        assert_eq!(e.offset, MAX_DEPTH);
        let e = parse(&format!("{}{{", "[".repeat(MAX_DEPTH))).unwrap_err();
        assert!(e.message.ends_with("decoding a JSON object"), "{e}");
    }

    #[test]
    fn deep_input_does_not_overflow_a_small_stack() {
        let run = || {
            let deep = "[{\"a\":".repeat(500_000);
            assert!(
                parse(&deep)
                    .unwrap_err()
                    .message
                    .starts_with("maximum nesting")
            );
            let unclosed = "[".repeat(MAX_DEPTH);
            assert!(parse(&unclosed).is_err());
            // The deepest accepted document can be parsed, written and dropped.
            let max = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
            let v = parse(&max).unwrap();
            assert_eq!(to_string(&v), max.replace("][", "], ["));
        };
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn parse_bytes_decodes_utf8_first() {
        assert_eq!(
            parse_bytes("[\"é\"]".as_bytes()).map(|v| to_string(&v)),
            Ok(r#"["\u00e9"]"#.to_owned())
        );
        let e = parse_bytes(b"[\"a\xff\"]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte: \
             line 1 column 4 (char 3)"
        );
        // As `data.decode("utf-8")`, a BOM is kept and then rejected.
        let e = parse_bytes(b"\xef\xbb\xbf1").unwrap_err();
        assert_eq!(e.message, "Unexpected UTF-8 BOM (decode using utf-8-sig)");
    }
}
