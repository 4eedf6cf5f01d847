//! `flipper`: evaluate and manage feature flags from the command line.
//!
//! Parses the command line, runs the command on a current-thread runtime, writes its output and
//! maps failures to exit codes (see [`error`]).

mod cli;
mod cmd;
mod error;
mod input;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::error::{CliError, EXIT_FAILURE};

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with code 2.
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(output) => write_output(&output),
        Err(e) => {
            // Nothing sensible is left to do if standard error is gone.
            let _ = writeln!(io::stderr().lock(), "flipper: error: {}", e.one_line());
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: cli::Cli) -> Result<String, CliError> {
    // One thread: the commands do one thing at a time, and `serve` starts its other HTTP
    // workers on threads of their own (`--workers`), each with its own runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(cmd::run(cli))
}

/// Writes the command's output. A closed pipe (`flipper flags list | head -1`) is not an error:
/// the reader has what it wanted and the command's work is done.
fn write_output(output: &str) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(
                io::stderr().lock(),
                "flipper: error: cannot write to standard output: {e}"
            );
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
