//! `flipper eval`: every flag or the named ones, plain and `--json`, `--default` for missing
//! flags, the context's order deciding between a failed check and an error, the `memory:` store,
//! and the example flags file in `examples/` (its answers, and that it is in the canonical
//! export format).

use std::fs;

use assert_cmd::Command;
use tempfile::TempDir;

use super::{ok, store_dir, workspace_root};

// ---------------------------------------------------------------------------------------------
// eval

#[test]
fn eval_prints_every_flag_plain_and_json() {
    let dir = store_dir();
    assert_eq!(ok(&dir, &["eval"]), "beta\ttrue\noff\tfalse\non\ttrue\n");
    assert_eq!(
        ok(&dir, &["eval", "--json"]),
        r#"{"beta": {"enabled": true, "reason": "enabled"}, "off": {"enabled": false, "reason": "disabled"}, "on": {"enabled": true, "reason": "enabled"}}"#
            .to_owned()
            + "\n"
    );
    assert_eq!(
        ok(&dir, &["eval", "--context", r#"{"a": 2, "b": 2}"#, "--json"]),
        r#"{"beta": {"enabled": true, "reason": "conditions_matched"}, "off": {"enabled": false, "reason": "disabled"}, "on": {"enabled": true, "reason": "enabled"}}"#
            .to_owned()
            + "\n"
    );
}

#[test]
fn eval_named_flags_with_default() {
    let dir = store_dir();
    assert_eq!(
        ok(&dir, &["eval", "on", "missing", "off"]),
        "on\ttrue\nmissing\tfalse\noff\tfalse\n"
    );
    assert_eq!(
        ok(&dir, &["eval", "missing", "on", "--default", "true"]),
        "missing\ttrue\non\ttrue\n"
    );
    assert_eq!(
        ok(&dir, &["eval", "missing", "--default", "false", "--json"]),
        "{\"missing\": {\"enabled\": false, \"reason\": \"flag_missing\"}}\n"
    );
}

#[test]
fn eval_context_order_decides_which_check_runs_first() {
    let dir = store_dir();
    let fails_first = r#"{"b": 3, "a": "x"}"#;
    let errors_first = r#"{"a": "x", "b": 3}"#;
    assert_eq!(
        ok(&dir, &["eval", "beta", "--context", fails_first, "--json"]),
        "{\"beta\": {\"enabled\": false, \"reason\": \"conditions_failed\"}}\n"
    );
    assert_eq!(
        ok(&dir, &["eval", "beta", "--context", errors_first, "--json"]),
        "{\"beta\": {\"enabled\": false, \"reason\": \"error\", \"error\": \"TypeError: '>' not supported between instances of 'str' and 'int'\"}}\n"
    );
    // Plain output has just the answer.
    assert_eq!(
        ok(&dir, &["eval", "beta", "--context", errors_first]),
        "beta\tfalse\n"
    );
}

#[test]
fn eval_on_a_memory_store() {
    let dir = TempDir::new().unwrap();
    let run = |args: &[&str]| {
        let out = Command::cargo_bin("flipper")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("FLIPPER_STORE")
            .args(["--store", "memory:"])
            .args(args)
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    assert_eq!(run(&["eval"]), "");
    assert_eq!(run(&["eval", "--json"]), "{}\n");
    assert_eq!(
        run(&["eval", "a", "b", "--default", "true"]),
        "a\ttrue\nb\ttrue\n"
    );
    assert_eq!(
        run(&["eval", "a", "--json", "--context", r#"{"x": 1}"#]),
        "{\"a\": {\"enabled\": false, \"reason\": \"flag_missing\"}}\n"
    );
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

// ---------------------------------------------------------------------------------------------
// The example flags file

#[test]
fn example_flags_file_evaluates_sensibly() {
    let out = Command::cargo_bin("flipper")
        .unwrap()
        .current_dir(workspace_root())
        .env_remove("FLIPPER_STORE")
        .args([
            "--store",
            "json:examples/flags.json",
            "eval",
            "--context",
            r#"{"user_id": 42, "is_admin": true, "plan": "pro", "age": 30}"#,
        ])
        .assert()
        .success()
        .stderr("");
    assert_eq!(
        String::from_utf8(out.get_output().stdout.clone()).unwrap(),
        "checkout_v3\tfalse\n\
         dark_mode\ttrue\n\
         enterprise_reports\tfalse\n\
         legacy_checkout\tfalse\n\
         new_dashboard\ttrue\n\
         promo_banner\ttrue\n\
         search_v2\ttrue\n"
    );
}

#[test]
fn example_flags_file_is_in_canonical_export_format() {
    let example = fs::read_to_string(workspace_root().join("examples/flags.json")).unwrap();
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("flags.json"), &example).unwrap();
    assert_eq!(ok(&dir, &["flags", "export"]), example);
    let names = ok(&dir, &["flags", "list"]);
    assert!((5..=8).contains(&names.lines().count()), "{names}");
    // Writing to the copy works and leaves the original alone.
    ok(&dir, &["flags", "disable", "dark_mode"]);
    assert_eq!(
        ok(&dir, &["eval", "dark_mode", "--json"]),
        "{\"dark_mode\": {\"enabled\": false, \"reason\": \"disabled\"}}\n"
    );
    assert_eq!(
        fs::read_to_string(workspace_root().join("examples/flags.json")).unwrap(),
        example
    );
}
