//! redis-server, standalone and as a 3-node cluster.

use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::process::{self, Launch};

/// How an owned [`RedisServer`] is configured.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// `notify-keyspace-events KA`: the server publishes every key change.
    pub keyspace_notifications: bool,
    /// An append-only file synced on every write, so data survives [`RedisServer::restart`].
    pub persistent: bool,
    cluster: bool,
}

impl RedisOptions {
    /// With keyspace notifications on.
    #[must_use]
    pub fn keyspace_notifications(mut self, yes: bool) -> Self {
        self.keyspace_notifications = yes;
        self
    }

    /// With data kept across restarts.
    #[must_use]
    pub fn persistent(mut self, yes: bool) -> Self {
        self.persistent = yes;
        self
    }
}

/// A redis-server this test owns: stopped on drop, and stoppable and restartable (on the same
/// port, with its data when [`RedisOptions::persistent`]) to simulate an outage.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    options: RedisOptions,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a redis-server on a free loopback port. `None` (after a loud skip message) when
    /// redis-server is not installed.
    ///
    /// # Panics
    /// When the server does not start, or it is missing and services are required.
    pub fn start(options: RedisOptions) -> Option<Self> {
        if process::which("redis-server").is_none() || process::which("redis-cli").is_none() {
            return crate::unavailable(
                "redis-server",
                "redis-server or redis-cli is not on PATH (apt-get install redis-server)",
            );
        }
        let dir = process::temp_dir("redis");
        for _ in 0..5 {
            let server = Self {
                port: process::free_port(),
                dir: dir.clone(),
                options,
                child: Mutex::new(None),
            };
            if server.launch().is_ok() {
                return Some(server);
            }
        }
        panic!(
            "redis-server did not start; log:\n{}",
            process::log_tail(&dir.join("redis.log"))
        );
    }

    fn launch(&self) -> Result<(), String> {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &self.dir.to_string_lossy(),
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if self.options.persistent {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        if self.options.keyspace_notifications {
            args.extend(["--notify-keyspace-events", "KA"].map(String::from));
        }
        if self.options.cluster {
            let conf = self.dir.join("nodes.conf");
            args.extend([
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-config-file".to_owned(),
                conf.to_string_lossy().into_owned(),
                "--cluster-node-timeout".to_owned(),
                "5000".to_owned(),
            ]);
        }
        let mut child = process::spawn(Launch {
            program: process::which("redis-server").ok_or("redis-server is gone")?,
            args: args.into_iter().map(Into::into).collect(),
            as_postgres: false,
            death_signal: "KILL",
            log: self.dir.join("redis.log"),
        })
        .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if self
                .try_cli(&["ping"])
                .is_ok_and(|out| out.trim() == "PONG")
            {
                *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        process::stop(&mut child, "KILL");
        Err("redis-server did not answer PING within 20 s".into())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `redis-cli -p PORT ARGS...` and returns its output.
    ///
    /// # Panics
    /// When redis-cli fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?}: {e}"))
    }

    fn try_cli(&self, args: &[&str]) -> std::io::Result<String> {
        let port = self.port.to_string();
        let mut all = vec!["-h", "127.0.0.1", "-p", &port];
        all.extend_from_slice(args);
        process::run(
            &process::which("redis-cli").unwrap_or_else(|| "redis-cli".into()),
            &all,
            false,
        )
    }

    /// Kills the server (`SIGKILL`: an outage, not a shutdown).
    pub fn stop(&self) {
        if let Some(mut child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            process::stop(&mut child, "KILL");
        }
    }

    /// Starts the server again on the same port.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!(
                "redis-server did not restart on port {}: {e}; log:\n{}",
                self.port,
                process::log_tail(&self.dir.join("redis.log"))
            );
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The redis-server shared by this test binary (tests isolate by key prefix).
#[derive(Debug)]
pub struct Redis {
    url: String,
    _server: Option<RedisServer>,
}

impl Redis {
    /// `redis://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The shared redis-server: `FLIPPER_TEST_REDIS_URL` if set, else one started on first use.
/// `None` after a loud skip message when redis-server is missing.
pub fn redis() -> Option<&'static Redis> {
    static SHARED: OnceLock<Option<Redis>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(url) = std::env::var("FLIPPER_TEST_REDIS_URL") {
                return Some(Redis { url, _server: None });
            }
            let server = RedisServer::start(RedisOptions::default())?;
            Some(Redis {
                url: server.url(),
                _server: Some(server),
            })
        })
        .as_ref()
}

/// A Redis Cluster of three masters (no replicas), shared by this test binary.
#[derive(Debug)]
pub struct RedisCluster {
    urls: Vec<String>,
    _nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// The nodes' URLs, `redis://127.0.0.1:PORT`.
    pub fn node_urls(&self) -> &[String] {
        &self.urls
    }
}

/// The shared cluster: `FLIPPER_TEST_REDIS_CLUSTER_URLS` (comma-separated) if set, else three
/// cluster-enabled redis-servers joined with `redis-cli --cluster create` on first use (about
/// 2 s). `None` after a loud skip message when redis-server is missing.
///
/// # Panics
/// When the cluster does not form.
pub fn redis_cluster() -> Option<&'static RedisCluster> {
    static SHARED: OnceLock<Option<RedisCluster>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(urls) = std::env::var("FLIPPER_TEST_REDIS_CLUSTER_URLS") {
                let urls = urls.split(',').map(str::to_owned).collect();
                return Some(RedisCluster {
                    urls,
                    _nodes: Vec::new(),
                });
            }
            let options = RedisOptions {
                cluster: true,
                ..RedisOptions::default()
            };
            let nodes = (0..3)
                .map(|_| RedisServer::start(options))
                .collect::<Option<Vec<_>>>()?;
            let addrs: Vec<String> = nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port))
                .collect();
            let mut args = vec!["--cluster", "create"];
            args.extend(addrs.iter().map(String::as_str));
            args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
            nodes[0].cli(&args);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ok = nodes.iter().all(|n| {
                    n.try_cli(&["cluster", "info"])
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
                });
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the Redis cluster did not reach cluster_state:ok within 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(RedisCluster {
                urls: nodes.iter().map(RedisServer::url).collect(),
                _nodes: nodes,
            })
        })
        .as_ref()
}
