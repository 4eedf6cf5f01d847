//! The PostgreSQL store against a real PostgreSQL (flipper-testkit; a new database per test):
//! the conformance suite, flipper-client's schema and bytes, table and column names (hostile
//! ones too), name limits, corrupt rows, migrations, the pool, and URL parsing. Watching,
//! outages, concurrency and Python are in `postgres_store/watch.rs`.
//!
//! Without PostgreSQL the tests skip with a loud message, unless
//! `FLIPPER_TEST_REQUIRE_SERVICES=1`, where they fail.

#[path = "postgres_store/watch.rs"]
mod watch;

use flipper::Error;
use flipper::store::{PostgresConfig, PostgresStore, PutMode, Store, StoreExt};
use flipper_core::Item;
use flipper_testkit::Postgres;

/// The shared server and a new database on it.
fn database() -> Option<(&'static Postgres, String)> {
    let pg = flipper_testkit::postgres()?;
    let url = pg.fresh_database();
    Some((pg, url))
}

/// A store on a new database.
fn store() -> Option<PostgresStore> {
    let (_, url) = database()?;
    Some(PostgresStore::open(&url).expect("the testkit's URL is valid"))
}

/// `url` with extra query parameters.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

mod conformance {
    flipper::store_conformance_tests!(match super::store() {
        Some(store) => store,
        None => return,
    });
}

/// flipper-client 1.3.2's stored bytes for one flag, as captured from a real database.
const PYTHON_BYTES: &str = r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": 1795280475, "conditions": [{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}], "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}}}"#;

#[tokio::test]
async fn the_table_and_bytes_are_flipper_clients() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    store.migrate().await.unwrap();
    let columns = pg.psql(
        &url,
        "SELECT column_name, data_type, coalesce(character_maximum_length, 0), is_nullable \
         FROM information_schema.columns WHERE table_name = 'feature_flags' \
         ORDER BY ordinal_position",
    );
    assert_eq!(
        columns.trim(),
        "name|character varying|40|NO\nitem|bytea|0|NO"
    );
    let key = pg.psql(
        &url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a \
         ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = 'feature_flags'::regclass AND i.indisprimary",
    );
    assert_eq!(key.trim(), "name");

    // Rust writes flipper-client's bytes.
    let item = Item::deserialize(PYTHON_BYTES.as_bytes()).unwrap();
    let mut renamed = item.clone();
    renamed.feature_name = "from_rust".into();
    store.put(&renamed, PutMode::Overwrite).await.unwrap();
    let stored = pg.psql(
        &url,
        "SELECT encode(item, 'hex') FROM feature_flags WHERE name = 'from_rust'",
    );
    assert_eq!(stored.trim(), hex(&renamed.serialize()));

    // Rust reads flipper-client's bytes, and writes them back unchanged.
    pg.psql(
        &url,
        &format!(
            "INSERT INTO feature_flags (name, item) VALUES ('new_dashboard', decode('{}', 'hex'))",
            hex(PYTHON_BYTES.as_bytes())
        ),
    );
    let read = store.get("new_dashboard").await.unwrap().unwrap();
    assert_eq!(read.item, item);
    assert_eq!(read.item.serialize(), PYTHON_BYTES.as_bytes());
    store.set("new_dashboard", true).await.unwrap();
    let rewritten = pg.psql(
        &url,
        "SELECT encode(item, 'hex') FROM feature_flags WHERE name = 'new_dashboard'",
    );
    assert_eq!(rewritten.trim(), hex(PYTHON_BYTES.as_bytes()));

    // The version is the SHA-256 of the bytes, whoever wrote them.
    let digest = pg.psql(
        &url,
        "SELECT encode(sha256(item), 'hex') FROM feature_flags WHERE name = 'new_dashboard'",
    );
    assert_eq!(
        store
            .get("new_dashboard")
            .await
            .unwrap()
            .unwrap()
            .version
            .to_string(),
        digest.trim()
    );
}

