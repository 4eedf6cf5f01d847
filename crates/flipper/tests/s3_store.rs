//! The S3 store against moto's S3 server (flipper-testkit; moto is the real S3 API here, in
//! memory): the conformance suite (whole bucket, under a prefix, without polling, without
//! conditional writes, and the cached wrapper), flipper-client's keys and bytes, objects that
//! are not flags, names that cannot be keys, conditional writes, the environment's settings;
//! `s3_store/watch.rs`: the polling watch and live flags; `s3_store/python.rs`: the real
//! Python flipper-client (boto3) sharing buckets; `s3_store/unsupported.rs`: a service that
//! answers conditional writes with 501 Not Implemented.
//!
//! Every test makes its own bucket on the shared moto server, or runs its own server. Without
//! moto (`pip install 'moto[server]'`) the tests skip with a loud message, unless
//! `FLIPPER_TEST_REQUIRE_SERVICES=1`.

#[path = "s3_store/python.rs"]
mod python;
#[path = "support/script.rs"]
mod script;
#[path = "s3_store/unsupported.rs"]
mod unsupported;
#[path = "s3_store/watch.rs"]
mod watch;

use std::time::Duration;

use flipper::store::{PutMode, S3Config, S3Store, Store, StoreExt};
use flipper::{Condition, Error, Item, Value};
use flipper_testkit::MotoServer;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

/// A configuration for `bucket` on `moto` (dummy credentials, plain HTTP), polling every
/// 200 ms.
fn config(moto: &MotoServer, bucket: &str) -> S3Config {
    S3Config::new(bucket)
        .with_endpoint(moto.url())
        .with_region(MotoServer::REGION)
        .with_allow_http(true)
        .with_credentials(MotoServer::ACCESS_KEY_ID, MotoServer::SECRET_ACCESS_KEY)
        .with_poll_interval(Some(Duration::from_millis(200)))
}

/// A fresh bucket on the shared moto server, and its configuration.
fn fresh_config() -> Option<S3Config> {
    let moto = flipper_testkit::moto()?;
    Some(config(moto, &moto.create_bucket()))
}

/// A store on a fresh bucket.
fn fresh() -> Option<S3Store> {
    Some(S3Store::new(fresh_config()?).expect("valid configuration"))
}

/// The whole bucket, as flipper-client uses it.
mod bucket {
    flipper::store_conformance_tests!({
        let Some(store) = super::fresh() else {
            return;
        };
        store
    });
}

/// Under a prefix.
mod prefixed {
    flipper::store_conformance_tests!({
        let Some(config) = super::fresh_config() else {
            return;
        };
        flipper::store::S3Store::new(config.with_prefix("apps/web").unwrap()).unwrap()
    });
}

/// Only this store's writes are watched.
mod without_polling {
    flipper::store_conformance_tests!({
        let Some(config) = super::fresh_config() else {
            return;
        };
        flipper::store::S3Store::new(config.with_poll_interval(None)).unwrap()
    });
}

/// Writes overwrite, as flipper-client's do (the compare-and-swap cases skip).
mod without_conditional_writes {
    flipper::store_conformance_tests!({
        let Some(config) = super::fresh_config() else {
            return;
        };
        flipper::store::S3Store::new(config.with_conditional_writes(false)).unwrap()
    });
}

/// The cached wrapper over S3 (kept fresh by the S3 store's watch).
mod cached {
    flipper::store_conformance_tests!({
        let Some(store) = super::fresh() else {
            return;
        };
        flipper::store::CachedStore::new(store)
    });
}

/// object_store's client on the same bucket, to read and write raw objects.
fn raw(config: &S3Config) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(config.endpoint().unwrap())
        .with_region(MotoServer::REGION)
        .with_allow_http(true)
        .with_access_key_id(MotoServer::ACCESS_KEY_ID)
        .with_secret_access_key(MotoServer::SECRET_ACCESS_KEY)
        .with_bucket_name(config.bucket())
        .build()
        .unwrap()
}

async fn raw_put(s3: &AmazonS3, key: &str, bytes: &[u8]) -> String {
    let done = s3
        .put(&Path::parse(key).unwrap(), PutPayload::from(bytes.to_vec()))
        .await
        .unwrap();
    done.e_tag.unwrap().trim_matches('"').to_owned()
}

