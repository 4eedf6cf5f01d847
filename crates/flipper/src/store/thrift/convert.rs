//! Flags to and from the service's structs, for the client and the server alike.
//!
//! Outgoing, as flipper-client's `_convert_meta_to_tmeta`: `client_data` and `bucketer` as
//! Python's `json.dumps` text, each condition a map from variable to its checks (equality
//! with an unset symbol), every field set. Incoming, as `_convert_tmeta_to_meta` reads them
//! (values with `json.loads`, each check's key rebuilt from its variable and symbol and parsed
//! again), except that the checks of one map stay **one** condition (flipper-client makes a
//! condition of every check), and that what a stored flag would not keep is normalised as
//! reading it back from storage would (an empty `client_data` is `{}`).

use std::collections::BTreeMap;

use flipper_core::bucketing::Bucketer;
use flipper_core::condition::{Condition, Operator, make_check_key};
use flipper_core::{Item, ItemError, Meta, Object, Value, json};

use super::generated as t;

/// A flag as the service carries it. `is_enabled` is a bool there: a stored value other than
/// a bool is sent as whether it switches the flag on (anything but `false`); a `created_date`
/// that is not a 64-bit integer is left unset. [`representable`] tells the client's writes
/// apart.
pub(super) fn item_to_thrift(item: &Item) -> t::FeatureFlagStoreItem {
    t::FeatureFlagStoreItem {
        feature_name: Some(item.feature_name.clone()),
        is_enabled: Some(item.switched_on()),
        meta: Some(Box::new(meta_to_thrift(&item.meta))),
    }
}

/// Metadata as the service carries it (see [`item_to_thrift`]).
pub(super) fn meta_to_thrift(meta: &Meta) -> t::FeatureFlagStoreMeta {
    t::FeatureFlagStoreMeta {
        created_date: meta.created_date.as_i64(),
        client_data: Some(json::to_string(&meta.client_data)),
        conditions: Some(meta.conditions.iter().map(condition_to_thrift).collect()),
        bucketer: Some(json::to_string(&meta.bucketer.to_value())),
    }
}

fn condition_to_thrift(condition: &Condition) -> t::Condition {
    let mut map: t::Condition = BTreeMap::new();
    for check in condition.checks() {
        map.entry(check.variable.clone())
            .or_default()
            .push(Box::new(t::ConditionCheck {
                value: Some(json::to_string(&check.value)),
                operator: Some(Box::new(t::ConditionOperator {
                    symbol: check.operator.symbol().map(str::to_owned),
                })),
                variable: Some(check.variable),
            }));
    }
    map
}

/// Why the service cannot carry `item` as it is, if it cannot: its `is_enabled` must be a
/// bool and its `created_date` a 64-bit integer.
pub(super) fn representable(item: &Item) -> Result<(), String> {
    if !matches!(item.is_enabled, Value::Bool(_)) {
        return Err(format!(
            "the Thrift service carries is_enabled as a bool, not {}",
            json::to_string(&item.is_enabled)
        ));
    }
    if item.meta.created_date.as_i64().is_none() {
        return Err(format!(
            "the Thrift service carries created_date as a 64-bit integer, not {}",
            json::to_string(&item.meta.created_date)
        ));
    }
    Ok(())
}

/// The flag a peer sent.
///
/// # Errors
/// [`ItemError::Format`] naming the field that is missing or unreadable.
pub(super) fn item_from_thrift(item: t::FeatureFlagStoreItem) -> Result<Item, ItemError> {
    let feature_name = item
        .feature_name
        .ok_or_else(|| format("feature_name", "is missing"))?;
    let meta = item.meta.ok_or_else(|| format("meta", "is missing"))?;
    Ok(Item {
        feature_name,
        // flipper-client keeps `None`, which is not `False`: the flag is on.
        is_enabled: item.is_enabled.map_or(Value::Null, Value::Bool),
        meta: meta_from_thrift(*meta)?,
    })
}

