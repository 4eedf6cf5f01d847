//! The payloads of the change trigger's notifications (format 1, see `sql.rs`).

use flipper_core::json;

/// One notification: which table, and what happened.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Notice {
    pub(super) schema: String,
    pub(super) table: String,
    pub(super) what: What,
}

/// What a notification reports.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum What {
    /// A row was written; with its bytes and version when they fit in the payload.
    Put {
        name: String,
        stored: Option<(Vec<u8>, String)>,
    },
    /// A row was deleted.
    Delete { name: String },
    /// Reload everything (a `TRUNCATE`, or a change too large to describe).
    Resync,
}

/// Reads a payload; `None` when it is not one of ours (no schema and table).
pub(super) fn parse(payload: &str) -> Option<Notice> {
    let value = json::parse(payload).ok()?;
    let object = value.as_object()?;
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let schema = text("schema")?;
    let table = text("table")?;
    let known = object.get("v").and_then(|v| v.as_i64()) == Some(1);
    let what = match (known, text("op").as_deref(), text("name")) {
        (true, Some("put"), Some(name)) => {
            let stored = match (text("item"), text("version")) {
                // Unreadable here: read the row instead.
                (Some(item), Some(version)) => base64_decode(&item).map(|bytes| (bytes, version)),
                _ => None,
            };
            What::Put { name, stored }
        }
        (true, Some("delete"), Some(name)) => What::Delete { name },
        // A resync, or a format this version does not know: reload.
        _ => What::Resync,
    };
    Some(Notice {
        schema,
        table,
        what,
    })
}

/// Standard base64 (with padding; whitespace ignored), as PostgreSQL's `encode(_, 'base64')`.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !symbols.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quads = symbols.chunks_exact(4);
    let last = quads.len().saturating_sub(1);
    for (i, quad) in quads.enumerate() {
        let padding = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - padding] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * u32::try_from(padding).ok()?;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("/+/+").unwrap(), [0xff, 0xef, 0xfe]);
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_parse() {
        let put = parse(
            r#"{"v": 1, "op": "put", "schema": "public", "table": "t", "seq": 1, "name": "a",
                "version": "ab", "item": "Zm9v"}"#,
        )
        .unwrap();
        assert_eq!(put.schema, "public");
        assert_eq!(
            put.what,
            What::Put {
                name: "a".into(),
                stored: Some((b"foo".to_vec(), "ab".into()))
            }
        );
        let big = parse(r#"{"v": 1, "op": "put", "schema": "s", "table": "t", "name": "a"}"#);
        assert_eq!(
            big.unwrap().what,
            What::Put {
                name: "a".into(),
                stored: None
            }
        );
        let delete = parse(r#"{"v": 1, "op": "delete", "schema": "s", "table": "t", "name": "a"}"#);
        assert_eq!(delete.unwrap().what, What::Delete { name: "a".into() });
        let future = parse(r#"{"v": 2, "op": "put", "schema": "s", "table": "t", "name": "a"}"#);
        assert_eq!(future.unwrap().what, What::Resync);
        assert_eq!(parse("not json"), None);
        assert_eq!(parse(r#"{"op": "put"}"#), None);
    }
}
