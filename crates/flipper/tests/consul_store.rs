//! The Consul store (`consul://`): the conformance suite against flipper-testkit's fake Consul
//! agent (always, CI included) and against a real `consul agent -dev` (only when a `consul`
//! binary is on PATH: none can be installed here, so its absence is a loud skip, never a
//! failure); flipper-client's keys and bytes; a flag readable right after it is created;
//! deletes seen; listings next to foreign values and a sibling prefix; names Consul cannot
//! address; CAS on `ModifyIndex`; the ACL token; the watch (other writers, an index that goes
//! backwards, an outage with its requests counted, live flags following by blocking query,
//! requests while idle); and the real Python flipper-client's `ConsulFeatureFlagStore` sharing
//! the fake agent (`consul_store/python.rs`).

use std::sync::Arc;

use flipper::store::{ConsulConfig, ConsulStore, PutMode, Store, StoreExt, Version};
use flipper::{Checks, Error, FeatureFlagClient, Item};
use flipper_testkit::{FakeConsul, unique_name};

/// A store with a fresh base key on the agent at `url`.
fn store_at(url: &str) -> ConsulStore {
    let config = ConsulConfig::from_url(url)
        .expect("valid URL")
        .with_base_key(unique_name("features"))
        .expect("valid base key");
    ConsulStore::new(config).expect("a store")
}

/// A store with a fresh base key on the shared fake agent.
fn fake_store() -> ConsulStore {
    store_at(&flipper_testkit::fake_consul().url())
}

/// The whole suite against the fake agent.
mod fake {
    flipper::store_conformance_tests!(super::fake_store());
}

/// The cached wrapper over Consul: the store's watch keeps it fresh.
mod cached {
    flipper::store_conformance_tests!(flipper::store::CachedStore::new(super::fake_store()));
}

/// The whole suite against a real agent, when a `consul` binary is on PATH.
mod agent {
    flipper::store_conformance_tests!({
        let Some(agent) = flipper_testkit::consul_agent() else {
            return;
        };
        super::store_at(&agent.url())
    });
}

#[path = "consul_store/python.rs"]
mod python;
#[path = "support/script.rs"]
mod script;
#[path = "consul_store/watch.rs"]
mod watch;

/// The spec's captured value of `new_dashboard` (flipper-client 1.3.2).
const DASHBOARD: &str = r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": 1795280475, "conditions": [{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}], "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bytes_are_flipper_clients() {
    let consul = flipper_testkit::fake_consul();
    let store = fake_store();
    let base = store.config().base_key().to_owned();

    // Python's bytes, written as python-consul's kv.put does, read back exactly.
    let index = consul.put(&format!("{base}/new_dashboard"), DASHBOARD.as_bytes());
    let got = store.get("new_dashboard").await.unwrap().expect("readable");
    assert_eq!(got.item.serialize(), DASHBOARD.as_bytes());
    assert_eq!(got.version, Version::from_token(index.to_string()));

    // Rust's writes are the item's bytes under BASE_KEY/NAME, versioned by ModifyIndex.
    let item = Item::new("team/x y", true, 1_700_000_000);
    let version = store.put(&item, PutMode::Overwrite).await.unwrap();
    let (bytes, index) = consul
        .get(&format!("{base}/team/x y"))
        .expect("the key exists");
    assert_eq!(bytes, item.serialize());
    assert_eq!(version.to_string(), index.to_string());
    // The key is percent-encoded on the wire, slashes kept.
    assert_eq!(
        consul.requests_to("PUT", &format!("/v1/kv/{base}/team/x%20y")),
        1
    );
}