async fn raw_get(s3: &AmazonS3, key: &str) -> Option<Vec<u8>> {
    match s3.get(&Path::parse(key).unwrap()).await {
        Ok(got) => Some(got.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{key}: {e}"),
    }
}

/// The spec's captured value of `new_dashboard` (flipper-client 1.3.2).
const DASHBOARD: &str = r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": 1795280475, "conditions": [{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}], "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bytes_are_flipper_clients() {
    let Some(config) = fresh_config() else {
        return;
    };
    let s3 = raw(&config);
    for prefix in ["", "team/app"] {
        let store = S3Store::new(config.clone().with_prefix(prefix).unwrap()).unwrap();
        let key = |name: &str| match prefix {
            "" => name.to_owned(),
            p => format!("{p}/{name}"),
        };

        // Written by the store: the key is the name (under the prefix), the body the bytes.
        let mut item = Item::new("ñame/x", true, 1_700_000_000);
        item.meta.client_data = [("k", Value::from("é"))].into_iter().collect();
        item.meta.conditions = vec![Condition::new().gte("age", 18)];
        let version = store.put(&item, PutMode::Overwrite).await.unwrap();
        let bytes = raw_get(&s3, &key("ñame/x")).await.expect("the object");
        assert_eq!(bytes, item.serialize());
        assert!(bytes.is_ascii(), "ensure_ascii");
        // The version is the ETag, the MD5 of the bytes for a plain PUT.
        assert_eq!(version.to_string().len(), 32, "{version}");

        // Written raw, as flipper-client writes it: read as the same item, byte for byte, with
        // the ETag as version.
        let etag = raw_put(&s3, &key("new_dashboard"), DASHBOARD.as_bytes()).await;
        let got = store.get("new_dashboard").await.unwrap().unwrap();
        assert_eq!(got.item.serialize(), DASHBOARD.as_bytes());
        assert_eq!(got.version.to_string(), etag);
        assert_eq!(
            store.put(&got.item, PutMode::Overwrite).await.unwrap(),
            got.version
        );
        assert_eq!(
            raw_get(&s3, &key("new_dashboard")).await.unwrap(),
            DASHBOARD.as_bytes()
        );
    }
    // The prefixed store sees only its own objects; the unprefixed one sees the whole bucket.
    let prefixed = S3Store::new(config.clone().with_prefix("team/app").unwrap()).unwrap();
    let whole = S3Store::new(config).unwrap();
    let names = |entries: Vec<flipper::store::ListEntry>| -> Vec<String> {
        entries
            .into_iter()
            .map(|e| match e {
                Ok(v) => v.item.feature_name,
                Err(c) => format!("corrupt {}", c.key),
            })
            .collect()
    };
    assert_eq!(
        names(prefixed.list(None, 0).await.unwrap()),
        ["new_dashboard", "ñame/x"]
    );
    assert_eq!(
        names(whole.list(None, 0).await.unwrap()),
        [
            "new_dashboard",
            "corrupt team/app/new_dashboard",
            "corrupt team/app/ñame/x",
            "ñame/x"
        ],
        "flipper-client's store lists every object of its bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_are_not_flags_are_reported_in_place() {
    let Some(config) = fresh_config() else {
        return;
    };
    let s3 = raw(&config);
    let store = S3Store::new(config).unwrap();
    store.create("a", true, None).await.unwrap();
    store.create("m", false, None).await.unwrap();
    raw_put(&s3, "b-readme.txt", b"not a flag").await;
    raw_put(&s3, "c-empty", b"").await;
    raw_put(&s3, "d-json", b"{\"feature_name\": \"d-json\"}").await;
    raw_put(&s3, "e-other", &Item::new("zzz", true, 1).serialize()).await;
    let entries = store.list(None, 0).await.unwrap();
    let shown: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Ok(v) => format!("flag {}", v.item.feature_name),
            Err(c) => format!("corrupt {}: {}", c.key, c.error),
        })
        .collect();
    assert_eq!(shown.len(), 6, "{shown:#?}");
    assert_eq!(shown[0], "flag a");
    assert!(
        shown[1].starts_with("corrupt b-readme.txt: invalid JSON"),
        "{shown:#?}"
    );
    assert!(
        shown[2].starts_with("corrupt c-empty: invalid JSON"),
        "{shown:#?}"
    );
    assert!(shown[3].starts_with("corrupt d-json: "), "{shown:#?}");
    assert_eq!(
        shown[4],
        "corrupt e-other: feature_name: the object of flag \"e-other\" holds the flag \"zzz\""
    );
    assert_eq!(shown[5], "flag m");
    // Paging counts them; reads name them; `items` fails on the first.
    assert_eq!(store.list(Some(2), 1).await.unwrap().len(), 2);
    let err = store.get("b-readme.txt").await.unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { ref name, .. } if name == "b-readme.txt"),
        "{err}"
    );
    let err = store.items(None, 0).await.unwrap_err();
    assert!(err.to_string().contains("b-readme.txt"), "{err}");
    // Writing over one makes it a flag again.
    store.create("b-readme.txt", true, None).await.unwrap();
    assert!(store.get("b-readme.txt").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_cannot_be_object_keys_are_refused() {
    let Some(store) = fresh() else {
        return;
    };
    for name in ["a//b", "/x", "x/", "a/./b", "..", "", "tab\there", "nul\0"] {
        let err = store
            .put(&Item::new(name, true, 1), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidFlag { .. }) && err.to_string().contains("object key"),
            "{name:?}: {err}"
        );
        assert!(matches!(
            store.get(name).await,
            Err(Error::InvalidFlag { .. })
        ));
        assert!(matches!(
            store.delete(name).await,
            Err(Error::InvalidFlag { .. })
        ));
    }
    assert!(store.list(None, 0).await.unwrap().is_empty());
}

