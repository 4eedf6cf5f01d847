//! The PostgreSQL store's watch (its trigger and `LISTEN`), concurrent writers, a server
//! outage, and flipper-client (Python) writing the same table.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::Error;
use flipper::store::{Change, ChangeStream, PostgresStore, PutMode, Store, StoreExt};
use flipper_core::condition::Condition;
use flipper_core::{Item, Value};
use futures_util::StreamExt;

use super::{database, hex, with_params};

/// The next change, within `secs` seconds.
async fn next(changes: &mut ChangeStream, secs: u64) -> Change {
    tokio::time::timeout(Duration::from_secs(secs), changes.next())
        .await
        .unwrap_or_else(|_| panic!("no change within {secs} s"))
        .expect("the stream stays open")
}

/// The next `n` changes as `put NAME ON` / `delete NAME` / `resync`, skipping resyncs before
/// the first change (a stream opens with one when it starts listening).
pub(super) async fn describe_changes(changes: &mut ChangeStream, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match next(changes, 20).await {
            Change::Resync if seen.is_empty() => {}
            change => seen.push(describe(&change)),
        }
    }
    seen
}

fn describe(change: &Change) -> String {
    match change {
        Change::Put { item, .. } => format!("put {} {}", item.feature_name, item.switched_on()),
        Change::Delete { name } => format!("delete {name}"),
        Change::Resync => "resync".into(),
        _ => "other".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_writes_are_heard_in_commit_order() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    let other_table = PostgresStore::open(&with_params(&url, "table=other")).unwrap();
    other_table.migrate().await.unwrap();
    let mut changes = store.watch().unwrap();
    let on = hex(&Item::new("a", true, 1).serialize());
    let off = hex(&Item::new("a", false, 1).serialize());
    let b = hex(&Item::new("b", true, 1).serialize());
    // Through the store first, so the stream is listening before psql writes.
    store.create("first", true, None).await.unwrap();
    assert_eq!(describe_changes(&mut changes, 1).await, ["put first true"]);
    // Python's statements, verbatim; and a transaction that writes a value, another, and the
    // first again (identical notifications in one transaction would be merged).
    pg.psql(
        &url,
        &format!(
            "INSERT INTO \"feature_flags\" (\"name\", \"item\") VALUES ('a', decode('{on}', 'hex')) \
             ON CONFLICT(\"name\") DO UPDATE SET \"item\" = decode('{on}', 'hex'); \
             UPDATE \"feature_flags\" SET \"item\" = decode('{off}', 'hex') WHERE \"name\" = 'a'"
        ),
    );
    pg.psql(
        &url,
        &format!(
            "BEGIN; \
             UPDATE feature_flags SET item = decode('{on}', 'hex') WHERE name = 'a'; \
             UPDATE feature_flags SET item = decode('{off}', 'hex') WHERE name = 'a'; \
             UPDATE feature_flags SET item = decode('{on}', 'hex') WHERE name = 'a'; \
             COMMIT"
        ),
    );
    other_table.create("elsewhere", true, None).await.unwrap();
    // A rename is a delete and a put.
    pg.psql(
        &url,
        &format!(
            "UPDATE feature_flags SET name = 'b', item = decode('{b}', 'hex') WHERE name = 'a'"
        ),
    );
    pg.psql(&url, "DELETE FROM feature_flags WHERE name = 'first'");
    assert_eq!(
        describe_changes(&mut changes, 7).await,
        [
            "put a true",
            "put a false",
            "put a true",
            "put a false",
            "put a true",
            "delete a",
            "put b true"
        ]
    );
    assert_eq!(describe_changes(&mut changes, 1).await, ["delete first"]);

    // A flag too large for a notification arrives whole (the listener reads the row), with
    // the version a read gives.
    let mut big = Item::new("big", true, 1);
    big.meta.conditions = (0..200)
        .map(|i| Condition::new().eq(&format!("attribute_{i}"), i))
        .collect();
    assert!(big.serialize().len() > 8000);
    let version = store.put(&big, PutMode::Overwrite).await.unwrap();
    match next(&mut changes, 20).await {
        Change::Put { item, version: v } => {
            assert_eq!(item, big);
            assert_eq!(v, version);
        }
        other => panic!("{other:?}"),
    }
    // Versions from the stream are the versions reads give.
    store.set("b", false).await.unwrap();
    match next(&mut changes, 20).await {
        Change::Put { item, version } => {
            assert_eq!(store.get("b").await.unwrap().unwrap().version, version);
            assert!(!item.switched_on());
        }
        other => panic!("{other:?}"),
    }
    pg.psql(&url, "TRUNCATE feature_flags");
    assert_eq!(describe(&next(&mut changes, 20).await), "resync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_listens_on_its_own_connection_until_dropped() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    // The listener's last statement (until its first heartbeat) checks the table's trigger.
    let listening = || {
        pg.psql(
            &url,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
                 AND query LIKE '%pg_trigger t%' AND pid <> pg_backend_pid()"
            ),
        )
        .trim()
        .parse::<usize>()
        .unwrap()
    };
    let mut first = store.watch().unwrap();
    let mut second = store.watch().unwrap();
    store.create("a", true, None).await.unwrap();
    assert_eq!(describe_changes(&mut first, 1).await, ["put a true"]);
    assert_eq!(describe_changes(&mut second, 1).await, ["put a true"]);
    assert_eq!(listening(), 2);
    drop((first, second));
    let deadline = Instant::now() + Duration::from_secs(10);
    while listening() > 0 {
        assert!(
            Instant::now() < deadline,
            "the listening connections stayed open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_gets_a_resync() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    let mut changes = store.watch().unwrap();
    store.create("first", true, None).await.unwrap();
    assert_eq!(describe_changes(&mut changes, 1).await, ["put first true"]);
    // 10,000 changes in one statement while nobody reads the stream: more than it buffers.
    let item = hex(&Item::new("x", true, 1).serialize());
    pg.psql(
        &url,
        &format!(
            "INSERT INTO feature_flags \
             SELECT 'f' || n, decode('{item}', 'hex') FROM generate_series(1, 10000) n"
        ),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut puts = 0;
    loop {
        match next(&mut changes, 20).await {
            Change::Put { .. } => puts += 1,
            Change::Resync => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(puts < 10_000, "{puts} changes before the resync");
    // Then it follows again. The burst may have overflowed the buffer more than once, so
    // further resyncs may be queued ahead of the next write: write until one is heard as
    // itself.
    for attempt in 0.. {
        assert!(
            attempt < 10,
            "no write was heard as a change after the resync"
        );
        let name = format!("after{attempt}");
        store.create(&name, true, None).await.unwrap();
        let heard = loop {
            match next(&mut changes, 20).await {
                Change::Put { item, .. } if item.feature_name == name => break true,
                Change::Put { .. } => {}
                Change::Resync => break false,
                other => panic!("{other:?}"),
            }
        };
        eprintln!("DEBUG attempt {attempt} heard {heard}");
        if heard {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    let Some((_, url)) = database() else { return };
    let store = Arc::new(PostgresStore::open(&url).unwrap());
    let mut changes = store.watch().unwrap();
    store.create("f", true, None).await.unwrap();
    let watcher = tokio::spawn(async move {
        let mut puts = 0;
        while puts < 801 {
            match next(&mut changes, 60).await {
                Change::Put { .. } => puts += 1,
                Change::Resync if puts == 0 => {}
                other => panic!("unexpected {other:?} after {puts} puts"),
            }
        }
        puts
    });
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..100 {
                    let key = format!("w{w}_{i}");
                    match i % 3 {
                        0 => store
                            .update("f", |item| {
                                item.meta.conditions.push(Condition::new().eq(&key, true));
                                Ok(())
                            })
                            .await
                            .map(|_| ()),
                        1 => store
                            .update("f", |item| {
                                if let Value::Object(data) = &mut item.meta.client_data {
                                    data.insert(key.clone(), Value::from(i));
                                }
                                Ok(())
                            })
                            .await
                            .map(|_| ()),
                        _ => store.set("f", i % 2 == 0).await.map(|_| ()),
                    }
                    .unwrap_or_else(|e| panic!("writer {w}, mutation {i}: {e}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let item = store.get("f").await.unwrap().unwrap().item;
    let conditions: Vec<String> = item
        .meta
        .conditions
        .iter()
        .flat_map(|c| c.checks().map(|check| check.variable))
        .collect();
    let data = item.meta.client_data.as_object().unwrap();
    for w in 0..8 {
        for i in 0..100 {
            let key = format!("w{w}_{i}");
            match i % 3 {
                0 => assert!(conditions.contains(&key), "lost condition {key}"),
                1 => assert!(data.contains_key(&key), "lost client data {key}"),
                _ => {}
            }
        }
    }
    assert_eq!(conditions.len(), 8 * 34);
    assert_eq!(data.len(), 8 * 33);
    // Every write, the 264 switches included, was one change: 800 and the creation.
    assert_eq!(watcher.await.unwrap(), 801);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_fast_then_the_stream_resyncs_and_follows() {
    let Some(server) = flipper_testkit::PostgresServer::start() else {
        return;
    };
    let url = server.fresh_database();
    let store = PostgresStore::open(&url).unwrap();
    // A store first used during the outage: its migration fails, and is retried later.
    let late = PostgresStore::open(&server.fresh_database()).unwrap();
    let mut changes = store.watch().unwrap();
    store.create("a", true, None).await.unwrap();
    assert_eq!(describe_changes(&mut changes, 1).await, ["put a true"]);

    server.stop();
    let started = Instant::now();
    let err = store.set("a", false).await.unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }) && err.is_retryable(),
        "{err:?}"
    );
    let err = store.get("a").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let err = late.create("x", true, None).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "failing took {:?}",
        started.elapsed()
    );

    server.restart();
    // The stream says it reconnected, then follows again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no resync after the restart");
        if matches!(next(&mut changes, 60).await, Change::Resync) {
            break;
        }
    }
    store.set("a", false).await.unwrap();
    store.create("b", true, None).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match next(&mut changes, 20).await {
            Change::Resync => {}
            change => seen.push(describe(&change)),
        }
    }
    assert_eq!(seen, ["put a false", "put b true"]);
    assert!(!store.get("a").await.unwrap().unwrap().item.switched_on());
    late.create("x", true, None).await.unwrap();
    assert!(late.get("x").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipper_client_shares_the_table() {
    let Some((_, url)) = database() else { return };
    let Some(python) = flipper_testkit::python3(&["flipper", "psycopg"]) else {
        return;
    };
    let store = PostgresStore::open(&url).unwrap();
    let mut changes = store.watch().unwrap();
    store.create("rust_flag", true, None).await.unwrap();
    assert_eq!(
        describe_changes(&mut changes, 1).await,
        ["put rust_flag true"]
    );
    let script = r#"
import sys
from flipper.contrib.postgresql import PostgreSQLFeatureFlagStore
store = PostgreSQLFeatureFlagStore(sys.argv[1])
store.create("py_flag", is_enabled=True, client_data={"owner": "py"})
store.set("py_flag", False)
store.set("rust_flag", False)
store.delete("rust_flag")
print(store.get("py_flag").serialize().decode())
"#;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", script, &url])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        describe_changes(&mut changes, 4).await,
        [
            "put py_flag true",
            "put py_flag false",
            "put rust_flag false",
            "delete rust_flag"
        ]
    );
    let python_bytes = String::from_utf8(out.stdout).unwrap();
    let read = store.get("py_flag").await.unwrap().unwrap();
    assert_eq!(read.item.serialize(), python_bytes.trim_end().as_bytes());
    assert_eq!(
        read.item.meta.client_data.as_object().unwrap()["owner"],
        Value::from("py")
    );
}