#[tokio::test]
async fn custom_and_hostile_names_are_quoted_and_inject_nothing() {
    let Some((pg, url)) = database() else { return };
    pg.psql(
        &url,
        "CREATE TABLE feature_flags (name varchar(40) PRIMARY KEY, item bytea NOT NULL); \
         INSERT INTO feature_flags VALUES ('keep', 'x'); CREATE TABLE y (z int)",
    );
    let hostile = r#"x"; DROP TABLE feature_flags; --"#;
    let config = PostgresConfig::from_url(&url)
        .unwrap()
        .with_table(hostile)
        .with_name_column(r#"Ke'y\"; DROP TABLE y; --"#)
        .with_item_column("da$$ta");
    let store = PostgresStore::new(config).unwrap();
    let mut changes = store.watch().unwrap();
    store.create("a", true, None).await.unwrap();
    store.set("a", false).await.unwrap();
    store
        .put_many(&[Item::new("b", true, 1), Item::new("c", true, 1)])
        .await
        .unwrap();
    assert_eq!(store.items(None, 0).await.unwrap().len(), 3);
    assert!(store.delete("c").await.unwrap());
    let seen = watch::describe_changes(&mut changes, 5).await;
    assert_eq!(
        seen,
        [
            "put a true",
            "put a false",
            "put b true",
            "put c true",
            "delete c"
        ]
    );

    let tables = pg.psql(
        &url,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name COLLATE \"C\"",
    );
    assert_eq!(tables.trim(), format!("feature_flags\n{hostile}\ny"));
    let columns = pg.psql(
        &url,
        "SELECT column_name || ' ' || data_type FROM information_schema.columns \
         WHERE table_name = 'x\"; DROP TABLE feature_flags; --' ORDER BY ordinal_position",
    );
    assert_eq!(
        columns.trim(),
        "Ke'y\\\"; DROP TABLE y; -- character varying\nda$$ta bytea"
    );
    assert_eq!(
        pg.psql(&url, "SELECT name FROM feature_flags").trim(),
        "keep"
    );
    // The untouched table of the same database has no trigger.
    assert_eq!(
        pg.psql(
            &url,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'feature_flags'::regclass"
        )
        .trim(),
        "0"
    );
}

#[tokio::test]
async fn names_longer_than_the_column_are_refused_clearly() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    let forty = "n".repeat(40);
    store.create(&forty, true, None).await.unwrap();
    assert!(store.get(&forty).await.unwrap().is_some());
    let long = format!("{forty}é");
    let err = store.create(&long, true, None).await.unwrap_err();
    let Error::InvalidFlag { name, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, &long);
    assert_eq!(
        message,
        "flag names are at most 40 characters in column \"name\" of table \"feature_flags\"; \
         this one has 41"
    );
    let err = store
        .put_many(&[Item::new("ok", true, 1), Item::new(long.as_str(), true, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidFlag { name, .. } if *name == long),
        "{err:?}"
    );
    assert_eq!(
        pg.psql(&url, "SELECT count(*) FROM feature_flags").trim(),
        "1"
    );
    // Reading or deleting such a name is not an error: it cannot exist.
    assert!(store.get(&long).await.unwrap().is_none());
    assert!(!store.delete(&long).await.unwrap());
    assert!(store.get("nul\0").await.unwrap().is_none());
    assert!(matches!(
        store.create("nul\0", true, None).await.unwrap_err(),
        Error::InvalidFlag { .. }
    ));
    // A wider column (a team's own table) allows longer names.
    pg.psql(
        &url,
        "CREATE TABLE wide (name varchar(100) PRIMARY KEY, item bytea NOT NULL)",
    );
    let wide = PostgresStore::open(&with_params(&url, "table=wide")).unwrap();
    wide.create(&long, true, None).await.unwrap();
    let err = wide.create(&"w".repeat(101), true, None).await.unwrap_err();
    assert!(err.to_string().contains("at most 100 characters"), "{err}");
}

#[tokio::test]
async fn without_migrations_a_missing_table_says_what_to_do() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&with_params(&url, "run_migrations=false")).unwrap();
    let err = store.get("a").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("table \"feature_flags\" does not exist")
            && message.contains("migration_sql"),
        "{message}"
    );
    assert!(!message.contains("password"), "{message}");
    // The script, applied twice by a migration tool, makes the store work.
    let script = store.migration_sql();
    assert!(
        script.starts_with("-- flipper") && script.contains("BEGIN;"),
        "{script}"
    );
    pg.psql(&url, &script);
    pg.psql(&url, &script);
    store.create("a", true, None).await.unwrap();
    let mut changes = store.watch().unwrap();
    store.set("a", false).await.unwrap();
    assert_eq!(
        watch::describe_changes(&mut changes, 1).await,
        ["put a false"]
    );
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_together() {
    let Some((pg, url)) = database() else { return };
    let stores: Vec<_> = (0..8).map(|_| PostgresStore::open(&url).unwrap()).collect();
    let runs: Vec<_> = stores
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    stores[0].migrate().await.unwrap();
    assert_eq!(
        pg.psql(
            &url,
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'feature_flags'::regclass \
             ORDER BY tgname"
        )
        .trim(),
        "flipper_notify_change\nflipper_notify_truncate"
    );
    // A store migrates by itself on first use.
    let (_, other) = database().unwrap();
    PostgresStore::open(&other)
        .unwrap()
        .create("a", true, None)
        .await
        .unwrap();
    assert_eq!(
        pg.psql(&other, "SELECT name FROM feature_flags").trim(),
        "a"
    );
}

