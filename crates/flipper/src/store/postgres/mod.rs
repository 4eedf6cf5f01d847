//! [`PostgresStore`]: flipper-client's PostgreSQL table (`postgres://`), pooled, with changes
//! followed through `LISTEN` / `NOTIFY`.

mod config;
mod inbox;
mod listen;
mod notify;
mod ops;
mod sql;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

pub use self::config::PostgresConfig;
use self::sql::Statements;
use crate::error::{Error, Result};

/// How long a caller waits for a free connection when all are busy.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long a write waits for the watch streams opened before it to start listening.
const WATCH_CONNECT_WAIT: Duration = Duration::from_secs(10);

/// flipper-client's PostgreSQL table as the store: `postgres://USER@HOST/DATABASE`. Python
/// processes using flipper-client's `PostgreSQLFeatureFlagStore` on the same table share the
/// flags with it, and their writes reach [`Store::watch`](super::Store::watch) too.
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::store::{PostgresStore, StoreExt};
/// let store = PostgresStore::open("postgres://app@db.internal/flags")?;
/// store.create("beta", true, None).await?;
/// # Ok(()) }
/// ```
///
/// # Table
///
/// flipper-client's schema, created on first use unless `run_migrations=false`:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "feature_flags" ("name" varchar(40) PRIMARY KEY, "item" bytea NOT NULL)
/// ```
///
/// `item` holds exactly [`Item::serialize`](flipper_core::Item::serialize)'s bytes
/// (flipper-client's `item.serialize()`). The table and column names come from the
/// configuration ([`PostgresConfig`]) and are always quoted, so `Flags` stays `Flags` and any
/// name is safe. A flag name longer than the column allows (40 characters) is
/// [`Error::InvalidFlag`], and nothing is written.
///
/// The migration also installs a trigger (`flipper_notify_change`, and
/// `flipper_notify_truncate` for `TRUNCATE`) calling one function, `flipper_notify_change()`,
/// that sends every change on the channel `flipper_changes`. It runs under an advisory lock, is
/// idempotent, and works on PostgreSQL 12 and later. Teams that apply migrations with their own
/// tool set `run_migrations=false` and apply [`PostgresStore::migration_sql`]; then a missing
/// table is an error that says so.
///
/// # Versions
///
/// A flag's version is the SHA-256 of its stored bytes, computed by PostgreSQL
/// (`encode(sha256(item), 'hex')`): in reads, in `RETURNING`, in the trigger's notifications,
/// and in the compare-and-swap itself (`UPDATE ... WHERE name = $1 AND encode(sha256(item),
/// 'hex') = $3`), so every write changes it, including flipper-client's, and a watcher gets the
/// same version a read gives. The row's `xmin` (its transaction id) was the alternative; it was
/// not chosen because a trigger cannot know it (inside a savepoint, as Django's nested
/// `atomic()` blocks use, the row's `xmin` is the subtransaction's id, not
/// `txid_current()`), and because two writes of one row in one transaction share it. A content
/// version cannot tell A→B→A from A, which is harmless for compare-and-swap: the write applies
/// to exactly the content that was read.
///
/// # Operations
///
/// Each operation is one statement, prepared once per connection, on a pooled connection
/// (deadpool-postgres, `pool_size` connections at most, opened lazily: creating the store does
/// no I/O). `put_many` is one statement too, so it writes all or nothing. Listings are in code
/// point order (`ORDER BY name COLLATE "C"`), with `LIMIT` and `OFFSET` in SQL; a row whose
/// bytes are not a readable flag is listed as a [`CorruptEntry`](super::CorruptEntry).
/// Connecting gives up after the URL's `connect_timeout` (5 s by default), waiting for a free
/// connection after 10 s: an unreachable server is [`Error::Backend`], which is retryable.
///
/// # Watch
///
/// [`Store::watch`](super::Store::watch) listens on a connection of its own (outside the
/// pool), in a background task (call it inside a Tokio runtime; outside one it returns
/// `None`); dropping the stream closes the connection. Notifications carry the stored bytes
/// (when they fit in `NOTIFY`'s 8000 bytes; otherwise the task reads the row), and arrive in
/// commit order, from every process that writes the table. The stream opens with
/// [`super::Change::Resync`] once it listens, and yields `Resync` again after a reconnection
/// (with backoff from 100 ms to 30 s; the connection is also checked every 30 s), after a
/// `TRUNCATE`, and when the consumer fell thousands of changes behind (the changes it missed
/// are dropped rather than buffered without bound). Writes through this store (and its clones)
/// wait until the streams opened before them listen (at most 10 s), so a watcher sees every
/// write made after `watch` returned.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: PostgresConfig,
    pool: Pool,
    sql: Statements,
    /// Set once the migration ran (or at once without migrations); retried after a failure.
    migrated: OnceCell<()>,
    /// Watch streams still connecting (writes wait for them).
    watchers: crate::store::gate::WatchGate,
}

