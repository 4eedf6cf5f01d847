//! The export format: a JSON array of flags, each in flipper-client's stored form.
//!
//! `flipper flags export` writes it, `flipper flags import` and the JSON-file store
//! (`json:PATH`) read it. One flag per line, in name order:
//!
//! ```text
//! [
//! {"feature_name": "a", "is_enabled": true, "meta": {...}},
//! {"feature_name": "b", "is_enabled": false, "meta": {...}}
//! ]
//! ```
//!
//! Any JSON array of stored flags is accepted on input (Python's `json.loads` rules), and a
//! mistake is reported with the line it is on.

use std::collections::BTreeMap;

use flipper_core::{Item, Value, json};

/// Renders flags in the export format (sorted by name, one per line, trailing newline).
pub fn render<'a>(items: impl IntoIterator<Item = &'a Item>) -> String {
    let mut sorted: Vec<&Item> = items.into_iter().collect();
    sorted.sort_by(|a, b| a.feature_name.cmp(&b.feature_name));
    if sorted.is_empty() {
        return "[]\n".to_owned();
    }
    let mut out = String::from("[\n");
    for (i, item) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&item.to_json());
    }
    out.push_str("\n]\n");
    out
}

/// Parses the export format into flags keyed by name.
///
/// # Errors
/// A one-line message naming the line (and column for syntax errors) and the problem:
/// invalid JSON, not an array, an entry that is not a flag, or a name that appears twice.
pub fn parse(text: &str) -> Result<BTreeMap<String, Item>, String> {
    match parse_canonical(text) {
        Some(items) => Ok(items),
        None => parse_general(text),
    }
}

/// [`parse`] for any text: the document first, then each flag.
fn parse_general(text: &str) -> Result<BTreeMap<String, Item>, String> {
    let doc = json::parse(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::List(entries) = doc else {
        return Err(format!(
            "expected a JSON array of flags, found a JSON {}",
            doc.json_kind()
        ));
    };
    // Line numbers are only needed for an error message: found on demand.
    let line_of = |i: usize| element_lines(text).get(i).copied().unwrap_or(1);
    let mut items: BTreeMap<String, (Item, usize)> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let item = Item::from_value(entry)
            .map_err(|e| format!("line {}: flag #{}: {e}", line_of(i), i + 1))?;
        item.validate()
            .map_err(|e| format!("line {}: flag #{}: {e}", line_of(i), i + 1))?;
        if let Some((_, first)) = items.get(&item.feature_name) {
            return Err(format!(
                "line {}: flag {:?} appears twice (first on line {})",
                line_of(i),
                item.feature_name,
                line_of(*first)
            ));
        }
        items.insert(item.feature_name.clone(), (item, i));
    }
    Ok(items.into_iter().map(|(k, (item, _))| (k, item)).collect())
}

/// [`parse`] for a file whose flags are all in their canonical stored form (what [`render`]
/// writes): each flag read by [`Item::read_canonical`], without building the document. `None`
/// for anything else, including every error, which the general path then words.
fn parse_canonical(text: &str) -> Option<BTreeMap<String, Item>> {
    let ws = |s: &str| s.len() - json::trim_start(s).len();
    let mut pos = ws(text);
    if !text[pos..].starts_with('[') {
        return None;
    }
    pos += 1 + ws(&text[pos + 1..]);
    let mut items = BTreeMap::new();
    if text[pos..].starts_with(']') {
        return json::is_whitespace(&text[pos + 1..]).then_some(items);
    }
    loop {
        let (item, len) = Item::read_canonical(&text[pos..])?;
        if item.validate().is_err() || items.contains_key(&item.feature_name) {
            return None;
        }
        items.insert(item.feature_name.clone(), item);
        pos += len;
        pos += ws(&text[pos..]);
        match text.as_bytes().get(pos)? {
            b',' => {
                pos += 1;
                pos += ws(&text[pos..]);
            }
            b']' => return json::is_whitespace(&text[pos + 1..]).then_some(items),
            _ => return None,
        }
    }
}

/// The 1-based line on which each element of the top-level array starts. Only called on text
/// that parsed as an array, so every step succeeds; a surprise ends the list early.
fn element_lines(text: &str) -> Vec<usize> {
    let (mut lines, mut line, mut counted) = (Vec::new(), 1, 0);
    let mut line_at = |offset: usize| {
        line += text[counted..offset]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        counted = offset;
        line
    };
    // Past the opening bracket, then one element per step.
    let Some(mut pos) = text.find('[').map(|i| i + 1) else {
        return lines;
    };
    loop {
        let start = pos + (text.len() - pos - json::trim_start(&text[pos..]).len());
        if text[start..].starts_with(']') {
            return lines;
        }
        let Ok((_, len)) = json::parse_prefix(&text[start..]) else {
            return lines;
        };
        lines.push(line_at(start));
        let rest = json::trim_start(&text[start + len..]);
        match rest.strip_prefix(',') {
            Some(after) => pos = text.len() - after.len(),
            None => return lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let items = [Item::new("b", true, 2), Item::new("a", false, 1)];
        let text = render(&items);
        assert!(text.starts_with("[\n{\"feature_name\": \"a\""));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["b"], items[0]);
        assert_eq!(render([]), "[]\n");
        assert!(parse("[]").unwrap().is_empty());
    }

    #[test]
    fn the_canonical_path_agrees_with_the_general_one() {
        let mut rich = Item::new("rich", true, 3);
        rich.meta.conditions = vec![flipper_core::condition::Condition::new().gte("age", 18)];
        let (a, b) = (Item::new("a", true, 1).to_json(), rich.to_json());
        let canonical = [
            render([&Item::new("b", true, 2), &Item::new("a", false, 1), &rich]),
            format!(" \r\n[ {a} ,\n\t{b} ] \n"),
            format!("[{a}]"),
            "[]".to_owned(),
            " [ ] ".to_owned(),
        ];
        assert!(canonical.iter().all(|text| parse_canonical(text).is_some()));
        // Not canonical, or not valid: the general path answers (and words the error).
        let other = [
            format!("[{a},]"),
            format!("[{a}] x"),
            format!("[{a}, {a}]"),
            format!("\u{feff}[{a}]"),
            format!("[{}]", a.replace(": ", ":")),
            format!(
                "[{}]",
                a.replace(r#""is_enabled": true"#, r#""is_enabled": tru"#)
            ),
            format!("{{{a}}}"),
            String::new(),
        ];
        assert!(other.iter().all(|text| parse_canonical(text).is_none()));
        for text in canonical.iter().chain(&other) {
            assert_eq!(parse(text), parse_general(text), "{text}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!(
            "[\n{},\n{{\"feature_name\": \"b\", \"is_enabled\": true, \"meta\": {{}}}}\n]",
            Item::new("a", true, 1).to_json()
        );
        assert_eq!(
            parse(&text).unwrap_err(),
            "line 3: flag #2: meta.created_date: is missing"
        );
        let dup = format!(
            "[{},\n {}]",
            Item::new("a", true, 1).to_json(),
            Item::new("a", true, 1).to_json()
        );
        assert_eq!(
            parse(&dup).unwrap_err(),
            "line 2: flag \"a\" appears twice (first on line 1)"
        );
        let err = parse("[\n{\"feature_name\": }\n]").unwrap_err();
        assert!(
            err.starts_with("invalid JSON: Expecting value: line 2"),
            "{err}"
        );
        assert_eq!(
            parse("{}").unwrap_err(),
            "expected a JSON array of flags, found a JSON object"
        );
    }
}
