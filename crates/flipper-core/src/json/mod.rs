//! Python-exact JSON: reading as `json.loads` does, writing byte-identical to `json.dumps`.
//!
//! STUB: API fixed, bodies being written.

use crate::Value;

/// Where the writer puts its output: a `String`, a `Vec<u8>`, or a hasher.
pub trait Output {
    /// Appends ASCII/UTF-8 text.
    fn push_str(&mut self, s: &str);
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
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let _ = text;
    unimplemented!("json::parse")
}

/// Parses UTF-8 bytes as Python's `json.loads(data.decode("utf-8"))`.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, ParseError> {
    let _ = bytes;
    unimplemented!("json::parse_bytes")
}

/// Writes `v` as Python's `json.dumps(v)` with default arguments.
pub fn write_value<O: Output + ?Sized>(v: &Value, out: &mut O) {
    let _ = (v, out);
    unimplemented!("json::write_value")
}

/// Writes a string literal (with quotes) as `json.dumps` does (ensure_ascii).
pub fn write_str<O: Output + ?Sized>(s: &str, out: &mut O) {
    let _ = (s, out);
    unimplemented!("json::write_str")
}

/// Writes a float as Python's `float.__repr__` (`NaN`, `Infinity`, `-Infinity` as bare tokens).
pub fn write_float<O: Output + ?Sized>(f: f64, out: &mut O) {
    let _ = (f, out);
    unimplemented!("json::write_float")
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
