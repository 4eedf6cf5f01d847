//! The commands. Each returns what it prints on standard output; `main` writes it.

mod eval;
mod flags;

use flipper::FeatureFlagClient;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Opens the store and runs the command.
pub(crate) async fn run(cli: Cli) -> Result<String, CliError> {
    let store = flipper::store::open(&cli.store)?;
    let client = FeatureFlagClient::from_arc(store);
    match cli.command {
        Command::Eval(args) => eval::run(&client, args).await,
        Command::Flags(command) => flags::run(&client, command).await,
    }
}
