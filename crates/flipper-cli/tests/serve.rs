//! `flipper serve` as a process: refusing an unsafe configuration, starting on the default
//! embedded store, answering, and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

fn flipper() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flipper"));
    for var in [
        "FLIPPER_STORE",
        "FLIPPER_LISTEN",
        "FLIPPER_ADMIN_TOKEN",
        "FLIPPER_SDK_TOKEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn unsafe_settings_exit_2_with_one_line() {
    let dir = TempDir::new().unwrap();
    for (args, needle) in [
        (
            &["serve", "--listen", "0.0.0.0:0"][..],
            "refusing to listen on 0.0.0.0:0 without --admin-token and --sdk-token",
        ),
        (
            &["serve", "--listen", "0.0.0.0:0", "--admin-token", "a"],
            "without --sdk-token",
        ),
        (&["serve", "--sdk-token", ""], "--sdk-token is empty"),
        (&["serve", "--poll-interval=-1"], "--poll-interval"),
        (&["serve", "--poll-interval", "NaN"], "--poll-interval"),
        (&["serve", "--workers", "0"], "--workers must be at least 1"),
        (&["--store", "nope:x", "serve"], "unknown scheme"),
    ] {
        let out = flipper()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing created"
    );
}

/// Kills the server if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
#[cfg(unix)]
fn serves_the_default_embedded_store_and_stops_on_sigterm() {
    let dir = TempDir::new().unwrap();
    let mut child = flipper()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    // The log line "flipper server listening addr=127.0.0.1:PORT ..." gives the port.
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs that it listens");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(
        dir.path().join("flipper.redb").exists(),
        "the default store is created"
    );
    let health = get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = get(&addr, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // Reads are logged at DEBUG, a refused request at INFO: the first request line at the
    // default level is the 404.
    let missing = get(&addr, "/api/v1/flags/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let request_logged = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(5))
            .expect("a request line");
        if line.contains(" request ") || line.ends_with(" request") || line.contains("method=") {
            break line;
        }
    };
    assert!(
        request_logged.contains(r#"method=GET route="/api/v1/flags/{name}" status=404"#),
        "{request_logged}"
    );

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            server.0.try_wait().unwrap()
        })
        .expect("the server stops after SIGTERM");
    assert!(status.success(), "{status:?}");
}
