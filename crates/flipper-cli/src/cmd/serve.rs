//! `flipper serve`: the flag server (see the `flipper-server` crate).

use std::time::Duration;

use flipper_server::{DEFAULT_STORE_URL, ServerConfig};

use crate::cli::ServeArgs;
use crate::error::CliError;

/// Opens the store, starts logging and serves until SIGINT or SIGTERM.
pub(crate) async fn run(store: Option<&str>, args: ServeArgs) -> Result<String, CliError> {
    let poll_interval = Duration::try_from_secs_f64(args.poll_interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::input(format!(
                "--poll-interval must be a number of seconds above 0, not {}",
                args.poll_interval
            ))
        })?;
    let mut config = ServerConfig::default();
    config.listen = args.listen;
    config.admin_token = args.admin_token;
    config.sdk_token = args.sdk_token;
    config.insecure = args.insecure;
    config.max_body_bytes = args.max_body_bytes;
    config.poll_interval = poll_interval;
    // A bad setting is refused before the store is opened (opening `redb:` creates its file).
    config.validate(config.listen)?;
    let store = flipper::store::open(store.unwrap_or(DEFAULT_STORE_URL))?;
    init_logging();
    flipper_server::serve(config, store).await?;
    Ok(String::new())
}

/// Structured logs on standard error; `RUST_LOG` sets the filter (default `info`).
fn init_logging() {
    use std::io::IsTerminal;

    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A subscriber already set (only possible when embedded) keeps its settings.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