/// flipper-client's Consul store cannot read a flag it just created, and keeps showing deleted
/// flags (spec §2.4). This store reads Consul every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_is_readable_right_after_it_is_created_and_deletes_are_seen() {
    let client = FeatureFlagClient::new(fake_store());
    client.create("b", false, None).await.unwrap();
    client.enable("b").await.expect("readable at once");
    assert!(client.is_enabled("b", &Checks::new()).await);
    client.destroy("b").await.unwrap();
    assert!(!client.exists("b").await.unwrap());
    assert!(client.list(None, 0).await.unwrap().is_empty());
    assert!(!client.is_enabled("b", &Checks::new()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_report_foreign_values_and_skip_sibling_prefixes() {
    let consul = flipper_testkit::fake_consul();
    let store = fake_store();
    let base = store.config().base_key().to_owned();
    consul.put(&format!("{base}/bad"), b"not a flag");
    consul.put(&format!("{base}/empty"), b"");
    // flipper-client's prefix (`features`, no slash) matched `features2/...` too.
    consul.put(
        &format!("{base}2/other"),
        &Item::new("other", true, 1).serialize(),
    );
    store
        .put(&Item::new("a/b", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let listed = store.list(None, 0).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].as_ref().unwrap().item.feature_name, "a/b");
    let corrupt = listed[1].as_ref().unwrap_err();
    assert_eq!(corrupt.key, "bad");
    assert!(store.get("empty").await.unwrap().is_none());
    assert!(matches!(
        store.get("bad").await,
        Err(Error::Corrupt { ref name, .. }) if name == "bad"
    ));
    assert_eq!(store.list(Some(1), 1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_consul_cannot_address_are_refused_before_sending() {
    let consul = FakeConsul::start();
    let store = store_at(&consul.url());
    for name in ["a//b", "/a", "a/", "..", "a/./b", ""] {
        let err = store
            .put(&Item::new(name, true, 1), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidFlag { .. }), "{name:?}: {err}");
        assert!(matches!(
            store.get(name).await,
            Err(Error::InvalidFlag { .. })
        ));
        assert!(matches!(
            store.delete(name).await,
            Err(Error::InvalidFlag { .. })
        ));
    }
    assert_eq!(consul.requests(), 0);
    // Consul's value limit (kv_max_value_size, 512 KiB) is the server's answer.
    let mut big = Item::new("big", true, 1);
    big.meta.client_data = [("blob", flipper::Value::from("x".repeat(600 * 1024)))]
        .into_iter()
        .collect();
    let err = store.put(&big, PutMode::Overwrite).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidFlag { ref message, .. } if message.contains("too large")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_uses_the_modify_index() {
    let consul = flipper_testkit::fake_consul();
    let store = fake_store();
    let key = format!("{}/f", store.config().base_key());
    let v1 = store
        .put(&Item::new("f", false, 1), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(
        v1.to_string(),
        consul.get(&key).unwrap().1.to_string(),
        "the version is the ModifyIndex"
    );
    // Writing the bytes the key holds keeps its ModifyIndex, so the version stays.
    let same = store
        .put(&Item::new("f", false, 1), PutMode::Update(v1.clone()))
        .await
        .unwrap();
    assert_eq!(same, v1);
    // Another writer (flipper-client's plain kv.put) moves the index: the old version loses.
    consul.put(&key, &Item::new("f", true, 2).serialize());
    let err = store
        .put(&Item::new("f", true, 3), PutMode::Update(v1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    // A version no store issued matches nothing.
    let err = store
        .put(
            &Item::new("f", true, 3),
            PutMode::Update(Version::from_token("0")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert_eq!(
        store.get("f").await.unwrap().unwrap().item,
        Item::new("f", true, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_token_is_sent_and_never_shown() {
    let consul = FakeConsul::start();
    consul.require_token(Some("s3cret"));
    let anonymous = store_at(&consul.url());
    let err = anonymous.get("f").await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ACL token"), "{err}");
    let store = store_at(&format!("{}?token=s3cret", consul.url()));
    let client = FeatureFlagClient::new(store.clone());
    client.create("f", true, None).await.unwrap();
    assert!(client.is_enabled("f", &Checks::new()).await);
    let shown = format!("{store} {store:?} {:?}", store.config());
    assert!(
        !shown.contains("s3cret") && shown.contains("token=***"),
        "{shown}"
    );
    // Through `open`, as the CLI opens stores.
    let opened = flipper::store::open(&format!(
        "{}/{}?token=s3cret",
        consul.url(),
        store.config().base_key()
    ))
    .unwrap();
    assert!(opened.get("f").await.unwrap().is_some());
    assert!(!opened.to_string().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_is_down_is_a_retryable_error() {
    let consul = FakeConsul::start();
    let store: Arc<dyn Store> = Arc::new(store_at(&consul.url()));
    store.set("f", true).await.unwrap();
    consul.stop();
    let err = store.get("f").await.unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }) && err.is_retryable(),
        "{err}"
    );
    consul.restart();
    assert!(store.get("f").await.unwrap().is_some());
}
