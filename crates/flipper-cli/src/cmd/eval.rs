//! `flipper eval`: whether flags are on for a context, and why.

use flipper::store::StoreExt;
use flipper::{Checks, Evaluation, FeatureFlagClient, Object, SystemEnv, Value};
use flipper_core::json;

use crate::cli::EvalArgs;
use crate::error::CliError;
use crate::input;

/// Evaluates the named flags (every flag when none is named) and renders the answers.
pub(crate) async fn run(client: &FeatureFlagClient, args: EvalArgs) -> Result<String, CliError> {
    // The object keeps the context's key order, which is the order the checks run in.
    let checks = Checks::from(input::json_object("--context", &args.context)?);
    let mut results: Vec<(String, Evaluation)> = Vec::new();
    if args.names.is_empty() {
        for item in client.store().items(None, 0).await? {
            let evaluation = item.evaluate(&checks, &SystemEnv);
            results.push((item.feature_name, evaluation));
        }
    } else {
        for name in args.names {
            if results.iter().any(|(seen, _)| *seen == name) {
                continue;
            }
            let evaluation = client.evaluate(&name, &checks, args.default).await?;
            results.push((name, evaluation));
        }
    }
    Ok(if args.json {
        render_json(&results)
    } else {
        render_plain(&results)
    })
}

/// `NAME<TAB>true` lines.
fn render_plain(results: &[(String, Evaluation)]) -> String {
    results
        .iter()
        .map(|(name, e)| format!("{name}\t{}\n", e.enabled))
        .collect()
}

/// `{"NAME": {"enabled": BOOL, "reason": CODE[, "error": MESSAGE]}, ...}` on one line.
fn render_json(results: &[(String, Evaluation)]) -> String {
    let mut out = Object::with_capacity(results.len());
    for (name, e) in results {
        let mut entry = Object::with_capacity(3);
        entry.insert("enabled".into(), Value::Bool(e.enabled));
        entry.insert("reason".into(), Value::from(e.reason.code()));
        if let Some(error) = e.error_detail() {
            entry.insert("error".into(), Value::from(error.to_string()));
        }
        out.insert(name.clone(), Value::from(entry));
    }
    let mut text = json::to_string(&Value::from(out));
    text.push('\n');
    text
}
