//! The commands. Each returns what it prints on standard output; `main` writes it.

mod eval;
mod flags;
mod serve;

use flipper::FeatureFlagClient;
use flipper::store::OpenOptions;

use crate::cli::{Cli, Command, DEFAULT_STORE};
use crate::error::CliError;

/// Runs the command (opening the store it names, or the command's default store).
pub(crate) async fn run(cli: Cli) -> Result<String, CliError> {
    let store = cli.store.as_deref();
    let mut options = OpenOptions::new();
    options.token = cli.token;
    match cli.command {
        Command::Eval(args) => eval::run(&client(store, &options)?, args).await,
        Command::Flags(command) => flags::run(&client(store, &options)?, command).await,
        Command::Serve(args) => serve::run(store, &options, args).await,
    }
}

/// A client over the store `url` names ([`DEFAULT_STORE`] when none is given); `options` holds
/// the token of an `http(s)://` store.
fn client(url: Option<&str>, options: &OpenOptions) -> Result<FeatureFlagClient, CliError> {
    let store = flipper::store::open_with(url.unwrap_or(DEFAULT_STORE), options)?;
    Ok(FeatureFlagClient::from_arc(store))
}