#[tokio::test]
async fn in_a_batch_the_last_item_of_a_name_wins() {
    let Some(store) = store() else { return };
    let batch = [
        Item::new("a", true, 1),
        Item::new("b", true, 1),
        Item::new("a", false, 2),
    ];
    let versions = store.put_many(&batch).await.unwrap();
    assert_eq!(versions.len(), 3);
    assert_ne!(versions[0], versions[2]);
    let a = store.get("a").await.unwrap().unwrap();
    assert_eq!(a.item, batch[2]);
    assert_eq!(a.version, versions[2]);
    assert_eq!(store.get("b").await.unwrap().unwrap().version, versions[1]);
}

#[tokio::test]
async fn corrupt_rows_are_listed_as_such() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    store.create("a", true, None).await.unwrap();
    store.create("c", true, None).await.unwrap();
    pg.psql(
        &url,
        "INSERT INTO feature_flags VALUES ('b', 'not json'::bytea), ('d', '\\xff'::bytea)",
    );
    // A team's own table may allow NULL.
    pg.psql(
        &url,
        "ALTER TABLE feature_flags ALTER COLUMN item DROP NOT NULL",
    );
    pg.psql(&url, "INSERT INTO feature_flags VALUES ('e', NULL)");
    let listed = store.list(None, 0).await.unwrap();
    let summary: Vec<String> = listed
        .iter()
        .map(|e| match e {
            Ok(v) => format!("ok {}", v.item.feature_name),
            Err(c) => format!("corrupt {}", c.key),
        })
        .collect();
    assert_eq!(
        summary,
        ["ok a", "corrupt b", "ok c", "corrupt d", "corrupt e"]
    );
    let err = store.get("b").await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { name, .. } if name == "b"),
        "{err}"
    );
    assert_eq!(store.list(Some(2), 1).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_bounds_connections() {
    let Some((pg, url)) = database() else { return };
    let store = PostgresStore::open(&with_params(&url, "pool_size=3")).unwrap();
    store.create("a", true, None).await.unwrap();
    let gets: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get("a").await.map(|v| v.is_some()) })
        })
        .collect();
    for get in gets {
        assert!(get.await.unwrap().unwrap());
    }
    let db = url.rsplit('/').next().unwrap();
    let connections = pg.psql(
        &url,
        &format!(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = '{db}' AND application_name = 'flipper'"
        ),
    );
    let n: usize = connections.trim().parse().unwrap();
    assert!((1..=3).contains(&n), "{n} connections");
}

