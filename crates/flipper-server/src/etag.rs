//! Entity tags: a store [`Version`] as an HTTP `ETag`, and the `If-Match` comparison.
//!
//! The tag is the version's text when it is a plain token (a counter: `"17"`), else the SHA-1
//! of that text in hex (a content digest is already hex; this only guards odd backend tokens).
//! The same text is the `version` of the change stream's `put` events, so a client can send
//! either back in `If-Match`.

use axum::http::HeaderValue;
use flipper::store::Version;

/// The tag's text, without quotes.
pub(crate) fn token(version: &Version) -> String {
    let text = version.to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if plain {
        return text;
    }
    use sha1::{Digest, Sha1};
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `ETag` header value: the token in quotes (a strong tag).
pub(crate) fn header(version: &Version) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("\"{}\"", token(version))).ok()
}

/// Whether an `If-Match` list (`"a", "b"`, or `*`) names `token`, by strong comparison (a weak
/// tag, `W/"a"`, never matches).
pub(crate) fn listed(if_match: &str, token: &str) -> bool {
    if_match.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .is_some_and(|t| t == token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_lists() {
        assert_eq!(token(&Version::from_seq(17)), "17");
        let odd = token(&Version::from_token("a b"));
        assert_eq!(odd.len(), 40);
        assert!(listed("\"17\"", "17"));
        assert!(listed("\"3\", \"17\"", "17"));
        assert!(listed("*", "17"));
        assert!(!listed("W/\"17\"", "17"));
        assert!(!listed("17", "17"));
        assert!(!listed("\"171\"", "17"));
    }
}
