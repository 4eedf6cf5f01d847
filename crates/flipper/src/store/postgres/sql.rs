//! The SQL the PostgreSQL store sends. Identifiers are always quoted ([`ident`]) and literals
//! always escaped ([`literal`]), so table and column names from a URL cannot inject anything.

/// The channel every flipper table notifies on; payloads name their schema and table.
pub(super) const CHANNEL: &str = "flipper_changes";

/// The key of the transaction-scoped advisory lock that serializes migrations ("flipper" as a
/// big-endian integer), so processes starting together do not race on the catalog.
const MIGRATION_LOCK: i64 = 28_829_647_738_266_994;

/// The trigger function. It is the same for every flipper table (the name and item columns are
/// its trigger arguments), so its body holds no identifier and no dynamic SQL.
const FUNCTION: &str = "flipper_notify_change";

/// The row trigger (insert, update, delete) and the statement trigger (truncate).
const ROW_TRIGGER: &str = "flipper_notify_change";
const TRUNCATE_TRIGGER: &str = "flipper_notify_truncate";

/// The body of [`FUNCTION`] (PL/pgSQL). Payloads are JSON objects, always shorter than
/// `NOTIFY`'s 8000-byte limit:
///
/// - `{"v": 1, "op": "put", "schema", "table", "seq", "name", "version", "item"}`: `item` is
///   the stored bytes in base64 and `version` the hex SHA-256 of them; when that does not fit,
///   `version` and `item` are left out and the listener reads the row.
/// - `{"v": 1, "op": "delete", "schema", "table", "seq", "name"}`, also sent for the old name
///   when an `UPDATE` renames a row.
/// - `{"v": 1, "op": "resync", "schema", "table", "seq"}` after a `TRUNCATE`, or when even a
///   short payload would not fit (a name of thousands of bytes).
///
/// `seq` counts the notifications of one transaction (in the transaction-local setting
/// `flipper.notify_seq`): PostgreSQL drops a notification identical to an earlier one of the
/// same transaction, which would lose a write that restores an earlier value.
const FUNCTION_BODY: &str = "
-- Written by flipper's PostgreSQL store: reports every change of a flag table on channel
-- flipper_changes (payload format 1). TG_ARGV[0] is the name column, TG_ARGV[1] the item column.
DECLARE
  counter text := current_setting('flipper.notify_seq', true);
  seq bigint := 1;
  old_name text;
  new_name text;
  item bytea;
  payload text;
  resync text;
BEGIN
  IF counter ~ '^[0-9]{1,18}$' THEN
    seq := counter::bigint + 1;
  END IF;
  PERFORM set_config('flipper.notify_seq', seq::text, true);
  resync := json_build_object('v', 1, 'op', 'resync', 'schema', TG_TABLE_SCHEMA,
    'table', TG_TABLE_NAME, 'seq', seq)::text;
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('flipper_changes', resync);
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    old_name := to_jsonb(OLD) ->> TG_ARGV[0];
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    new_name := to_jsonb(NEW) ->> TG_ARGV[0];
    item := (to_jsonb(NEW) ->> TG_ARGV[1])::bytea;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND old_name IS DISTINCT FROM new_name THEN
    payload := json_build_object('v', 1, 'op', 'delete', 'schema', TG_TABLE_SCHEMA,
      'table', TG_TABLE_NAME, 'seq', seq, 'name', old_name)::text;
    IF octet_length(payload) >= 8000 THEN
      payload := resync;
    END IF;
    PERFORM pg_notify('flipper_changes', payload);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    payload := json_build_object('v', 1, 'op', 'put', 'schema', TG_TABLE_SCHEMA,
      'table', TG_TABLE_NAME, 'seq', seq, 'name', new_name,
      'version', encode(sha256(item), 'hex'),
      'item', translate(encode(item, 'base64'), chr(10), ''))::text;
    IF octet_length(payload) >= 8000 THEN
      payload := json_build_object('v', 1, 'op', 'put', 'schema', TG_TABLE_SCHEMA,
        'table', TG_TABLE_NAME, 'seq', seq, 'name', new_name)::text;
    END IF;
    IF octet_length(payload) >= 8000 THEN
      payload := resync;
    END IF;
    PERFORM pg_notify('flipper_changes', payload);
  END IF;
  RETURN NULL;
