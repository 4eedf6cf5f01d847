//! Bad input: exit code 2, one line on standard error, the store file unchanged. Store URLs,
//! unreadable and malformed store files, malformed JSON arguments, condition keys and values,
//! bucketers, missing flags, and import files (and standard input) that do not parse.

use std::fs;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use super::{NOOP, OFF, ON, fixture, flipper, input_error, store_bytes, store_dir};

#[test]
fn unknown_or_malformed_store_url() {
    let dir = store_dir();
    for url in ["ftp://flags", "redis", "json:", "memory:x"] {
        let out = Command::cargo_bin("flipper")
            .unwrap()
            .current_dir(dir.path())
            .args(["--store", url, "flags", "create", "x"])
            .assert()
            .code(2)
            .stdout("")
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("flipper: error: invalid store URL {url:?}: "))
                && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    Command::cargo_bin("flipper")
        .unwrap()
        .current_dir(dir.path())
        .env("FLIPPER_STORE", "nope:x")
        .args(["eval"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown scheme \"nope\""));
    assert_eq!(store_bytes(&dir), fixture().as_bytes());
}

#[test]
fn unreadable_store_file() {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("flags.json")).unwrap();
    input_error(&dir, &["flags", "list"], "cannot read flags.json");
    input_error(&dir, &["eval"], "cannot read flags.json");
    input_error(&dir, &["eval", "on"], "cannot read flags.json");
    input_error(&dir, &["flags", "create", "x"], "cannot read flags.json");
}

#[test]
fn malformed_store_file_is_never_written() {
    let dir = TempDir::new().unwrap();
    let broken =
        format!("[\n{ON},\n{{\"feature_name\": \"x\", \"is_enabled\": true, \"meta\": {{}}}}\n]\n");
    fs::write(dir.path().join("flags.json"), &broken).unwrap();
    let why = "flags.json: line 3: flag #2: meta.created_date: is missing";
    input_error(&dir, &["flags", "list"], why);
    input_error(&dir, &["flags", "export"], why);
    input_error(&dir, &["flags", "get", "on"], why);
    input_error(&dir, &["eval"], why);
    input_error(&dir, &["eval", "on"], why);
    input_error(&dir, &["flags", "create", "new"], why);
    input_error(&dir, &["flags", "enable", "on"], why);
    input_error(&dir, &["flags", "destroy", "on"], why);
    fs::write(dir.path().join("in.json"), fixture()).unwrap();
    input_error(&dir, &["flags", "import", "in.json"], why);

    fs::write(dir.path().join("flags.json"), "[{\"feature_name\": ").unwrap();
    input_error(
        &dir,
        &["flags", "create", "new", "--enabled"],
        "flags.json: invalid JSON: Expecting value: line 1 column 19 (char 18)",
    );
}

#[test]
fn malformed_json_arguments() {
    let dir = store_dir();
    let expecting = "invalid JSON: Expecting";
    input_error(
        &dir,
        &["eval", "--context", "{"],
        "--context: invalid JSON: Expecting",
    );
    input_error(
        &dir,
        &["eval", "--context", "[1, 2]"],
        "--context: expected a JSON object, found a JSON array",
    );
    input_error(
        &dir,
        &["flags", "create", "new", "--client-data", "{'a': 1}"],
        "--client-data: invalid JSON: Expecting property name enclosed in double quotes",
    );
    input_error(
        &dir,
        &["flags", "create", "new", "--client-data", "[]"],
        "--client-data: expected a JSON object",
    );
    input_error(&dir, &["flags", "set-client-data", "beta", "{"], expecting);
    input_error(
        &dir,
        &["flags", "set-client-data", "beta", "\"x\""],
        "expected a JSON object, found a JSON string",
    );
    input_error(&dir, &["flags", "set-bucketer", "beta", "{"], expecting);
    input_error(
        &dir,
        &["flags", "set-conditions", "beta", "--json", "[{"],
        "--json: invalid JSON",
    );
    input_error(
        &dir,
        &["flags", "set-conditions", "beta", "--json", "{}"],
        "--json: expected a JSON array",
    );
}

