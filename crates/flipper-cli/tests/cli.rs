//! End-to-end tests of the `flipper` binary: every subcommand on a `json:` store in a temporary
//! directory, `memory:` for eval, exact outputs, and every bad-input case (exit code 2, one line
//! on standard error, store file unchanged).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

const ON: &str = r#"{"feature_name": "on", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1700000002, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#;
const OFF: &str = r#"{"feature_name": "off", "is_enabled": false, "meta": {"client_data": {}, "created_date": 1700000001, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#;
/// Condition `a__gt=1, b=2`: with `a` a string, the order of the context decides between a
/// failed check and a `TypeError`.
const BETA: &str = r#"{"feature_name": "beta", "is_enabled": true, "meta": {"client_data": {"team": "x"}, "created_date": 1700000000, "conditions": [{"a": [{"variable": "a", "value": 1, "operator": "gt"}], "b": [{"variable": "b", "value": 2, "operator": null}]}], "bucketer": {"type": "NoOpBucketer"}}}"#;

const STORE: &str = "json:flags.json";

fn fixture() -> String {
    format!("[\n{BETA},\n{OFF},\n{ON}\n]\n")
}

/// A temporary directory holding `flags.json` with the fixture's flags.
fn store_dir() -> TempDir {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("flags.json"), fixture()).unwrap();
    dir
}

fn store_bytes(dir: &TempDir) -> Vec<u8> {
    fs::read(dir.path().join("flags.json")).unwrap()
}

/// `flipper --store json:flags.json ARGS...`, run in `dir`, with no `FLIPPER_STORE`.
fn flipper(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("flipper").unwrap();
    cmd.current_dir(dir)
        .env_remove("FLIPPER_STORE")
        .arg("--store")
        .arg(STORE)
        .args(args);
    cmd
}

