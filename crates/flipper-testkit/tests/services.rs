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
