//! End-to-end tests of the `flipper` binary: every subcommand on a `json:` store in a temporary
//! directory, `memory:` for eval, exact outputs, and every bad-input case (exit code 2, one line
//! on standard error, store file unchanged).
//!
//! The fixture store and helpers are here; the tests are in `cli/`: `invocation.rs` (help,
//! usage errors, where the store comes from, exit 1, replicas and cache), `eval.rs`, `flags.rs`
//! (every `flags` subcommand) and `bad_input.rs` (every bad-input case).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
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

#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/eval.rs"]
mod eval;
#[path = "cli/flags.rs"]
mod flags;
#[path = "cli/invocation.rs"]
mod invocation;
