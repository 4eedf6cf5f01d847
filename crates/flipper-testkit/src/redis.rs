//! redis-server, standalone and as a 3-node cluster, in plain TCP or TLS.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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
    /// TLS only (`--port 0 --tls-port PORT`), with a throwaway CA: see [`RedisTls`].
    pub tls: bool,
    /// With [`tls`](Self::tls): `tls-auth-clients yes` (a client certificate signed by the CA
    /// is required) instead of `optional`.
    pub require_client_cert: bool,
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

    /// Over TLS only, with a certificate for `127.0.0.1` and `localhost` from a throwaway CA
    /// ([`RedisServer::tls`]); its URL is `rediss://127.0.0.1:PORT`. Needs `openssl`.
    #[must_use]
    pub fn tls(mut self, yes: bool) -> Self {
        self.tls = yes;
        self
    }

    /// Over TLS (this turns [`tls`](Self::tls) on), requiring a client certificate signed by
    /// the CA ([`RedisTls::client_cert_file`]).
    #[must_use]
    pub fn require_client_cert(mut self, yes: bool) -> Self {
        self.require_client_cert = yes;
        self.tls |= yes;
        self
    }
}

/// A throwaway certificate authority and the certificates it signed, PEM files in a server's
/// temporary directory, made with the `openssl` command: a server certificate for
/// `127.0.0.1` and `localhost` (subject alternative names `IP:127.0.0.1`, `DNS:localhost`) and
/// a client certificate. EC P-256 keys, valid for a week.
#[derive(Debug)]
pub struct RedisTls {
    dir: PathBuf,
}

impl RedisTls {
    /// Makes the CA and both certificates in `dir`.
    fn generate(dir: &Path) -> Result<Self, String> {
        let openssl = process::which("openssl").ok_or("openssl is not on PATH")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let run = |args: &[&str]| {
            process::run(&openssl, args, false)
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let (ca_key, ca_crt) = (file("ca.key"), file("ca.crt"));
        // A name of its own: a client trusting another testkit CA must not find this one's
        // name among its roots (that would be a bad signature, not an unknown issuer).
        let ca_subject = format!("/CN=flipper-testkit CA {}", crate::unique_name("ca"));
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout",
            &ca_key,
            "-out",
            &ca_crt,
            "-days",
            "7",
            "-subj",
            &ca_subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&args)?;
        for (name, serial, subject, usage) in [
            // Cluster nodes present it as a client too (the cluster bus over TLS).
            ("server", "1", "/CN=127.0.0.1", "serverAuth,clientAuth"),
            ("client", "2", "/CN=flipper-testkit client", "clientAuth"),
        ] {
            let ext = file(&format!("{name}.ext"));
            let mut extensions = format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage={usage}\n"
            );
            if name == "server" {
                extensions.push_str("subjectAltName=IP:127.0.0.1,DNS:localhost\n");
            }
            std::fs::write(&ext, extensions).map_err(|e| format!("{ext}: {e}"))?;
            let (key, csr, crt) = (
                file(&format!("{name}.key")),
                file(&format!("{name}.csr")),
                file(&format!("{name}.crt")),
            );
            let mut args = vec!["req", "-new"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
            run(&args)?;
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-set_serial",
                serial,
                "-days",
                "7",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ])?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The CA's certificate (PEM): what a client trusts (`ca_file=`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server's certificate (PEM), for `127.0.0.1` and `localhost`.
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server's private key (PEM).
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// A client certificate (PEM) signed by the CA (`cert_file=`).
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// The client certificate's private key (PEM, PKCS#8) (`key_file=`).
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// `redis-cli` arguments for a TLS connection with the client certificate.
    fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            path_arg(&self.ca_file()),
            "--cert".to_owned(),
            path_arg(&self.client_cert_file()),
            "--key".to_owned(),
            path_arg(&self.client_key_file()),
        ]
    }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The TLS material for new servers: `None` without TLS, a skip (`Err(())`) when openssl is
/// missing.
///
/// # Panics
/// When openssl fails.
fn tls_for(options: RedisOptions, dir: &Path) -> Result<Option<Arc<RedisTls>>, ()> {
    if !options.tls {
        return Ok(None);
    }
    if process::which("openssl").is_none() {
        let _: Option<()> = crate::unavailable(
            "openssl",
            "openssl is not on PATH, needed for TLS test certificates (apt-get install openssl)",
        );
        return Err(());
    }
    match RedisTls::generate(&dir.join("tls")) {
        Ok(tls) => Ok(Some(Arc::new(tls))),
        Err(e) => panic!("cannot make the TLS test certificates with openssl: {e}"),
    }
}

