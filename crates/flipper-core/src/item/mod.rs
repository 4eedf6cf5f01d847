//! The stored flag: flipper-client's `FeatureFlagStoreItem` and `FeatureFlagStoreMeta`.
//!
//! Every flipper-client store persists [`Item::serialize`]'s bytes:
//!
//! ```text
//! {"feature_name": "plain", "is_enabled": false, "meta": {"client_data": {}, "created_date": 1795280475, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}
//! ```
//!
//! Reading accepts what flipper-client 1.3.2 reads (defaults for a missing `client_data`,
//! `conditions` or `bucketer`; any JSON value for `is_enabled`) and rejects, with a message
//! naming the field, what it would crash on.

use std::fmt;

use crate::bucketing::Bucketer;
use crate::condition::Condition;
use crate::json::{self, ParseError};
use crate::{Object, Value};

mod canonical;

/// A stored flag.
///
/// ```
/// use flipper_core::Item;
/// let item = Item::new("plain", false, 1795280475);
/// assert_eq!(
///     item.to_json(),
///     r#"{"feature_name": "plain", "is_enabled": false, "meta": {"client_data": {}, "created_date": 1795280475, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#
/// );
/// assert_eq!(Item::deserialize(item.to_json().as_bytes()).unwrap(), item);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The flag's name, as stored inside the document (what listings report).
    pub feature_name: String,
    /// The stored `is_enabled`, kept as written. Only a literal `false` disables a flag:
    /// flipper-client tests `is False`, so `0`, `null` or `"false"` count as enabled.
    pub is_enabled: Value,
    /// Everything else.
    pub meta: Meta,
}

/// A flag's metadata (`FeatureFlagStoreMeta`).
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Free-form data for the application, normally an object. Kept as stored.
    pub client_data: Value,
    /// When the flag was created, Unix seconds (an integer as flipper-client writes it; kept
    /// as stored).
    pub created_date: Value,
    /// The conditions; the flag passes when all pass.
    pub conditions: Vec<Condition>,
    /// The bucketer.
    pub bucketer: Bucketer,
}

impl Meta {
    /// Metadata for a new flag.
    pub fn new(created_date: i64) -> Self {
        Self {
            client_data: Value::from(Object::new()),
            created_date: Value::from(created_date),
            conditions: Vec::new(),
            bucketer: Bucketer::NoOp,
        }
    }

    /// `created_date` as Unix seconds, when it is an integer.
    pub fn created_date_secs(&self) -> Option<i64> {
        self.created_date.as_i64()
    }

    /// The stored form, keys in flipper-client's order.
    pub fn to_value(&self) -> Value {
        let mut o = Object::with_capacity(4);
        o.insert("client_data".into(), self.client_data.clone());
        o.insert("created_date".into(), self.created_date.clone());
        o.insert(
            "conditions".into(),
            Value::List(self.conditions.iter().map(Condition::to_value).collect()),
        );
        o.insert("bucketer".into(), self.bucketer.to_value());
        Value::from(o)
    }

    /// Reads the stored form as `FeatureFlagStoreMeta.from_dict`.
    ///
    /// # Errors
    /// [`ItemError::Format`] naming the field (paths are relative to `meta`).
    pub fn from_value(v: &Value) -> Result<Self, ItemError> {
        let o = v
            .as_object()
            .ok_or_else(|| ItemError::format("meta", "must be an object"))?;
        Self::from_fields(
            o.get("client_data").cloned(),
            o.get("created_date").cloned(),
            o.get("conditions"),
            o.get("bucketer"),
        )
    }

    /// [`Meta::from_value`] on the four fields of the stored form (each `None` when absent):
    /// the one reading of a meta, shared by the general and the canonical readers.
    fn from_fields(
        client_data: Option<Value>,
        created_date: Option<Value>,
        conditions: Option<&Value>,
        bucketer: Option<&Value>,
    ) -> Result<Self, ItemError> {
        let created_date =
            created_date.ok_or_else(|| ItemError::format("meta.created_date", "is missing"))?;
        // `fields.get("client_data", []) or {}`: anything falsy becomes an empty object.
        let client_data = match client_data {
            Some(v) if v.is_truthy() => v,
            _ => Value::from(Object::new()),
        };
        let conditions = match conditions {
            None => Vec::new(),
            Some(Value::List(list)) => list
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Condition::from_value(c).map_err(|e| {
                        let path = if e.path.is_empty() {
                            format!("meta.conditions[{i}]")
                        } else {
                            format!("meta.conditions[{i}].{}", e.path)
                        };
                        ItemError::format(&path, &e.message)
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ItemError::format("meta.conditions", "must be a list")),
        };
        let bucketer = match bucketer {
            None | Some(Value::Null) => Bucketer::NoOp,
            Some(b) => {
                Bucketer::from_value(b).map_err(|e| ItemError::format("meta.bucketer", &e))?
            }
        };
        Ok(Self {
            client_data,
            created_date,
            conditions,
            bucketer,
        })
    }
}

impl Item {
    /// A new flag with no conditions, client data or bucketer.
    pub fn new(feature_name: impl Into<String>, is_enabled: bool, created_date: i64) -> Self {
        Self {
            feature_name: feature_name.into(),
            is_enabled: Value::Bool(is_enabled),
            meta: Meta::new(created_date),
        }
    }

    /// Whether the flag is switched on: anything but a stored literal `false`.
    #[inline]
    pub fn switched_on(&self) -> bool {
        !matches!(self.is_enabled, Value::Bool(false))
    }

    /// The stored form, keys in flipper-client's order.
    pub fn to_value(&self) -> Value {
        let mut o = Object::with_capacity(3);
        o.insert("feature_name".into(), Value::Str(self.feature_name.clone()));
        o.insert("is_enabled".into(), self.is_enabled.clone());
        o.insert("meta".into(), self.meta.to_value());
        Value::from(o)
    }

