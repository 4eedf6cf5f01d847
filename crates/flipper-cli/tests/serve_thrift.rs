//! `flipper serve --thrift-listen` as a process: a public Thrift address refused without
//! `--insecure`; a server answering Thrift (a `ThriftStore` writes, the HTTP API and the
//! server's live flags see it, `flipper --store thrift://` reads it) beside HTTP, with the
//! address from `FLIPPER_THRIFT_LISTEN`; both stopping on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flipper::store::{Store, StoreExt, ThriftStore};

fn flipper() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flipper"));
    for var in [
        "FLIPPER_STORE",
        "FLIPPER_LISTEN",
        "FLIPPER_ADMIN_TOKEN",
        "FLIPPER_SDK_TOKEN",
        "FLIPPER_THRIFT_LISTEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Kills the server if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_public_thrift_address_needs_insecure() {
    let out = flipper()
        .args(["--store", "memory:", "serve", "--listen", "127.0.0.1:0"])
        .args(["--thrift-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("refusing to serve Thrift on 0.0.0.0:0") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The address a log line names after `what`: `... what ... addr=HOST:PORT ...`.
fn logged_addr(lines: &mpsc::Receiver<String>, what: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its addresses");
        if line.contains(what)
            && let Some(rest) = line.split("addr=").nth(1)
        {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
    }
}

#[test]
#[cfg(unix)]
fn serve_answers_thrift_beside_http_and_stops_on_sigterm() {
    let mut child = flipper()
        .args(["--store", "memory:", "serve", "--listen", "127.0.0.1:0"])
        .args(["--poll-interval", "0.2"])
        .env("FLIPPER_THRIFT_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let thrift = logged_addr(&lines, "Thrift FeatureFlagStore service listening");
    let http_addr = logged_addr(&lines, "flipper server listening");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = ThriftStore::from_url(&format!("thrift://{thrift}")).unwrap();
    runtime.block_on(async {
        store.create("beta", true, None).await.unwrap();
        let got = store.get("beta").await.unwrap().expect("written");
        assert!(got.item.switched_on());
    });
    // The HTTP API reads the same store.
    let flag = http(&http_addr, "GET", "/api/v1/flags/beta", "");
    assert!(flag.starts_with("HTTP/1.1 200"), "{flag}");
    assert!(
        flag.contains(r#""feature_name": "beta""#) || flag.contains(r#""name":"beta""#),
        "{flag}"
    );
    // And the server's live flags (evaluation) follow the Thrift write.
    let mut answer = String::new();
    let evaluated = (0..100).any(|_| {
        answer = http(
            &http_addr,
            "POST",
            "/ofrep/v1/evaluate/flags/beta",
            r#"{"context": {}}"#,
        );
        if answer.contains(r#""value": true"#) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
        false
    });
    assert!(
        evaluated,
        "the live flags never saw the Thrift write: {answer}"
    );
    // The CLI reads through Thrift too.
    let out = flipper()
        .args(["--store", &format!("thrift://{thrift}"), "eval", "beta"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "beta\ttrue");

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            server.0.try_wait().unwrap()
        })
        .expect("the server stops after SIGTERM, its pooled Thrift connection open");
    assert!(status.success(), "{status:?}");
    runtime.block_on(async {
        store.disconnect();
        assert!(store.get("beta").await.is_err(), "Thrift stopped too");
    });
}