END
";

/// `s` as a quoted SQL identifier: `"` around it, every `"` inside doubled.
pub(super) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `s` as an escape-string literal (`E'...'`), whose meaning does not depend on
/// `standard_conforming_strings`: every `\` and `'` inside doubled.
pub(super) fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `body` dollar-quoted with a tag that does not occur in it.
fn dollar_quote(tag: &str, body: &str) -> String {
    let mut tag = format!("${tag}$");
    let mut n = 0u32;
    while body.contains(tag.as_str()) {
        n += 1;
        tag = format!("${}_{n}$", tag.trim_matches('$'));
    }
    format!("{tag}{body}{tag}")
}

/// The SQL of one store, built once from its table and column names.
#[derive(Debug)]
pub(super) struct Statements {
    /// `$1` name → item, version.
    pub(super) get: String,
    /// `$1` limit (NULL for all), `$2` offset → name, item, version; in code point order.
    pub(super) list: String,
    /// `$1` name, `$2` item → version; always writes.
    pub(super) overwrite: String,
    /// `$1` name, `$2` item → version; no row when the flag exists.
    pub(super) create: String,
    /// `$1` name, `$2` item, `$3` expected version → version; no row on a mismatch.
    pub(super) update: String,
    /// `$1` name; deletes the row → one row when it existed.
    pub(super) delete: String,
    /// `$1` names, `$2` items (arrays) → the version of each item, in order; one statement,
    /// where the last of several items of one name wins.
    pub(super) put_many: String,
    /// `$1` quoted table name, `$2` name column → the column's length limit, if any.
    pub(super) name_limit: &'static str,
    /// `$1` quoted table name → the table's schema and whether it has the change trigger,
    /// when the table exists.
    pub(super) table_schema: String,
    /// The migration, without `BEGIN` / `COMMIT` (run as one implicit transaction).
    pub(super) migration: String,
}

impl Statements {
    pub(super) fn new(table: &str, name_column: &str, item_column: &str) -> Self {
        let (t, n, i) = (ident(table), ident(name_column), ident(item_column));
        let version = format!("encode(sha256({i}), 'hex')");
        Self {
            get: format!("SELECT {i}, {version} FROM {t} WHERE {n} = $1"),
            list: format!(
                "SELECT {n}, {i}, {version} FROM {t} ORDER BY {n} COLLATE \"C\" LIMIT $1 OFFSET $2"
            ),
            overwrite: format!(
                "INSERT INTO {t} ({n}, {i}) VALUES ($1, $2) \
                 ON CONFLICT ({n}) DO UPDATE SET {i} = EXCLUDED.{i} RETURNING {version}"
            ),
            create: format!(
                "INSERT INTO {t} ({n}, {i}) VALUES ($1, $2) \
                 ON CONFLICT ({n}) DO NOTHING RETURNING {version}"
            ),
            update: format!(
                "UPDATE {t} SET {i} = $2 WHERE {n} = $1 AND {version} = $3 RETURNING {version}"
            ),
            delete: format!("DELETE FROM {t} WHERE {n} = $1 RETURNING 1"),
            put_many: format!(
                "WITH input (k, v, ord) AS \
                   (SELECT * FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY), \
                 latest AS (SELECT DISTINCT ON (k) k, v FROM input ORDER BY k, ord DESC), \
                 written AS (INSERT INTO {t} ({n}, {i}) SELECT k, v FROM latest \
                   ON CONFLICT ({n}) DO UPDATE SET {i} = EXCLUDED.{i} RETURNING 1) \
                 SELECT encode(sha256(v), 'hex') FROM input ORDER BY ord"
            ),
            name_limit: "SELECT a.atttypmod - 4 FROM pg_attribute a \
                         WHERE a.attrelid = to_regclass($1) AND a.attname = $2 \
                         AND a.atttypmod > 4",
            table_schema: format!(
                "SELECT n.nspname::text, EXISTS (SELECT 1 FROM pg_trigger t \
                   WHERE t.tgrelid = c.oid AND t.tgname = '{ROW_TRIGGER}') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass($1)"
            ),
            migration: migration(table, name_column, item_column),
        }
    }
}

