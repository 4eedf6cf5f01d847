//! [`PostgresConfig`]: where the PostgreSQL store connects, which table it uses, its pool.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};

use super::ops::describe;
use crate::error::{Error, Result};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes); longer ones are cut.
const MAX_IDENTIFIER_BYTES: usize = 63;
/// The connection timeout when the URL sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pool size when the URL sets none.
const DEFAULT_POOL_SIZE: usize = 8;
/// The most connections one store may hold.
const MAX_POOL_SIZE: usize = 1000;

/// Where a [`super::PostgresStore`] connects and which table it uses.
///
/// Built from a URL ([`PostgresConfig::from_url`]) or a libpq key=value string
/// ([`PostgresConfig::from_conninfo`]), then adjusted with the `with_` methods:
///
/// ```
/// use flipper::store::PostgresConfig;
/// let config = PostgresConfig::from_url(
///     "postgres://app:secret@db.internal/flags?table=Flags&pool_size=4",
/// )?;
/// assert_eq!(config.table(), "Flags");
/// assert_eq!(config.pool_size(), 4);
/// assert_eq!(config.to_string(), "postgres://app@db.internal/flags?table=Flags&pool_size=4");
/// let config = config.with_name_column("key").with_run_migrations(false);
/// assert_eq!(config.name_column(), "key");
/// # Ok::<(), flipper::Error>(())
/// ```
///
/// Its `Display` is the URL without the password.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(super) pg: tokio_postgres::Config,
    display: String,
    table: String,
    name_column: String,
    item_column: String,
    run_migrations: bool,
    pool_size: usize,
}

impl PostgresConfig {
    /// Reads `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`).
    ///
    /// flipper's own parameters, removed before the rest goes to the driver:
    ///
    /// | parameter | default | meaning |
    /// |---|---|---|
    /// | `table` | `feature_flags` | the table (flipper-client's `table_name`) |
    /// | `name_column` | `name` | the flag name column |
    /// | `item_column` | `item` | the stored flag column |
    /// | `run_migrations` | `true` | create the table and the change trigger on first use (`true` or `false`) |
    /// | `pool_size` | `8` | the most connections the pool opens (1 to 1000) |
    ///
    /// Every other parameter is the driver's (tokio-postgres, as libpq's URL parameters):
    /// `connect_timeout` (seconds; default 5 here), `application_name` (default `flipper`),
    /// `host` (a Unix socket directory), `options`, `keepalives`, `target_session_attrs`,
    /// `sslmode` (`disable` or `prefer`: this store does not speak TLS), ... Table and column
    /// names are used as given (case kept, always quoted), as flipper-client does.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] naming the parameter or part that is wrong: another scheme, an
    /// unknown or malformed parameter, no host or user, an empty or over-long (63 bytes) table
    /// or column name, `sslmode=require`.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: redact(url),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "the PostgreSQL store takes postgres://USER@HOST[:PORT]/DATABASE URLs".into(),
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ours = Ours::default();
        let mut rest = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let slot = match key {
                "table" => &mut ours.table,
                "name_column" => &mut ours.name_column,
                "item_column" => &mut ours.item_column,
                "run_migrations" => &mut ours.run_migrations,
                "pool_size" => &mut ours.pool_size,
                _ => {
                    rest.push(param);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(invalid(format!("parameter {key} is given twice")));
            }
            let value = percent_decode(value)
                .ok_or_else(|| invalid(format!("parameter {key}: not UTF-8 once decoded")))?;
            *slot = Some(value);
        }
        let driver_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let pg =
            tokio_postgres::Config::from_str(&driver_url).map_err(|e| invalid(describe(&e)))?;
        let mut config = Self::with_driver_config(pg, redact(url)).map_err(invalid)?;
        if let Some(table) = ours.table {
            config.table = table;
        }
        if let Some(column) = ours.name_column {
            config.name_column = column;
        }
        if let Some(column) = ours.item_column {
            config.item_column = column;
        }
        if let Some(run) = ours.run_migrations {
            config.run_migrations = match run.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(invalid(format!(
                        "parameter run_migrations must be true or false, not {run:?}"
                    )));
                }
            };
        }
        if let Some(size) = ours.pool_size {
            config.pool_size = size
                .parse()
                .ok()
                .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                .ok_or_else(|| {
                    invalid(format!(
                        "parameter pool_size must be a number from 1 to {MAX_POOL_SIZE}, \
                         not {size:?}"
                    ))
                })?;
        }
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// Reads a libpq key=value connection string (`host=db user=app dbname=flags`); set the
    /// table, columns and pool with the `with_` methods.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for a string the driver rejects (naming the key), or without
    /// a host or user.
    pub fn from_conninfo(conninfo: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: "(a key=value connection string)".into(),
            reason,
        };
        let pg = tokio_postgres::Config::from_str(conninfo).map_err(|e| invalid(describe(&e)))?;
        let display = describe_config(&pg);
        Self::with_driver_config(pg, display).map_err(invalid)
    }

    fn with_driver_config(
        mut pg: tokio_postgres::Config,
        display: String,
    ) -> std::result::Result<Self, String> {
        if pg.get_hosts().is_empty() {
            return Err("no host: give one, as in postgres://USER@HOST/DATABASE".into());
        }
        if pg.get_user().is_none() {
            return Err("no user: give one, as in postgres://USER@HOST/DATABASE".into());
        }
        if pg.get_ssl_mode() == SslMode::Require {
            return Err(
                "sslmode=require needs TLS, which flipper's PostgreSQL store does not \
                        speak; use sslmode=disable or prefer (or a TLS-terminating proxy)"
                    .into(),
            );
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("flipper");
        }
        Ok(Self {
            pg,
            display,
            table: "feature_flags".into(),
            name_column: "name".into(),
            item_column: "item".into(),
            run_migrations: true,
            pool_size: DEFAULT_POOL_SIZE,
        })
    }

    /// Checks the table and column names and the pool size.
    pub(super) fn check(&self) -> std::result::Result<(), String> {
        for (what, name) in [
            ("table", &self.table),
            ("name_column", &self.name_column),
            ("item_column", &self.item_column),
        ] {
            if name.is_empty() {
                return Err(format!("{what} is empty"));
            }
            if name.contains('\0') {
                return Err(format!("{what} contains a NUL character"));
            }
            if name.len() > MAX_IDENTIFIER_BYTES {
                return Err(format!(
                    "{what} {name:?} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte \
                     identifiers"
                ));
            }
        }
        if self.name_column == self.item_column {
            return Err(format!(
                "name_column and item_column are both {:?}",
                self.name_column
            ));
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return Err(format!(
                "pool_size must be from 1 to {MAX_POOL_SIZE}, not {}",
                self.pool_size
            ));
        }
        Ok(())
    }

    /// With this table (default `feature_flags`).
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// With this flag name column (default `name`).
    #[must_use]
    pub fn with_name_column(mut self, column: impl Into<String>) -> Self {
        self.name_column = column.into();
        self
    }

    /// With this stored flag column (default `item`).
    #[must_use]
    pub fn with_item_column(mut self, column: impl Into<String>) -> Self {
        self.item_column = column.into();
        self
    }

    /// Whether the store creates its table and trigger on first use (default `true`).
    #[must_use]
    pub fn with_run_migrations(mut self, yes: bool) -> Self {
        self.run_migrations = yes;
        self
    }

    /// With a pool of at most `size` connections (default 8; 1 to 1000).
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The flag name column.
    pub fn name_column(&self) -> &str {
        &self.name_column
    }

    /// The stored flag column.
    pub fn item_column(&self) -> &str {
        &self.item_column
    }

    /// Whether the store migrates on first use.
    pub fn run_migrations(&self) -> bool {
        self.run_migrations
    }

    /// The most connections the pool opens.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The connection timeout.
    pub(super) fn connect_timeout(&self) -> Duration {
        self.pg
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }
}

