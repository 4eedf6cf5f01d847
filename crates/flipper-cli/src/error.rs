//! [`CliError`]: why a command failed, and the exit code that says so.
//!
//! | exit | meaning |
//! |---|---|
//! | 2 | bad input: an argument, the store URL, an unreadable or malformed file, a missing flag, a token the server refuses, a server setting that cannot be used; nothing was written |
//! | 1 | anything else, notably a failure while writing |

use std::fmt;

/// Bad input: exit code 2.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Any other failure: exit code 1.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// An argument the library could not take (malformed JSON, a bad condition key, ...).
    Input(String),
    /// The library's error; its variant decides the exit code.
    Flipper(flipper::Error),
    /// The tool itself could not run (the async runtime did not start).
    Internal(String),
    /// The server did not start or stopped with an error.
    Serve(flipper_server::ServeError),
}

impl CliError {
    /// A bad-input error with this message.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => EXIT_INPUT,
            Self::Flipper(e) => flipper_exit_code(e),
            Self::Internal(_) => EXIT_FAILURE,
            Self::Serve(flipper_server::ServeError::Store { source }) => flipper_exit_code(source),
            Self::Serve(e) if e.is_config() => EXIT_INPUT,
            Self::Serve(_) => EXIT_FAILURE,
        }
    }

    /// The message on one line (embedded line breaks become spaces).
    pub(crate) fn one_line(&self) -> String {
        self.to_string()
            .split(['\n', '\r'])
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Exit code 2 for the errors that mean "your input is wrong and nothing was written", 1 for
/// the rest (a failed write, a lost race, a backend failure).
fn flipper_exit_code(e: &flipper::Error) -> u8 {
    use flipper::Error as E;
    match e {
        E::FlagDoesNotExist { .. }
        | E::InvalidStoreUrl { .. }
        | E::InvalidFile { .. }
        | E::InvalidFlag { .. }
        | E::Corrupt { .. }
        | E::Unauthorized { .. } => EXIT_INPUT,
        E::Io { .. } if e.is_read_failure() => EXIT_INPUT,
        _ => EXIT_FAILURE,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(message) | Self::Internal(message) => f.write_str(message),
            Self::Flipper(e @ flipper::Error::Unauthorized { status, .. }) => {
                let hint = if *status == 401 {
                    "give the server's token with --token or FLIPPER_TOKEN"
                } else {
                    "check --token or FLIPPER_TOKEN: writes need the server's admin token"
                };
                write!(f, "{e} ({hint})")
            }
            // The library's messages already include their causes.
            Self::Flipper(e) => write!(f, "{e}"),
            Self::Serve(e) => write!(f, "{e}"),
        }
    }
}

impl From<flipper_server::ServeError> for CliError {
    fn from(e: flipper_server::ServeError) -> Self {
        Self::Serve(e)
    }
}

impl From<flipper::Error> for CliError {
    fn from(e: flipper::Error) -> Self {
        Self::Flipper(e)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn input_errors_exit_2_and_write_failures_exit_1() {
        let io = |action| flipper::Error::Io {
            action,
            path: PathBuf::from("f.json"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        for (e, code) in [
            (CliError::input("bad"), 2),
            (
                flipper::Error::FlagDoesNotExist { name: "x".into() }.into(),
                2,
            ),
            (io(flipper::Error::READ).into(), 2),
            (io("cannot write").into(), 1),
            (flipper::Error::AlreadyExists { name: "x".into() }.into(), 1),
            (
                flipper::Error::Unauthorized {
                    store: "http://h".into(),
                    status: 403,
                    message: "m".into(),
                }
                .into(),
                2,
            ),
            (CliError::Internal("no runtime".into()), 1),
        ] {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(CliError::input("a\nb\r\nc").one_line(), "a b c");
    }
}
