//! moto's S3 server (`python3 -m moto.server`, from `pip install 'moto[server]'`): the S3 API
//! in memory, on a free loopback port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::process::{self, Launch};

/// A moto S3 server this test owns: stopped on drop, and stoppable and restartable on the same
/// port (moto keeps everything in memory: a restarted server has no buckets).
///
/// moto accepts any credentials, but clients must sign their requests (SigV4): give them
/// [`MotoServer::ACCESS_KEY_ID`] and [`MotoServer::SECRET_ACCESS_KEY`], and
/// [`MotoServer::REGION`].
#[derive(Debug)]
pub struct MotoServer {
    port: u16,
    url: String,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl MotoServer {
    /// The (dummy) access key id clients sign with.
    pub const ACCESS_KEY_ID: &str = "testing";
    /// The (dummy) secret access key clients sign with.
    pub const SECRET_ACCESS_KEY: &str = "testing";
    /// The region clients sign for.
    pub const REGION: &str = "us-east-1";

    /// Starts moto's server on a free loopback port. `None` (after a loud skip message) when
    /// python3 cannot import `moto.server`.
    ///
    /// # Panics
    /// When the server does not start, or moto is missing and services are required.
    pub fn start() -> Option<Self> {
        crate::python3(&["moto.server", "boto3"])?;
        let dir = process::temp_dir("moto");
        for _ in 0..5 {
            let port = process::free_port();
            let server = Self {
                port,
                url: format!("http://127.0.0.1:{port}"),
                dir: dir.clone(),
                child: Mutex::new(None),
            };
            if server.launch().is_ok() {
                return Some(server);
            }
        }
        panic!(
            "moto's server did not start; log:\n{}",
            process::log_tail(&dir.join("moto.log"))
        );
    }

    fn launch(&self) -> Result<(), String> {
        let python = process::which("python3").ok_or("python3 is gone")?;
        let mut child = process::spawn(Launch {
            program: python,
            args: ["-m", "moto.server", "-H", "127.0.0.1", "-p"]
                .iter()
                .map(Into::into)
                .chain([self.port.to_string().into()])
                .collect(),
            as_postgres: false,
            death_signal: "TERM",
            log: self.dir.join("moto.log"),
        })
        .map_err(|e| e.to_string())?;
        // The first start compiles moto's .pyc files: give it time.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("moto's server exited: {status}"));
            }
            if request(self.port, "GET", "/moto-api/").is_ok_and(|(status, _)| status == 200) {
                *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        process::stop(&mut child, "KILL");
        Err("moto's server did not answer GET /moto-api/ within 60 s".into())
    }

    /// `http://127.0.0.1:PORT`: the endpoint (`AWS_ENDPOINT_URL`, `endpoint_url=`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a bucket with a name unique to this process and call (`flags-PID-N`) and
    /// returns its name.
    ///
    /// # Panics
    /// When moto refuses.
    pub fn create_bucket(&self) -> String {
        let bucket = crate::unique_name("flags");
        self.create_named_bucket(&bucket);
        bucket
    }

    /// Creates this bucket (after a restart, for example).
    ///
    /// # Panics
    /// When moto refuses.
    pub fn create_named_bucket(&self, bucket: &str) {
        // moto creates buckets without checking signatures; objects need signed requests.
        match request(self.port, "PUT", &format!("/{bucket}")) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("moto refused to create bucket {bucket}: {status} {body}"),
            Err(e) => panic!("cannot create bucket {bucket} on moto: {e}"),
        }
    }

    /// The server's log so far: one access line per request (`"GET /BUCKET?list-type=2
    /// HTTP/1.1" 200 -`), for counting requests.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("moto.log")).unwrap_or_default()
    }

    /// Stops the server (`SIGTERM`, then `SIGKILL` after 10 s): an outage. Its data is lost.
    pub fn stop(&self) {
        if let Some(mut child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            process::stop(&mut child, "TERM");
        }
    }

    /// Starts the server again on the same port, empty.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!(
                "moto's server did not restart on port {}: {e}; log:\n{}",
                self.port,
                process::log_tail(&self.dir.join("moto.log"))
            );
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// moto's S3 server shared by every test of this binary (each test makes its own bucket with
/// [`MotoServer::create_bucket`]); `None` after a loud skip message when moto is not
/// installed.
///
/// # Panics
/// When moto is missing and services are required, or does not start.
pub fn moto() -> Option<&'static MotoServer> {
    static SHARED: OnceLock<Option<MotoServer>> = OnceLock::new();
    SHARED.get_or_init(MotoServer::start).as_ref()
}

/// One plain HTTP/1.1 request to the loopback port, read until the server closes (moto
/// answers `Connection: close`): its status and body.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