    /// `item.serialize()`: the exact bytes flipper-client stores.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.write_json(&mut out);
        out
    }

    /// [`Item::serialize`] as a string (always ASCII).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        self.write_json(&mut out);
        out
    }

    /// Reads a parsed document as `FeatureFlagStoreItem.deserialize` does.
    ///
    /// # Errors
    /// [`ItemError::Format`] naming the missing or malformed field.
    pub fn from_value(v: &Value) -> Result<Self, ItemError> {
        let o = v
            .as_object()
            .ok_or_else(|| ItemError::format("", "a flag must be a JSON object"))?;
        let feature_name = match o.get("feature_name") {
            Some(Value::Str(s)) => s.clone(),
            Some(_) => return Err(ItemError::format("feature_name", "must be a string")),
            None => return Err(ItemError::format("feature_name", "is missing")),
        };
        let is_enabled = o
            .get("is_enabled")
            .cloned()
            .ok_or_else(|| ItemError::format("is_enabled", "is missing"))?;
        let meta = Meta::from_value(
            o.get("meta")
                .ok_or_else(|| ItemError::format("meta", "is missing"))?,
        )?;
        Ok(Self {
            feature_name,
            is_enabled,
            meta,
        })
    }

    /// `FeatureFlagStoreItem.deserialize(bytes)`.
    ///
    /// # Errors
    /// [`ItemError::Json`] for bytes that are not Python-readable JSON, [`ItemError::Format`]
    /// for a document that is not a flag.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, ItemError> {
        // Nearly every stored flag is in the form json.dumps wrote: read it without building
        // the document first. Anything else (and every error) takes the general path.
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Some((item, end)) = Self::read_canonical(text)
            && json::is_whitespace(&text[end..])
        {
            return Ok(item);
        }
        Self::from_value(&json::parse_bytes(bytes).map_err(ItemError::Json)?)
    }

    /// The first condition check that flipper-client could not read back as written
    /// (see [`crate::condition::Check::round_trips`]), as a message.
    pub fn validate(&self) -> Result<(), ItemError> {
        for (i, c) in self.meta.conditions.iter().enumerate() {
            if let Some(check) = c.first_unstorable_check() {
                return Err(ItemError::format(
                    &format!("meta.conditions[{i}].{}", check.variable),
                    &format!(
                        "variable {:?} with operator {} cannot be stored: its key {:?} would read back differently",
                        check.variable,
                        check.operator,
                        crate::condition::make_check_key(&check.variable, check.operator)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A stored flag that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemError {
    /// Not JSON as Python reads it.
    Json(ParseError),
    /// JSON, but not a flag: `path` names the field (`meta.bucketer`).
    Format {
        /// Dotted path of the field.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ItemError {
    fn format(path: &str, message: &str) -> Self {
        Self::Format {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid JSON: {e}"),
            Self::Format { path, message } if path.is_empty() => f.write_str(message),
            Self::Format { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for ItemError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            Self::Format { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucketing::Percentage;

    const DASHBOARD: &str = r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": 1795280475, "conditions": [{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}], "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]}, {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}], "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}}}"#;

    #[test]
    fn spec_examples_round_trip_byte_for_byte() {
        let ramp = r#"{"feature_name": "ramp", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1795280475, "conditions": [], "bucketer": {"type": "PercentageBucketer", "percentage": {"type": "LinearRampPercentage", "initial_value": 0.0, "final_value": 1.0, "ramp_duration": 3600, "initial_time": 1700000000}}}}"#;
        for doc in [DASHBOARD, ramp] {
            let item = Item::deserialize(doc.as_bytes()).unwrap();
            assert_eq!(item.to_json(), doc);
        }
    }

    #[test]
    fn built_item_matches_spec_bytes() {
        let mut item = Item::new("new_dashboard", true, 1795280475);
        item.meta.client_data = [("owner", "team-x")].into_iter().collect();
        item.meta.conditions = vec![
            Condition::new()
                .eq("is_admin", true)
                .is_in("plan", vec!["pro", "enterprise"]),
            Condition::new().gte("age", 18),
        ];
        item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
        assert_eq!(item.to_json(), DASHBOARD);
    }

    #[test]
    fn defaults_and_errors_follow_python() {
        let item = Item::deserialize(
            br#"{"feature_name": "x", "is_enabled": 0, "meta": {"created_date": 1, "client_data": []}}"#,
        )
        .unwrap();
        assert!(item.switched_on());
        assert_eq!(item.meta.client_data, Value::from(Object::new()));
        assert_eq!(item.meta.bucketer, Bucketer::NoOp);
        let err = Item::deserialize(br#"{"feature_name": "x", "is_enabled": true, "meta": {}}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "meta.created_date: is missing");
        let err = Item::deserialize(
            br#"{"feature_name": "x", "is_enabled": true, "meta": {"created_date": 1, "conditions": null}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "meta.conditions: must be a list");
        let err = Item::deserialize(b"{").unwrap_err();
        assert!(matches!(err, ItemError::Json(_)));
    }

    #[test]
    fn reparsed_condition_keys_collapse_like_python() {
        // A stored equality check on "x__gt" is re-parsed into variable x, operator gt.
        let item = Item::deserialize(
            br#"{"feature_name": "x", "is_enabled": true, "meta": {"created_date": 1, "conditions": [{"x__gt": [{"variable": "x__gt", "value": 1, "operator": null}]}]}}"#,
        )
        .unwrap();
        let checks: Vec<_> = item.meta.conditions[0].checks().collect();
        assert_eq!(checks[0].variable, "x");
        assert_eq!(checks[0].operator, crate::condition::Operator::Gt);
    }
}
