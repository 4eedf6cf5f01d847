//! The commands. Each returns what it prints on standard output; `main` writes it.

mod eval;
mod flags;
mod serve;

use flipper::FeatureFlagClient;
use flipper::store::{CacheOptions, OpenOptions, Replication};

use crate::cli::{Cli, Command, DEFAULT_STORE, ReplicationMode};
use crate::error::CliError;

/// Runs the command (opening the store it names, or the command's default store).
pub(crate) async fn run(cli: Cli) -> Result<String, CliError> {
    let store = cli.store.as_deref();
    let options = open_options(&cli);
    match cli.command {
        Command::Eval(args) => eval::run(&client(store, &options)?, args).await,
        Command::Flags(command) => flags::run(&client(store, &options)?, command).await,
        Command::Serve(args) => serve::run(store, &options, args).await,
    }
}

/// The token and wrappers (replicas, cache) the command line asks for.
fn open_options(cli: &Cli) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.token.clone_from(&cli.token);
    for replica in &cli.replicas {
        options = options.replica(replica.as_str());
    }
    let timeout = cli.replication_timeout;
    options = options.replication(match cli.replication {
        ReplicationMode::Sync => Replication::Synchronous { timeout },
        ReplicationMode::Async => Replication::Asynchronous { timeout },
    });
    if cli.cache_size.is_some() || cli.cache_ttl.is_some() {
        let mut cache = CacheOptions::new().ttl(cli.cache_ttl);
        if let Some(size) = cli.cache_size {
            cache = cache.size(size);
        }
        options = options.cache(cache);
    }
    options
}

/// A client over the store `url` names ([`DEFAULT_STORE`] when none is given); `options` holds
/// the token of an `http(s)://` store.
fn client(url: Option<&str>, options: &OpenOptions) -> Result<FeatureFlagClient, CliError> {
    let store = flipper::store::open_with(url.unwrap_or(DEFAULT_STORE), options)?;
    Ok(FeatureFlagClient::from_arc(store))
}
