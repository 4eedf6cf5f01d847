//! Starting server processes that die with the test process, temporary directories, ports.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The program's path on `PATH`, if it is there.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (PostgreSQL refuses to).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|uids| uids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// A new directory for one server, under `$TMPDIR/flipper-testkit/PID-...`. Directories left by
/// test processes that no longer run are removed on first use.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let base = std::env::temp_dir().join("flipper-testkit");
        std::fs::create_dir_all(&base).expect("cannot create the testkit temp dir");
        set_mode(&base, 0o1777);
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name.split('-').next().unwrap_or_default();
                if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        base
    });
    // unique_name is TAG-PID-N; directories start with the PID for the stale-dir sweep.
    let dir = base.join(format!(
        "{}-{}",
        std::process::id(),
        crate::unique_name(tag)
    ));
    std::fs::create_dir_all(&dir).expect("cannot create a server's temp dir");
    set_mode(&dir, 0o755);
    dir
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Gives a directory to the `postgres` user when running as root.
pub(crate) fn chown_postgres(path: &Path) -> io::Result<()> {
    if !is_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .arg("-R")
        .arg("postgres:postgres")
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "chown postgres {} failed",
            path.display()
        )))
    }
}

/// How a server program is started: as the `postgres` user when root, with a signal to
/// receive when the test process dies.
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) as_postgres: bool,
    /// `TERM`, `INT`, ...: what the server gets when the test process exits.
    pub(crate) death_signal: &'static str,
    pub(crate) log: PathBuf,
}

impl Launch {
    fn command(&self) -> io::Result<Command> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = match which("setpriv") {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                if self.as_postgres && is_root() {
                    cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
                }
                cmd.arg(format!("--pdeathsig={}", self.death_signal))
                    .arg("--")
                    .arg(&self.program);
                cmd
            }
            None if self.as_postgres && is_root() => {
                return Err(io::Error::other(
                    "setpriv (util-linux) is needed to run PostgreSQL as the postgres user",
                ));
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(cmd)
    }
}

/// Runs a program to completion (as `postgres` when root and asked), failing with its output.
pub(crate) fn run(program: &Path, args: &[&str], as_postgres: bool) -> io::Result<String> {
    let mut cmd = if as_postgres && is_root() {
        let mut cmd = Command::new(which("setpriv").ok_or_else(|| {
            io::Error::other("setpriv (util-linux) is needed to run PostgreSQL tools as root")
        })?);
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{} {} failed ({}): {}{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

type Request = (Launch, mpsc::Sender<io::Result<Child>>);

/// Starts a server from the spawner thread. `--pdeathsig` fires when the *thread* that forked
/// the process exits, so every server is forked by one thread that lives as long as the test
/// process (test threads come and go).
pub(crate) fn spawn(launch: Launch) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (launch, reply) in rx {
                    let _ = reply.send(launch.command().and_then(|mut c| c.spawn()));
                }
            })
            .expect("cannot start the spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((launch, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Sends a signal (`TERM`, `KILL`, `INT`, ...) to a process.
pub(crate) fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid} failed")))
    }
}

/// Stops a child: `signal`, then waits up to 10 s, then `KILL`.
pub(crate) fn stop(child: &mut Child, sig: &str) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = signal(child.id(), sig);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last lines of a server's log, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