impl fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.display)
            .field("table", &self.table)
            .field("name_column", &self.name_column)
            .field("item_column", &self.item_column)
            .field("run_migrations", &self.run_migrations)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// flipper's URL parameters, still undecoded into their types.
#[derive(Default)]
struct Ours {
    table: Option<String>,
    name_column: Option<String>,
    item_column: Option<String>,
    run_migrations: Option<String>,
    pool_size: Option<String>,
}

/// `%XX` sequences decoded (`+` stays `+`); `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `url` without its password (in the authority or as a `password=` parameter).
pub(super) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    format!("{scheme}://{user}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with("password="))
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// A URL-like name for a configuration read from key=value pairs (no password).
fn describe_config(pg: &tokio_postgres::Config) -> String {
    let user = pg.get_user().unwrap_or("");
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().unwrap_or("");
    match pg.get_hosts().first() {
        Some(Host::Tcp(host)) => format!("postgres://{user}@{host}:{port}/{db}"),
        #[cfg(unix)]
        Some(Host::Unix(path)) => {
            format!("postgres://{user}@/{db}?host={}", path.display())
        }
        None => format!("postgres://{user}@/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:p@h:1/db?password=x&table=t"),
            "postgres://u@h:1/db?table=t"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u:p@w@h/db"), "postgres://u@h/db");
        assert_eq!(percent_decode("a%20b%22c+%zz"), Some("a b\"c+%zz".into()));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn conninfo_is_accepted() {
        let config = PostgresConfig::from_conninfo("host=db user=app dbname=flags").unwrap();
        assert_eq!(config.to_string(), "postgres://app@db:5432/flags");
        let err = PostgresConfig::from_conninfo("host=db").unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");
    }
}
