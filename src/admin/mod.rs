//! The operations behind the `pam-totp` CLI: enroll, status, new recovery codes, disable,
//! verify. Every read and write goes through a [`Store`] and every code is checked by the
//! same [`policy`](crate::policy) as at login, so the CLI and the PAM module never disagree.
//! Nothing here prompts or prints, and no sentence is written here: failures are typed
//! ([`Failure`]) and the CLI words them.
//!
//! A person is never asked to type while the store is locked: the CLI reads the answer
//! first, then one of these functions has the store lock, read, decide and write.

pub mod actor;
pub mod codes_file;
pub mod disable;
pub mod enroll;
pub mod import;
pub mod otpauth;
pub mod proof;
pub mod protect;
pub mod recovery_codes;
pub mod report;
pub mod resync;
pub mod secret_file;
pub mod status;
pub mod unlock;
pub mod verify;

pub use actor::Actor;
pub use codes_file::{CodesFile, CodesFileProblem, Delivery, Show};
pub use disable::{disable, is_damaged, set_aside_damaged};
pub use enroll::{Enrollment, NewCodes, SecretProblem};
pub use import::{GaImport, ImportProblem, Imported};
pub use otpauth::{FALLBACK_ISSUER, NameProblem, check_name, default_issuer, default_label};
pub use proof::{prove, ready_for_code};
pub use recovery_codes::replace_recovery_codes;
pub use report::{UserReport, report_user};
pub use resync::resync;
pub use secret_file::{SecretFileProblem, read_secret_file};
pub use status::{Status, ThrottleStatus, status};
pub use unlock::unlock;
pub use verify::{Checked, verify};

use crate::config::Options;
use crate::error::Error;
use crate::policy::Verdict;
use crate::store::{ChangeError, Refusal, Store};
use nix::unistd::Uid;
use std::path::PathBuf;

/// Recovery codes made at enrollment unless asked otherwise.
pub const DEFAULT_RECOVERY_CODES: usize = 10;

/// Why an operation did not happen. The CLI says it in words (`src/cli/messages.rs`).
#[derive(Debug)]
pub enum Failure {
    /// From the library: bad config, unsafe or unreadable files, I/O.
    Library(Error),
    /// `--user` named someone else, and the caller is not root.
    NotPermitted {
        caller: String,
        target: String,
    },
    /// The calling uid has no passwd entry.
    NoCaller(Uid),
    NotEnrolled {
        user: String,
        path: PathBuf,
    },
    /// A code was asked for and not accepted (wrong, replayed, malformed, throttled).
    Refused(Verdict),
    /// A recovery code was given where only a code from the app is accepted.
    TotpRequired,
    /// `resync` for an enrollment that is not HOTP.
    NotHotp,
    /// An HOTP enrollment through the setuid helper (protected storage), which makes only
    /// TOTP enrollments: root enrolls the token (`--user NAME enroll --hotp`).
    HotpNeedsRoot,
    /// `--secret` is not base32, or too short or long.
    BadSecret(SecretProblem),
    /// `--issuer` or `--label` cannot go into an otpauth URI.
    BadName {
        what: &'static str,
        problem: NameProblem,
    },
    /// The state file cannot be made: the home directory it goes in does not exist.
    NoHome {
        user: String,
        home: PathBuf,
        path: PathBuf,
    },
    /// A caller who is not root met a file problem in storage that root manages
    /// (`secret=` outside the homes): the fix is root's, not the caller's.
    RootManaged {
        user: String,
        config: PathBuf,
        command: String,
        problem: String,
    },
    /// `--codes-file` names something that already exists.
    CodesFileExists(PathBuf),
    /// A google-authenticator file that cannot be imported.
    Import {
        path: PathBuf,
        problem: ImportProblem,
    },
    /// `--secret-file` is not a private regular file of the caller's.
    SecretFile {
        path: PathBuf,
        problem: SecretFileProblem,
    },
    /// What had to be shown (the new recovery codes, the provisioned secret) could not be
    /// written, so nothing was committed.
    Output(std::io::Error),
    /// `unlock` by someone who is not root.
    UnlockNeedsRoot {
        caller: String,
        target: String,
    },
    /// The recovery codes file could not be created or written.
    CodesFile {
        path: PathBuf,
        problem: CodesFileProblem,
    },
}

impl Failure {
    /// Advice that fits the caller: for someone who is not root, a file problem in storage
    /// root manages is not theirs to fix (the library's own fix would say `chown`).
    pub fn for_caller(self, actor: &Actor, options: &Options, command: &str) -> Failure {
        if actor.caller.uid.is_root() || !root_managed(options) {
            return self;
        }
        let problem = match &self {
            Failure::Library(Error::Unsafe { problem, .. }) => problem.clone(),
            Failure::Library(error @ Error::Io { .. }) => error.to_string(),
            _ => return self,
        };
        Failure::RootManaged {
            user: actor.target.name.clone(),
            config: options.config.clone(),
            command: command.to_owned(),
            problem,
        }
    }
}

/// Whether `secret=` keeps state outside the users' homes, in storage root manages.
pub fn root_managed(options: &Options) -> bool {
    !options.secret.in_home()
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Library(error)
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

fn not_enrolled(actor: &Actor, store: &dyn Store) -> Failure {
    Failure::NotEnrolled {
        user: actor.target.name.clone(),
        path: store.location().to_owned(),
    }
}

/// A store's refusal as the operation's failure. `aborted`: what the step before the
/// commit reported, when that is why.
fn failure_of(
    error: ChangeError,
    actor: &Actor,
    store: &dyn Store,
    aborted: Option<Failure>,
) -> Failure {
    match error {
        ChangeError::Failed(error) => Failure::Library(error),
        ChangeError::Refused(Refusal::NotEnrolled) => not_enrolled(actor, store),
        ChangeError::Refused(Refusal::Proof(verdict)) => Failure::Refused(verdict),
        ChangeError::Refused(Refusal::TotpRequired) => Failure::TotpRequired,
        ChangeError::Refused(Refusal::NotHotp) => Failure::NotHotp,
        ChangeError::Refused(Refusal::Aborted) => aborted.unwrap_or_else(|| {
            Failure::Library(Error::Internal("a change stopped before its commit".into()))
        }),
    }
}
