//! `flipper flags ...`: create, change, inspect, export and import flags.

use flipper::store::{PutMode, StoreExt};
use flipper::{FeatureFlagClient, Item, export};
use flipper_core::json;

use crate::cli::{FlagsCommand, SetConditionsArgs};
use crate::error::CliError;
use crate::input;

/// Runs one `flags` subcommand. Arguments are all parsed before anything is read or written.
pub(crate) async fn run(
    client: &FeatureFlagClient,
    command: FlagsCommand,
) -> Result<String, CliError> {
    match command {
        FlagsCommand::List {
            limit,
            offset,
            json,
        } => {
            let items = client.store().items(limit, offset).await?;
            Ok(if json {
                export::render(&items)
            } else {
                items
                    .iter()
                    .map(|item| format!("{}\n", item.feature_name))
                    .collect()
            })
        }
        FlagsCommand::Get { name } => Ok(line(get_item(client, &name).await?.to_json())),
        FlagsCommand::Create {
            name,
            enabled,
            client_data,
        } => {
            let client_data = client_data
                .map(|text| input::json_object("--client-data", &text))
                .transpose()?;
            client.create(&name, enabled, client_data).await?;
            Ok(String::new())
        }
        FlagsCommand::Enable { name } => {
            client.enable(&name).await?;
            Ok(String::new())
        }
        FlagsCommand::Disable { name } => {
            client.disable(&name).await?;
            Ok(String::new())
        }
        FlagsCommand::Destroy { name } => {
            client.destroy(&name).await?;
            Ok(String::new())
        }
        FlagsCommand::AddCondition { name, checks } => {
            let condition = input::condition(&checks)?;
            client.add_condition(&name, condition).await?;
            Ok(String::new())
        }
        FlagsCommand::SetConditions(SetConditionsArgs {
            name,
            conditions,
            json,
        }) => {
            let conditions = match json {
                Some(text) => input::stored_conditions(&text)?,
                None => conditions
                    .iter()
                    .map(|text| input::condition_option(text))
                    .collect::<Result<_, _>>()?,
            };
            client.set_conditions(&name, conditions).await?;
            Ok(String::new())
        }
        FlagsCommand::SetBucketer { name, bucketer } => {
            let bucketer = input::bucketer(&bucketer)?;
            client.set_bucketer(&name, bucketer).await?;
            Ok(String::new())
        }
        FlagsCommand::SetClientData { name, client_data } => {
            let client_data = input::json_object("client data", &client_data)?;
            client.set_client_data(&name, client_data).await?;
            Ok(String::new())
        }
        FlagsCommand::GetClientData { name } => {
            let data = client.get_client_data(&name).await?;
            Ok(line(json::to_string(&data)))
        }
        FlagsCommand::GetMeta { name } => {
            let meta = client.get_meta(&name).await?;
            Ok(line(json::to_string(&meta.to_value())))
        }
        FlagsCommand::Export => Ok(export::render(&client.store().items(None, 0).await?)),
        FlagsCommand::Import { file } => {
            import(client, &file).await?;
            Ok(String::new())
        }
    }
}

/// The stored flag, or [`flipper::Error::FlagDoesNotExist`].
async fn get_item(client: &FeatureFlagClient, name: &str) -> Result<Item, CliError> {
    match client.store().get(name).await? {
        Some(stored) => Ok(stored.item),
        None => Err(flipper::Error::FlagDoesNotExist {
            name: name.to_owned(),
        }
        .into()),
    }
}

/// Reads and checks the whole export file, then writes its flags (replacing same-named ones).
/// Nothing is written unless every flag in the file is valid. A store with atomic batches
/// (memory, JSON file, redb) takes the whole file in one write; on others (a server) flags are
/// written one by one, and with a terminal on standard error and more than [`PROGRESS_FROM`]
/// flags a progress line shows how far it got.
async fn import(client: &FeatureFlagClient, file: &str) -> Result<(), CliError> {
    let (path, text) = input::read_file(file)?;
    let items =
        export::parse(&text).map_err(|message| flipper::Error::InvalidFile { path, message })?;
    let store = client.store();
    if store.capabilities().atomic_batch {
        // One transaction: all of the file or nothing.
        let items: Vec<Item> = items.into_values().collect();
        store.put_many(&items).await?;
        return Ok(());
    }
    let mut progress = Progress::new(items.len());
    for item in items.values() {
        store.put(item, PutMode::Overwrite).await?;
        progress.step();
    }
    progress.finish();
    Ok(())
}

/// Imports of more flags than this show progress.
const PROGRESS_FROM: usize = 200;

/// "importing 1234/10000 flags" on standard error, rewritten in place, when it is a terminal.
struct Progress {
    total: usize,
    done: usize,
    shown: Option<usize>,
    enabled: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        Self {
            total,
            done: 0,
            shown: None,
            enabled: total > PROGRESS_FROM && std::io::stderr().is_terminal(),
        }
    }

    fn step(&mut self) {
        self.done += 1;
        // Redraw at most once per percent.
        let percent = self.done * 100 / self.total.max(1);
        if self.enabled && self.shown != Some(percent) {
            self.shown = Some(percent);
            eprint!(
                "\rimporting {}/{} flags ({percent}%)",
                self.done, self.total
            );
        }
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

fn line(mut text: String) -> String {
    text.push('\n');
    text
}
