//! A real OpenFeature client that we did not write evaluates flags against the server: the
//! OpenFeature Python SDK with its OFREP provider from PyPI (`openfeature-sdk==0.10.0`,
//! `openfeature-provider-ofrep==0.3.0`), driven by `tests/ofrep_client/evaluate.py`.
//!
//! Without those packages the test is skipped with a loud message, unless
//! `FLIPPER_TEST_REQUIRE_SERVICES=1` (as in CI), where it fails.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{ADMIN, SDK};
use flipper::store::MemoryStore;
use flipper_server::{ServerConfig, serve_on};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/ofrep_client/evaluate.py"
);
const PACKAGES: &str = "'openfeature-sdk==0.10.0' 'openfeature-provider-ofrep==0.3.0'";

fn provider_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import openfeature.contrib.provider.ofrep"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "python3 with OpenFeature's OFREP provider is not available (pip install {PACKAGES})"
        );
        if std::env::var("FLIPPER_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{msg}, and FLIPPER_TEST_REQUIRE_SERVICES=1");
        }
        eprintln!("\n*** SKIPPING the OpenFeature client test: {msg} ***\n");
    }
    ok
}

async fn send(client: &reqwest::Client, method: reqwest::Method, url: String, body: &str) -> u16 {
    client
        .request(method, url)
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

/// Runs the driver over `cases`: one answer per case, as the OpenFeature SDK reports it.
fn evaluate_with_openfeature(base: &str, cases: &Value) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args([DRIVER, base, SDK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(cases.to_string().as_bytes())
        .expect("the cases are sent");
    let out = child.wait_with_output().expect("the driver ends");
    assert!(
        out.status.success(),
        "the driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfeature_ofrep_provider_reads_our_answers() {
    if !provider_available() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ServerConfig::default();
    config.admin_token = Some(ADMIN.into());
    config.sdk_token = Some(SDK.into());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        config,
        Arc::new(MemoryStore::new()),
        async move {
            let _ = stopped.await;
        },
    ));

    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    for (path, body, want) in [
        (
            "/api/v1/flags",
            r#"{"name": "beta", "is_enabled": true}"#,
            201,
        ),
        (
            "/api/v1/flags/beta/conditions",
            r#"{"checks": {"plan__in": ["pro", "enterprise"]}}"#,
            204,
        ),
        (
            "/api/v1/flags",
            r#"{"name": "kill_switch", "is_enabled": false}"#,
            201,
        ),
        (
            "/api/v1/flags",
            r#"{"name": "everyone", "is_enabled": true}"#,
            201,
        ),
        (
            "/api/v1/flags",
            r#"{"name": "adults", "is_enabled": true}"#,
            201,
        ),
        (
            "/api/v1/flags/adults/conditions",
            r#"{"checks": {"age__gte": 18}}"#,
            204,
        ),
    ] {
        let status = send(&http, post.clone(), format!("{base}{path}"), body).await;
        assert_eq!(status, want, "{path} {body}");
    }
    // Evaluation follows writes within milliseconds: wait until the last write is visible.
    let probe = r#"{"context": {"age": 1}, "flags": ["adults"]}"#;
    common::eventually("the flags reach the snapshot", async || {
        let r = http
            .post(format!("{base}/api/v1/evaluate"))
            .bearer_auth(SDK)
            .body(probe)
            .send()
            .await
            .unwrap();
        r.text().await.unwrap().contains("conditions_failed")
    })
    .await;

    let cases = json!([
        {"flag": "beta", "default": false, "targeting_key": "user-1", "attributes": {"plan": "pro"}},
        {"flag": "beta", "default": true, "targeting_key": "user-2", "attributes": {"plan": "free"}},
        {"flag": "kill_switch", "default": true, "targeting_key": "user-1", "attributes": {}},
        {"flag": "everyone", "default": false},
        {"flag": "no_such_flag", "default": true, "targeting_key": "user-1"},
        {"flag": "adults", "default": false, "attributes": {"age": 30}},
        // Python raises TypeError for "old" >= 18: an evaluation failure, so the default.
        {"flag": "adults", "default": true, "attributes": {"age": "old"}},
    ]);
    let answers = evaluate_with_openfeature(&base, &cases);
    let got: Vec<_> = answers
        .iter()
        .map(|a| {
            (
                a["flag"].as_str().unwrap_or_default().to_owned(),
                a["value"].clone(),
                a["reason"].clone(),
                a["variant"].clone(),
                a["error_code"].clone(),
            )
        })
        .collect();
    let want = [
        (
            "beta",
            json!(true),
            json!("TARGETING_MATCH"),
            json!("on"),
            Value::Null,
        ),
        (
            "beta",
            json!(false),
            json!("DEFAULT"),
            json!("off"),
            Value::Null,
        ),
        (
            "kill_switch",
            json!(false),
            json!("DISABLED"),
            json!("off"),
            Value::Null,
        ),
        (
            "everyone",
            json!(true),
            json!("STATIC"),
            json!("on"),
            Value::Null,
        ),
        (
            "no_such_flag",
            json!(true),
            json!("ERROR"),
            Value::Null,
            json!("FLAG_NOT_FOUND"),
        ),
        (
            "adults",
            json!(true),
            json!("TARGETING_MATCH"),
            json!("on"),
            Value::Null,
        ),
        (
            "adults",
            json!(true),
            json!("ERROR"),
            Value::Null,
            json!("GENERAL"),
        ),
    ]
    .map(|(flag, value, reason, variant, error)| (flag.to_owned(), value, reason, variant, error));
    assert_eq!(got, want, "answers: {answers:#?}");
    assert!(
        answers[6]["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("TypeError")),
        "{answers:#?}"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
