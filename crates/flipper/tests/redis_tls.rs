//! The Redis store over TLS (`rediss://`, `rediss+cluster://`; cargo feature `redis-tls`)
//! against real redis-servers serving only TLS, with throwaway certificates (flipper-testkit,
//! which makes them with `openssl`): the conformance suite through a private CA (`ca_file`),
//! on a standalone server and on a TLS cluster; a certificate from an unknown CA refused, and
//! quickly; `#insecure`; client certificates for a server that requires them; bad PEM files
//! refused when the URL is parsed; the watch over TLS.
//!
//! Without redis-server or openssl the tests skip with a loud message, unless
//! `FLIPPER_TEST_REQUIRE_SERVICES=1`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flipper::Error;
use flipper::store::{Change, ChangeStream, RedisConfig, RedisStore, Store, StoreExt};
use flipper_testkit::{RedisOptions, RedisServer, RedisTls, unique_name};
use futures_util::StreamExt;

/// A path as a URL query value (the test paths hold no `&`, `#` or `%`).
fn path(p: std::path::PathBuf) -> String {
    let s = p.to_string_lossy().into_owned();
    assert!(!s.contains(['&', '#', '%', '?']), "{s}");
    s
}

/// `?ca_file=CA` for a server's or cluster's CA.
fn trust(tls: &RedisTls) -> String {
    format!("?ca_file={}", path(tls.ca_file()))
}

/// `&cert_file=...&key_file=...`: the CA's client certificate.
fn client_cert(tls: &RedisTls) -> String {
    format!(
        "&cert_file={}&key_file={}",
        path(tls.client_cert_file()),
        path(tls.client_key_file())
    )
}

/// A store on `url` with a fresh base key.
fn store_at(url: &str) -> RedisStore {
    let config = RedisConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    RedisStore::new(config.with_base_key(unique_name("features")))
}

/// `rediss://127.0.0.1:PORT?ca_file=CA` for the shared TLS server.
fn standalone_url() -> Option<String> {
    let server = flipper_testkit::redis_tls()?;
    Some(format!("{}{}", server.url(), trust(server.tls()?)))
}

/// A store with a fresh base key on the shared TLS server, trusting its CA.
fn standalone() -> Option<RedisStore> {
    Some(store_at(&standalone_url()?))
}

/// A TLS server that requires client certificates, shared by this test binary.
fn mtls_server() -> Option<&'static RedisServer> {
    static SHARED: OnceLock<Option<RedisServer>> = OnceLock::new();
    SHARED
        .get_or_init(|| RedisServer::start(RedisOptions::default().require_client_cert(true)))
        .as_ref()
}

/// `rediss+cluster://` for the shared TLS cluster's nodes (no parameters).
#[cfg(feature = "redis-cluster")]
fn cluster_base_url() -> Option<(String, &'static RedisTls)> {
    let cluster = flipper_testkit::redis_cluster_tls()?;
    let hosts: Vec<&str> = cluster
        .node_urls()
        .iter()
        .map(|u| u.trim_start_matches("rediss://"))
        .collect();
    Some((
        format!("rediss+cluster://{}", hosts.join(",")),
        cluster.tls()?,
    ))
}

/// A store with a fresh base key on the shared TLS cluster, trusting its CA.
#[cfg(feature = "redis-cluster")]
fn cluster() -> Option<RedisStore> {
    let (url, tls) = cluster_base_url()?;
    Some(store_at(&format!("{url}{}", trust(tls))))
}

mod standalone {
    flipper::store_conformance_tests!({
        let Some(store) = super::standalone() else {
            return;
        };
        store
    });
}

#[cfg(feature = "redis-cluster")]
mod cluster {
    flipper::store_conformance_tests!({
        let Some(store) = super::cluster() else {
            return;
        };
        store
    });
}

/// The error of a first operation, which must come within 30 s.
async fn first_error(store: &RedisStore) -> Error {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), store.get("f"))
        .await
        .unwrap_or_else(|_| panic!("{store}: no answer within 30 s"));
    let err = result.expect_err("the connection must fail");
    eprintln!("{store}: {err} (after {:?})", started.elapsed());
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let (Some(server), Some(other)) = (flipper_testkit::redis_tls(), mtls_server()) else {
        return;
    };
    // The system's roots (no ca_file), then another CA: neither signed the server's
    // certificate.
    for url in [
        server.url(),
        format!("{}{}", server.url(), trust(other.tls().unwrap())),
    ] {
        let store = store_at(&url);
        for _ in 0..2 {
            let err = first_error(&store).await;
            assert!(matches!(err, Error::Backend { .. }), "{url}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("TLS verification failed"), "{url}: {msg}");
            assert!(msg.contains("UnknownIssuer"), "{url}: {msg}");
        }
    }
}

#[cfg(feature = "redis-cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_certificate_from_an_unknown_ca_is_refused() {
    let Some((url, _)) = cluster_base_url() else {
        return;
    };
    let store = store_at(&url);
    let err = first_error(&store).await;
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_verification() {
    let Some(server) = flipper_testkit::redis_tls() else {
        return;
    };
    let url = format!("{}#insecure", server.url());
    let store = store_at(&url);
    assert!(store.to_string().ends_with("#insecure"), "{store}");
    store.create("f", true, None).await.unwrap();
    assert!(store.get("f").await.unwrap().unwrap().item.switched_on());
}

