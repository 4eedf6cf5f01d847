//! PostgreSQL: `initdb` and `postgres` in a temporary directory (as the `postgres` user when
//! root).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::process::{self, Launch};

/// Where `initdb` and `postgres` are: on `PATH`, else Debian's `/usr/lib/postgresql/*/bin`.
fn bindir() -> Option<PathBuf> {
    if let Some(initdb) = process::which("initdb")
        && process::which("postgres").is_some()
    {
        return initdb.parent().map(Path::to_path_buf);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn psql_path() -> Option<PathBuf> {
    process::which("psql").or_else(|| bindir().map(|b| b.join("psql")))
}

/// Runs one SQL command with psql against a connection URL.
fn psql(url: &str, sql: &str) -> std::io::Result<String> {
    let psql = psql_path().ok_or_else(|| std::io::Error::other("psql is not installed"))?;
    process::run(
        &psql,
        &[
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        false,
    )
}

/// A URL with its database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Creates a new, empty database on the server at `url`; returns its URL.
fn create_database(url: &str) -> String {
    let name = crate::unique_name("flipper_test").replace('-', "_");
    psql(url, &format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    with_database(url, &name)
}

/// A PostgreSQL server this test owns: stopped on drop, and stoppable and restartable (same
/// port, same data) to simulate an outage.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    bindir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl PostgresServer {
    /// Runs `initdb` (about 0.7 s) and starts `postgres` on a free loopback port with trust
    /// authentication for the `postgres` user and durability off (`fsync=off`). `None` (after a
    /// loud skip message) when PostgreSQL is not installed.
    ///
    /// # Panics
    /// When the server does not start, or it is missing and services are required.
    pub fn start() -> Option<Self> {
        let Some(bindir) = bindir() else {
            return crate::unavailable(
                "PostgreSQL",
                "initdb and postgres are not on PATH nor in /usr/lib/postgresql/*/bin \
                 (apt-get install postgresql)",
            );
        };
        if psql_path().is_none() {
            return crate::unavailable("PostgreSQL", "psql is not installed");
        }
        let dir = process::temp_dir("postgres");
        process::chown_postgres(&dir).expect("cannot give the data dir to postgres");
        let data = dir.join("data");
        process::run(
            &bindir.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            true,
        )
        .unwrap_or_else(|e| panic!("initdb failed: {e}"));
        for _ in 0..5 {
            let server = Self {
                port: process::free_port(),
                dir: dir.clone(),
                bindir: bindir.clone(),
                child: Mutex::new(None),
            };
            if server.launch().is_ok() {
                return Some(server);
            }
        }
        panic!(
            "postgres did not start; log:\n{}",
            process::log_tail(&dir.join("postgres.log"))
        );
    }

    fn launch(&self) -> Result<(), String> {
        let log = self.dir.join("postgres.log");
        if !log.exists() {
            std::fs::write(&log, "").map_err(|e| e.to_string())?;
            process::chown_postgres(&log).map_err(|e| e.to_string())?;
        }
        let args = [
            "-D".to_owned(),
            self.dir.join("data").to_string_lossy().into_owned(),
            "-p".to_owned(),
            self.port.to_string(),
            "-k".to_owned(),
            self.dir.to_string_lossy().into_owned(),
            "-c".to_owned(),
            "listen_addresses=127.0.0.1".to_owned(),
            "-c".to_owned(),
            "fsync=off".to_owned(),
            "-c".to_owned(),
            "synchronous_commit=off".to_owned(),
            "-c".to_owned(),
            "full_page_writes=off".to_owned(),
            "-c".to_owned(),
            "max_connections=300".to_owned(),
        ];
        let mut child = process::spawn(Launch {
            program: self.bindir.join("postgres"),
            args: args.into_iter().map(Into::into).collect(),
            as_postgres: true,
            // Fast shutdown: disconnects clients, then stops.
            death_signal: "INT",
            log,
        })
        .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("postgres exited: {status}"));
            }
            if psql(&self.url(), "SELECT 1").is_ok() {
                *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        process::stop(&mut child, "INT");
        Err("postgres did not accept connections within 30 s".into())
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database; its URL.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn fresh_database(&self) -> String {
        create_database(&self.url())
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        if let Some(mut child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            process::stop(&mut child, "INT");
        }
    }

    /// Starts the server again, same port and data.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!(
                "postgres did not restart on port {}: {e}; log:\n{}",
                self.port,
                process::log_tail(&self.dir.join("postgres.log"))
            );
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PostgreSQL server shared by this test binary (tests isolate by database).
#[derive(Debug)]
pub struct Postgres {
    url: String,
    _server: Option<PostgresServer>,
}

impl Postgres {
    /// The server's URL (its maintenance database).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new, empty database; its URL.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn fresh_database(&self) -> String {
        create_database(&self.url)
    }

    /// Runs one SQL command with psql against `url` (a database of this server) and returns
    /// psql's unaligned, tuples-only output.
    ///
    /// # Panics
    /// When psql fails.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        psql(url, sql).unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }
}

/// The shared PostgreSQL server: `FLIPPER_TEST_POSTGRES_URL` if set, else one started on first
/// use. `None` after a loud skip message when PostgreSQL is missing.
pub fn postgres() -> Option<&'static Postgres> {
    static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(url) = std::env::var("FLIPPER_TEST_POSTGRES_URL") {
                if psql_path().is_none() {
                    return crate::unavailable("PostgreSQL", "psql is not installed");
                }
                return Some(Postgres { url, _server: None });
            }
            let server = PostgresServer::start()?;
            Some(Postgres {
                url: server.url(),
                _server: Some(server),
            })
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
