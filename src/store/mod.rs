//! The store seam: what the login and the admin operations need from wherever a user's
//! state lives, at the level they need it. Before prompting: what to ask ([`Prepared`]).
//! After the answer: check it and record the result atomically ([`Store::check_and_record`]).
//! A backend that checks codes itself and never hands out the secret (a privileged helper
//! over a pipe, a fleet database) implements [`Store`] directly; one that can lock, read and
//! write a [`State`] implements [`transaction::Backend`] and gets these rules for free:
//!
//! - [`fs::FsStore`]: the state file (lock file, atomic replace);
//! - `memory::MemoryStore` (feature `testing`, and unit tests): in memory, with failures on
//!   demand.

pub(crate) mod counters_file;
pub mod fs;
pub mod helper;
pub mod helper_protocol;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub(crate) mod migrate_v1;
#[cfg(test)]
mod pins;
pub mod transaction;

use crate::error::{Error, Result};
use crate::policy::{CountFailure, Policy, Verdict};
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::{Enrolled, RemoteHost, State, Throttle};
use std::path::{Path, PathBuf};

/// What to ask before prompting, read without the lock (a person may take a while).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    NotEnrolled,
    /// Too many wrong codes: nothing is checked for this many more seconds.
    Throttled {
        seconds: u64,
    },
    /// Ask for a code; a TOTP code has this many digits.
    Ready {
        digits: u8,
    },
}

/// What checking an answer did.
#[derive(Debug)]
pub struct Recorded {
    pub verdict: Verdict,
    /// Something the store had to repair on the way (a damaged copy of the counters), for
    /// the log line of the decision; `None` nearly always.
    pub note: Option<String>,
}

/// What a change of an enrollment needs first.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// Root acting for another user: nothing is asked.
    NotNeeded,
    /// A current code from the app or a recovery code; burned when accepted.
    Code(&'a SecretString),
    /// A current code from the app only (a recovery code is refused unchecked).
    TotpCode(&'a SecretString),
}

/// Why a change was not made, when it is not an error of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotEnrolled,
    /// The proof was throttled, or wrong (and counted as a failure).
    Proof(Verdict),
    /// A recovery code where only a code from the app is accepted.
    TotpRequired,
    /// The [`BeforeCommit`] step failed; it knows why.
    Aborted,
    /// Only an HOTP enrollment can be resynchronised.
    NotHotp,
}

#[derive(Debug)]
pub enum ChangeError {
    Refused(Refusal),
    Failed(Error),
}

impl From<Error> for ChangeError {
    fn from(error: Error) -> Self {
        ChangeError::Failed(error)
    }
}

pub type Change<T> = std::result::Result<T, ChangeError>;

/// Work done inside a change, under the lock, just before the new state is committed (the
/// recovery codes file): if it fails nothing is committed; if the commit fails it is undone.
pub trait BeforeCommit {
    fn run(&mut self) -> std::result::Result<(), Aborted>;
    fn undo(&mut self);
}

/// A [`BeforeCommit`] step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

/// No work before the commit.
pub struct NothingBefore;

impl BeforeCommit for NothingBefore {
    fn run(&mut self) -> std::result::Result<(), Aborted> {
        Ok(())
    }
    fn undo(&mut self) {}
}

/// What `verify` found: the verdict, and the period to tell clock drift in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub verdict: Verdict,
    pub period: u64,
}

/// A user's state, wherever it lives.
pub trait Store {
    /// Where the state lives, for messages.
    fn location(&self) -> &Path;

    /// Before prompting: whether to ask, and for how many digits.
    fn prepare(&self, now: u64) -> Result<Prepared>;

    /// Checks `answer` and records the result atomically: an accepted code is burned, a
    /// wrong one is counted when `count` says so; if that cannot be written, this is an
    /// error for either, never a success. With `remember`, an accepted code also remembers
    /// that host (`grace_period`), in the same write. `Error::NotEnrolled` when the
    /// enrollment went away.
    fn check_and_record(
        &self,
        answer: &SecretString,
        now: u64,
        policy: Policy,
        count: CountFailure,
        remember: Option<&RemoteHost>,
    ) -> Result<Recorded>;