#[test]
fn urls_are_read_and_checked() {
    let config = PostgresConfig::from_url(
        "postgresql://app:s3cret@db:6543/flags?table=My%20Flags&name_column=key&item_column=data\
         &run_migrations=false&pool_size=2&application_name=svc&connect_timeout=3",
    )
    .unwrap();
    assert_eq!(config.table(), "My Flags");
    assert_eq!(config.name_column(), "key");
    assert_eq!(config.item_column(), "data");
    assert!(!config.run_migrations());
    assert_eq!(config.pool_size(), 2);
    let shown = config.to_string();
    assert!(!shown.contains("s3cret") && shown.starts_with("postgresql://app@db:6543/flags?"));
    let defaults = PostgresConfig::from_url("postgres://u@h/db").unwrap();
    assert_eq!(
        (
            defaults.table(),
            defaults.name_column(),
            defaults.item_column()
        ),
        ("feature_flags", "name", "item")
    );
    assert!(defaults.run_migrations());
    assert_eq!(defaults.pool_size(), 8);
    let store = PostgresStore::open("postgres://u:pw@h/db?password=pw2").unwrap();
    assert_eq!(store.to_string(), "postgres://u@h/db");
    assert!(!format!("{store:?}").contains("pw"), "{store:?}");
    assert!(store.watch().is_none(), "no runtime, no watch");

    for (url, expected) in [
        ("mysql://u@h/db", "postgres://"),
        (
            "postgres://u@h/db?frobnicate=1",
            "unknown option `frobnicate`",
        ),
        (
            "postgres://u@h/db?run_migrations=yes",
            "run_migrations must be true or false",
        ),
        (
            "postgres://u@h/db?pool_size=0",
            "pool_size must be a number from 1 to 1000",
        ),
        ("postgres://u@h/db?pool_size=x", "pool_size"),
        (
            "postgres://u@h/db?table=a&table=b",
            "parameter table is given twice",
        ),
        ("postgres://u@h/db?table=", "table is empty"),
        (
            "postgres://u@h/db?name_column=item",
            "name_column and item_column are both",
        ),
        (
            "postgres://u@h/db?sslmode=require",
            "sslmode=require needs TLS",
        ),
        ("postgres://u@h/db?connect_timeout=soon", "connect_timeout"),
        ("postgres:///db", "no host"),
        ("postgres://h/db", "no user"),
        ("postgres://u:hunter2@h/db?bogus=1", "bogus"),
    ] {
        let err = PostgresConfig::from_url(url).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStoreUrl { .. }),
            "{url}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(expected), "{url}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let long = "t".repeat(64);
    let err = PostgresConfig::from_url(&format!("postgres://u@h/db?table={long}")).unwrap_err();
    assert!(err.to_string().contains("63-byte"), "{err}");
    let err = PostgresStore::new(defaults.with_pool_size(0)).unwrap_err();
    assert!(err.to_string().contains("pool_size"), "{err}");
}

proptest::proptest! {
    /// Any URL is accepted or refused, never a panic; a refusal never shows the password.
    #[test]
    fn url_parsing_never_panics(rest in "\\PC{0,60}", password in "[a-z]{8}") {
        let url = format!("postgres://u:{password}@{rest}");
        let shown = match PostgresConfig::from_url(&url) {
            Ok(config) => config.to_string(),
            Err(e) => e.to_string(),
        };
        proptest::prop_assert!(!shown.contains(&format!(":{password}@")), "{}", shown);
        let _ = PostgresConfig::from_url(&rest);
        let _ = PostgresConfig::from_conninfo(&rest);
    }
}
