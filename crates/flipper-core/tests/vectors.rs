//! Golden vectors computed with the real flipper-client 1.3.2 (see testdata/README.md).
//! Every line of every file is consumed; each test asserts the line count.

use flipper_core::bucketing::{
    Bucketer, Percentage, consistent_hash_bucket, consistent_hash_input,
};
use flipper_core::condition::parse_check_key;
use flipper_core::eval::{FixedEnv, Prepared, Reason, evaluate_or_default};
use flipper_core::{Checks, Item, Value, json};

fn lines(file: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/../../testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("vector lines are standard JSON"))
        .collect()
}

fn text<'a>(line: &'a serde_json::Value, field: &str) -> &'a str {
    line[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is text"))
}

/// A value from the outer (standard JSON) line, keeping the int/float kind.
fn outer(v: &serde_json::Value) -> Value {
    json::parse(&v.to_string()).expect("serde_json output parses")
}

fn checks_of(line: &serde_json::Value) -> Checks {
    match json::parse(text(line, "checks")).unwrap() {
        Value::Object(o) => Checks::from(*o),
        other => panic!("checks must be an object: {other:?}"),
    }
}

/// The clock the evaluation vectors were generated with.
const ENV: FixedEnv = FixedEnv {
    now: 1_700_000_000.0,
    random: 0.999_999,
};

#[test]
fn check_keys() {
    let all = lines("check_keys.jsonl");
    assert_eq!(all.len(), 242);
    for line in &all {
        let key = text(line, "key");
        match (parse_check_key(key), line.get("error")) {
            (Err(_), Some(e)) => assert_eq!(e, "InvalidSymbolError", "{key:?}"),
            (Ok((variable, op)), None) => {
                assert_eq!(variable, text(line, "variable"), "{key:?}");
                assert_eq!(op.symbol(), line["operator"].as_str(), "{key:?}");
            }
            (got, want) => panic!("{key:?}: got {got:?}, want error {want:?}"),
        }
    }
}

#[test]
fn consistent_hash() {
    let all = lines("consistent_hash.jsonl");
    assert_eq!(all.len(), 3000);
    for (i, line) in all.iter().enumerate() {
        let checks = checks_of(line);
        let whitelist: Vec<String> = line["key_whitelist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        let percentage = outer(&line["percentage"]);
        let bucketer = Bucketer::consistent_hash(
            Percentage::Fixed { value: percentage },
            whitelist.iter().cloned(),
        );
        let input = consistent_hash_input(&checks, &whitelist);
        assert_eq!(
            String::from_utf8(input).unwrap(),
            text(line, "hash_input"),
            "line {}",
            i + 1
        );
        let score = f64::from(consistent_hash_bucket(&checks, &whitelist)) / 100.0;
        assert_eq!(score, line["score"].as_f64().unwrap(), "line {}", i + 1);
        assert_eq!(
            bucketer.check(&checks, &ENV),
            Ok(line["enabled"].as_bool().unwrap()),
            "line {}",
            i + 1
        );
    }
}

#[test]
fn evaluation() {
    let all = lines("evaluation.jsonl");
    assert_eq!(all.len(), 5000);
    let mut errors = 0;
    for (i, line) in all.iter().enumerate() {
        let item = line["item"].as_str().map(|t| {
            Item::deserialize(t.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1))
        });
        let checks = checks_of(line);
        let default = line["default"].as_bool().unwrap();
        let got = evaluate_or_default(item.as_ref(), &checks, default, &ENV);
        // The answer alone comes out of the same algorithm, prepared or not.
        if let Some(item) = &item {
            assert_eq!(
                item.is_enabled(&checks, &ENV),
                got.enabled,
                "line {}",
                i + 1
            );
            assert_eq!(
                Prepared::new(item).is_enabled(item, &checks, &ENV),
                got.enabled,
                "line {}, prepared",
                i + 1
            );
        }
        match &line["result"] {
            serde_json::Value::Bool(want) => {
                assert_eq!(got.enabled, *want, "line {}: {:?}", i + 1, got.reason);
                assert!(!matches!(got.reason, Reason::Error(_)), "line {}", i + 1);
            }
            serde_json::Value::String(e) if e == "TypeError" => {
                errors += 1;
                assert!(!got.enabled, "line {}", i + 1);
                assert_eq!(
                    got.error_detail().map(|e| e.kind.as_str()),
                    Some("TypeError"),
                    "line {}: {:?}",
                    i + 1,
                    got.reason
                );
            }
            other => panic!("line {}: unexpected result {other}", i + 1),
        }
        // The stored form re-serializes byte for byte (whitelists of 2+ keys are sets in
        // Python, so their order is arbitrary there).
        if let (Some(item), Some(t)) = (&item, line["item"].as_str()) {
            let multi_key = matches!(
                &item.meta.bucketer,
                Bucketer::ConsistentHash { key_whitelist, .. } if key_whitelist.len() > 1
            );
            if !multi_key {
                assert_eq!(item.to_json(), t, "line {}", i + 1);
            }
        }
    }
    assert_eq!(errors, 642, "the README's count of TypeError lines");
}

#[test]
fn linear_ramp() {
    let all = lines("linear_ramp.jsonl");
    assert_eq!(all.len(), 500);
    for (i, line) in all.iter().enumerate() {
        let pct = Percentage::from_value(&outer(&line["percentage"])).unwrap();
        let now = line["now"].as_f64().unwrap();
        let want = line["expected"].as_f64().unwrap();
        let got = pct.value_at(now).unwrap().as_f64().unwrap();
        if (now * 64.0).fract() == 0.0 {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "line {}: {got} vs {want}",
                i + 1
            );
        } else {
            assert!(
                (got - want).abs() <= 1e-9,
                "line {}: {got} vs {want}",
                i + 1
            );
        }
        assert_eq!(
            Percentage::from_value(&pct.to_value()).unwrap(),
            pct,
            "line {}",
            i + 1
        );
    }
}
