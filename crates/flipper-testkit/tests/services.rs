//! The harness starts real services and they answer.

#[test]
fn redis_starts_answers_and_restarts() {
    let Some(server) = flipper_testkit::RedisServer::start(
        flipper_testkit::RedisOptions::default()
            .persistent(true)
            .keyspace_notifications(true),
    ) else {
        return;
    };
    assert_eq!(server.cli(&["set", "k", "v"]).trim(), "OK");
    server.restart();
    assert_eq!(
        server.cli(&["get", "k"]).trim(),
        "v",
        "persistent data survives"
    );
    assert!(
        server
            .cli(&["config", "get", "notify-keyspace-events"])
            .contains('K')
    );
    let shared = flipper_testkit::redis().expect("started above");
    assert!(shared.url().starts_with("redis://127.0.0.1:"));
}

#[test]
fn redis_cluster_forms() {
    let Some(cluster) = flipper_testkit::redis_cluster() else {
        return;
    };
    assert_eq!(cluster.node_urls().len(), 3);
}

/// `redis-cli -p PORT ARGS... ping` as given (no client certificate unless in `args`).
fn ping(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .arg("ping")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("redis-cli runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn redis_over_tls_answers_and_restarts() {
    let Some(server) = flipper_testkit::redis_tls() else {
        return;
    };
    let tls = server.tls().expect("a TLS server");
    assert_eq!(
        server.url(),
        format!("rediss://127.0.0.1:{}", server.port())
    );
    assert_eq!(server.cli(&["ping"]).trim(), "PONG");
    // TLS with the CA and no client certificate (optional), but no plain TCP.
    let ca = tls.ca_file().to_string_lossy().into_owned();
    assert_eq!(
        ping(server.port(), &["--tls", "--cacert", &ca]).trim(),
        "PONG"
    );
    assert!(!ping(server.port(), &[]).contains("PONG"));
    // A client that trusts another CA refuses the server.
    let other = flipper_testkit::RedisServer::start(
        flipper_testkit::RedisOptions::default().require_client_cert(true),
    )
    .expect("started above");
    let other_ca = other
        .tls()
        .unwrap()
        .ca_file()
        .to_string_lossy()
        .into_owned();
    assert!(!ping(server.port(), &["--tls", "--cacert", &other_ca]).contains("PONG"));
    // A server requiring client certificates answers the CA's client only.
    assert_eq!(other.cli(&["set", "k", "v"]).trim(), "OK");
    assert!(!ping(other.port(), &["--tls", "--cacert", &other_ca]).contains("PONG"));
    other.restart();
    assert_eq!(other.cli(&["ping"]).trim(), "PONG");
    for file in [
        tls.ca_file(),
        tls.client_cert_file(),
        tls.client_key_file(),
        tls.server_cert_file(),
        tls.server_key_file(),
    ] {
        assert!(file.is_file(), "{}", file.display());
    }
}

#[test]
fn redis_cluster_over_tls_forms() {
    let Some(cluster) = flipper_testkit::redis_cluster_tls() else {
        return;
    };
    assert_eq!(cluster.node_urls().len(), 3);
    assert!(
        cluster
            .node_urls()
            .iter()
            .all(|u| u.starts_with("rediss://"))
    );
    assert!(cluster.tls().expect("TLS").ca_file().is_file());
}

#[test]
fn postgres_gives_fresh_databases() {
    let Some(pg) = flipper_testkit::postgres() else {
        return;
    };
    let a = pg.fresh_database();
    let b = pg.fresh_database();
    assert_ne!(a, b);
    pg.psql(&a, "CREATE TABLE t (x int)");
    // The table exists in a only.
    assert_eq!(
        pg.psql(&a, "SELECT count(*) FROM pg_tables WHERE tablename = 't'")
            .trim(),
        "1"
    );
    assert_eq!(
        pg.psql(&b, "SELECT count(*) FROM pg_tables WHERE tablename = 't'")
            .trim(),
        "0"
    );
}
