//! Invoking the binary: `--help` for every subcommand (about text and examples), usage errors
//! (exit 2), where the store comes from (`FLIPPER_STORE`, the default `json:flipper.json`), a
//! store that cannot be written (exit 1), and the `--replica`/`--cache-*` options.

use std::fs;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use super::{fixture, flipper, ok, store_bytes, store_dir};

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
// The store

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

// ---------------------------------------------------------------------------------------------
// Replicas and cache

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
