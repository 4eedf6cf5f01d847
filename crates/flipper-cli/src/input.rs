//! Reading arguments: JSON values, `KEY=JSON` checks, conditions, export files.
//!
//! Every function here fails with [`CliError::Input`] (exit code 2) naming the argument.

use std::io::Read;
use std::path::PathBuf;

use flipper::{Bucketer, Condition, Object, Value};
use flipper_core::condition::parse_check_key;
use flipper_core::json;

use crate::error::CliError;

/// Parses `text` as Python's `json.loads`; `what` names the argument in the error.
pub(crate) fn json_value(what: &str, text: &str) -> Result<Value, CliError> {
    json::parse(text).map_err(|e| CliError::input(format!("{what}: invalid JSON: {e}")))
}

/// Parses a JSON object.
pub(crate) fn json_object(what: &str, text: &str) -> Result<Object, CliError> {
    match json_value(what, text)? {
        Value::Object(o) => Ok(*o),
        other => Err(CliError::input(format!(
            "{what}: expected a JSON object, found {}",
            kind(&other)
        ))),
    }
}

/// Parses a bucketer in the stored form.
pub(crate) fn bucketer(text: &str) -> Result<Bucketer, CliError> {
    let value = json_value("bucketer", text)?;
    Bucketer::from_value(&value).map_err(|e| CliError::input(format!("invalid bucketer: {e}")))
}

/// Builds one condition from `KEY=JSON` checks (`age__gte=18`); a key may appear once.
pub(crate) fn condition<S: AsRef<str>>(pairs: &[S]) -> Result<Condition, CliError> {
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
    let mut condition = Condition::new();
    for pair in pairs {
        let pair = pair.as_ref();
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::input(format!(
                "expected a check as KEY=JSON (e.g. age__gte=18), found {pair:?}"
            )));
        };
        if key.is_empty() {
            return Err(CliError::input(format!(
                "check {pair:?} has no key (expected KEY=JSON, e.g. age__gte=18)"
            )));
        }
        let (variable, operator) = parse_check_key(key)
            .map_err(|e| CliError::input(format!("invalid condition key {key:?}: {e}")))?;
        if seen.contains(&key) {
            return Err(CliError::input(format!(
                "condition key {key:?} is given twice"
            )));
        }
        seen.push(key);
        let value = json::parse(value).map_err(|e| {
            CliError::input(format!(
                "invalid JSON value for {key:?}: {e} (quote strings: {key}='\"text\"')"
            ))
        })?;
        condition = condition.with(variable, operator, value);
    }
    Ok(condition)
}

/// Parses one `--condition` argument: `KEY=JSON` checks separated by whitespace. Whitespace
/// inside a JSON string, array or object does not separate checks.
pub(crate) fn condition_option(text: &str) -> Result<Condition, CliError> {
    let pairs = split_checks(text);
    if pairs.is_empty() {
        return Err(CliError::input(
            "--condition needs at least one check KEY=JSON (use --json '[]' to remove every condition)",
        ));
    }
    condition(&pairs)
}

/// Splits `KEY=JSON KEY=JSON ...` into pairs: each value extends as far as the JSON reader
/// reads it, so whitespace inside a JSON string, array or object stays in its pair. A value
/// that is not valid JSON ends at the next whitespace (and is reported by [`condition`]).
fn split_checks(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = text.len() - rest.len();
        let value_start = rest.find('=').map(|i| i + 1);
        let to_whitespace = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let len = match value_start {
            Some(v) if v <= to_whitespace => match json::parse_prefix(&rest[v..]) {
                Ok((_, n)) if rest[v + n..].chars().next().is_none_or(char::is_whitespace) => v + n,
                _ => to_whitespace,
            },
            _ => to_whitespace,
        };
        parts.push(&text[start..start + len]);
        rest = rest[len..].trim_start();
    }
    parts
}

/// Parses `--json`: a JSON array of conditions in the stored form.
pub(crate) fn stored_conditions(text: &str) -> Result<Vec<Condition>, CliError> {
    let Value::List(list) = json_value("--json", text)? else {
        return Err(CliError::input(
            "--json: expected a JSON array of conditions in the stored form",
        ));
    };
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            Condition::from_value(c)
                .map_err(|e| CliError::input(format!("--json: conditions[{i}]: {e}")))
        })
        .collect()
}

/// Reads an export file (`-` for standard input) as text.
///
/// # Errors
/// [`flipper::Error::Io`] (a read failure) or [`flipper::Error::InvalidFile`] for bytes that
/// are not UTF-8: both exit code 2.
pub(crate) fn read_file(file: &str) -> Result<(PathBuf, String), CliError> {
    let (path, bytes) = if file == "-" {
        let path = PathBuf::from("<stdin>");
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|source| read_error(&path, source))?;
        (path, bytes)
    } else {
        let path = PathBuf::from(file);
        let bytes = std::fs::read(&path).map_err(|source| read_error(&path, source))?;
        (path, bytes)
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok((path, text)),
        Err(e) => Err(flipper::Error::InvalidFile {
            path,
            message: format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        }
        .into()),
    }
}

fn read_error(path: &std::path::Path, source: std::io::Error) -> CliError {
    flipper::Error::Io {
        action: flipper::Error::READ,
        path: path.to_owned(),
        source,
    }
    .into()
}

/// "a JSON array", "a JSON string", ... for messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        other => format!("a JSON {}", other.json_kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_split_on_whitespace_outside_json() {
        assert_eq!(
            split_checks(r#"  a=1 plan__in=["pro", "x y"]	name="A \" B" o={"k": [1, 2]} "#),
            [
                "a=1",
                r#"plan__in=["pro", "x y"]"#,
                r#"name="A \" B""#,
                r#"o={"k": [1, 2]}"#
            ]
        );
        assert!(split_checks("  ").is_empty());
    }

    #[test]
    fn conditions_are_built_from_key_value_pairs() {
        let c = condition_option(r#"is_admin=true plan__in=["pro", "enterprise"]"#).unwrap();
        assert_eq!(
            c,
            Condition::new()
                .eq("is_admin", true)
                .is_in("plan", vec!["pro", "enterprise"])
        );
        for (bad, why) in [
            ("age", "expected a check as KEY=JSON"),
            ("=1", "has no key"),
            ("age__IN=1", "invalid condition key \"age__IN\""),
            ("plan=pro", "invalid JSON value for \"plan\""),
            ("a=1 a=2", "given twice"),
        ] {
            let err = condition_option(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn stored_conditions_read_the_stored_form() {
        let stored = r#"[{"age": [{"variable": "age", "value": 18, "operator": "gte"}]}]"#;
        assert_eq!(
            stored_conditions(stored).unwrap(),
            [Condition::new().gte("age", 18)]
        );
        assert!(stored_conditions("[]").unwrap().is_empty());
        let err = stored_conditions(r#"[{"age": [{"variable": "age", "value": 1}]}]"#)
            .unwrap_err()
            .to_string();
        assert_eq!(err, r#"--json: conditions[0]: age[0]: missing "operator""#);
    }

    #[test]
    fn objects_are_required_where_objects_are_expected() {
        let err = json_object("--context", "[1]").unwrap_err().to_string();
        assert_eq!(err, "--context: expected a JSON object, found a JSON array");
    }
}
