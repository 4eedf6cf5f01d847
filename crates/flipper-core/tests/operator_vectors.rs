//! Golden vectors for Python's operators: every line of `testdata/operators.jsonl`, produced by
//! flipper-client 1.3.2's `Operator.factory(operator).compare(runtime, stored)`. Each line is
//! checked through `pyops` (Python's semantics) and through `Operator::apply` (what conditions
//! call, with its fast paths).

use flipper_core::Value;
use flipper_core::condition::Operator;
use flipper_core::pyops::{self, CmpOp, TypeError};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/operators.jsonl"
);

/// `runtime <operator> stored` as flipper-client's operator symbol spells it.
fn apply(operator: Option<&str>, runtime: &Value, stored: &Value) -> Result<bool, TypeError> {
    match operator {
        None => Ok(pyops::eq(runtime, stored)),
        Some("ne") => Ok(pyops::ne(runtime, stored)),
        Some("gt") => pyops::compare(runtime, CmpOp::Gt, stored),
        Some("gte") => pyops::compare(runtime, CmpOp::Ge, stored),
        Some("lt") => pyops::compare(runtime, CmpOp::Lt, stored),
        Some("lte") => pyops::compare(runtime, CmpOp::Le, stored),
        Some("in") => pyops::contains(stored, runtime),
        Some("not_in") => pyops::contains(stored, runtime).map(|found| !found),
        Some(other) => panic!("unknown operator {other:?}"),
    }
}

#[test]
fn every_operator_vector_matches_python() {
    let vectors = std::fs::read_to_string(VECTORS).expect("read operators.jsonl");
    let mut count = 0;
    let mut failures = Vec::new();
    for (index, line) in vectors.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {}: not JSON: {e}", index + 1));
        let operator = match &record["operator"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.as_str()),
            other => panic!("line {}: bad operator {other}", index + 1),
        };
        let text = |field: &str| {
            record[field]
                .as_str()
                .unwrap_or_else(|| panic!("line {}: {field} is not a string", index + 1))
                .to_owned()
        };
        let (runtime_text, stored_text) = (text("runtime"), text("stored"));
        let runtime = flipper_core::json::parse(&runtime_text)
            .unwrap_or_else(|e| panic!("line {}: runtime {runtime_text}: {e}", index + 1));
        let stored = flipper_core::json::parse(&stored_text)
            .unwrap_or_else(|e| panic!("line {}: stored {stored_text}: {e}", index + 1));
        let expected = match &record["result"] {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::String(s) if s == "TypeError" => None,
            other => panic!("line {}: bad result {other}", index + 1),
        };
        let got = apply(operator, &runtime, &stored);
        let op =
            Operator::from_symbol(operator).unwrap_or_else(|e| panic!("line {}: {e}", index + 1));
        let through_apply = op.apply(&runtime, &stored);
        if through_apply.as_ref().ok().copied() != expected {
            failures.push(format!(
                "line {}: Operator::apply: {runtime_text} {} {stored_text}: expected {:?}, got {through_apply:?}",
                index + 1,
                operator.unwrap_or("=="),
                expected,
            ));
        }
        if got.as_ref().ok().copied() != expected {
            failures.push(format!(
                "line {}: {runtime_text} {} {stored_text}: expected {}, got {got:?}",
                index + 1,
                operator.unwrap_or("=="),
                expected.map_or_else(|| "TypeError".to_owned(), |b| b.to_string()),
            ));
        }
        count += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {count} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        count, 3000,
        "operators.jsonl should have exactly 3000 lines"
    );
}
