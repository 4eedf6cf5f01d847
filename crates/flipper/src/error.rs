//! [`Error`]: everything the client and the stores can fail with.

use std::path::PathBuf;

use flipper_core::ItemError;

/// A boxed error from a backend library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the client or a store.
///
/// One type for both: flipper-client has two unrelated `FlagDoesNotExistError` classes (one
/// raised by the client, one by the stores); here there is one [`Error::FlagDoesNotExist`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation needs an existing flag.
    #[error("flag {name:?} does not exist (create it first)")]
    FlagDoesNotExist {
        /// The flag.
        name: String,
    },

    /// A create-only write found the flag already there.
    #[error("flag {name:?} already exists")]
    AlreadyExists {
        /// The flag.
        name: String,
    },

    /// A compare-and-swap write found a newer version than the one it read.
    #[error("flag {name:?} was changed concurrently (version conflict)")]
    Conflict {
        /// The flag.
        name: String,
    },

    /// A read-modify-write kept losing to concurrent writers.
    #[error(
        "flag {name:?} kept changing concurrently: gave up after {attempts} attempts; retry later"
    )]
    TooManyConflicts {
        /// The flag.
        name: String,
        /// How many times the write was tried.
        attempts: u32,
    },

    /// A stored flag cannot be read.
    #[error("stored flag {name:?} in {store} cannot be read: {source}")]
    Corrupt {
        /// The store.
        store: String,
        /// The key or flag name.
        name: String,
        /// Why.
        #[source]
        source: ItemError,
    },

    /// A flag definition that cannot be stored as given.
    #[error("invalid flag {name:?}: {message}")]
    InvalidFlag {
        /// The flag.
        name: String,
        /// What is wrong.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A file holding flags has a mistake in it; nothing was changed.
    #[error("{path}: {message}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (line, column).
        message: String,
    },

    /// A store URL that cannot be used.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidStoreUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },

    /// The store cannot do this.
    #[error("{operation} is not supported by the {store} store")]
    Unsupported {
        /// The store.
        store: String,
        /// The operation.
        operation: &'static str,
    },

    /// The store refused the credentials: a flipper server answered 401 (no token where one is
    /// needed) or 403 (a token that may not do this, such as the SDK token for a write). Give
    /// the store the right token ([`crate::store::OpenOptions::token`]).
    #[error("{store} refused the request (HTTP {status}): {message}")]
    Unauthorized {
        /// The store.
        store: String,
        /// The HTTP status: 401 or 403.
        status: u16,
        /// The server's explanation.
        message: String,
    },

    /// The backend failed (network, server, driver).
    #[error("{store} store error: {source}")]
    Backend {
        /// The store.
        store: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Conflict { .. } | Self::TooManyConflicts { .. } | Self::Backend { .. }
        )
    }

    /// Whether this is [`Error::FlagDoesNotExist`].
    pub fn is_flag_missing(&self) -> bool {
        matches!(self, Self::FlagDoesNotExist { .. })
    }

    /// Whether this is an [`Error::Io`] met while *reading* a file (its action is
    /// [`Error::READ`]): no permission, a directory, ... Such a failure changed nothing. Every
    /// other I/O error happened while writing (creating, locking, replacing a file).
    pub fn is_read_failure(&self) -> bool {
        matches!(self, Self::Io { action, .. } if *action == Self::READ)
    }

    /// The [`Error::Io`] action of a failed read.
    pub const READ: &'static str = "cannot read";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_failures_are_told_from_write_failures() {
        let io = |action| Error::Io {
            action,
            path: PathBuf::from("flags.json"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(io(Error::READ).is_read_failure());
        assert!(!io("cannot write").is_read_failure());
        assert!(!Error::FlagDoesNotExist { name: "x".into() }.is_read_failure());
        assert!(
            io(Error::READ)
                .to_string()
                .starts_with("cannot read flags.json: ")
        );
    }
}
