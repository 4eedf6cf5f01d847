//! The stored form exactly as `json.dumps` writes it, read and written without building a
//! [`Value`] document: the fast path under [`Item::deserialize`], [`Item::serialize`] and the
//! export file.
//!
//! Reading accepts only that form (the keys in flipper-client's order, `": "` and `", "`
//! between them, no other whitespace); each field's value is read by the general parser, and
//! the fields go through the same [`Meta`] reading as the general path, so whenever the fast
//! reader answers, its answer is the general path's. Anything else, including every error,
//! returns `None` and the caller takes the general path, which words the error.

use super::{Item, Meta};
use crate::Value;
use crate::bucketing::Bucketer;
use crate::json::{self, Output};

/// The stored form of the default bucketer.
const NOOP_BUCKETER: &str = r#"{"type": "NoOpBucketer"}"#;

impl Item {
    /// Reads one flag in its canonical stored form (what `json.dumps` and
    /// [`Item::serialize`] write) at the start of `text`, and the byte offset just past it;
    /// `None` for any other text, valid or not (read it with [`json::parse`] and
    /// [`Item::from_value`] then, which also names what is wrong).
    ///
    /// ```
    /// use flipper_core::Item;
    /// let item = Item::new("beta", true, 1_700_000_000);
    /// let text = format!("{},\n", item.to_json());
    /// assert_eq!(Item::read_canonical(&text), Some((item, text.len() - 2)));
    /// // Valid, but not as json.dumps writes it: the general reader's business.
    /// assert_eq!(Item::read_canonical(r#"{"is_enabled": true, "feature_name": "x", "meta": {"created_date": 1}}"#), None);
    /// ```
    pub fn read_canonical(text: &str) -> Option<(Self, usize)> {
        let mut c = Cursor { text, pos: 0 };
        c.literal(r#"{"feature_name": "#)?;
        let Value::Str(feature_name) = c.value()? else {
            return None;
        };
        c.literal(r#", "is_enabled": "#)?;
        let is_enabled = c.value()?;
        c.literal(r#", "meta": {"client_data": "#)?;
        let client_data = c.value()?;
        c.literal(r#", "created_date": "#)?;
        let created_date = c.value()?;
        c.literal(r#", "conditions": "#)?;
        let conditions = c.value()?;
        c.literal(r#", "bucketer": "#)?;
        // The usual bucketer, without building its object (a missing bucketer reads as NoOp).
        let bucketer = match c.literal(NOOP_BUCKETER) {
            Some(()) => None,
            None => Some(c.value()?),
        };
        c.literal("}}")?;
        let meta = Meta::from_fields(
            Some(client_data),
            Some(created_date),
            Some(&conditions),
            bucketer.as_ref(),
        )
        .ok()?;
        let item = Self {
            feature_name,
            is_enabled,
            meta,
        };
        Some((item, c.pos))
    }

    /// Writes [`Item::serialize`]'s bytes to `out`: `json.dumps(item.to_dict())`.
    pub fn write_json<O: Output + ?Sized>(&self, out: &mut O) {
        out.push_str(r#"{"feature_name": "#);
        json::write_str(&self.feature_name, out);
        out.push_str(r#", "is_enabled": "#);
        json::write_value(&self.is_enabled, out);
        let meta = &self.meta;
        out.push_str(r#", "meta": {"client_data": "#);
        json::write_value(&meta.client_data, out);
        out.push_str(r#", "created_date": "#);
        json::write_value(&meta.created_date, out);
        out.push_str(r#", "conditions": ["#);
        for (i, condition) in meta.conditions.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json::write_value(&condition.to_value(), out);
        }
        out.push_str(r#"], "bucketer": "#);
        match meta.bucketer {
            Bucketer::NoOp => out.push_str(NOOP_BUCKETER),
            ref other => json::write_value(&other.to_value(), out),
        }
        out.push_str("}}");
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn literal(&mut self, expected: &str) -> Option<()> {
        let rest = self.text.get(self.pos..)?;
        rest.starts_with(expected)
            .then(|| self.pos += expected.len())
    }

    /// One JSON value, read by the general parser.
    #[inline]
    fn value(&mut self) -> Option<Value> {
        let rest = self.text.get(self.pos..)?;
        let (value, end) = json::parse_prefix(rest).ok()?;
        self.pos += end;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Object;
    use crate::bucketing::Percentage;
    use crate::condition::Condition;

    fn general(text: &str) -> Item {
        Item::from_value(&json::parse(text).unwrap()).unwrap()
    }

    fn rich() -> Item {
        let mut item = Item::new("rich \u{e9}\u{1f600}", true, 1_700_000_000);
        item.meta.client_data = [("owner", Value::from("x")), ("n", Value::Float(f64::NAN))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Object>()
            .into();
        item.meta.conditions = vec![
            Condition::new()
                .eq("is_admin", true)
                .is_in("plan", vec!["a", "b"]),
            Condition::new().gte("age", 18),
        ];
        item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
        item
    }

    #[test]
    fn writes_what_the_general_writer_writes() {
        for item in [Item::new("plain", false, 1), rich()] {
            assert_eq!(item.to_json(), json::to_string(&item.to_value()));
        }
    }

    #[test]
    fn reads_its_own_output_as_the_general_reader_does() {
        for item in [Item::new("plain", false, 1), rich()] {
            let text = item.to_json();
            let (fast, end) = Item::read_canonical(&text).expect("canonical");
            assert_eq!(end, text.len());
            assert_eq!(fast, general(&text));
            assert_eq!(fast, item);
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_reader() {
        for text in [
            // Other key order, other spacing, missing and extra fields, duplicates.
            r#"{"is_enabled": true, "feature_name": "x", "meta": {"created_date": 1}}"#,
            r#"{"feature_name":"x","is_enabled":true,"meta":{"client_data":{},"created_date":1,"conditions":[],"bucketer":{"type":"NoOpBucketer"}}}"#,
            r#"{"feature_name": "x", "is_enabled": true, "meta": {"created_date": 1}}"#,
            r#"{"feature_name": "x", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "NoOpBucketer"}, "x": 1}}"#,
            r#"{"feature_name": "x", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}, "feature_name": "y"}"#,
            // Not a flag, or not JSON.
            r#"{"feature_name": 1, "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#,
            r#"{"feature_name": "x", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": {}, "bucketer": {"type": "NoOpBucketer"}}}"#,
            r#"{"feature_name": "x", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "Nope"}}}"#,
            r#"{"feature_name": "x", "is_enabled": tru, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#,
            r#"{"feature_name": "\ud800", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#,
            "\u{feff}{}",
            "",
        ] {
            assert_eq!(Item::read_canonical(text), None, "{text}");
        }
    }

    #[test]
    fn deserialize_agrees_with_the_general_reader_on_near_canonical_text() {
        let text = rich().to_json();
        for variant in [
            format!("{text}  \n"),
            format!(" {text}"),
            format!("{text} x"),
            text.replace(r#""conditions": "#, r#""conditions":"#),
            text.replace("true", "1"),
            text.replace(r#"{"type": "NoOpBucketer"}"#, "null"),
        ] {
            let general = json::parse(&variant)
                .map_err(crate::ItemError::Json)
                .and_then(|v| Item::from_value(&v));
            assert_eq!(Item::deserialize(variant.as_bytes()), general, "{variant}");
        }
    }
}