/// Runs a command that must succeed and returns its standard output.
fn ok(dir: &TempDir, args: &[&str]) -> String {
    let out = flipper(dir.path(), args).assert().success().stderr("");
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// Runs a command that must fail with exit code 2 and one line on standard error naming the
/// problem (containing `needle`), leaving the store file byte for byte as it was.
fn input_error(dir: &TempDir, args: &[&str], needle: &str) {
    let before = fs::read(dir.path().join("flags.json")).ok();
    let out = flipper(dir.path(), args)
        .assert()
        .code(2)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("flipper: error: ")
            && stderr.ends_with('\n')
            && stderr.lines().count() == 1,
        "{args:?}: not one error line: {stderr:?}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    let after = fs::read(dir.path().join("flags.json")).ok();
    assert_eq!(before, after, "{args:?} changed the store file");
}

fn meta_line(created: &str, conditions: &str, bucketer: &str, client_data: &str) -> String {
    format!(
        "{{\"client_data\": {client_data}, \"created_date\": {created}, \"conditions\": {conditions}, \"bucketer\": {bucketer}}}\n"
    )
}

const NOOP: &str = r#"{"type": "NoOpBucketer"}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Help

#[test]
fn help_has_about_and_examples() {
    let dir = TempDir::new().unwrap();
    let top = flipper(dir.path(), &["--help"]).assert().success();
    let text = String::from_utf8(top.get_output().stdout.clone()).unwrap();
    for needle in [
        "Usage: flipper",
        "FLIPPER_STORE",
        "Examples:",
        "Exit status",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    let subcommands: &[&[&str]] = &[
        &["eval"],
        &["flags", "list"],
        &["flags", "get"],
        &["flags", "create"],
        &["flags", "enable"],
        &["flags", "disable"],
        &["flags", "destroy"],
        &["flags", "add-condition"],
        &["flags", "set-conditions"],
        &["flags", "set-bucketer"],
        &["flags", "set-client-data"],
        &["flags", "get-client-data"],
        &["flags", "get-meta"],
        &["flags", "export"],
        &["flags", "import"],
    ];
    for sub in subcommands {
        let mut args = sub.to_vec();
        args.push("--help");
        flipper(dir.path(), &args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = store_dir();
    flipper(dir.path(), &["flags", "frobnicate"])
        .assert()
        .code(2);
    flipper(dir.path(), &["eval", "--default", "maybe"])
        .assert()
        .code(2);
    flipper(dir.path(), &["flags", "add-condition", "beta"])
        .assert()
        .code(2);
    // set-conditions needs --condition or --json, not both.
    flipper(dir.path(), &["flags", "set-conditions", "beta"])
        .assert()
        .code(2);
    flipper(
        dir.path(),
        &[
            "flags",
            "set-conditions",
            "beta",
            "-c",
            "a=1",
            "--json",
            "[]",
        ],
    )
    .assert()
    .code(2);
    assert_eq!(store_bytes(&dir), fixture().as_bytes());
}

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

#[test]
fn store_comes_from_the_environment() {
    let dir = store_dir();
    fs::rename(dir.path().join("flags.json"), dir.path().join("env.json")).unwrap();
    Command::cargo_bin("flipper")
        .unwrap()
        .current_dir(dir.path())
        .env("FLIPPER_STORE", "json:env.json")
        .args(["eval", "on"])
        .assert()
        .success()
        .stdout("on\ttrue\n");
    // The default store is json:flipper.json in the working directory.
    fs::rename(dir.path().join("env.json"), dir.path().join("flipper.json")).unwrap();
    Command::cargo_bin("flipper")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("FLIPPER_STORE")
        .args(["flags", "list"])
        .assert()
        .success()
        .stdout("beta\noff\non\n");
}

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

// ---------------------------------------------------------------------------------------------
// flags: reading

#[test]
fn list_names_pages_and_json() {
    let dir = store_dir();
    assert_eq!(ok(&dir, &["flags", "list"]), "beta\noff\non\n");
    assert_eq!(
        ok(&dir, &["flags", "list", "--limit", "1", "--offset", "1"]),
        "off\n"
    );
    assert_eq!(ok(&dir, &["flags", "list", "--offset", "5"]), "");
    assert_eq!(ok(&dir, &["flags", "list", "--json"]), fixture());
    assert_eq!(
        ok(&dir, &["flags", "list", "--json", "--limit", "1"]),
        format!("[\n{BETA}\n]\n")
    );
    let empty = TempDir::new().unwrap();
    assert_eq!(ok(&empty, &["flags", "list"]), "");
    assert_eq!(ok(&empty, &["flags", "list", "--json"]), "[]\n");
    assert!(!empty.path().join("flags.json").exists());
}

#[test]
fn get_prints_the_stored_form() {
    let dir = store_dir();
    assert_eq!(ok(&dir, &["flags", "get", "beta"]), format!("{BETA}\n"));
    assert_eq!(ok(&dir, &["flags", "get", "off"]), format!("{OFF}\n"));
}

#[test]
fn get_meta_and_client_data() {
    let dir = store_dir();
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "beta"]),
        meta_line(
            "1700000000",
            r#"[{"a": [{"variable": "a", "value": 1, "operator": "gt"}], "b": [{"variable": "b", "value": 2, "operator": null}]}]"#,
            NOOP,
            r#"{"team": "x"}"#
        )
    );
    assert_eq!(
        ok(&dir, &["flags", "get-client-data", "beta"]),
        "{\"team\": \"x\"}\n"
    );
    assert_eq!(ok(&dir, &["flags", "get-client-data", "on"]), "{}\n");
}

#[test]
fn export_prints_the_export_format() {
    let dir = store_dir();
    assert_eq!(ok(&dir, &["flags", "export"]), fixture());
    assert_eq!(ok(&TempDir::new().unwrap(), &["flags", "export"]), "[]\n");
}

// ---------------------------------------------------------------------------------------------
// flags: writing

#[test]
fn create_enable_disable_destroy() {
    let dir = TempDir::new().unwrap();
    let before = now();
    assert_eq!(
        ok(
            &dir,
            &[
                "flags",
                "create",
                "banner",
                "--client-data",
                r#"{"color": "blue"}"#
            ]
        ),
        ""
    );
    let after = now();
    let got = ok(&dir, &["flags", "get", "banner"]);
    let created: u64 = got
        .split("\"created_date\": ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect(&got);
    assert!((before..=after).contains(&created), "{created}");
    assert_eq!(
        got,
        format!(
            "{{\"feature_name\": \"banner\", \"is_enabled\": false, \"meta\": {{\"client_data\": {{\"color\": \"blue\"}}, \"created_date\": {created}, \"conditions\": [], \"bucketer\": {NOOP}}}}}\n"
        )
    );
    assert_eq!(ok(&dir, &["eval", "banner"]), "banner\tfalse\n");
    ok(&dir, &["flags", "enable", "banner"]);
    assert_eq!(ok(&dir, &["eval", "banner"]), "banner\ttrue\n");
    assert!(ok(&dir, &["flags", "get", "banner"]).contains("\"is_enabled\": true"));
    ok(&dir, &["flags", "disable", "banner"]);
    assert_eq!(
        ok(&dir, &["eval", "banner", "--json"]),
        "{\"banner\": {\"enabled\": false, \"reason\": \"disabled\"}}\n"
    );
    ok(&dir, &["flags", "create", "other", "--enabled"]);
    assert!(
        ok(&dir, &["flags", "get", "other"])
            .contains("\"is_enabled\": true, \"meta\": {\"client_data\": {}, \"created_date\": ")
    );
    assert_eq!(ok(&dir, &["flags", "list"]), "banner\nother\n");
    ok(&dir, &["flags", "destroy", "banner"]);
    assert_eq!(ok(&dir, &["flags", "list"]), "other\n");
    // The file is the export format.
    let file = fs::read_to_string(dir.path().join("flags.json")).unwrap();
    assert_eq!(file, ok(&dir, &["flags", "export"]));
}

#[test]
fn create_replaces_an_existing_flag() {
    let dir = store_dir();
    ok(&dir, &["flags", "create", "beta", "--enabled"]);
    let meta = ok(&dir, &["flags", "get-meta", "beta"]);
    assert!(meta.starts_with("{\"client_data\": {}, \"created_date\": "));
    assert!(meta.ends_with(&format!("\"conditions\": [], \"bucketer\": {NOOP}}}\n")));
}

#[test]
fn add_condition_appends_one_condition() {
    let dir = store_dir();
    ok(
        &dir,
        &[
            "flags",
            "add-condition",
            "on",
            "is_admin=true",
            r#"plan__in=["pro", "enterprise"]"#,
        ],
    );
    ok(&dir, &["flags", "add-condition", "on", "age__gte=18"]);
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "on"]),
        meta_line(
            "1700000002",
            r#"[{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}]"#,
            NOOP,
            "{}"
        )
    );
    let context = r#"{"is_admin": true, "plan": "pro", "age": 17}"#;
    assert_eq!(
        ok(&dir, &["eval", "on", "--json", "--context", context]),
        "{\"on\": {\"enabled\": false, \"reason\": \"conditions_failed\"}}\n"
    );
    let context = r#"{"is_admin": true, "plan": "enterprise", "age": 18}"#;
    assert_eq!(
        ok(&dir, &["eval", "on", "--context", context]),
        "on\ttrue\n"
    );
}

