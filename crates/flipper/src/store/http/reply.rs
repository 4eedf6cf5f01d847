//! The server's answers: failures mapped to [`Error`], the `ETag` as a [`Version`], and the
//! listing's body. The only place the HTTP store decides what a status means.

use flipper_core::{Item, ItemError, Value, json};
use reqwest::Response;
use reqwest::header::ETAG;

use super::super::{CorruptEntry, ListEntry, Version, Versioned};
use crate::error::{BoxError, Error, Result};

/// A failed request: the status and the server's error body (`{"error": {"code", "message"}}`).
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) status: u16,
    pub(super) code: String,
    message: String,
}

impl Failure {
    /// Reads the failure from the response's body (whatever it holds).
    pub(super) async fn read(response: Response) -> Self {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let error = json::parse(&text).ok().and_then(|v| match v {
            Value::Object(mut o) => o.shift_remove("error"),
            _ => None,
        });
        let field = |name: &str| {
            error
                .as_ref()
                .and_then(Value::as_object)
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let code = field("code").unwrap_or_default();
        let message = field("message").unwrap_or_else(|| {
            let text = text.trim();
            if text.is_empty() {
                "no explanation given".to_owned()
            } else {
                text.chars().take(200).collect()
            }
        });
        Self {
            status,
            code,
            message,
        }
    }

    /// The library's error for this failure of an operation on `name` (if it names a flag).
    pub(super) fn into_error(self, store: &str, name: Option<&str>) -> Error {
        let named = |name: Option<&str>| name.unwrap_or_default().to_owned();
        match (self.status, self.code.as_str()) {
            (401 | 403, _) => Error::Unauthorized {
                store: store.to_owned(),
                status: self.status,
                message: self.message,
            },
            (404, "flag_not_found") => Error::FlagDoesNotExist { name: named(name) },
            (409 | 412, "already_exists") => Error::AlreadyExists { name: named(name) },
            (409 | 412, "conflict") => Error::Conflict { name: named(name) },
            (400 | 413, _) if name.is_some() => Error::InvalidFlag {
                name: named(name),
                message: format!("the server refused it: {}", self.message),
            },
            (500, "corrupt_flag") => Error::Corrupt {
                store: store.to_owned(),
                name: named(name),
                source: ItemError::Format {
                    path: String::new(),
                    message: self.message,
                },
            },
            (501, "unsupported") => Error::Unsupported {
                store: store.to_owned(),
                operation: "a conditional write",
            },
            _ => backend(
                store,
                format!(
                    "HTTP {} {}: {}",
                    self.status,
                    if self.code.is_empty() {
                        "-"
                    } else {
                        &self.code
                    },
                    self.message
                ),
            ),
        }
    }
}

/// [`Error::Backend`] for this store.
pub(super) fn backend(store: &str, source: impl Into<BoxError>) -> Error {
    Error::Backend {
        store: store.to_owned(),
        source: source.into(),
    }
}

/// The version in a response's `ETag`.
pub(super) fn etag(store: &str, response: &Response) -> Result<Version> {
    let tag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim_start_matches("W/").trim_matches('"'))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| backend(store, "the server sent no ETag (is it a flipper server?)"))?;
    Ok(Version::from_token(tag))
}

/// The entries of a `GET /api/v1/flags` body: `flags` with their `versions` in order, then
/// the `unreadable` ones.
pub(super) fn listing(store: &str, body: &[u8]) -> Result<Vec<ListEntry>> {
    let bad = |what: &str| backend(store, format!("unexpected listing from the server: {what}"));
    let body = json::parse_bytes(body).map_err(|e| bad(&e.to_string()))?;
    let body = body.as_object().ok_or_else(|| bad("not an object"))?;
    let list = |key: &str| match body.get(key) {
        Some(Value::List(items)) => Ok(items.as_slice()),
        None if key == "unreadable" => Ok(&[][..]),
        _ => Err(bad(&format!(
            "no {key:?} list (a server too old for the HTTP store?)"
        ))),
    };
    let (flags, versions) = (list("flags")?, list("versions")?);
    if flags.len() != versions.len() {
        return Err(bad("as many versions as flags expected"));
    }
    let mut entries = Vec::with_capacity(flags.len());
    for (flag, version) in flags.iter().zip(versions) {
        let version = version
            .as_str()
            .ok_or_else(|| bad("a version is not a string"))?;
        entries.push(match Item::from_value(flag) {
            Ok(item) => Ok(Versioned {
                item,
                version: Version::from_token(version),
            }),
            Err(error) => Err(CorruptEntry {
                key: flag
                    .as_object()
                    .and_then(|o| o.get("feature_name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                error,
            }),
        });
    }
    for entry in list("unreadable")? {
        let field = |name| {
            entry
                .as_object()
                .and_then(|o| o.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        entries.push(Err(CorruptEntry {
            key: field("name"),
            error: ItemError::Format {
                path: String::new(),
                message: field("error"),
            },
        }));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> Failure {
        Failure {
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        let err = |status, code, name| failure(status, code).into_error("http://s", name);
        assert!(matches!(
            err(401, "unauthorized", None),
            Error::Unauthorized { status: 401, .. }
        ));
        assert!(matches!(
            err(403, "forbidden", Some("f")),
            Error::Unauthorized { status: 403, .. }
        ));
        assert!(matches!(
            err(412, "conflict", Some("f")),
            Error::Conflict { .. }
        ));
        assert!(matches!(
            err(412, "already_exists", Some("f")),
            Error::AlreadyExists { .. }
        ));
        assert!(matches!(
            err(400, "invalid_name", Some("f")),
            Error::InvalidFlag { .. }
        ));
        assert!(matches!(
            err(500, "corrupt_flag", Some("f")),
            Error::Corrupt { .. }
        ));
        let down = err(503, "store_unavailable", Some("f"));
        assert!(down.is_retryable(), "{down}");
        assert!(down.to_string().contains("HTTP 503 store_unavailable: m"));
        assert!(!err(401, "unauthorized", None).is_retryable());
    }

    #[test]
    fn listings_keep_versions_and_report_unreadable_flags() {
        let body = format!(
            r#"{{"flags": [{}, {{"feature_name": "bad"}}], "versions": ["3", "4"], "unreadable": [{{"name": "worse", "error": "invalid JSON"}}]}}"#,
            Item::new("a", true, 1).to_json()
        );
        let entries = listing("s", body.as_bytes()).unwrap();
        assert_eq!(entries.len(), 3);
        let first = entries[0].as_ref().unwrap();
        assert_eq!(
            (first.item.feature_name.as_str(), first.version.to_string()),
            ("a", "3".into())
        );
        assert_eq!(entries[1].as_ref().unwrap_err().key, "bad");
        assert_eq!(entries[2].as_ref().unwrap_err().key, "worse");
        assert!(listing("s", br#"{"flags": []}"#).is_err());
    }
}
