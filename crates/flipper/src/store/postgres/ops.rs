//! The [`Store`] operations of [`PostgresStore`]: one statement each, and the mapping of the
//! server's errors to [`Error`]s that say what to do.

use async_trait::async_trait;
use flipper_core::{Item, ItemError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, sql};
use crate::error::{BoxError, Error, Result};
use crate::store::{
    Capabilities, ChangeStream, CorruptEntry, ListEntry, PutMode, Store, Version, Versioned,
};

/// Why a statement failed: before reaching the server (pool, migration), or on it.
enum Failure {
    Store(Error),
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    /// Runs one statement (prepared once per connection) on a pooled connection.
    async fn query(&self, statement: &str, params: &Params<'_>) -> Result<Vec<Row>, Failure> {
        let client = self.client().await.map_err(Failure::Store)?;
        let statement = client.prepare_cached(statement).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// A reading statement.
    async fn read(&self, statement: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        self.query(statement, params).await.map_err(|f| match f {
            Failure::Store(e) => e,
            Failure::Db(e) => self.db_error(e),
        })
    }

    /// A writing statement, writing `items` (for the message of a name that is too long).
    async fn write(
        &self,
        statement: &str,
        params: &Params<'_>,
        items: &[&Item],
    ) -> Result<Vec<Row>> {
        self.settle_watchers().await;
        match self.query(statement, params).await {
            Ok(rows) => Ok(rows),
            Err(Failure::Store(e)) => Err(e),
            Err(Failure::Db(e)) if e.code() == Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION) => {
                Err(self.name_too_long(items).await)
            }
            Err(Failure::Db(e)) => Err(self.db_error(e)),
        }
    }

    /// Waits (a bounded time) until every watch stream opened so far listens.
    async fn settle_watchers(&self) {
        self.inner.watchers.settle().await;
    }

    pub(super) fn backend(&self, source: impl Into<BoxError>) -> Error {
        Error::Backend {
            store: self.to_string(),
            source: source.into(),
        }
    }

    /// A driver error as a backend error.
    pub(super) fn driver(&self, e: tokio_postgres::Error) -> Error {
        self.backend(DriverError(e))
    }

    /// A driver error, with advice for the cases a user can fix.
    pub(super) fn db_error(&self, e: tokio_postgres::Error) -> Error {
        let config = &self.inner.config;
        let table = sql::ident(config.table());
        match e.code() {
            Some(c) if *c == SqlState::UNDEFINED_TABLE => self.backend(format!(
                "table {table} does not exist ({}): run the migration (run_migrations=true, the \
                 default; PostgresStore::migrate; or the SQL of PostgresStore::migration_sql)",
                describe(&e)
            )),
            Some(c) if *c == SqlState::UNDEFINED_COLUMN => self.backend(format!(
                "table {table} lacks column {} or {} ({}): check name_column and item_column",
                sql::ident(config.name_column()),
                sql::ident(config.item_column()),
                describe(&e)
            )),
            _ => self.driver(e),
        }
    }

    /// The error for a name the column cannot hold, saying the column's limit.
    async fn name_too_long(&self, items: &[&Item]) -> Error {
        let config = &self.inner.config;
        let limit: Option<i32> = match self.pooled().await {
            Ok(client) => client
                .query_opt(
                    self.inner.sql.name_limit,
                    &[&sql::ident(config.table()), &config.name_column()],
                )
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get(0).ok()),
            Err(_) => None,
        };
        let limit_chars = limit.and_then(|n| usize::try_from(n).ok());
        let name = items
            .iter()
            .find(|i| limit_chars.is_none_or(|n| i.feature_name.chars().count() > n))
            .or(items.first())
            .map(|i| i.feature_name.clone())
            .unwrap_or_default();
        let column = format!(
            "column {} of table {}",
            sql::ident(config.name_column()),
            sql::ident(config.table())
        );
        let message = match limit {
            Some(limit) => format!(
                "flag names are at most {limit} characters in {column}; this one has {}",
                name.chars().count()
            ),
            None => format!("the flag name is longer than {column} allows"),
        };
        Error::InvalidFlag { name, message }
    }

    /// A flag read from a row's item and version columns (a NULL item, possible in a team's
    /// own table, is unreadable like bad bytes).
    pub(super) fn versioned(
        &self,
        row: &Row,
        item: usize,
        version: usize,
    ) -> Result<std::result::Result<Versioned, ItemError>> {
        let bytes: Option<&[u8]> = row.try_get(item).map_err(|e| self.driver(e))?;
        let version: Option<&str> = row.try_get(version).map_err(|e| self.driver(e))?;
        let (Some(bytes), Some(version)) = (bytes, version) else {
            return Ok(Err(ItemError::Format {
                path: String::new(),
                message: format!(
                    "column {} is NULL",
                    sql::ident(self.inner.config.item_column())
                ),
            }));
        };
        Ok(Item::deserialize(bytes).map(|item| Versioned {
            item,
            version: Version::from_token(version),
        }))
    }

    /// The version a write returned.
    fn returned_version(&self, row: &Row) -> Result<Version> {
        let version: &str = row.try_get(0).map_err(|e| self.driver(e))?;
        Ok(Version::from_token(version))
    }
}

