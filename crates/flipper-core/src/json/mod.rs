//! Python-exact JSON: reading as `json.loads` does, writing byte-identical to `json.dumps`.
//!
//! flipper-client persists every flag as `json.dumps(item)` and hashes `json.dumps(checks)` for
//! consistent bucketing, so the bytes matter. This codec reproduces CPython 3.11's `json`
//! module (its C accelerator, the one `json.loads` / `json.dumps` use by default):
//!
//! * [`parse`] accepts exactly what `json.loads(text)` accepts (including the `NaN`,
//!   `Infinity` and `-Infinity` tokens and integers of any size up to Python's 4300-digit
//!   limit), keeps object members in order with "last value wins, at the first position" for
//!   repeated keys, and reports errors with Python's message, line, column and character offset.
//! * [`write_value`] writes what `json.dumps(v)` writes with its default arguments: `", "` and
//!   `": "` separators, `ensure_ascii` escaping, ints verbatim and floats as `float.__repr__`.
//!
//! ```
//! use flipper_core::json;
//! let v = json::parse(r#"{"b":1,"a":[1.50,"\u00e9",NaN],"b":2}"#).unwrap();
//! assert_eq!(json::to_string(&v), r#"{"b": 2, "a": [1.5, "\u00e9", NaN]}"#);
//! ```
//!
//! # Deviations from Python
//!
//! * A Rust `String` cannot hold a lone UTF-16 surrogate, which Python happily produces from
//!   `"\ud800"`. A document whose value (as Python would load it) contains one is rejected
//!   with the message `lone surrogate \ud800 is not supported`, positioned at the escape.
//!   A document Python rejects anyway gets Python's error, and a lone surrogate that Python
//!   would drop (in the value of a repeated key) is no error.
//! * Nesting is limited to [`MAX_DEPTH`] containers, with an error message of our own, where
//!   Python raises `RecursionError` at roughly the same depth (996 in a bare interpreter).
//! * Python refuses to *write* an int of more than 4300 digits; [`write_value`] writes it.

mod error;
mod float;
mod number;
mod read;
mod string;
mod write;

pub(crate) use write::is_plain;

use crate::Value;

/// The deepest nesting of arrays and objects [`parse`] accepts.
pub const MAX_DEPTH: usize = read::MAX_DEPTH;

/// Where the writer puts its output: a `String`, a `Vec<u8>`, or a hasher.
///
/// The writer only ever produces ASCII (it escapes everything else), in pieces as large as it
/// can: runs of plain string content are passed through in one call.
pub trait Output {
    /// Appends ASCII/UTF-8 text.
    fn push_str(&mut self, s: &str);

    /// Appends `"` + `plain` + `"`, where `plain` needs no escaping. Override to do it in one
    /// step (the writer calls this for most strings).
    #[inline]
    fn push_quoted(&mut self, plain: &str) {
        self.push_str("\"");
        self.push_str(plain);
        self.push_str("\"");
    }
}
impl Output for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}
impl Output for Vec<u8> {
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// A document `json.loads` would reject, with its position.
///
/// The [`Display`](std::fmt::Display) form is Python's `JSONDecodeError` text, e.g.
/// `Expecting value: line 1 column 5 (char 4)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, in the words of Python's `json` module (e.g. `Expecting value`).
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// 0-based character offset.
    pub offset: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: line {} column {} (char {})",
            self.message, self.line, self.column, self.offset
        )
    }
}
impl std::error::Error for ParseError {}

/// Parses a document as Python's `json.loads(text)`.
///
/// Integers without fraction or exponent become [`Value::Int`] (of any size; `-0` is `0`),
/// every other number a correctly rounded [`Value::Float`] (`1e400` is infinity). Never panics
/// and never recurses, whatever the input.
///
/// # Errors
///
/// A [`ParseError`] with the message and position Python's `JSONDecodeError` (or, for integers
/// of more than 4300 digits, `ValueError`) would carry, or one of the deviations described in
/// the [module documentation](self).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    read::parse(text)
}

