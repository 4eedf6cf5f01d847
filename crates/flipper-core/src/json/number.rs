//! Numbers, as CPython 3.11's C scanner (`_match_number_unicode`) reads them: the longest
//! prefix matching `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`, an `int` without fraction and
//! exponent (`PyLong_FromString`, with its 4300-digit limit), else a `float`.

use num_bigint::BigInt;

use super::error::{RawError, raw};
use crate::{Int, Value};

/// Python 3.11's default `sys.get_int_max_str_digits()`.
const MAX_INT_DIGITS: usize = 4300;

/// The number starting at byte offset `start` of `text`, and the offset just after it.
/// Where no number starts, "Expecting value" (what Python reports for any unexpected text).
pub(super) fn read_number(text: &str, start: usize) -> Result<(Value, usize), RawError> {
    let bytes = text.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
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
    let literal = &text[start..i];
    if i != int_end {
        // Correctly rounded, with overflow to infinity and underflow to zero, as Python's
        // `float()`. The literal always matches Rust's float grammar.
        return literal
            .parse::<f64>()
            .map(|f| (Value::Float(f), i))
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
        let value = if negative { -magnitude } else { magnitude };
        return Ok((Value::Int(Int::from(value)), i));
    }
    BigInt::parse_bytes(literal.as_bytes(), 10)
        .map(|b| (Value::Int(Int::from_big(b)), i))
        .ok_or_else(|| raw(start, "Expecting value"))
}

#[cfg(test)]
mod tests {
    use crate::Value;
    use crate::json::{parse, to_string};

    /// `json.dumps(json.loads(text))`.
    fn round(text: &str) -> String {
        match parse(text) {
            Ok(v) => to_string(&v),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    #[test]
    fn numbers() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("1E+2", "100.0"),
            ("1e-2", "0.01"),
            ("1.5e0", "1.5"),
            ("1e16", "1e+16"),
            ("1e0001", "10.0"),
            ("123456789012345678", "123456789012345678"),
            ("-999999999999999999", "-999999999999999999"),
            ("9223372036854775807", "9223372036854775807"),
            ("9223372036854775808", "9223372036854775808"),
            ("-9223372036854775809", "-9223372036854775809"),
            ("18446744073709551616", "18446744073709551616"),
            ("9007199254740993.0", "9007199254740992.0"),
            ("1e400", "Infinity"),
            ("-1e400", "-Infinity"),
            ("1.7976931348623159e308", "Infinity"),
            ("1e-400", "0.0"),
            ("-1e-400", "-0.0"),
            ("2.5e-324", "5e-324"),
            ("1e99999999999999999999999", "Infinity"),
            ("0e99999999999999999999999", "0.0"),
            (
                "0.1000000000000000055511151231257827021181583404541015625",
                "0.1",
            ),
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
        ];
        for (text, expected) in cases {
            assert_eq!(round(text), expected, "{text}");
        }
        assert!(matches!(parse("-0"), Ok(Value::Int(i)) if i.is_zero()));
        assert!(matches!(parse("1.0"), Ok(Value::Float(_))));
        let long = format!("-{}", "7".repeat(301));
        assert_eq!(round(&long), long);
    }

    #[test]
    fn int_digit_limit_matches_python() {
        let limit = "9".repeat(4300);
        assert_eq!(round(&limit), limit);
        assert_eq!(round(&format!("-{limit}")), format!("-{limit}"));
        let e = parse(&format!("[1, -{limit}1]")).unwrap_err();
        assert_eq!(
            e.message,
            "Exceeds the limit (4300 digits) for integer string conversion: value has 4301 \
             digits; use sys.set_int_max_str_digits() to increase the limit"
        );
        assert_eq!((e.line, e.column, e.offset), (1, 5, 4));
        // Floats have no such limit.
        assert_eq!(round(&format!("{limit}.0")), "Infinity");
        assert_eq!(round(&format!("0.{limit}")), "1.0");
    }

    #[test]
    fn numbers_end_where_the_grammar_does() {
        let cases = [
            ("0", 1),
            ("01", 1),
            ("-0x1", 2),
            ("1.", 1),
            ("1.e5", 1),
            ("1.5.", 3),
            ("1e", 1),
            ("1e+", 1),
            ("1e+5+", 4),
            ("12E-07x", 6),
            ("-12.50e3]", 8),
        ];
        for (text, end) in cases {
            let (_, got) = super::read_number(text, 0).unwrap_or_else(|_| panic!("{text}"));
            assert_eq!(got, end, "{text}");
        }
        for text in ["-", "-a", "+1", ".5", "", "-.5", "e5"] {
            let e = super::read_number(text, 0).expect_err(text);
            assert_eq!((e.pos, &*e.message), (0, "Expecting value"), "{text}");
        }
    }
}