/// The migration's statements: Python's table, then (if missing or different) the trigger
/// function and the two triggers, under an advisory lock. The names reach the `DO` block as
/// escaped literals, and its dynamic statements quote them again with `format`'s `%I` / `%L`.
fn migration(table: &str, name_column: &str, item_column: &str) -> String {
    let (t, n, i) = (ident(table), ident(name_column), ident(item_column));
    let block = format!(
        "
DECLARE
  table_name text := {table};
  name_column text := {name_column};
  item_column text := {item_column};
  body text := {body};
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_proc
                 WHERE oid = to_regprocedure('{FUNCTION}()') AND prosrc = body) THEN
    EXECUTE format('CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger '
                   'LANGUAGE plpgsql AS %L', body);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{ROW_TRIGGER}'
                 AND tgrelid = to_regclass(quote_ident(table_name))) THEN
    EXECUTE format('CREATE TRIGGER {ROW_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON %I '
                   'FOR EACH ROW EXECUTE FUNCTION {FUNCTION}(%L, %L)',
                   table_name, name_column, item_column);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{TRUNCATE_TRIGGER}'
                 AND tgrelid = to_regclass(quote_ident(table_name))) THEN
    EXECUTE format('CREATE TRIGGER {TRUNCATE_TRIGGER} AFTER TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}(%L, %L)',
                   table_name, name_column, item_column);
  END IF;
END
",
        table = literal(table),
        name_column = literal(name_column),
        item_column = literal(item_column),
        body = literal(FUNCTION_BODY),
    );
    format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});\n\
         CREATE TABLE IF NOT EXISTS {t} ({n} varchar(40) PRIMARY KEY, {i} bytea NOT NULL);\n\
         DO {};\n",
        dollar_quote("flipper_migrate", &block)
    )
}

/// The migration as a script for a migration tool: the statements in one transaction.
pub(super) fn migration_script(statements: &Statements) -> String {
    format!(
        "-- flipper's PostgreSQL store: flipper-client's table, plus a trigger that reports every\n\
         -- change on channel {CHANNEL} (LISTEN/NOTIFY). Idempotent; safe to run concurrently.\n\
         BEGIN;\n{}COMMIT;\n",
        statements.migration
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_escaped() {
        assert_eq!(ident("feature_flags"), "\"feature_flags\"");
        assert_eq!(
            ident("x\"; DROP TABLE y; --"),
            "\"x\"\"; DROP TABLE y; --\""
        );
        assert_eq!(literal("it's a\\b"), "E'it''s a\\\\b'");
        assert_eq!(dollar_quote("t", "a $t$ b"), "$t_1$a $t$ b$t_1$");
        assert_eq!(dollar_quote("t", "plain"), "$t$plain$t$");
    }

    #[test]
    fn the_table_is_pythons() {
        let sql = Statements::new("feature_flags", "name", "item");
        assert!(sql.migration.contains(
            "CREATE TABLE IF NOT EXISTS \"feature_flags\" \
             (\"name\" varchar(40) PRIMARY KEY, \"item\" bytea NOT NULL);"
        ));
        assert!(!FUNCTION_BODY.contains('\\') && !FUNCTION_BODY.contains("$flipper$"));
    }
}
