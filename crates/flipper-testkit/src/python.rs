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
