//! Opening a store from a URL: `memory:`, `json:PATH`.

use std::sync::Arc;

use super::{MemoryStore, Store};
use crate::error::{Error, Result};

/// The URL schemes this build can open, for error messages.
const SCHEMES: &str = "memory:, json:PATH";

/// Opens the store a URL names.
///
/// | URL | store |
/// |---|---|
/// | `memory:` | a new, empty [`MemoryStore`] |
/// | `json:PATH` | a [`super::JsonFileStore`] on `PATH` (relative to the working directory) |
///
/// ```
/// let store = flipper::store::open("memory:").unwrap();
/// assert_eq!(store.to_string(), "memory:");
/// assert!(flipper::store::open("nope://x").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidStoreUrl`] for an unknown scheme or a malformed URL.
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    let invalid = |reason: String| Error::InvalidStoreUrl {
        url: url.to_owned(),
        reason,
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(invalid(format!("no scheme; expected one of {SCHEMES}")));
    };
    match scheme {
        "memory" => {
            if !(rest.is_empty() || rest == "//") {
                return Err(invalid("memory: takes no path".into()));
            }
            Ok(Arc::new(MemoryStore::new()))
        }
        #[cfg(feature = "json-file")]
        "json" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "json: needs a file path, as in json:flags.json".into(),
                ));
            }
            Ok(Arc::new(super::JsonFileStore::new(path)))
        }
        other => Err(invalid(format!(
            "unknown scheme {other:?}; expected one of {SCHEMES}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_open_or_explain() {
        assert_eq!(open("memory:").unwrap().to_string(), "memory:");
        assert_eq!(open("json:a/b.json").unwrap().to_string(), "json:a/b.json");
        assert_eq!(
            open("json:///tmp/x.json").unwrap().to_string(),
            "json:/tmp/x.json"
        );
        for (bad, why) in [
            ("redis", "no scheme"),
            ("json:", "needs a file path"),
            ("ftp://x", "unknown scheme \"ftp\""),
            ("memory:x", "takes no path"),
        ] {
            let err = open(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
