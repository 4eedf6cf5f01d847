//! Real services for flipper's tests, started on free loopback ports in temporary directories
//! and stopped with the test process.
//!
//! | service | shared per test binary | owned (stop/restart it) | existing server instead |
//! |---|---|---|---|
//! | redis-server | [`redis()`] | [`RedisServer::start`] | `FLIPPER_TEST_REDIS_URL` |
//! | redis-server over TLS (a throwaway CA) | [`redis_tls()`] | [`RedisServer::start`] with [`RedisOptions::tls`] | |
//! | Redis Cluster, 3 masters | [`redis_cluster()`] | | `FLIPPER_TEST_REDIS_CLUSTER_URLS` (comma-separated node URLs) |
//! | Redis Cluster over TLS | [`redis_cluster_tls()`] | | |
//! | PostgreSQL | [`postgres()`] | [`PostgresServer::start`] | `FLIPPER_TEST_POSTGRES_URL` |
//! | Python 3 with modules | [`python3`] | | |
//! | moto's S3 server (`python3 -m moto.server`) | [`moto()`] (a bucket per test: [`MotoServer::create_bucket`]) | [`MotoServer::start`] | |
//! | a fake Consul agent (KV API, in process) | [`fake_consul()`] | [`FakeConsul::start`] | |
//! | a real Consul agent (`consul agent -dev`), only when `consul` is on `PATH` | [`consul_agent()`] | | |
//!
//! TLS servers need the `openssl` command, which makes their certificates ([`RedisTls`]).
//! When a service's program is missing, the accessor prints a loud `SKIPPED` line and returns
//! `None`, so the test returns early; with `FLIPPER_TEST_REQUIRE_SERVICES=1` (as in CI) it
//! panics instead, so a missing service fails the run.
//!
//! Servers run under `setpriv --pdeathsig`, from one long-lived spawner thread, so the kernel
//! stops them when the test process exits, however it exits; shared servers are never stopped
//! otherwise. PostgreSQL refuses to run as root, so as root its commands run as the `postgres`
//! user. Isolation inside a shared server: a unique key prefix ([`unique_name`]) on Redis, a new
//! database ([`Postgres::fresh_database`]) on PostgreSQL.
//!
//! ```no_run
//! let Some(redis) = flipper_testkit::redis() else { return };
//! let base_key = flipper_testkit::unique_name("features");
//! println!("{} {base_key}", redis.url());
//! ```

mod consul;
mod postgres;
mod process;
mod python;
mod redis;
mod s3;

pub use consul::{ConsulAgent, FakeConsul, KvSnapshot, consul_agent, fake_consul};
pub use postgres::{Postgres, PostgresServer, postgres};
pub use python::{PythonProcess, python3};
pub use redis::{
    Redis, RedisCluster, RedisOptions, RedisServer, RedisTls, redis, redis_cluster,
    redis_cluster_tls, redis_tls,
};
pub use s3::{MotoServer, moto};

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether `FLIPPER_TEST_REQUIRE_SERVICES=1`: a missing service fails instead of skipping.
pub fn services_required() -> bool {
    std::env::var("FLIPPER_TEST_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// Reports a service that cannot be used: panics when [`services_required`], otherwise prints
/// a loud `SKIPPED` line to stderr. Returns `None` for `let ... else { return }`.
///
/// # Panics
/// When `FLIPPER_TEST_REQUIRE_SERVICES=1`.
pub fn unavailable<T>(service: &str, why: &str) -> Option<T> {
    assert!(
        !services_required(),
        "{service} is required (FLIPPER_TEST_REQUIRE_SERVICES=1) but unavailable: {why}"
    );
    eprintln!(
        "\n==== SKIPPED: {service} unavailable: {why}. Install it (see .ci/run) or set \
         FLIPPER_TEST_REQUIRE_SERVICES=1 to make this a failure. ====\n"
    );
    None
}

/// A name unique to this process and call: `TAG-PID-N`. For Redis key prefixes, database
/// names, flag names.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