#[cfg(feature = "redis-cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_verification_on_a_cluster() {
    let Some((url, _)) = cluster_base_url() else {
        return;
    };
    let store = store_at(&format!("{url}#insecure"));
    store.create("f", true, None).await.unwrap();
    assert_eq!(store.items(None, 0).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_opens_a_server_that_requires_one() {
    let Some(server) = mtls_server() else {
        return;
    };
    let tls = server.tls().unwrap();
    // Without a certificate the server refuses the connection.
    let without = store_at(&format!("{}{}", server.url(), trust(tls)));
    let err = first_error(&without).await;
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains("cert_file=PATH&key_file=PATH"),
        "{err}"
    );
    // With the CA's client certificate it works, watch included.
    let url = format!("{}{}{}", server.url(), trust(tls), client_cert(tls));
    let store = store_at(&url);
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes).await, Change::Resync);
    store.create("f", true, None).await.unwrap();
    assert_eq!(next_change(&mut changes).await, "put f true");
    assert!(store.get("f").await.unwrap().is_some());
}

#[test]
fn bad_tls_files_are_refused_when_the_url_is_parsed() {
    // Certificates to point at, from the shared TLS server (or a skip).
    let Some(server) = flipper_testkit::redis_tls() else {
        return;
    };
    let tls = server.tls().unwrap();
    let dir = std::env::temp_dir().join(unique_name("flipper-tls-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        path(p)
    };
    let not_pem = write("notes.txt", "hello\n");
    let broken = write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n%%%% not base64 %%%%\n-----END CERTIFICATE-----\n",
    );
    let garbage_der = write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
    );
    let missing = path(dir.join("missing.pem"));
    let a_dir = path(dir.clone());
    let ca = path(tls.ca_file());
    let (cert, key) = (path(tls.client_cert_file()), path(tls.client_key_file()));
    let server_key = path(tls.server_key_file());
    let base = server.url();
    for (query, file, why) in [
        (format!("ca_file={missing}"), &missing, "cannot be read"),
        (format!("ca_file={a_dir}"), &a_dir, "cannot be read"),
        (
            format!("ca_file={not_pem}"),
            &not_pem,
            "holds no PEM certificate",
        ),
        (format!("ca_file={key}"), &key, "holds no PEM certificate"),
        (format!("ca_file={broken}"), &broken, "invalid PEM"),
        (
            format!("ca_file={garbage_der}"),
            &garbage_der,
            "rustls cannot use",
        ),
        (
            format!("ca_file={ca}&cert_file={not_pem}&key_file={key}"),
            &not_pem,
            "holds no PEM certificate",
        ),
        (
            format!("cert_file={cert}&key_file={missing}"),
            &missing,
            "cannot be read",
        ),
        (
            format!("cert_file={cert}&key_file={cert}"),
            &cert,
            "no PEM private key",
        ),
        (
            format!("cert_file={cert}&key_file={server_key}"),
            &server_key,
            "does not go with",
        ),
        (format!("cert_file={cert}"), &cert, "go together"),
    ] {
        let url = format!("{base}?{query}");
        let err = RedisConfig::from_url(&url).unwrap_err();
        assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(why), "{url}: {msg}");
        if why != "go together" {
            assert!(msg.contains(&format!("{file:?}")), "{url}: {msg}");
        }
    }
    // TLS files with redis:// are a mistake, not ignored.
    let err = RedisConfig::from_url(&format!("redis://127.0.0.1:1?ca_file={ca}")).unwrap_err();
    assert!(err.to_string().contains("rediss:// (TLS) only"), "{err}");
    // Good files parse, and show in the store's name.
    let url = format!("{base}?ca_file={ca}&cert_file={cert}&key_file={key}");
    let store = RedisStore::from_url(&url).unwrap();
    assert_eq!(store.to_string(), url);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The next change within 10 s.
async fn next(changes: &mut ChangeStream) -> Change {
    tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("a change within 10 s")
        .expect("the stream stays open")
}

/// The next change that is not a resync, as `put NAME ENABLED` or `delete NAME`.
async fn next_change(changes: &mut ChangeStream) -> String {
    loop {
        match next(changes).await {
            Change::Put { item, .. } => {
                return format!("put {} {}", item.feature_name, item.switched_on());
            }
            Change::Delete { name } => return format!("delete {name}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_works_over_tls() {
    // Keyspace notifications on: the watch's pub/sub connections hear another process's
    // writes as well as the change channel.
    let Some(server) = RedisServer::start(
        RedisOptions::default()
            .tls(true)
            .keyspace_notifications(true),
    ) else {
        return;
    };
    let url = format!("{}{}", server.url(), trust(server.tls().unwrap()));
    let config = RedisConfig::from_url(&url)
        .unwrap()
        .with_poll_interval(None);
    let watcher = RedisStore::new(config.clone());
    let writer = RedisStore::new(config);
    let mut changes = watcher.watch().unwrap();
    assert_eq!(next(&mut changes).await, Change::Resync);
    writer.create("own", true, None).await.unwrap();
    assert_eq!(next_change(&mut changes).await, "put own true");
    writer.delete("own").await.unwrap();
    assert_eq!(next_change(&mut changes).await, "delete own");
    // A write by another process (redis-cli over TLS): heard through keyspace notifications.
    let foreign = flipper::Item::new("py", true, 1).to_json();
    server.cli(&["SET", "features/py", &foreign]);
    assert_eq!(next_change(&mut changes).await, "put py true");
}

#[tokio::test]
async fn plain_redis_urls_still_work_with_tls_built_in() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let store = store_at(redis.url());
    store.create("f", false, None).await.unwrap();
    assert!(store.get("f").await.unwrap().is_some());
}
