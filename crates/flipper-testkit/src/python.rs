//! Python 3 with the modules a test needs.

use std::path::PathBuf;
use std::process::Command;

/// `python3` when it imports every module in `modules` (for example `["flipper", "redis"]`);
/// `None` after a loud skip message otherwise.
///
/// # Panics
/// When it is missing and services are required.
pub fn python3(modules: &[&str]) -> Option<PathBuf> {
    let Some(python) = crate::process::which("python3") else {
        return crate::unavailable("python3", "python3 is not on PATH");
    };
    let import = format!("import {}", modules.join(", "));
    match Command::new(&python).args(["-c", &import]).output() {
        Ok(out) if out.status.success() => Some(python),
        Ok(out) => crate::unavailable(
            &format!("Python modules {modules:?}"),
            &format!(
                "{import:?} failed ({}); see .ci/run for the pip installs",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) => crate::unavailable("python3", &e.to_string()),
    }
}

/// A Python script driven over pipes: one JSON command per line on its standard input, one
/// JSON answer per line on its standard output, `{"ok": VALUE}` or `{"error": "Class: message"}`
/// (the protocol of flipper's `tests/python/*.py` drivers). Killed on drop.
#[derive(Debug)]
pub struct PythonProcess {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonProcess {
    /// Starts `python3 SCRIPT ARGS...` when python3 imports every module in `modules`; `None`
    /// after a loud skip message otherwise (see [`python3`]).
    ///
    /// # Panics
    /// When python3 cannot be started, or it is missing and services are required.
    pub fn start(script: &std::path::Path, args: &[&str], modules: &[&str]) -> Option<Self> {
        let python = python3(modules)?;
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Sends one command and returns the whole answer.
    ///
    /// # Panics
    /// When the script exits or answers something that is not JSON.
    pub fn call(&mut self, cmd: &serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{cmd}").expect("python reads its commands");
        self.stdin.flush().expect("python reads its commands");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("python answers");
        assert!(!line.is_empty(), "python exited while answering {cmd}");
        serde_json::from_str(&line).expect("python answers JSON")
    }

    /// Sends one command and returns its `ok` value.
    ///
    /// # Panics
    /// When the answer is an error (the message names the command and Python's exception).
    pub fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        let answer = self.call(&cmd);
        match answer.get("ok") {
            Some(v) => v.clone(),
            None => panic!("python failed {cmd}: {answer}"),
        }
    }
}

impl Drop for PythonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