/// The metadata a peer sent.
///
/// # Errors
/// [`ItemError::Format`] naming the field (`meta.conditions[0].age[1].operator`).
pub(super) fn meta_from_thrift(meta: t::FeatureFlagStoreMeta) -> Result<Meta, ItemError> {
    let client_data = match meta.client_data {
        None => Value::from(Object::new()),
        Some(text) => match parse("meta.client_data", &text)? {
            v if v.is_truthy() => v,
            _ => Value::from(Object::new()),
        },
    };
    let conditions = meta
        .conditions
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| condition_from_thrift(&format!("meta.conditions[{i}]"), c))
        .collect::<Result<_, _>>()?;
    let bucketer = match meta.bucketer {
        None => Bucketer::NoOp,
        Some(text) => match parse("meta.bucketer", &text)? {
            Value::Null => Bucketer::NoOp,
            v => Bucketer::from_value(&v).map_err(|e| format("meta.bucketer", &e))?,
        },
    };
    Ok(Meta {
        client_data,
        created_date: meta.created_date.map_or(Value::Null, Value::from),
        conditions,
        bucketer,
    })
}

fn condition_from_thrift(path: &str, map: t::Condition) -> Result<Condition, ItemError> {
    let mut condition = Condition::new();
    for (key, checks) in map {
        for (j, check) in checks.into_iter().enumerate() {
            let at = format!("{path}.{key}[{j}]");
            let variable = check
                .variable
                .ok_or_else(|| format(&at, "the check has no variable"))?;
            let value = check
                .value
                .ok_or_else(|| format(&at, "the check has no value"))?;
            let value = parse(&format!("{at}.value"), &value)?;
            let symbol = check
                .operator
                .ok_or_else(|| format(&at, "the check has no operator"))?
                .symbol;
            let operator = Operator::from_symbol(symbol.as_deref())
                .map_err(|e| format(&format!("{at}.operator"), &e.to_string()))?;
            // flipper-client rebuilds the check's key and parses it again.
            condition = condition
                .check(&make_check_key(&variable, operator), value)
                .map_err(|e| format(&at, &e.to_string()))?;
        }
    }
    Ok(condition)
}

fn parse(path: &str, text: &str) -> Result<Value, ItemError> {
    json::parse(text).map_err(|e| format(path, &format!("invalid JSON: {e}")))
}