/// A driver error's whole message: the server's, or the driver's with its causes (the
/// error's own display says only "db error", "error connecting to server", ...).
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.to_string();
    }
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

/// A driver error displayed whole ([`describe`]).
#[derive(Debug)]
pub(super) struct DriverError(pub(super) tokio_postgres::Error);

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The causes are in the message already.
        None
    }
}

/// Whether PostgreSQL text can hold `name` (it cannot hold NUL characters).
fn storable(name: &str) -> bool {
    !name.contains('\0')
}

fn nul_error(name: &str) -> Error {
    Error::InvalidFlag {
        name: name.to_owned(),
        message: "PostgreSQL cannot store a NUL character in a flag name".into(),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(true)
            .with_atomic_batch(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        if !storable(name) {
            return Ok(None);
        }
        let rows = self.read(&self.inner.sql.get, &[&name]).await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => self
                .versioned(row, 0, 1)?
                .map(Some)
                .map_err(|e| self.corrupt(name, e)),
        }
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let name = item.feature_name.as_str();
        if !storable(name) {
            return Err(nul_error(name));
        }
        let bytes = item.serialize();
        let sql = &self.inner.sql;
        let rows = match &mode {
            PutMode::Overwrite => {
                self.write(&sql.overwrite, &[&name, &bytes], &[item])
                    .await?
            }
            PutMode::Create => self.write(&sql.create, &[&name, &bytes], &[item]).await?,
            PutMode::Update(expected) => {
                let expected = expected.to_string();
                self.write(&sql.update, &[&name, &bytes, &expected], &[item])
                    .await?
            }
        };
        match (rows.first(), mode) {
            (Some(row), _) => self.returned_version(row),
            (None, PutMode::Create) => Err(Error::AlreadyExists {
                name: name.to_owned(),
            }),
            (None, PutMode::Update(_)) => Err(Error::Conflict {
                name: name.to_owned(),
            }),
            (None, _) => Err(self.backend("the upsert returned no row")),
        }
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = items.iter().find(|i| !storable(&i.feature_name)) {
            return Err(nul_error(&bad.feature_name));
        }
        let names: Vec<&str> = items.iter().map(|i| i.feature_name.as_str()).collect();
        let bodies: Vec<Vec<u8>> = items.iter().map(Item::serialize).collect();
        let all: Vec<&Item> = items.iter().collect();
        let rows = self
            .write(&self.inner.sql.put_many, &[&names, &bodies], &all)
            .await?;
        if rows.len() != items.len() {
            return Err(self.backend(format!(
                "the batch write returned {} versions for {} flags",
                rows.len(),
                items.len()
            )));
        }
        rows.iter().map(|row| self.returned_version(row)).collect()
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        if !storable(name) {
            return Ok(false);
        }
        let rows = self.write(&self.inner.sql.delete, &[&name], &[]).await?;
        Ok(!rows.is_empty())
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = self.read(&self.inner.sql.list, &[&limit, &offset]).await?;
        rows.iter()
            .map(|row| {
                let name: &str = row.try_get(0).map_err(|e| self.driver(e))?;
                Ok(self.versioned(row, 1, 2)?.map_err(|error| CorruptEntry {
                    key: name.to_owned(),
                    error,
                }))
            })
            .collect()
    }

    fn watch(&self) -> Option<ChangeStream> {
        super::listen::start(self)
    }
}

impl PostgresStore {
    fn corrupt(&self, name: &str, source: ItemError) -> Error {
        Error::Corrupt {
            store: self.to_string(),
            name: name.to_owned(),
            source,
        }
    }
}
