//! The CLI against a real `flipper serve` process: `--store http://HOST:PORT` with `--token`
//! (or `FLIPPER_TOKEN`) for `flags` and `eval`, the errors a server gives, and a second server
//! whose store is the first one (it follows it through the change stream).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const ADMIN: &str = "admin-secret";
const SDK: &str = "sdk-secret";

fn flipper() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flipper"));
    for var in [
        "FLIPPER_STORE",
        "FLIPPER_TOKEN",
        "FLIPPER_LISTEN",
        "FLIPPER_ADMIN_TOKEN",
        "FLIPPER_SDK_TOKEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A `flipper serve` process on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = flipper()
            .args(args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
        };
        // "flipper server listening addr=127.0.0.1:PORT ...".
        server.addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the server logs that it listens");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flipper --store URL [--token TOKEN] ARGS...`.
fn run(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = flipper();
    cmd.args(["--store", url]);
    if let Some(token) = token {
        cmd.args(["--token", token]);
    }
    cmd.args(args).output().unwrap()
}

/// Runs and expects success; returns standard output.
fn ok(url: &str, token: Option<&str>, args: &[&str]) -> String {
    let out = run(url, token, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and expects failure with `code` and one line on standard error containing `needle`.
fn fails(url: &str, token: Option<&str>, args: &[&str], code: i32, needle: &str) {
    let out = run(url, token, args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn flags_and_eval_work_against_a_server() {
    let server = Server::start(
        &["--store", "memory:"],
        &[("FLIPPER_ADMIN_TOKEN", ADMIN), ("FLIPPER_SDK_TOKEN", SDK)],
    );
    let url = server.url();
    let admin = Some(ADMIN);
    ok(
        &url,
        admin,
        &["flags", "create", "new_dashboard", "--enabled"],
    );
    ok(
        &url,
        admin,
        &[
            "flags",
            "add-condition",
            "new_dashboard",
            r#"plan__in=["pro"]"#,
        ],
    );
    ok(
        &url,
        admin,
        &[
            "flags",
            "set-client-data",
            "new_dashboard",
            r#"{"owner": "team-x"}"#,
        ],
    );
    ok(&url, admin, &["flags", "create", "old_checkout"]);
    assert_eq!(
        ok(&url, admin, &["flags", "list"]),
        "new_dashboard\nold_checkout\n"
    );
    let stored = ok(&url, admin, &["flags", "get", "new_dashboard"]);
    assert!(
        stored.contains(r#""conditions": [{"plan": [{"variable": "plan", "value": ["pro"], "operator": "in"}]}]"#),
        "{stored}"
    );
    assert_eq!(
        ok(&url, admin, &["flags", "get-client-data", "new_dashboard"]),
        "{\"owner\": \"team-x\"}\n"
    );

    // Evaluation needs only the SDK token, here from the environment.
    let out = flipper()
        .args([
            "--store",
            &url,
            "eval",
            "--context",
            r#"{"plan": "pro"}"#,
            "--json",
        ])
        .env("FLIPPER_TOKEN", SDK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"new_dashboard\": {\"enabled\": true, \"reason\": \"conditions_matched\"}, \
         \"old_checkout\": {\"enabled\": false, \"reason\": \"disabled\"}}\n"
    );
    ok(&url, admin, &["flags", "disable", "new_dashboard"]);
    assert_eq!(
        ok(&url, Some(SDK), &["eval", "new_dashboard", "missing"]),
        "new_dashboard\tfalse\nmissing\tfalse\n"
    );

    // Export from the server, import back into it.
    let export = ok(&url, Some(SDK), &["flags", "export"]);
    ok(&url, admin, &["flags", "destroy", "old_checkout"]);
    fails(
        &url,
        admin,
        &["flags", "get", "old_checkout"],
        2,
        "does not exist",
    );
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("backup.json");
    std::fs::write(&file, &export).unwrap();
    ok(&url, admin, &["flags", "import", file.to_str().unwrap()]);
    assert_eq!(ok(&url, Some(SDK), &["flags", "export"]), export);

    // Tokens the server refuses: exit 2, nothing written.
    fails(
        &url,
        Some(SDK),
        &["flags", "enable", "new_dashboard"],
        2,
        "HTTP 403",
    );
    fails(
        &url,
        None,
        &["flags", "list"],
        2,
        "--token or FLIPPER_TOKEN",
    );
    fails(&url, Some("wrong"), &["eval"], 2, "HTTP 403");
    assert!(ok(&url, admin, &["flags", "get", "new_dashboard"]).contains(r#""is_enabled": false"#));
    // A server that is not there: exit 1.
    drop(server);
    fails(
        &url,
        admin,
        &["flags", "list"],
        1,
        &format!("{url} store error"),
    );
}

/// `POST /api/v1/evaluate` on an open server: the answer for `flag`.
fn evaluate(addr: &str, flag: &str) -> String {
    let body = format!(r#"{{"flags": ["{flag}"]}}"#);
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/v1/evaluate HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_server_can_use_another_server_as_its_store() {
    let upstream = Server::start(
        &["--store", "memory:"],
        &[("FLIPPER_ADMIN_TOKEN", ADMIN), ("FLIPPER_SDK_TOKEN", SDK)],
    );
    ok(&upstream.url(), Some(ADMIN), &["flags", "create", "beta"]);
    // The downstream server reads the upstream one with its SDK token (open itself, on loopback).
    let downstream = Server::start(&["--store", &upstream.url()], &[("FLIPPER_TOKEN", SDK)]);
    assert!(
        evaluate(&downstream.addr, "beta").contains(r#"{"enabled": false, "reason": "disabled"}"#)
    );
    // A write upstream reaches the downstream server's evaluation through the change stream.
    ok(&upstream.url(), Some(ADMIN), &["flags", "enable", "beta"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = evaluate(&downstream.addr, "beta");
        if answer.contains(r#"{"enabled": true, "reason": "enabled"}"#) {
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
