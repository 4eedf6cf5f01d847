//! The Redis store against real servers (flipper-testkit): the conformance suite on a
//! standalone server and on a 3-master cluster, flipper-client's keys and bytes, listings next
//! to foreign keys, no lost updates under concurrent writers, round trips counted with
//! `MONITOR`, the cached and replicated wrappers over Redis, and the watch (own writes, another process's writes heard through keyspace
//! notifications or polling, a server restart, a write while the server is down).
//!
//! Every test uses its own base key on the shared servers, or its own server. Without
//! redis-server the tests skip with a loud message, unless `FLIPPER_TEST_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use flipper::store::{PutMode, RedisConfig, RedisStore, Store, StoreExt};
use flipper::{Condition, Error, Item, Value};
use flipper_testkit::{RedisOptions, RedisServer, unique_name};
use futures_util::StreamExt;

/// A store on `url` with a fresh base key.
fn store_at(url: &str) -> RedisStore {
    let config = RedisConfig::from_url(url).expect("valid URL");
    RedisStore::new(config.with_base_key(unique_name("features")))
}

/// A store with a fresh base key on the shared standalone server.
fn standalone() -> Option<RedisStore> {
    Some(store_at(flipper_testkit::redis()?.url()))
}

/// `redis+cluster://` for the shared cluster's nodes.
fn cluster_url() -> Option<String> {
    let nodes = flipper_testkit::redis_cluster()?.node_urls();
    let hosts: Vec<&str> = nodes
        .iter()
        .map(|u| u.trim_start_matches("redis://"))
        .collect();
    Some(format!("redis+cluster://{}", hosts.join(",")))
}

/// A store with a fresh base key on the shared cluster.
fn cluster() -> Option<RedisStore> {
    Some(store_at(&cluster_url()?))
}

mod standalone {
    flipper::store_conformance_tests!({
        let Some(store) = super::standalone() else {
            return;
        };
        store
    });
}

mod cluster {
    flipper::store_conformance_tests!({
        let Some(store) = super::cluster() else {
            return;
        };
        store
    });
}

/// The cached wrapper over Redis (its watch keeps the cache fresh).
mod cached {
    flipper::store_conformance_tests!({
        let Some(store) = super::standalone() else {
            return;
        };
        flipper::store::CachedStore::new(store)
    });
}

/// The replicated wrapper: a Redis primary, a Redis replica (another base key) and a memory
/// replica.
mod replicated {
    flipper::store_conformance_tests!({
        let (Some(primary), Some(replica)) = (super::standalone(), super::standalone()) else {
            return;
        };
        flipper::store::ReplicatedStore::new(
            std::sync::Arc::new(primary),
            vec![
                std::sync::Arc::new(replica),
                std::sync::Arc::new(flipper::store::MemoryStore::new()),
            ],
        )
    });
}

/// A plain connection to one server (or one cluster node).
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&[u8]],
) -> T {
    let mut cmd = redis::Cmd::new();
    for arg in args {
        cmd.arg(*arg);
    }
    cmd.query_async(conn).await.unwrap()
}

/// The spec's captured value of `new_dashboard` (flipper-client 1.3.2 on a real Redis).
const DASHBOARD: &str = r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": 1795280475, "conditions": [{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}], "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bytes_are_flipper_clients() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let store = store_at(redis.url());
    let base = store.config().base_key().to_owned();
    let mut conn = raw(redis.url()).await;

    // Written by the store: the key, the bytes, a string, no expiry.
    let mut item = Item::new("ñame/x", true, 1_700_000_000);
    item.meta.client_data = [("k", Value::from("é"))].into_iter().collect();
    item.meta.conditions = vec![Condition::new().gte("age", 18)];
    store.put(&item, PutMode::Overwrite).await.unwrap();
    let key = format!("{base}/ñame/x");
    let bytes: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
    assert_eq!(bytes, item.serialize());
    assert!(bytes.is_ascii(), "ensure_ascii");
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains(r#""feature_name": "\u00f1ame/x""#)
    );
    let kind: String = query(&mut conn, &[b"TYPE", key.as_bytes()]).await;
    assert_eq!(kind, "string");
    let ttl: i64 = query(&mut conn, &[b"TTL", key.as_bytes()]).await;
    assert_eq!(ttl, -1);

    // Written raw, as flipper-client writes it: read as the same item, byte for byte.
    let key = format!("{base}/new_dashboard");
    let _: () = query(&mut conn, &[b"SET", key.as_bytes(), DASHBOARD.as_bytes()]).await;
    let got = store.get("new_dashboard").await.unwrap().unwrap();
    assert_eq!(got.item.to_json(), DASHBOARD);
    assert_eq!(got.version.to_string(), sha1_hex(DASHBOARD.as_bytes()));
    // An empty string is no flag (flipper-client's `if not value`).
    let key = format!("{base}/empty");
    let _: () = query(&mut conn, &[b"SET", key.as_bytes(), b""]).await;
    assert!(store.get("empty").await.unwrap().is_none());
    store
        .put(&Item::new("empty", false, 1), PutMode::Create)
        .await
        .unwrap();
}