/// A key object_store cannot represent (written here with boto3, as another program could)
/// fails listings with an error that names the cause; reads of other flags still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_object_store_cannot_represent_fail_listings_clearly() {
    let Some(moto) = flipper_testkit::moto() else {
        return;
    };
    let Some(python) = flipper_testkit::python3(&["boto3"]) else {
        return;
    };
    let bucket = moto.create_bucket();
    let store = S3Store::new(config(moto, &bucket)).unwrap();
    store.create("fine", true, None).await.unwrap();
    let put = format!(
        "import boto3; boto3.client('s3', endpoint_url='{}', region_name='{}', \
         aws_access_key_id='{}', aws_secret_access_key='{}').put_object(Bucket='{bucket}', \
         Key='odd//key', Body=b'x')",
        moto.url(),
        MotoServer::REGION,
        MotoServer::ACCESS_KEY_ID,
        MotoServer::SECRET_ACCESS_KEY
    );
    let out = std::process::Command::new(python)
        .args(["-c", &put])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = store.list(None, 0).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains("object_store cannot represent"),
        "{err}"
    );
    assert!(store.get("fine").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_check_the_etag_another_writer_changed() {
    let Some(config) = fresh_config() else {
        return;
    };
    let s3 = raw(&config);
    let store = S3Store::new(config).unwrap();
    assert!(store.capabilities().conditional_put);
    let v1 = store
        .put(&Item::new("f", false, 1), PutMode::Create)
        .await
        .unwrap();
    // flipper-client overwrites the object (no condition): the version moves on.
    raw_put(&s3, "f", &Item::new("f", true, 2).serialize()).await;
    let err = store
        .put(&Item::new("f", false, 3), PutMode::Update(v1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let err = store
        .put(&Item::new("f", false, 3), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    // A read-modify-write starts from what the other writer stored.
    store
        .update("f", |item| {
            item.meta.client_data = [("k", Value::from(1))].into_iter().collect();
            Ok(())
        })
        .await
        .unwrap();
    let got = store.get("f").await.unwrap().unwrap().item;
    assert_eq!(got.is_enabled, Value::Bool(true));
    assert_eq!(got.meta.created_date, Value::from(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_open_s3_stores() {
    let store = flipper::store::open(
        "s3://flags-bucket/prod?endpoint=http://127.0.0.1:9&allow_http=true&poll_interval=off",
    )
    .unwrap();
    assert_eq!(
        store.to_string(),
        "s3://flags-bucket/prod?endpoint=http://127.0.0.1:9&allow_http=true&poll_interval=off"
    );
    let caps = store.capabilities();
    assert!(caps.conditional_put && caps.watch && !caps.watch_external && !caps.atomic_batch);
    let err = flipper::store::open("s3://x").unwrap_err().to_string();
    assert!(err.contains("not a bucket name"), "{err}");
    let err = flipper::store::open("nope://x").unwrap_err().to_string();
    assert!(err.contains("s3://BUCKET[/PREFIX]"), "{err}");
    // A service that cannot be reached is a backend error (after a few quick retries).
    let config =
        S3Config::from_url("s3://flags-bucket?endpoint=http://127.0.0.1:9&allow_http=true")
            .unwrap()
            .with_credentials("id", "secret");
    let store = S3Store::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = store.get("f").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// The child half of [`the_environment_configures_the_store`]: runs in a copy of this test
/// binary started with the `AWS_*` variables set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_child() {
    let Ok(url) = std::env::var("FLIPPER_S3_TEST_CHILD_URL") else {
        return;
    };
    let store = flipper::store::open(&url).unwrap();
    store.create("from-env", true, None).await.unwrap();
    assert!(store.get("from-env").await.unwrap().is_some());
}

/// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_ALLOW_HTTP` configure a store opened from a bare `s3://BUCKET` URL (in a child
/// process: the environment cannot be changed safely in a threaded test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_configures_the_store() {
    let Some(moto) = flipper_testkit::moto() else {
        return;
    };
    let bucket = moto.create_bucket();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "environment_child", "--nocapture"])
        .env("FLIPPER_S3_TEST_CHILD_URL", format!("s3://{bucket}"))
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", MotoServer::REGION)
        .env("AWS_ACCESS_KEY_ID", MotoServer::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", MotoServer::SECRET_ACCESS_KEY)
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("1 passed"), "{output}");
    let store = S3Store::new(config(moto, &bucket)).unwrap();
    assert!(store.get("from-env").await.unwrap().is_some());
}
