//! The JSON codec against Python: the golden `json_encoding.jsonl` vectors (every line is
//! `json.dumps(json.loads(input))` computed by CPython 3.11) and property tests.

use flipper_core::json::{self, parse, to_string};
use flipper_core::{Int, Object, Value};
use num_bigint::BigInt;
use proptest::prelude::*;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/json_encoding.jsonl"
));

#[test]
fn golden_vectors() {
    let mut lines = 0;
    for (n, line) in VECTORS.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(line).expect("outer line");
        let input = record["input"].as_str().expect("input");
        let expected = record["expected"].as_str().expect("expected");
        let value = parse(input).unwrap_or_else(|e| panic!("line {}: {input:?}: {e}", n + 1));
        assert_eq!(to_string(&value), expected, "line {}: {input:?}", n + 1);
        // json.dumps output is ASCII and a fixed point of loads-then-dumps.
        assert!(expected.is_ascii(), "line {}", n + 1);
        let again = parse(expected).unwrap_or_else(|e| panic!("line {}: {expected:?}: {e}", n + 1));
        assert_eq!(again, value, "line {}", n + 1);
        assert_eq!(to_string(&again), expected, "line {}", n + 1);
        assert_eq!(json::to_vec(&again), expected.as_bytes(), "line {}", n + 1);
        assert_eq!(
            json::parse_bytes(input.as_bytes()),
            Ok(value),
            "line {}",
            n + 1
        );
        lines += 1;
    }
    assert_eq!(lines, 2000);
}

/// Python's `float` after a JSON round trip: every NaN is the one NaN `json.loads` produces.
fn canonical_float(f: f64) -> f64 {
    if f.is_nan() { f64::NAN } else { f }
}

fn big_int() -> impl Strategy<Value = Int> {
    (any::<bool>(), prop::collection::vec(any::<u32>(), 1..14)).prop_map(|(negative, digits)| {
        let sign = if negative {
            num_bigint::Sign::Minus
        } else {
            num_bigint::Sign::Plus
        };
        Int::from_big(BigInt::new(sign, digits))
    })
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_map(canonical_float),
        // Every bit pattern: subnormals, huge and tiny exponents, NaN payloads.
        any::<u64>().prop_map(|bits| canonical_float(f64::from_bits(bits))),
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(5e-324),
        Just(f64::MAX),
        (-1e6..1e6f64),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
        // Dense in the characters the writer escapes.
        prop::collection::vec(
            prop_oneof![
                (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('?')),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\u{7f}'),
                Just('\u{2028}'),
                Just('\u{feff}'),
                Just('\u{ffff}'),
                Just('😀'),
                Just('\u{10ffff}'),
                Just('a'),
            ],
            0..12
        )
        .prop_map(|c| c.into_iter().collect()),
        "[a-z_]{0,8}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        big_int().prop_map(Value::Int),
        float().prop_map(Value::Float),
        text().prop_map(Value::Str),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec((text(), inner), 0..8)
                .prop_map(|members| Value::from(members.into_iter().collect::<Object>())),
        ]
    })
}

/// Text made of JSON's punctuation and token fragments, so that random input gets deep into
/// the parser.
fn jsonish() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "\\",
        "\\u",
        "\\ud83d",
        "\\ude00",
        "d8",
        "00",
        " ",
        "\n",
        "\t",
        "-",
        "0",
        "17",
        ".",
        "e",
        "E+",
        "null",
        "true",
        "NaN",
        "-Infinity",
        "é",
        "😀",
        "\u{1}",
        "\u{feff}",
    ];
    let piece = prop::sample::select(PIECES);
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn written_values_read_back_identically(v in value()) {
        let text = to_string(&v);
        prop_assert!(text.is_ascii(), "{text}");
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &v, "{}", text);
        prop_assert_eq!(to_string(&back), text);
    }

    #[test]
    fn finite_documents_are_standard_json(v in value()) {
        // Without NaN / Infinity the output is standard JSON that serde_json reads too.
        let text = to_string(&v);
        if !text.contains("NaN") && !text.contains("Infinity") {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{}", text);
        }
    }

    #[test]
    fn floats_round_trip_through_text(f in float()) {
        let text = to_string(&Value::Float(f));
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, Value::Float(f), "{}", text);
    }

    #[test]
    fn parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_jsonish_text(s in jsonish()) {
        if let Err(e) = parse(&s) {
            prop_assert!(e.offset <= s.chars().count());
            prop_assert!(e.line >= 1 && e.column >= 1);
        }
    }

    #[test]
    fn parse_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = json::parse_bytes(&bytes);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn mutated_documents_never_panic(
        v in value(),
        cut in any::<prop::sample::Index>(),
        insert in jsonish(),
    ) {
        let text = to_string(&v);
        let at = cut.index(text.len() + 1);
        let mutated = format!("{}{insert}{}", &text[..at], &text[at..]);
        let _ = parse(&mutated);
        let _ = parse(&text[..at]);
    }
}