/// A redis-server this test owns: stopped on drop, and stoppable and restartable (on the same
/// port, with its data when [`RedisOptions::persistent`]) to simulate an outage.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    options: RedisOptions,
    tls: Option<Arc<RedisTls>>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a redis-server on a free loopback port. `None` (after a loud skip message) when
    /// redis-server is not installed, or for [`RedisOptions::tls`] openssl.
    ///
    /// # Panics
    /// When the server does not start, or it is missing and services are required.
    pub fn start(options: RedisOptions) -> Option<Self> {
        if !redis_installed() {
            return None;
        }
        let dir = process::temp_dir("redis");
        let tls = tls_for(options, &dir).ok()?;
        Self::start_with(options, dir, tls)
    }

    /// Starts a server in `dir` with this TLS material (shared by a cluster's nodes).
    fn start_with(options: RedisOptions, dir: PathBuf, tls: Option<Arc<RedisTls>>) -> Option<Self> {
        for _ in 0..5 {
            let server = Self {
                port: process::free_port(),
                dir: dir.clone(),
                options,
                tls: tls.clone(),
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
        let port = self.port.to_string();
        // Over TLS, the TLS port only (plain servers get no TLS option: a redis-server built
        // without TLS would refuse it).
        let plain_port = if self.tls.is_some() { "0" } else { &port };
        let mut args: Vec<String> = [
            "--port",
            plain_port,
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
        if let Some(tls) = &self.tls {
            let auth = if self.options.require_client_cert {
                "yes"
            } else {
                "optional"
            };
            args.extend([
                "--tls-port".to_owned(),
                port.clone(),
                "--tls-cert-file".to_owned(),
                path_arg(&tls.server_cert_file()),
                "--tls-key-file".to_owned(),
                path_arg(&tls.server_key_file()),
                "--tls-ca-cert-file".to_owned(),
                path_arg(&tls.ca_file()),
                "--tls-auth-clients".to_owned(),
                auth.to_owned(),
            ]);
            if self.options.cluster {
                args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
            }
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

    /// `redis://127.0.0.1:PORT`, or `rediss://127.0.0.1:PORT` over TLS (a client must then
    /// trust [`RedisTls::ca_file`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA and certificates of a TLS server ([`RedisOptions::tls`]).
    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_deref()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `redis-cli -p PORT ARGS...` (over TLS, with the client certificate, for a TLS
    /// server) and returns its output.
    ///
    /// # Panics
    /// When redis-cli fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?}: {e}"))
    }

    fn try_cli(&self, args: &[&str]) -> std::io::Result<String> {
        let port = self.port.to_string();
        let tls = self.tls.as_ref().map(|t| t.cli_args()).unwrap_or_default();
        let mut all = vec!["-h", "127.0.0.1", "-p", &port];
        all.extend(tls.iter().map(String::as_str));
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

/// The redis-server over TLS shared by this test binary ([`RedisOptions::tls`]; client
/// certificates optional), started on first use. `None` after a loud skip message when
/// redis-server or openssl is missing.
pub fn redis_tls() -> Option<&'static RedisServer> {
    static SHARED: OnceLock<Option<RedisServer>> = OnceLock::new();
    SHARED
        .get_or_init(|| RedisServer::start(RedisOptions::default().tls(true)))
        .as_ref()
}

/// Whether redis-server and redis-cli are installed; a loud skip (or a panic when services are
/// required) when not.
fn redis_installed() -> bool {
    if process::which("redis-server").is_some() && process::which("redis-cli").is_some() {
        return true;
    }
    let _: Option<()> = crate::unavailable(
        "redis-server",
        "redis-server or redis-cli is not on PATH (apt-get install redis-server)",
    );
    false
}

/// A Redis Cluster of three masters (no replicas), shared by this test binary.
#[derive(Debug)]
pub struct RedisCluster {
    urls: Vec<String>,
    tls: Option<Arc<RedisTls>>,
    _nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// The nodes' URLs, `redis://127.0.0.1:PORT` (`rediss://` over TLS).
    pub fn node_urls(&self) -> &[String] {
        &self.urls
    }

    /// The CA and certificates of a TLS cluster ([`redis_cluster_tls`]), shared by its nodes.
    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_deref()
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
                    tls: None,
                    _nodes: Vec::new(),
                });
            }
            start_cluster(false)
        })
        .as_ref()
}

/// A cluster like [`redis_cluster`]'s over TLS only (`tls-cluster yes`: the cluster bus too),
/// its nodes sharing one throwaway CA ([`RedisCluster::tls`]; client certificates optional),
/// shared by this test binary. `None` after a loud skip message when redis-server or openssl
/// is missing.
///
/// # Panics
/// When the cluster does not form.
pub fn redis_cluster_tls() -> Option<&'static RedisCluster> {
    static SHARED: OnceLock<Option<RedisCluster>> = OnceLock::new();
    SHARED.get_or_init(|| start_cluster(true)).as_ref()
}

/// Three cluster-enabled redis-servers joined into a cluster.
fn start_cluster(tls: bool) -> Option<RedisCluster> {
    if !redis_installed() {
        return None;
    }
    let options = RedisOptions {
        cluster: true,
        ..RedisOptions::default()
    }
    .tls(tls);
    let material = tls_for(options, &process::temp_dir("redis-cluster")).ok()?;
    let nodes = (0..3)
        .map(|_| RedisServer::start_with(options, process::temp_dir("redis"), material.clone()))
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
        tls: material,
        _nodes: nodes,
    })
}
