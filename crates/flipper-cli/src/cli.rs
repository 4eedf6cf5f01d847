//! The command line, as clap definitions. Parsing only: the commands live in `cmd`.

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};

const ABOUT: &str = "Evaluate and manage feature flags in a flipper store";

const LONG_ABOUT: &str = "\
Evaluate and manage feature flags in a flipper store.

flipper reads and writes exactly what Carta's Python flipper-client does, so a Rust service, a \
Python service and this tool can share one store and give the same answer for the same user.";

const AFTER_HELP: &str = "\
Stores (--store URL, or the FLIPPER_STORE environment variable):
  json:PATH   every flag in one JSON file, in the export format (default: json:flipper.json)
  redb:PATH   an embedded, crash-safe database file (default of `flipper serve`: redb:flipper.redb)
  memory:     a new, empty store that lives as long as the command
  redis://[:PASS@]HOST[:PORT][/DB][?base_key=features&batch_size=100&poll_interval=5s]
              Redis, with flipper-client's keys and bytes
  redis+cluster://HOST:PORT,HOST:PORT[?...]
              a Redis Cluster
  postgres://USER[:PASS]@HOST[:PORT]/DB[?table=feature_flags&name_column=name&item_column=item&run_migrations=true]
              PostgreSQL, with flipper-client's table
  consul://HOST[:PORT][/BASE_KEY][?token=...&wait=5m&consistency=stale&dc=DC]
              Consul's KV store, with flipper-client's keys and bytes (the ACL token also
              from CONSUL_HTTP_TOKEN)
  s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true&poll_interval=10s]
              S3 (or an S3-compatible service), with flipper-client's object keys and bytes;
              endpoint, region and credentials also from AWS_ENDPOINT_URL, AWS_REGION,
              AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP
  thrift://HOST:PORT[?transport=framed&timeout=10s&poll_interval=5s]
              flipper-client's Thrift FeatureFlagStore service (such as `flipper serve
              --thrift-listen`); no compare-and-swap: the service keeps no versions
  http://HOST:PORT, https://HOST:PORT
              a flipper server (`flipper serve`); --token (or FLIPPER_TOKEN) gives its admin
              token (or its SDK token, for reading and evaluating)

Values are JSON as Python's json.loads reads it: quote strings ('\"pro\"'), not numbers (18).

Examples:
  flipper flags create new_dashboard --enabled
  flipper flags add-condition new_dashboard is_admin=true plan__in='[\"pro\", \"enterprise\"]'
  flipper eval new_dashboard --context '{\"is_admin\": true, \"plan\": \"pro\"}'
  FLIPPER_STORE=json:prod.json flipper eval --json
  FLIPPER_TOKEN=... flipper --store http://127.0.0.1:8080 flags enable new_dashboard

Exit status: 0 on success; 2 for bad input (an argument, the store URL, an unreadable or \
malformed file, a missing flag, a token the server refuses), with nothing written; 1 when \
writing failed (or the server cannot be reached).";

/// `flipper [--store URL] COMMAND`.
#[derive(Debug, Parser)]
#[command(
    name = "flipper",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// The store: `json:PATH`, `redb:PATH`, `memory:`, `redis(s)://...`, `redis(s)+cluster://...`,
    /// `postgres://...`, `consul://...`, `s3://...`, `thrift://HOST:PORT` or
    /// `http(s)://HOST:PORT` (a flipper server) [default: json:flipper.json; for `serve`,
    /// redb:flipper.redb]
    #[arg(
        long,
        global = true,
        env = "FLIPPER_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) store: Option<String>,

    /// The bearer token for an http(s):// store: the server's admin token to write, its SDK
    /// token to read and evaluate
    #[arg(
        long,
        global = true,
        env = "FLIPPER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,

    /// A replica: every write to the store is then copied there (repeat, or separate URLs with
    /// commas); reads use the store only
    #[arg(
        long = "replica",
        global = true,
        env = "FLIPPER_REPLICAS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub(crate) replicas: Vec<String>,

    /// How a write waits for the replicas: `sync` (until every replica has it, at most
    /// --replication-timeout) or `async` (not at all; they are written in the background)
    #[arg(long, global = true, value_enum, default_value_t = ReplicationMode::Sync)]
    pub(crate) replication: ReplicationMode,

    /// The longest a write waits for its replicas, in seconds (`0.5`, `2`)
    #[arg(long, global = true, value_name = "SECONDS", default_value = "1", value_parser = seconds)]
    pub(crate) replication_timeout: std::time::Duration,

    /// Keep up to N flags in an in-memory cache in front of the store (kept fresh by the
    /// store's change notifications where it has them)
    #[arg(long, global = true, env = "FLIPPER_CACHE_SIZE", value_name = "N")]
    pub(crate) cache_size: Option<usize>,

    /// Forget cached flags (and cached absences) this many seconds after loading them; alone,
    /// it turns the cache on with 5000 entries
    #[arg(long, global = true, env = "FLIPPER_CACHE_TTL", value_name = "SECONDS", value_parser = seconds)]
    pub(crate) cache_ttl: Option<std::time::Duration>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReplicationMode {
    /// Wait for every replica (bounded by --replication-timeout).
    Sync,
    /// Do not wait for the replicas.
    Async,
}

