//! `flipper flags`, reading (list with paging, get, get-meta, get-client-data, export) and
//! writing (create, enable, disable, destroy, add-condition, set-conditions, set-bucketer,
//! set-client-data, import from a file and from standard input), with exact outputs.

use std::fs;

use tempfile::TempDir;

use super::{BETA, NOOP, OFF, ON, fixture, flipper, meta_line, now, ok, store_dir};

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
