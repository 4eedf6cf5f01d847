//! `flipper serve`: the flag server (see the `flipper-server` crate).

use std::time::Duration;

use flipper::store::OpenOptions;
use flipper_server::{DEFAULT_STORE_URL, ServerConfig};

use crate::cli::ServeArgs;
use crate::error::CliError;

/// Opens the store, starts logging and serves until SIGINT or SIGTERM.
pub(crate) async fn run(
    store: Option<&str>,
    options: &OpenOptions,
    args: ServeArgs,
) -> Result<String, CliError> {
    let poll_interval = seconds("--poll-interval", args.poll_interval)?;
    let heartbeat_interval = seconds("--heartbeat-interval", args.heartbeat_interval)?;
    let mut config = ServerConfig::default();
    config.listen = args.listen;
    config.admin_token = args.admin_token;
    config.sdk_token = args.sdk_token;
    config.insecure = args.insecure;
    config.max_body_bytes = args.max_body_bytes;
    config.poll_interval = poll_interval;
    config.stream_log_size = args.stream_log_size;
    config.heartbeat_interval = heartbeat_interval;
    config.thrift_listen = args.thrift_listen;
    config.workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    // A bad setting is refused before the store is opened (opening `redb:` creates its file).
    config.validate(config.listen)?;
    let store = flipper::store::open_with(store.unwrap_or(DEFAULT_STORE_URL), options)?;
    init_logging();
    flipper_server::serve(config, store).await?;
    Ok(String::new())
}

/// A duration option, in seconds above 0.
fn seconds(option: &str, value: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::input(format!(
                "{option} must be a number of seconds above 0, not {value}"
            ))
        })
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