/// A positive, finite number of seconds.
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (like 0.5 or 2)"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("{text:?} must be a positive number of seconds"));
    }
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is too many seconds"))
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Evaluate flags for a context and print whether each is on
    #[command(after_help = EVAL_AFTER_HELP)]
    Eval(EvalArgs),

    /// Create, change, inspect, export and import flags
    #[command(subcommand)]
    Flags(FlagsCommand),

    /// Run the flag server: management API, evaluation and OpenFeature (OFREP) over HTTP
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
}

/// The store `flags` and `eval` use when none is given.
pub(crate) const DEFAULT_STORE: &str = "json:flipper.json";

const SERVE_AFTER_HELP: &str = "\
The server keeps every flag in memory and evaluates from there; it follows the store's changes \
(or reloads it every --poll-interval seconds when the store cannot report them). Without \
--store it uses the embedded database redb:flipper.redb in the working directory.

GET /api/v1/stream streams every flag, then each change, as server-sent events; a client that \
reconnects with Last-Event-ID gets the changes it missed while the server still holds them \
(--stream-log-size), a fresh snapshot otherwise. `flipper --store http://HOST:PORT` (and the \
library's HttpStore) use the server as their store.

Writes need the admin token, reads, evaluation and the stream the SDK token (or the admin \
token), sent as `Authorization: Bearer TOKEN`. A token that is not set leaves its routes open, which is only \
allowed on a loopback address (127.0.0.1, ::1) unless --insecure is given. Prefer the \
environment variables to the options for tokens: options show in the process list.

--thrift-listen ADDR (or FLIPPER_THRIFT_LISTEN) also serves flipper-client's Thrift \
FeatureFlagStore service over the same store, for Python services using \
ThriftRPCFeatureFlagStore and for `--store thrift://ADDR`. It has no authentication: a \
non-loopback address needs --insecure. It stops with the HTTP server.

Logs go to standard error, one line per request; RUST_LOG sets the level (default: info).

Examples:
  flipper serve
  FLIPPER_ADMIN_TOKEN=... FLIPPER_SDK_TOKEN=... flipper serve --listen 0.0.0.0:8080
  flipper --store json:flags.json serve --listen 127.0.0.1:9000
  flipper serve --thrift-listen 127.0.0.1:9090
  FLIPPER_TOKEN=... flipper --store https://flags.internal serve   (a local copy of a server)

Exit status: 0 after SIGINT or SIGTERM; 2 for a setting that cannot be used (a public \
address without tokens, an empty token) or an unreadable store; 1 when the address cannot be \
bound or serving fails.";

/// `flipper serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on
    #[arg(
        long,
        env = "FLIPPER_LISTEN",
        default_value = flipper_server::DEFAULT_LISTEN,
        value_name = "ADDR"
    )]
    pub(crate) listen: std::net::SocketAddr,

    /// The token for writes (it may also read)
    #[arg(
        long,
        env = "FLIPPER_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) admin_token: Option<String>,

    /// The token for reads, evaluation and OFREP
    #[arg(
        long,
        env = "FLIPPER_SDK_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) sdk_token: Option<String>,

    /// Allow a non-loopback address without both tokens
    #[arg(long)]
    pub(crate) insecure: bool,

    /// The largest request body, in bytes (larger ones get 413)
    #[arg(long, value_name = "N", default_value_t = flipper_server::DEFAULT_MAX_BODY_BYTES)]
    pub(crate) max_body_bytes: usize,

    /// How often to reload a store that cannot report its changes, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = flipper_server::DEFAULT_POLL_INTERVAL.as_secs_f64())]
    pub(crate) poll_interval: f64,

    /// How many recent changes the change stream keeps for clients that reconnect
    #[arg(long, value_name = "N", default_value_t = flipper_server::DEFAULT_STREAM_LOG_SIZE)]
    pub(crate) stream_log_size: usize,

    /// How long a change stream may stay silent before a heartbeat, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = flipper_server::DEFAULT_HEARTBEAT_INTERVAL.as_secs_f64())]
    pub(crate) heartbeat_interval: f64,

    /// Also serve flipper-client's Thrift FeatureFlagStore service (binary protocol, buffered
    /// or framed) over the same store on this address
    #[arg(long, env = "FLIPPER_THRIFT_LISTEN", value_name = "ADDR")]
    pub(crate) thrift_listen: Option<std::net::SocketAddr>,

    /// How many threads answer HTTP requests, each on its own single-threaded runtime
    /// [default: one per core]
    #[arg(long, env = "FLIPPER_WORKERS", value_name = "N")]
    pub(crate) workers: Option<usize>,
}

