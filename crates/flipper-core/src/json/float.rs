//! Python's `float.__repr__`, without allocating.
//!
//! Python's `repr` uses the shortest digits that round-trip and, among those, the closest to
//! the exact value, breaking an exact tie towards the even digit (David Gay's `dtoa` mode 0).
//! Ryu makes the same choice; Rust's own `{:e}` does not on ties (it writes
//! `1911547784184383.3` for the double `1911547784184383.25`, where Python writes `.2`).
//! This module takes Ryu's digits and lays them out as Python does: positional when the
//! exponent `e` of `d.ddd×10^e` satisfies `-4 <= e < 16` (always with a fractional digit),
//! otherwise `d[.ddd]e±XX`.

use super::Output;

/// Room for any repr: a sign, 17 significant digits and `0.000` or `.` and `e-308`.
const CAPACITY: usize = 32;

/// A small ASCII buffer on the stack; bytes beyond its capacity are dropped (never reached).
struct StackBuf {
    buf: [u8; CAPACITY],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        Self {
            buf: [0; CAPACITY],
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn push_zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.push(b"0");
        }
    }
}

pub(super) fn write_float<O: Output + ?Sized>(f: f64, out: &mut O) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let mut repr = StackBuf::new();
        format_finite(f, &mut repr);
        // Only ASCII is ever written to `repr`.
        if let Ok(s) = std::str::from_utf8(repr.bytes()) {
            out.push_str(s);
        }
    }
}

/// The shortest round-trip digits of a finite, non-negative `f` (no leading or trailing
/// zeros; `"0"` for zero) and the decimal exponent `e` of `d.ddd×10^e`.
fn shortest_digits(f: f64, digits: &mut StackBuf) -> i32 {
    let mut ryu = ryu::Buffer::new();
    // Ryu writes `[digits][.digits][e[-]digits]` in a layout of its own; read it back.
    let text = ryu.format_finite(f).as_bytes();
    let (mantissa, exp10) = match text.iter().position(|&b| b == b'e') {
        Some(e_at) => {
            let exp = std::str::from_utf8(&text[e_at + 1..])
                .ok()
                .and_then(|e| e.parse::<i32>().ok())
                .unwrap_or(0);
            (&text[..e_at], exp)
        }
        None => (text, 0),
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let all_digits = mantissa.iter().copied().filter(u8::is_ascii_digit);
    // Position (in the digit sequence without the point) of the first significant digit.
    let first_at = all_digits.clone().position(|b| b != b'0');
    for b in all_digits.skip(first_at.unwrap_or(usize::MAX)) {
        digits.push(&[b]);
    }
    let Some(first_at) = first_at else {
        digits.push(b"0");
        return 0;
    };
    while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    // `point` counts the digits before the point: all of them are digits.
    point as i32 - 1 - first_at as i32 + exp10
}

/// `repr(f)` for a finite `f`.
fn format_finite(f: f64, repr: &mut StackBuf) {
    let mut digits = StackBuf::new();
    let exp = shortest_digits(f.abs(), &mut digits);
    let (first, rest) = digits.bytes().split_at(1);

    if f.is_sign_negative() {
        repr.push(b"-");
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            // 0.000ddd
            repr.push(b"0.");
            repr.push_zeros(exp.unsigned_abs() as usize - 1);
            repr.push(first);
            repr.push(rest);
        } else {
            // ddd[000].ddd / ddd.0
            let int_digits = exp.unsigned_abs() as usize;
            repr.push(first);
            if rest.len() > int_digits {
                repr.push(&rest[..int_digits]);
                repr.push(b".");
                repr.push(&rest[int_digits..]);
            } else {
                repr.push(rest);
                repr.push_zeros(int_digits - rest.len());
                repr.push(b".0");
            }
        }
    } else {
        repr.push(first);
        if !rest.is_empty() {
            repr.push(b".");
            repr.push(rest);
        }
        repr.push(if exp < 0 { b"e-" } else { b"e+" });
        let mut buf = itoa::Buffer::new();
        let exp_digits = buf.format(exp.unsigned_abs());
        if exp_digits.len() < 2 {
            repr.push(b"0");
        }
        repr.push(exp_digits.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut s = String::new();
        write_float(f, &mut s);
        s
    }

    #[test]
    fn python_repr_examples() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (123.456, "123.456"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (9_007_199_254_740_993.0, "9007199254740992.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-4 * 3.0, "0.00030000000000000003"),
            // An exact tie between two shortest candidates: Python takes the even digit.
            (1_911_547_784_184_383.0 + 0.25, "1911547784184383.2"),
            (1e23, "1e+23"),
            (9.999999999999997e22, "9.999999999999997e+22"),
            (f64::NAN, "NaN"),
            (-f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(f, expected) in cases {
            assert_eq!(repr(f), expected, "{f:e}");
        }
    }

    #[test]
    fn longest_outputs_fit() {
        // Negative, 17 digits, three-digit negative exponent / deepest positional forms.
        assert_eq!(repr(-1.2345678901234567e-300), "-1.2345678901234568e-300");
        assert_eq!(repr(-0.00012345678901234567), "-0.00012345678901234567");
        assert_eq!(repr(-1234567890123456.8), "-1234567890123456.8");
    }

    #[test]
    fn reprs_round_trip() {
        let mut x = 1.0e-320_f64;
        while x < 1e300 {
            for f in [x, -x, x * 1.000_000_1, x / 3.0] {
                assert_eq!(repr(f).parse::<f64>().unwrap().to_bits(), f.to_bits());
            }
            x *= 7.3;
        }
    }
}
