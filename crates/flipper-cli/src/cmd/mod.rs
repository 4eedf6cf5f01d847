//! The commands. Each returns what it prints on standard output; `main` writes it.

mod eval;
mod flags;
mod serve;

use flipper::FeatureFlagClient;

use crate::cli::{Cli, Command, DEFAULT_STORE};
use crate::error::CliError;

/// Runs the command (opening the store it names, or the command's default store).
pub(crate) async fn run(cli: Cli) -> Result<String, CliError> {
    let store = cli.store.as_deref();
    match cli.command {
        Command::Eval(args) => eval::run(&client(store)?, args).await,
        Command::Flags(command) => flags::run(&client(store)?, command).await,
        Command::Serve(args) => serve::run(store, args).await,
    }
}

/// A client over the store `url` names ([`DEFAULT_STORE`] when none is given).
fn client(url: Option<&str>) -> Result<FeatureFlagClient, CliError> {
    let store = flipper::store::open(url.unwrap_or(DEFAULT_STORE))?;
    Ok(FeatureFlagClient::from_arc(store))
}