const EVAL_AFTER_HELP: &str = "\
Plain output is one line per flag: NAME<TAB>true or NAME<TAB>false. With --json it is one JSON \
object mapping each name to {\"enabled\": BOOL, \"reason\": CODE}, plus \"error\": MESSAGE when \
evaluation hit a type error (then enabled is false). Reasons: enabled, disabled, flag_missing, \
conditions_matched, conditions_failed, bucketed_in, bucketed_out, error.

The context's keys are the checks, in the order given: with several conditions on a flag, that \
order decides which check runs first (as with Python's keyword arguments).

Examples:
  flipper eval
  flipper eval new_dashboard --context '{\"user_id\": 42, \"is_admin\": true, \"plan\": \"pro\"}'
  flipper eval new_dashboard checkout_v3 --default true --json";

/// `flipper eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Flags to evaluate [default: every flag in the store]
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,

    /// The caller's variables, as a JSON object (its key order is the checks' order)
    #[arg(long, short = 'c', value_name = "JSON", default_value = "{}")]
    pub(crate) context: String,

    /// The answer for a flag that does not exist
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = false,
        action = ArgAction::Set
    )]
    pub(crate) default: bool,

    /// Print a JSON object with each flag's answer, reason and error
    #[arg(long)]
    pub(crate) json: bool,
}

/// `flipper flags ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// List flag names, one per line (or the flags themselves with --json)
    #[command(after_help = "\
With --json, prints a JSON array of the flags in the export format (see `flipper flags export`).

Examples:
  flipper flags list
  flipper flags list --limit 10 --offset 20
  flipper flags list --json")]
    List {
        /// Print at most N flags
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Skip the first N flags
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
        /// Print the flags as a JSON array in the export format
        #[arg(long)]
        json: bool,
    },

    /// Print a flag as stored (one line of JSON)
    #[command(after_help = "\
Example:
  flipper flags get new_dashboard")]
    Get {
        /// The flag
        name: String,
    },

    /// Create a flag, replacing any flag with the same name (as flipper-client does)
    #[command(after_help = "\
The new flag has no conditions and no bucketer. An existing flag with the same name is \
replaced whole.

Examples:
  flipper flags create new_dashboard --enabled
  flipper flags create banner --client-data '{\"color\": \"blue\"}'")]
    Create {
        /// The flag
        name: String,
        /// Switch it on (it is created off otherwise)
        #[arg(long)]
        enabled: bool,
        /// Data for the application, a JSON object
        #[arg(long, value_name = "JSON")]
        client_data: Option<String>,
    },

    /// Switch a flag on
    #[command(after_help = "\
Example:
  flipper flags enable new_dashboard")]
    Enable {
        /// The flag
        name: String,
    },

    /// Switch a flag off (it is then off for everyone)
    #[command(after_help = "\
Example:
  flipper flags disable new_dashboard")]
    Disable {
        /// The flag
        name: String,
    },

    /// Delete a flag
    #[command(after_help = "\
Example:
  flipper flags destroy new_dashboard")]
    Destroy {
        /// The flag
        name: String,
    },

    /// Add one condition made of one or more checks (all must hold)
    #[command(after_help = CHECK_HELP)]
    AddCondition {
        /// The flag
        name: String,
        /// The condition's checks, as KEY=JSON (e.g. age__gte=18)
        #[arg(value_name = "KEY=JSON", required = true, num_args = 1..)]
        checks: Vec<String>,
    },

    /// Replace all of a flag's conditions
    #[command(after_help = SET_CONDITIONS_HELP)]
    SetConditions(SetConditionsArgs),

    /// Replace a flag's bucketer (the share of callers it is on for)
    #[command(after_help = "\