    /// How many seconds ago `host` passed with a code, if within `grace` seconds of `now`
    /// and the user is not throttled (`grace_period`). Reads only; writes nothing.
    fn remembers_host(&self, host: &RemoteHost, now: u64, grace: u64) -> Result<Option<u64>>;

    /// The enrollment without its secret; `None` if not enrolled.
    fn enrolled(&self) -> Result<Option<Enrolled>>;

    /// Proves a current code (TOTP or recovery) and burns it.
    fn prove(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verdict>;

    /// Whether a login would accept `answer` now, without using it up (an HOTP code is used
    /// up, as at a login: the token has moved on); a wrong one counts.
    fn verify(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verified>;

    /// Replaces any enrollment with `state` (making the directories if needed).
    fn enroll(&self, state: &State, before_commit: &mut dyn BeforeCommit) -> Change<()>;

    /// Replaces every recovery code, after `proof`.
    fn replace_recovery_codes(
        &self,
        proof: Proof<'_>,
        codes: &[RecoveryCodeHash],
        now: u64,
        policy: Policy,
        before_commit: &mut dyn BeforeCommit,
    ) -> Change<()>;

    /// Removes the enrollment, after `proof`.
    fn remove(&self, proof: Proof<'_>, now: u64, policy: Policy) -> Change<()>;

    /// When the state cannot be parsed (`Error::Corrupt`), keeps it aside under
    /// `<name>.damaged-<now>` (same owner and mode), and with `remove` removes the state,
    /// so that root can replace it; the path kept, or `None` if the state is not damaged.
    fn set_aside_damaged(&self, now: u64, remove: bool) -> Change<Option<PathBuf>>;

    /// Clears the throttling (root's `unlock`: no proof); returns it as it was.
    fn clear_throttle(&self) -> Change<Throttle>;

    /// HOTP: finds `first` and `second` as the codes of two consecutive counters in the
    /// resync window after the stored counter, and stores the second's + 1 (returned). Not
    /// found: refused with a wrong-code verdict, counted as a failure.
    fn resync(
        &self,
        first: &SecretString,
        second: &SecretString,
        now: u64,
        policy: Policy,
    ) -> Change<u64>;
}

/// A boxed store is one too (the CLI picks the file or the helper at run time).
impl Store for Box<dyn Store + '_> {
    fn location(&self) -> &Path {
        (**self).location()
    }
    fn prepare(&self, now: u64) -> Result<Prepared> {
        (**self).prepare(now)
    }
    fn check_and_record(
        &self,
        answer: &SecretString,
        now: u64,
        policy: Policy,
        count: CountFailure,
        remember: Option<&RemoteHost>,
    ) -> Result<Recorded> {
        (**self).check_and_record(answer, now, policy, count, remember)
    }
    fn remembers_host(&self, host: &RemoteHost, now: u64, grace: u64) -> Result<Option<u64>> {
        (**self).remembers_host(host, now, grace)
    }
    fn enrolled(&self) -> Result<Option<Enrolled>> {
        (**self).enrolled()
    }
    fn prove(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verdict> {
        (**self).prove(answer, now, policy)
    }
    fn verify(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verified> {
        (**self).verify(answer, now, policy)
    }
    fn enroll(&self, state: &State, before_commit: &mut dyn BeforeCommit) -> Change<()> {
        (**self).enroll(state, before_commit)
    }
    fn replace_recovery_codes(
        &self,
        proof: Proof<'_>,
        codes: &[RecoveryCodeHash],
        now: u64,
        policy: Policy,
        before_commit: &mut dyn BeforeCommit,
    ) -> Change<()> {
        (**self).replace_recovery_codes(proof, codes, now, policy, before_commit)
    }
    fn remove(&self, proof: Proof<'_>, now: u64, policy: Policy) -> Change<()> {
        (**self).remove(proof, now, policy)
    }
    fn set_aside_damaged(&self, now: u64, remove: bool) -> Change<Option<PathBuf>> {
        (**self).set_aside_damaged(now, remove)
    }
    fn clear_throttle(&self) -> Change<Throttle> {
        (**self).clear_throttle()
    }
    fn resync(
        &self,
        first: &SecretString,
        second: &SecretString,
        now: u64,
        policy: Policy,
    ) -> Change<u64> {
        (**self).resync(first, second, now, policy)
    }
}