/// The SHA-1 of `bytes` in hex, as Redis's `redis.sha1hex`.
fn sha1_hex(bytes: &[u8]) -> String {
    flipper::store::Version::of_bytes(bytes).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_report_foreign_keys_in_place() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let store = store_at(redis.url());
    let base = store.config().base_key().to_owned();
    let mut conn = raw(redis.url()).await;
    for name in ["a", "c", "e"] {
        store.create(name, true, None).await.unwrap();
    }
    let key = |name: &str| format!("{base}/{name}");
    let _: () = query(&mut conn, &[b"SET", key("b-junk").as_bytes(), b"not json"]).await;
    let _: () = query(&mut conn, &[b"HSET", key("d-hash").as_bytes(), b"f", b"v"]).await;
    let _: () = query(&mut conn, &[b"SET", key("empty").as_bytes(), b""]).await;
    // A key deleted before the listing is simply absent (one deleted between SCAN and MGET
    // reads as nil and is skipped the same way; that instant cannot be timed from outside).
    store.create("gone", true, None).await.unwrap();
    store.delete("gone").await.unwrap();

    let entries = store.list(None, 0).await.unwrap();
    let shown: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Ok(v) => format!("ok {}", v.item.feature_name),
            Err(c) => format!("corrupt {}: {}", c.key, c.error),
        })
        .collect();
    assert_eq!(shown.len(), 5, "{shown:?}");
    assert_eq!(shown[0], "ok a");
    assert!(
        shown[1].starts_with("corrupt b-junk: invalid JSON"),
        "{shown:?}"
    );
    assert_eq!(shown[2], "ok c");
    assert!(
        shown[3].starts_with("corrupt d-hash: ") && shown[3].contains("hash"),
        "{shown:?}"
    );
    assert_eq!(shown[4], "ok e");
    // Paging counts the unreadable entries too.
    assert_eq!(store.list(Some(2), 1).await.unwrap().len(), 2);
    // Reading them one by one names the problem.
    for name in ["b-junk", "d-hash"] {
        let err = store.get(name).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }
    let err = store.items(None, 0).await.unwrap_err();
    assert!(err.to_string().contains("b-junk"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_characters_in_the_base_key_match_only_themselves() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let tag = unique_name("glob");
    let url = redis.url();
    let open =
        |base: String| RedisStore::new(RedisConfig::from_url(url).unwrap().with_base_key(base));
    // Unescaped, `T*/*` would match `Tabc/...`, and `T[ab]/*` would match `Ta/...`.
    let star = open(format!("{tag}*"));
    let abc = open(format!("{tag}abc"));
    let class = open(format!("{tag}[ab]"));
    let a = open(format!("{tag}a"));
    let backslash = open(format!("{tag}\\?"));
    for (store, name) in [
        (&star, "in-star"),
        (&abc, "in-abc"),
        (&class, "in-class"),
        (&a, "in-a"),
        (&backslash, "in-backslash"),
    ] {
        store.create(name, true, None).await.unwrap();
    }
    for (store, name) in [
        (&star, "in-star"),
        (&abc, "in-abc"),
        (&class, "in-class"),
        (&a, "in-a"),
        (&backslash, "in-backslash"),
    ] {
        let names: Vec<String> = store
            .items(None, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.feature_name)
            .collect();
        assert_eq!(names, [name], "{store}");
    }
}

/// 8 writers × 100 read-modify-writes of one flag: conditions, client data keys, switches.
async fn no_lost_updates(store: RedisStore) {
    let store = Arc::new(store);
    store.create("hot", false, None).await.unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..100 {
                    match i % 3 {
                        0 => store
                            .update("hot", |item| {
                                item.meta
                                    .conditions
                                    .push(Condition::new().eq(&format!("w{w}_{i}"), i));
                                Ok(())
                            })
                            .await
                            .map(drop),
                        1 => store
                            .update("hot", |item| {
                                if let Value::Object(data) = &mut item.meta.client_data {
                                    data.insert(format!("w{w}_{i}"), Value::from(i));
                                }
                                Ok(())
                            })
                            .await
                            .map(drop),
                        _ => store.set("hot", i % 2 == 0).await.map(drop),
                    }
                    .unwrap_or_else(|e| panic!("writer {w}, step {i}: {e}"));
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let item = store.get("hot").await.unwrap().unwrap().item;
    // Steps 0, 3, ..., 99 add a condition (34 per writer); 1, 4, ..., 97 a data key (33).
    assert_eq!(item.meta.conditions.len(), 8 * 34);
    assert_eq!(item.meta.client_data.as_object().unwrap().len(), 8 * 33);
    for w in 0..8 {
        for i in (0..100).step_by(3) {
            let expected = Condition::new().eq(&format!("w{w}_{i}"), i);
            assert!(item.meta.conditions.contains(&expected), "w{w}_{i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing_standalone() {
    let Some(store) = standalone() else { return };
    no_lost_updates(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing_cluster() {
    let Some(store) = cluster() else { return };
    no_lost_updates(store).await;
}

/// The commands clients (not scripts, not the marker connection) sent between two markers.
async fn commands_during<F: Future<Output = ()>>(
    server: &RedisServer,
    op: impl FnOnce() -> F,
) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut monitor = client
        .get_async_monitor()
        .await
        .unwrap()
        .into_on_message::<String>();
    let mut marker = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = query(&mut marker, &[b"ECHO", b"flipper-begin"]).await;
    op().await;
    let _: String = query(&mut marker, &[b"ECHO", b"flipper-end"]).await;
    let mut lines = Vec::new();
    let mut inside = false;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(5), monitor.next())
        .await
        .expect("MONITOR output")
    {
        if line.contains("flipper-begin") {
            inside = true;
        } else if line.contains("flipper-end") {
            break;
        } else if inside && !line.contains(" lua]") {
            lines.push(line);
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_take_one_round_trip_and_writes_two() {
    let Some(server) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let store = store_at(&server.url());
    // Connect (and load the scripts) first.
    store.create("f", false, None).await.unwrap();

    let get = commands_during(&server, || async {
        store.get("f").await.unwrap().unwrap();
    })
    .await;
    let set = commands_during(&server, || async {
        store.set("f", true).await.unwrap();
    })
    .await;
    let create_by_set = commands_during(&server, || async {
        store.set("new", true).await.unwrap();
    })
    .await;
    let update = commands_during(&server, || async {
        store
            .update("f", |item| {
                item.meta.conditions.push(Condition::new().eq("a", 1));
                Ok(())
            })
            .await
            .unwrap();
    })
    .await;
    let delete = commands_during(&server, || async {
        store.delete("f").await.unwrap();
    })
    .await;
    let list = commands_during(&server, || async {
        store.list(None, 0).await.unwrap();
    })
    .await;
    eprintln!(
        "round trips: get {get:?}\nset {set:?}\nset (create) {create_by_set:?}\nupdate {update:?}\ndelete {delete:?}\nlist {list:?}"
    );
    assert_eq!(get.len(), 1, "{get:?}");
    assert!(get[0].contains("\"GET\""), "{get:?}");
    for (op, lines) in [
        ("set", &set),
        ("set (create)", &create_by_set),
        ("update", &update),
    ] {
        assert_eq!(lines.len(), 2, "{op}: {lines:?}");
        assert!(
            lines[0].contains("\"GET\"") && lines[1].contains("\"EVALSHA\""),
            "{op}: {lines:?}"
        );
    }
    assert_eq!(delete.len(), 1, "{delete:?}");
    // One SCAN step and one MGET for a small store.
    assert_eq!(list.len(), 2, "{list:?}");
}

#[path = "redis_store/watch.rs"]
mod watch;

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    // Nothing listens on port 1.
    let store = RedisStore::from_url("redis://127.0.0.1:1").unwrap();
    for _ in 0..2 {
        let err = store.get("f").await.unwrap_err();
        assert!(
            matches!(err, Error::Backend { .. }) && err.is_retryable(),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("redis://127.0.0.1:1 store error"),
            "{err}"
        );
    }
}

#[test]
fn urls_are_checked_and_passwords_hidden() {
    let store = RedisStore::from_url("redis://:hunter2@127.0.0.1:6379/2?base_key=app").unwrap();
    assert_eq!(
        store.to_string(),
        "redis://:***@127.0.0.1:6379/2?base_key=app"
    );
    assert!(!format!("{store:?}").contains("hunter2"));
    assert!(store.capabilities().atomic_batch);
    let cluster = RedisStore::from_url("redis+cluster://h1:7000,h2:7001").unwrap();
    assert!(cluster.config().is_cluster());
    assert!(!cluster.capabilities().atomic_batch);
    let mut cases = vec![
        ("redis://h?base=x", "unknown parameter \"base\""),
        ("redis://h?poll_interval=soon", "poll_interval"),
        ("redis://h?batch_size=-1", "batch_size"),
        ("postgres://h", "unknown scheme"),
    ];
    // With TLS, rediss:// is tested in redis_tls.rs.
    if !cfg!(feature = "redis-tls") {
        cases.push(("rediss://h", "cargo feature redis-tls"));
    }
    for (url, why) in cases {
        let err = RedisConfig::from_url(url).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStoreUrl { .. }) && err.to_string().contains(why),
            "{url}: {err}"
        );
    }
}

/// A cache over Redis serves another process's write once the store's watch reports it,
/// without waiting for a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_over_redis_hears_other_writers() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let url = format!("{}/?base_key={}", redis.url(), unique_name("cached"));
    let cached = flipper::store::CachedStore::new(RedisStore::from_url(&url).unwrap());
    let other = RedisStore::from_url(&url).unwrap();
    other.create_at("f", false, None, 1).await.unwrap();
    assert!(!cached.get("f").await.unwrap().unwrap().item.switched_on());
    assert!(cached.follows_changes());
    other.set("f", true).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cached.get("f").await.unwrap().unwrap().item.switched_on() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache never heard the write"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other.delete("f").await.unwrap();
    while cached.get("f").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache never heard the delete"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
