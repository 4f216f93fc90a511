//! One error type for the library. Its `Display` is the line that reaches syslog or the
//! terminal: it says what and where, and how to fix it where there is a fix, never a secret.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// A module argument or config key is unknown or has a bad value.
    BadOption(String),
    /// The user is not in the passwd database.
    UnknownUser(String),
    /// The user has no state file: not enrolled.
    NotEnrolled(PathBuf),
    /// A file or directory is unsafe to use: a symlink, wrong owner or mode, not a regular file.
    Unsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// The state file exists but is not valid: bad TOML, bad values, hostile parameters.
    Corrupt { path: PathBuf, problem: String },
    /// An operating-system call on a path failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// Switching to or from the user's file-system identity failed.
    Privileges(String),
    /// The system clock is before 1970 or otherwise unusable.
    Clock,
    /// Anything else that is not the user's fault (random generator, hashing).
    Internal(String),
    /// The setuid helper (protected storage) could not be run, or said it failed.
    Helper(String),
}

impl Error {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: impl Into<io::Error>,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source: source.into(),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadOption(msg) => write!(f, "bad option: {msg}"),
            Error::UnknownUser(user) => write!(f, "unknown user {user:?}"),
            Error::NotEnrolled(path) => write!(f, "not enrolled: no {}", path.display()),
            Error::Unsafe { path, problem, fix } => {
                write!(f, "refusing {}: {problem}; fix: {fix}", path.display())
            }
            Error::Corrupt { path, problem } => {
                write!(f, "state file {} is invalid: {problem}", path.display())
            }
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Privileges(msg) => write!(f, "cannot switch identity: {msg}"),
            Error::Clock => f.write_str("the system clock is before 1970"),
            Error::Internal(msg) => write!(f, "internal error: {msg}"),
            Error::Helper(msg) => write!(f, "pam-totp-helper: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// " (line N)" for a TOML error span. The parser's own message quotes the offending
/// source line, which must never reach a log: only the line number does.
pub(crate) fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}