fn format(path: &str, message: &str) -> ItemError {
    ItemError::Format {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

/// `item` as it comes back from the service: what a write through it stores.
pub(super) fn normalized(item: &Item) -> Result<Item, ItemError> {
    item_from_thrift(item_to_thrift(item))
}

#[cfg(test)]
mod tests {
    use flipper_core::bucketing::Percentage;

    use super::*;

    fn rich() -> Item {
        let mut item = Item::new("f", true, 1_700_000_000);
        item.meta.client_data = [
            ("big", Value::Int(flipper_core::Int::from(u128::MAX))),
            ("nan", Value::Float(f64::NAN)),
        ]
        .into_iter()
        .collect();
        item.meta.conditions = vec![
            Condition::new()
                .eq("is_admin", true)
                .is_in("plan", vec!["pro", "enterprise"]),
            Condition::new().gte("age", 18).lt("age", 65),
        ];
        item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
        item
    }

    #[test]
    fn flags_round_trip_with_their_grouping() {
        let item = rich();
        assert_eq!(normalized(&item).unwrap().serialize(), item.serialize());
        // As flipper-client sends it: equality with an unset symbol.
        let meta = meta_to_thrift(&item.meta);
        let first = &meta.conditions.as_ref().unwrap()[0]["is_admin"][0];
        assert_eq!(first.operator.as_ref().unwrap().symbol, None);
        assert_eq!(first.value.as_deref(), Some("true"));
        assert_eq!(
            meta.bucketer.as_deref(),
            Some(
                r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}"#
            )
        );
    }

    #[test]
    fn variables_come_back_in_name_order_and_checks_in_theirs() {
        let mut item = Item::new("f", true, 1);
        item.meta.conditions = vec![Condition::new().lt("z", 9).gt("z", 1).eq("a", 1)];
        let back = normalized(&item).unwrap();
        let checks: Vec<String> = back.meta.conditions[0]
            .checks()
            .map(|c| format!("{} {}", c.variable, c.operator))
            .collect();
        assert_eq!(checks, ["a eq", "z lt", "z gt"]);
    }

    #[test]
    fn what_the_service_cannot_carry_is_told() {
        let mut item = Item::new("f", true, 1);
        assert!(representable(&item).is_ok());
        item.is_enabled = Value::from(1);
        assert!(representable(&item).unwrap_err().contains("is_enabled"));
        // Read as what it does: on.
        assert_eq!(item_to_thrift(&item).is_enabled, Some(true));
        let mut item = Item::new("f", false, 1);
        item.meta.created_date = Value::from(1.5);
        assert!(representable(&item).unwrap_err().contains("created_date"));
        assert_eq!(meta_to_thrift(&item.meta).created_date, None);
    }

    /// Every field unset (the generated `Default` sets them).
    fn bare_meta() -> t::FeatureFlagStoreMeta {
        t::FeatureFlagStoreMeta {
            created_date: None,
            client_data: None,
            conditions: None,
            bucketer: None,
        }
    }

    #[test]
    fn bad_input_names_the_field() {
        let check = |variable: Option<&str>, value: Option<&str>, symbol: Option<&str>| {
            let mut map = t::Condition::new();
            map.insert(
                "v".into(),
                vec![Box::new(t::ConditionCheck {
                    variable: variable.map(str::to_owned),
                    value: value.map(str::to_owned),
                    operator: Some(Box::new(t::ConditionOperator {
                        symbol: symbol.map(str::to_owned),
                    })),
                })],
            );
            let meta = t::FeatureFlagStoreMeta {
                conditions: Some(vec![map]),
                ..bare_meta()
            };
            meta_from_thrift(meta)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(check(Some("v"), Some("1"), Some("gt")).is_ok());
        for (got, want) in [
            (check(None, Some("1"), None), "no variable"),
            (check(Some("v"), None, None), "no value"),
            (
                check(Some("v"), Some("{"), None),
                "meta.conditions[0].v[0].value: invalid JSON",
            ),
            (check(Some("v"), Some("1"), Some("GT")), "operator"),
            // `x___gt` splits into `x` and `_gt`: flipper-client could not read it back either.
            (
                check(Some("x_"), Some("1"), Some("gt")),
                "meta.conditions[0].v[0]",
            ),
        ] {
            let err = got.unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let meta = t::FeatureFlagStoreMeta {
            bucketer: Some(r#"{"type": "Nope"}"#.into()),
            ..bare_meta()
        };
        let err = meta_from_thrift(meta).unwrap_err().to_string();
        assert!(err.starts_with("meta.bucketer: "), "{err}");
        let err = item_from_thrift(t::FeatureFlagStoreItem {
            feature_name: None,
            is_enabled: None,
            meta: None,
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "feature_name: is missing");
        // Python's json.loads("") fails too.
        let meta = t::FeatureFlagStoreMeta {
            client_data: Some(String::new()),
            ..bare_meta()
        };
        let err = meta_from_thrift(meta).unwrap_err().to_string();
        assert!(err.starts_with("meta.client_data: invalid JSON"), "{err}");
    }

    #[test]
    fn missing_fields_read_as_flipper_client_reads_them() {
        let item = item_from_thrift(t::FeatureFlagStoreItem {
            feature_name: Some("f".into()),
            is_enabled: None,
            meta: Some(Box::new(bare_meta())),
        })
        .unwrap();
        assert!(item.switched_on(), "None is not False");
        assert_eq!(
            item.to_json(),
            r#"{"feature_name": "f", "is_enabled": null, "meta": {"client_data": {}, "created_date": null, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#
        );
    }
}
