//! Opening a store from a URL: `memory:`, `json:PATH`, `redb:PATH`.

use std::sync::Arc;

use super::{MemoryStore, Store};
use crate::error::{Error, Result};

/// The URL schemes this build can open, for error messages.
fn schemes() -> String {
    let mut schemes = vec!["memory:"];
    if cfg!(feature = "json-file") {
        schemes.push("json:PATH");
    }
    if cfg!(feature = "redb") {
        schemes.push("redb:PATH");
    }
    schemes.join(", ")
}

/// Opens the store a URL names.
///
/// | URL | store |
/// |---|---|
/// | `memory:` | a new, empty [`MemoryStore`] |
/// | `json:PATH` | a [`super::JsonFileStore`] on `PATH` (relative to the working directory) |
/// | `redb:PATH` | a [`super::RedbStore`] on the database file `PATH`, created if missing |
///
/// ```
/// let store = flipper::store::open("memory:").unwrap();
/// assert_eq!(store.to_string(), "memory:");
/// assert!(flipper::store::open("nope://x").is_err());
/// ```
///
/// `PATH` may follow `//` (`json:///tmp/flags.json`). The `json:` and `redb:` schemes exist
/// when their cargo features (`json-file`, `redb`; both default) are on.
///
/// # Errors
/// [`Error::InvalidStoreUrl`] for an unknown scheme or a malformed URL; for `redb:`, the errors
/// of [`super::RedbStore::open`] (the database is opened at once, and stays locked while the
/// store lives).
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    let invalid = |reason: String| Error::InvalidStoreUrl {
        url: url.to_owned(),
        reason,
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(invalid(format!("no scheme; expected one of {}", schemes())));
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
        #[cfg(feature = "redb")]
        "redb" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "redb: needs a database file path, as in redb:flipper.redb".into(),
                ));
            }
            Ok(Arc::new(super::RedbStore::open(path)?))
        }
        other => Err(invalid(format!(
            "unknown scheme {other:?}; expected one of {}",
            schemes()
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

    #[cfg(feature = "redb")]
    #[test]
    fn redb_urls_open_the_database_file() {
        for (bad, why) in [
            ("redb:", "needs a database file path"),
            ("redb://", "needs a database file path"),
            ("ftp://x", ", redb:PATH"),
        ] {
            let err = open(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flipper.redb");
        let url = format!("redb:{}", path.display());
        let store = open(&url).unwrap();
        assert_eq!(store.to_string(), url);
        assert!(path.exists(), "opening creates the file");
        // The file stays locked while the store lives; `//` before the path is accepted.
        let err = open(&format!("redb://{}", path.display())).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        drop(store);
        assert_eq!(
            open(&format!("redb://{}", path.display()))
                .unwrap()
                .to_string(),
            url
        );
        let err = open(&format!(
            "redb:{}",
            dir.path().join("no/such/dir.redb").display()
        ));
        assert!(matches!(err, Err(Error::Io { .. })));
    }
}
