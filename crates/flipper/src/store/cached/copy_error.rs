//! Copies of an error for every reader that shared one read of the inner store.

use std::path::PathBuf;

use crate::error::Error;

/// A copy of a shared read's error for each reader that waited for it. Backend and I/O causes
/// cannot be cloned; their copies carry the cause's message.
pub(super) fn copy_error(e: &Error) -> Error {
    match e {
        Error::FlagDoesNotExist { name } => Error::FlagDoesNotExist { name: name.clone() },
        Error::AlreadyExists { name } => Error::AlreadyExists { name: name.clone() },
        Error::Conflict { name } => Error::Conflict { name: name.clone() },
        Error::TooManyConflicts { name, attempts } => Error::TooManyConflicts {
            name: name.clone(),
            attempts: *attempts,
        },
        Error::Corrupt {
            store,
            name,
            source,
        } => Error::Corrupt {
            store: store.clone(),
            name: name.clone(),
            source: source.clone(),
        },
        Error::InvalidFlag { name, message } => Error::InvalidFlag {
            name: name.clone(),
            message: message.clone(),
        },
        Error::Io {
            action,
            path,
            source,
        } => Error::Io {
            action,
            path: PathBuf::clone(path),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::InvalidFile { path, message } => Error::InvalidFile {
            path: path.clone(),
            message: message.clone(),
        },
        Error::InvalidStoreUrl { url, reason } => Error::InvalidStoreUrl {
            url: url.clone(),
            reason: reason.clone(),
        },
        Error::Unsupported { store, operation } => Error::Unsupported {
            store: store.clone(),
            operation,
        },
        Error::Unauthorized {
            store,
            status,
            message,
        } => Error::Unauthorized {
            store: store.clone(),
            status: *status,
            message: message.clone(),
        },
        Error::Backend { store, source } => Error::Backend {
            store: store.clone(),
            source: source.to_string().into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_are_copied_with_their_message() {
        let e = Error::Backend {
            store: "redis://x".into(),
            source: "connection refused".into(),
        };
        assert_eq!(copy_error(&e).to_string(), e.to_string());
    }

    #[test]
    fn other_errors_are_copied_whole() {
        let e = Error::Io {
            action: Error::READ,
            path: PathBuf::from("flags.json"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let copy = copy_error(&e);
        assert!(copy.is_read_failure());
        assert_eq!(copy.to_string(), e.to_string());
        let e = Error::Conflict { name: "f".into() };
        assert!(matches!(copy_error(&e), Error::Conflict { name } if name == "f"));
    }
}