#[test]
fn set_conditions_from_options_and_from_json() {
    let dir = store_dir();
    ok(
        &dir,
        &[
            "flags",
            "set-conditions",
            "beta",
            "--condition",
            r#"is_admin=true  plan__in=["pro", "enterprise"]"#,
            "-c",
            r#"age__gte=18 name__ne="A B""#,
        ],
    );
    let expected = r#"[{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}], "name": [{"variable": "name", "value": "A B", "operator": "ne"}]}]"#;
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "beta"]),
        meta_line("1700000000", expected, NOOP, r#"{"team": "x"}"#)
    );

    // The stored form, as get-meta prints it, is accepted by --json.
    ok(&dir, &["flags", "set-conditions", "on", "--json", expected]);
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "on"]),
        meta_line("1700000002", expected, NOOP, "{}")
    );

    ok(&dir, &["flags", "set-conditions", "on", "--json", "[]"]);
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "on"]),
        meta_line("1700000002", "[]", NOOP, "{}")
    );
}

#[test]
fn set_bucketer_replaces_the_bucketer() {
    let dir = store_dir();
    let bucketer = r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}"#;
    ok(&dir, &["flags", "set-bucketer", "on", bucketer]);
    assert_eq!(
        ok(&dir, &["flags", "get-meta", "on"]),
        meta_line("1700000002", "[]", bucketer, "{}")
    );
    // user_id 1 hashes to bucket 0.48, user_id 2 to 0.94 (flipper-client's buckets).
    assert_eq!(
        ok(
            &dir,
            &["eval", "on", "--json", "--context", r#"{"user_id": 1}"#]
        ),
        "{\"on\": {\"enabled\": true, \"reason\": \"bucketed_in\"}}\n"
    );
    assert_eq!(
        ok(
            &dir,
            &["eval", "on", "--json", "--context", r#"{"user_id": 2}"#]
        ),
        "{\"on\": {\"enabled\": false, \"reason\": \"bucketed_out\"}}\n"
    );
    ok(&dir, &["flags", "set-bucketer", "on", NOOP]);
    assert_eq!(ok(&dir, &["flags", "get", "on"]), format!("{ON}\n"));
}

#[test]
fn set_client_data_merges() {
    let dir = store_dir();
    ok(
        &dir,
        &[
            "flags",
            "set-client-data",
            "beta",
            r#"{"color": "red", "n": [1, 2.5]}"#,
        ],
    );
    assert_eq!(
        ok(&dir, &["flags", "get-client-data", "beta"]),
        "{\"team\": \"x\", \"color\": \"red\", \"n\": [1, 2.5]}\n"
    );
    ok(
        &dir,
        &["flags", "set-client-data", "beta", r#"{"team": "y"}"#],
    );
    assert_eq!(
        ok(&dir, &["flags", "get-client-data", "beta"]),
        "{\"team\": \"y\", \"color\": \"red\", \"n\": [1, 2.5]}\n"
    );
}

#[test]
fn import_writes_every_flag_and_keeps_the_others() {
    let dir = TempDir::new().unwrap();
    ok(&dir, &["flags", "create", "keep", "--enabled"]);
    ok(&dir, &["flags", "create", "on"]);
    fs::write(dir.path().join("in.json"), fixture()).unwrap();
    assert_eq!(ok(&dir, &["flags", "import", "in.json"]), "");
    assert_eq!(ok(&dir, &["flags", "list"]), "beta\nkeep\noff\non\n");
    // The same-named flag was replaced whole.
    assert_eq!(ok(&dir, &["flags", "get", "on"]), format!("{ON}\n"));
    assert_eq!(ok(&dir, &["flags", "get", "beta"]), format!("{BETA}\n"));
}

#[test]
fn import_reads_standard_input_and_round_trips_export() {
    let source = store_dir();
    let exported = ok(&source, &["flags", "export"]);
    let dir = TempDir::new().unwrap();
    flipper(dir.path(), &["flags", "import", "-"])
        .write_stdin(exported.clone())
        .assert()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(ok(&dir, &["flags", "export"]), exported);
    assert_eq!(
        fs::read_to_string(dir.path().join("flags.json")).unwrap(),
        exported
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 2, one line, nothing written

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

// ---------------------------------------------------------------------------------------------
// Write failures: exit 1

#[test]
fn write_failure_exits_1() {
    let dir = TempDir::new().unwrap();
    Command::cargo_bin("flipper")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "--store",
            "json:no/such/dir/flags.json",
            "flags",
            "create",
            "x",
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "flipper: error: cannot open lock file no/such/dir/flags.json.lock: ",
        ));
}

/// `--replica` copies every write to another store; `--cache-size`/`--cache-ttl` put a cache in
/// front; bad values exit 2 with nothing written.
#[test]
fn replicas_and_cache() {
    let dir = store_dir();
    ok(
        &dir,
        &[
            "--replica",
            "json:replica.json",
            "--cache-size",
            "10",
            "flags",
            "create",
            "new",
            "--enabled",
        ],
    );
    let replica = fs::read_to_string(dir.path().join("replica.json")).unwrap();
    assert!(
        replica.contains(r#""feature_name": "new", "is_enabled": true"#),
        "{replica}"
    );
    ok(
        &dir,
        &[
            "--replica",
            "json:replica.json",
            "--replication",
            "async",
            "--cache-ttl",
            "0.5",
            "flags",
            "disable",
            "new",
        ],
    );
    assert!(ok(&dir, &["flags", "get", "new"]).contains(r#""is_enabled": false"#));
    for (args, needle) in [
        (
            &["--cache-ttl", "0", "flags", "list"][..],
            "positive number of seconds",
        ),
        (
            &["--cache-ttl", "soon", "flags", "list"],
            "not a number of seconds",
        ),
        (
            &["--replication-timeout=-1", "flags", "list"],
            "positive number of seconds",
        ),
        (
            &["--replication", "sometimes", "flags", "list"],
            "sometimes",
        ),
        (
            &["--replica", "ftp://x", "flags", "enable", "on"],
            "unknown scheme \"ftp\"",
        ),
    ] {
        let before = store_bytes(&dir);
        flipper(dir.path(), args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
        assert_eq!(store_bytes(&dir), before);
    }
}