#[test]
fn invalid_condition_keys_and_values() {
    let dir = store_dir();
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "plan__IN=1"],
        "invalid condition key \"plan__IN\": operator not supported: \"IN\"",
    );
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "x__=1"],
        "invalid condition key \"x__\"",
    );
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "age__gte=18", "x___gt=1"],
        "invalid condition key \"x___gt\"",
    );
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "plan=pro"],
        "invalid JSON value for \"plan\"",
    );
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "age"],
        "expected a check as KEY=JSON",
    );
    input_error(
        &dir,
        &["flags", "add-condition", "beta", "a=1", "a=2"],
        "condition key \"a\" is given twice",
    );
    input_error(
        &dir,
        &[
            "flags",
            "set-conditions",
            "beta",
            "-c",
            "a=1",
            "-c",
            "b__eq=2",
        ],
        "invalid condition key \"b__eq\"",
    );
    input_error(
        &dir,
        &["flags", "set-conditions", "beta", "-c", "plan__in=[\"pro\""],
        "invalid JSON value for \"plan__in\"",
    );
    input_error(
        &dir,
        &["flags", "set-conditions", "beta", "-c", "  "],
        "--condition needs at least one check",
    );
    input_error(
        &dir,
        &[
            "flags",
            "set-conditions",
            "beta",
            "--json",
            r#"[{"a": [{"variable": "a", "value": 1, "operator": "between"}]}]"#,
        ],
        "--json: conditions[0]: a[0]: operator not supported: \"between\"",
    );
}

#[test]
fn invalid_bucketers() {
    let dir = store_dir();
    input_error(
        &dir,
        &["flags", "set-bucketer", "beta", r#"{"type": "Nope"}"#],
        "invalid bucketer: bucketer type not supported: \"Nope\"",
    );
    input_error(
        &dir,
        &["flags", "set-bucketer", "beta", "[]"],
        "invalid bucketer: a bucketer must be an object",
    );
    input_error(
        &dir,
        &[
            "flags",
            "set-bucketer",
            "beta",
            r#"{"type": "PercentageBucketer", "percentage": {"type": "Half"}}"#,
        ],
        "invalid bucketer: percentage type not supported: \"Half\"",
    );
}

#[test]
fn missing_flags() {
    let dir = store_dir();
    let why = "flag \"nope\" does not exist";
    let commands: &[&[&str]] = &[
        &["flags", "get", "nope"],
        &["flags", "enable", "nope"],
        &["flags", "disable", "nope"],
        &["flags", "destroy", "nope"],
        &["flags", "add-condition", "nope", "a=1"],
        &["flags", "set-conditions", "nope", "-c", "a=1"],
        &["flags", "set-conditions", "nope", "--json", "[]"],
        &["flags", "set-bucketer", "nope", NOOP],
        &["flags", "set-client-data", "nope", "{}"],
        &["flags", "get-client-data", "nope"],
        &["flags", "get-meta", "nope"],
    ];
    for args in commands {
        input_error(&dir, args, why);
    }
}

#[test]
fn bad_import_files() {
    let dir = store_dir();
    input_error(
        &dir,
        &["flags", "import", "absent.json"],
        "cannot read absent.json: ",
    );
    fs::create_dir(dir.path().join("sub")).unwrap();
    input_error(&dir, &["flags", "import", "sub"], "cannot read sub: ");
    let cases = [
        (
            "{}",
            "bad.json: expected a JSON array of flags, found a JSON object",
        ),
        (
            "[1,]",
            "bad.json: invalid JSON: Expecting value: line 1 column 4 (char 3)",
        ),
        (
            // The first flag is fine, the second is not: nothing is written.
            &*format!("[\n{ON},\n{OFF},\n{ON}\n]"),
            "bad.json: line 4: flag \"on\" appears twice (first on line 2)",
        ),
        (
            "[\n{\"feature_name\": \"new\", \"is_enabled\": true, \"meta\": {\"created_date\": 1, \"bucketer\": {\"type\": \"X\"}}}\n]",
            "bad.json: line 2: flag #1: meta.bucketer: bucketer type not supported: \"X\"",
        ),
    ];
    for (text, why) in cases {
        fs::write(dir.path().join("bad.json"), text).unwrap();
        input_error(&dir, &["flags", "import", "bad.json"], why);
    }
    fs::write(dir.path().join("bad.json"), b"[\xff]").unwrap();
    input_error(
        &dir,
        &["flags", "import", "bad.json"],
        "bad.json: not UTF-8 (at byte 1)",
    );
    // Standard input too.
    let before = store_bytes(&dir);
    flipper(dir.path(), &["flags", "import", "-"])
        .write_stdin("[")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "flipper: error: <stdin>: invalid JSON",
        ));
    assert_eq!(store_bytes(&dir), before);
}