BUCKETER is the stored form, a JSON object with a \"type\":
  {\"type\": \"NoOpBucketer\"}                       everyone (removes the bucketer)
  {\"type\": \"PercentageBucketer\", \"percentage\": P}  a random share
  {\"type\": \"ConsistentHashPercentageBucketer\", \"percentage\": P, \"key_whitelist\": [\"user_id\"]}
                                                  a stable share, by hashing the named checks
where P is {\"type\": \"Percentage\", \"value\": 0.25} or a ramp {\"type\": \
\"LinearRampPercentage\", \"initial_value\": 0.0, \"final_value\": 1.0, \"ramp_duration\": \
SECONDS, \"initial_time\": UNIX_SECONDS}.

The bucketer decides only when no condition applies: a flag with conditions evaluated with a \
non-empty context is decided by its conditions alone (flipper-client's rule).

Example:
  flipper flags set-bucketer new_dashboard \\
    '{\"type\": \"ConsistentHashPercentageBucketer\", \"percentage\": {\"type\": \"Percentage\", \"value\": 0.5}, \"key_whitelist\": [\"user_id\"]}'")]
    SetBucketer {
        /// The flag
        name: String,
        /// The bucketer, as JSON in the stored form
        #[arg(value_name = "BUCKETER")]
        bucketer: String,
    },

    /// Merge keys into a flag's client data
    #[command(after_help = "\
The keys of JSON are added to the flag's client data, replacing keys with the same name; other \
keys are kept (a shallow merge, as flipper-client does).

Example:
  flipper flags set-client-data banner '{\"color\": \"red\", \"owner\": \"team-x\"}'")]
    SetClientData {
        /// The flag
        name: String,
        /// The keys to set, a JSON object
        #[arg(value_name = "JSON")]
        client_data: String,
    },

    /// Print a flag's client data as JSON
    #[command(after_help = "\
Example:
  flipper flags get-client-data banner")]
    GetClientData {
        /// The flag
        name: String,
    },

    /// Print a flag's metadata (client data, created date, conditions, bucketer) as JSON
    #[command(after_help = "\
Example:
  flipper flags get-meta new_dashboard")]
    GetMeta {
        /// The flag
        name: String,
    },

    /// Print every flag in the export format
    #[command(after_help = "\
The export format is a JSON array of flags in flipper-client's stored form, sorted by name, one \
flag per line: the format of json: stores, read back by `flipper flags import`.

Example:
  flipper --store json:prod.json flags export > backup.json")]
    Export,

    /// Write every flag of an export file into the store
    #[command(after_help = "\
FILE is in the export format (see `flipper flags export`); `-` reads standard input. The whole \
file is checked before anything is written. Flags with the same name are replaced; other flags \
in the store are kept. memory:, json: and redb: stores take the file in one all-or-nothing \
write; a server (http://) takes the flags one by one, with a progress line on a terminal.

Examples:
  flipper flags import backup.json
  flipper --store json:staging.json flags export | flipper --store json:dev.json flags import -")]
    Import {
        /// The export file, or `-` for standard input
        #[arg(value_name = "FILE")]
        file: String,
    },
}

const CHECK_HELP: &str = "\
Each check is KEY=JSON. KEY is a variable with an optional operator suffix, as in \
flipper-client's keyword arguments: age (equality), age__gt, age__gte, age__lt, age__lte, \
age__ne, plan__in, plan__not_in. JSON is the value, in JSON: quote strings.

A flag passes its conditions when every condition passes; a condition passes when every check \
on a variable present in the context holds.

Examples:
  flipper flags add-condition new_dashboard is_admin=true plan__in='[\"pro\", \"enterprise\"]'
  flipper flags add-condition new_dashboard age__gte=18
  flipper flags add-condition beta country='\"FR\"'";

const SET_CONDITIONS_HELP: &str = "\
Give each condition as one --condition option holding its checks separated by spaces, each check \
KEY=JSON (see `flipper flags add-condition --help`). Spaces inside a JSON string, array or \
object do not separate checks. Repeat --condition for several conditions; the flag passes when \
every condition passes.

Or give all conditions with --json, as a JSON array of conditions in the stored form (what \
`flipper flags get-meta` prints under \"conditions\"). `--json '[]'` removes every condition.

Examples:
  flipper flags set-conditions new_dashboard \\
    --condition 'is_admin=true plan__in=[\"pro\", \"enterprise\"]' \\
    --condition 'age__gte=18'
  flipper flags set-conditions new_dashboard \\
    --json '[{\"age\": [{\"variable\": \"age\", \"value\": 18, \"operator\": \"gte\"}]}]'
  flipper flags set-conditions new_dashboard --json '[]'";

/// `flipper flags set-conditions`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["conditions", "json"])))]
pub(crate) struct SetConditionsArgs {
    /// The flag
    pub(crate) name: String,

    /// One condition: its checks, space-separated KEY=JSON (repeat for more conditions)
    #[arg(
        long = "condition",
        short = 'c',
        value_name = "'KEY=JSON ...'",
        conflicts_with = "json"
    )]
    pub(crate) conditions: Vec<String>,

    /// Every condition, as a JSON array of conditions in the stored form
    #[arg(long, value_name = "JSON")]
    pub(crate) json: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