impl PostgresStore {
    /// A store for the database at `url` ([`PostgresConfig::from_url`] lists the parameters).
    /// Nothing is sent until the first operation.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] as [`PostgresConfig::from_url`].
    pub fn open(url: &str) -> Result<Self> {
        Self::new(PostgresConfig::from_url(url)?)
    }

    /// A store with this configuration. Nothing is sent until the first operation.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for an empty or over-long table or column name, or a pool
    /// size out of range.
    pub fn new(config: PostgresConfig) -> Result<Self> {
        config.check().map_err(|reason| Error::InvalidStoreUrl {
            url: config.to_string(),
            reason,
        })?;
        let manager = Manager::from_config(
            config.pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect = config.connect_timeout();
        let pool = Pool::builder(manager)
            .max_size(config.pool_size())
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(connect.saturating_add(Duration::from_secs(1))))
            .recycle_timeout(Some(connect))
            .build()
            .map_err(|e| Error::Backend {
                store: config.to_string(),
                source: Box::new(e),
            })?;
        let sql = Statements::new(config.table(), config.name_column(), config.item_column());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                pool,
                sql,
                migrated: OnceCell::new(),
                watchers: crate::store::gate::WatchGate::new(WATCH_CONNECT_WAIT),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }

    /// The migration as a SQL script (one transaction), for teams that apply migrations with
    /// their own tool (then open the store with `run_migrations=false`).
    ///
    /// ```
    /// use flipper::store::PostgresStore;
    /// let store = PostgresStore::open("postgres://app@db.internal/flags?run_migrations=false")?;
    /// let script = store.migration_sql();
    /// assert!(script.contains(r#"CREATE TABLE IF NOT EXISTS "feature_flags""#));
    /// # Ok::<(), flipper::Error>(())
    /// ```
    pub fn migration_sql(&self) -> String {
        sql::migration_script(&self.inner.sql)
    }

    /// Runs the migration now: creates the table if missing, and installs or updates the
    /// change trigger. Idempotent; concurrent runs wait for each other. The store runs it by
    /// itself on first use unless `run_migrations=false`.
    ///
    /// # Errors
    /// [`Error::Backend`]: the server cannot be reached, or the user may not create the table
    /// or the trigger.
    pub async fn migrate(&self) -> Result<()> {
        let client = self.pooled().await?;
        client
            .batch_execute(&self.inner.sql.migration)
            .await
            .map_err(|e| {
                if e.as_db_error().is_none() {
                    return self.db_error(e);
                }
                self.backend(format!(
                    "cannot migrate table {} (create it and its change trigger): {}; apply \
                     PostgresStore::migration_sql as a user that may, then use \
                     run_migrations=false",
                    sql::ident(self.inner.config.table()),
                    ops::describe(&e)
                ))
            })?;
        tracing::info!(store = %self, "migrated: the table and its change trigger are in place");
        Ok(())
    }

    /// Migrates once (when configured to); later calls return at once.
    async fn ready(&self) -> Result<()> {
        if !self.inner.config.run_migrations() {
            return Ok(());
        }
        self.inner
            .migrated
            .get_or_try_init(|| self.migrate())
            .await
            .map(|_| ())
    }

    /// A pooled connection, without migrating.
    async fn pooled(&self) -> Result<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.db_error(e),
            PoolError::Timeout(TimeoutType::Wait) => self.backend(format!(
                "no free connection within {} s: all {} are busy (raise pool_size)",
                POOL_WAIT.as_secs(),
                self.inner.config.pool_size()
            )),
            PoolError::Timeout(TimeoutType::Create) => self.backend(format!(
                "cannot connect within {} s (connect_timeout)",
                self.inner.config.connect_timeout().as_secs()
            )),
            e => self.backend(e),
        })
    }

    /// A pooled connection, after migrating.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.ready().await?;
        self.pooled().await
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PostgresStore")
            .field("config", &self.inner.config)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.config, f)
    }
}