/// Parses one value at the start of `text` (leading whitespace allowed) and returns it with the
/// byte offset just past it, leaving the rest unread: Python's `JSONDecoder.raw_decode`.
///
/// ```
/// let (v, end) = flipper_core::json::parse_prefix(r#" [1, 2] rest"#).unwrap();
/// assert_eq!(flipper_core::json::to_string(&v), "[1, 2]");
/// assert_eq!(end, 7);
/// ```
///
/// # Errors
/// As [`parse`], for the value itself.
pub fn parse_prefix(text: &str) -> Result<(Value, usize), ParseError> {
    read::parse_prefix(text)
}

/// `text` without the JSON whitespace at its start (space, tab, line feed, carriage return).
///
/// ```
/// assert_eq!(flipper_core::json::trim_start(" \r\n\t[1]"), "[1]");
/// ```
pub fn trim_start(text: &str) -> &str {
    text.trim_start_matches(|c: char| c.is_ascii() && read::is_ws(c as u8))
}

/// Whether `text` is only the whitespace `json.loads` allows around a document (space, tab,
/// line feed, carriage return).
///
/// ```
/// assert!(flipper_core::json::is_whitespace(" \r\n\t"));
/// assert!(!flipper_core::json::is_whitespace("\u{a0}"));
/// ```
pub fn is_whitespace(text: &str) -> bool {
    text.bytes().all(read::is_ws)
}

/// Parses UTF-8 bytes as Python's `json.loads(data.decode("utf-8"))`.
///
/// Like that expression (and unlike `json.loads(data)`, which sniffs UTF-16/32 and strips a
/// UTF-8 BOM), a leading BOM is decoded to U+FEFF and then rejected.
///
/// # Errors
///
/// As [`parse`]; bytes that are not UTF-8 give Python's `UnicodeDecodeError` text (which names
/// the byte offset), positioned at the end of the valid prefix.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, ParseError> {
    read::parse_bytes(bytes)
}

/// Writes `v` as Python's `json.dumps(v)` with default arguments.
pub fn write_value<O: Output + ?Sized>(v: &Value, out: &mut O) {
    write::write_value(v, out);
}

/// Writes a string literal (with quotes) as `json.dumps` does (ensure_ascii).
pub fn write_str<O: Output + ?Sized>(s: &str, out: &mut O) {
    write::write_str(s, out);
}

/// Writes a float as Python's `float.__repr__` (`NaN`, `Infinity`, `-Infinity` as bare tokens).
pub fn write_float<O: Output + ?Sized>(f: f64, out: &mut O) {
    float::write_float(f, out);
}

/// `json.dumps(v)` as a `String`.
pub fn to_string(v: &Value) -> String {
    let mut s = String::new();
    write_value(v, &mut s);
    s
}

/// `json.dumps(v).encode("utf-8")`.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut s = Vec::new();
    write_value(v, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_python_json_decode_error() {
        let e = parse("[1,\n  ]").unwrap_err();
        assert_eq!(e.to_string(), "Expecting value: line 2 column 3 (char 6)");
    }

    #[test]
    fn outputs_agree() {
        let v = parse(r#"{"k": ["\u00e9\ud83d\ude00", 1, 2.5, null, true]}"#).unwrap();
        let s = to_string(&v);
        assert_eq!(s.as_bytes(), to_vec(&v).as_slice());
        assert_eq!(s, r#"{"k": ["\u00e9\ud83d\ude00", 1, 2.5, null, true]}"#);
    }

    #[test]
    fn pieces_compose_like_a_whole_document() {
        // What the consistent-hash bucketer does: write the frame itself, the parts with
        // `write_str` / `write_value`.
        let mut out = String::new();
        out.push_str("[[");
        write_str("user_id", &mut out);
        out.push_str(", ");
        write_value(&Value::from(42), &mut out);
        out.push_str("]]");
        assert_eq!(out, r#"[["user_id", 42]]"#);
        let mut f = Vec::new();
        write_float(0.5, &mut f);
        assert_eq!(f, b"0.5");
    }
}
