//! Flag names in paths and query strings.
//!
//! A flag name is one path segment, percent-decoded: `/api/v1/flags/new%20dashboard` names
//! `new dashboard`, `/api/v1/flags/team%2Fcheckout` names `team/checkout` (a raw `/` ends the
//! segment, so a `/` in a name must be sent as `%2F`), and non-ASCII names are sent as their
//! UTF-8 bytes, percent-encoded.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The longest flag name `POST /api/v1/flags` accepts, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 1024;

/// The flag name of a route's `{name}` (or `{key}`) segment, percent-decoded.
#[derive(Debug, Clone)]
pub(crate) struct FlagName(pub(crate) String);

impl FromRequestParts<AppState> for FlagName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => Ok(Self(name)),
            Err(rejection) => Err(ApiError::bad(
                "invalid_name",
                "name",
                format!(
                    "the flag name in the path cannot be read: {}",
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// Percent-decodes one raw path segment into a flag name, as the router decodes `{name}`: a
/// `%` not followed by two hex digits stays as it is; the result must be UTF-8.
pub(crate) fn decode_segment(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    if !bytes.contains(&b'%') {
        return Ok(raw.to_owned());
    }
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(&high), Some(&low)) = (bytes[i], bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(high), Some(low)) = (hex(high), hex(low))
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::bad(
            "invalid_name",
            "name",
            "the flag name in the path cannot be read: it is not UTF-8 once percent-decoded",
        )
    })
}

/// Checks a name for a new flag: 1 to [`MAX_NAME_BYTES`] bytes, no control characters.
/// (Existing flags are reachable whatever their name.)
pub(crate) fn validate_name(name: &str) -> Result<(), ApiError> {
    let problem = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name.len() > MAX_NAME_BYTES {
        format!(
            "is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        )
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("must not contain control characters (found {c:?})")
    } else {
        return Ok(());
    };
    Err(ApiError::bad(
        "invalid_name",
        "name",
        format!("the flag name {problem}"),
    ))
}

/// Percent-encodes a flag name as one path segment (the library's rule, shared with the HTTP
/// store).
pub(crate) use flipper::store::encode_path_segment as encode_segment;

/// The `key=value` pairs of a query string, decoded (`+` is a space), each key one of
/// `allowed`.
pub(crate) fn query<'a>(
    raw: Option<&str>,
    allowed: &[&'a str],
) -> Result<Vec<(&'a str, String)>, ApiError> {
    let mut pairs = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key = decode(key).unwrap_or_default();
        let Some(known) = allowed.iter().find(|a| **a == key) else {
            return Err(ApiError::bad(
                "unknown_field",
                &key,
                format!(
                    "unknown query parameter {key:?} (expected {})",
                    allowed.join(", ")
                ),
            ));
        };
        let value = decode(value).ok_or_else(|| {
            ApiError::bad(
                "invalid_value",
                known,
                format!("{known}: not valid percent-encoded UTF-8"),
            )
        })?;
        pairs.push((*known, value));
    }
    Ok(pairs)
}

/// Decodes `%XX` escapes and `+`; `None` when the result is not UTF-8 or an escape is broken.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(decode("a%20b%2Fc+d").as_deref(), Some("a b/c d"));
        assert_eq!(decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(decode("%FF"), None);
        assert_eq!(decode("%4"), None);
    }

    #[test]
    fn segments_decode_as_the_router_decodes_them() {
        for (raw, decoded) in [
            ("plain", "plain"),
            ("a%20b%2Fc+d", "a b/c+d"),
            ("%C3%A9", "é"),
            ("%c3%a9", "é"),
            ("100%", "100%"),
            ("%4", "%4"),
            ("%zz%41", "%zzA"),
            ("%+1", "%+1"),
            ("%%41", "%A"),
        ] {
            assert_eq!(decode_segment(raw).unwrap(), decoded, "{raw}");
        }
        for raw in ["%FF", "%C3", "a%80b"] {
            assert_eq!(decode_segment(raw).unwrap_err().code(), "invalid_name");
        }
    }

    #[test]
    fn names_and_queries_are_checked() {
        assert!(validate_name("team/checkout é").is_ok());
        for bad in ["", "a\nb", &"x".repeat(MAX_NAME_BYTES + 1)] {
            assert_eq!(validate_name(bad).unwrap_err().code(), "invalid_name");
        }
        let q = query(Some("limit=5&offset=1"), &["limit", "offset"]).unwrap();
        assert_eq!(q, [("limit", "5".to_owned()), ("offset", "1".to_owned())]);
        let e = query(Some("limt=5"), &["limit"]).unwrap_err();
        assert_eq!((e.code(), e.field()), ("unknown_field", Some("limt")));
        assert!(query(None, &[]).unwrap().is_empty());
    }
}
