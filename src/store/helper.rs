//! The unprivileged side of protected storage: a [`Store`] that asks the setuid helper
//! (`pam-totp-helper`, see `crate::helper`) over a pipe, one helper run per store. The
//! state (and its secret) stays in root-owned files this process cannot read; the helper
//! checks every code itself with the same rules and counters as a login.
//!
//! What does not fit the trait because the helper, not the caller, makes secrets and
//! recovery codes: [`HelperStore::begin_enrollment`], [`HelperStore::confirm_enrollment`]
//! and [`HelperStore::new_recovery_codes`], each of the last two followed by
//! [`HelperStore::commit`] once the codes are shown; `Store::enroll` and
//! `Store::replace_recovery_codes` refuse (the CLI calls those three instead).

use super::helper_protocol::{MAX_LINE, Refused, Request, Response, VERSION};
use super::{
    BeforeCommit, Change, ChangeError, Prepared, Proof, Recorded, Refusal, Store, Verified,
};
use crate::error::{Error, Result};
use crate::otp::OtpParams;
use crate::policy::{CountFailure, Policy, Verdict};
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::{Enrolled, RemoteHost, State, Throttle};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use zeroize::Zeroizing;

/// Where the packages install the helper (mode 4755, owned by root). The CLI runs it from
/// here (`PAM_TOTP_HELPER` overrides it for tests: the CLI is unprivileged, so that changes
/// nothing the caller could not do anyway).
pub const HELPER_PATH: &str = "/usr/lib/pam-totp/pam-totp-helper";

/// What the helper said about `confirm`.
#[derive(Debug)]
pub enum Confirmed {
    /// The code matches; the new recovery codes, to show once and then
    /// [`HelperStore::commit`]: nothing is saved before.
    Matched(Vec<SecretString>),
    /// The code does not match the new secret; nothing saved, try again.
    NoMatch,
}

/// Why the helper refused something the trait has no word for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperRefusal {
    /// Already enrolled: prove a current code first.
    ProofNeeded,
    /// The admin turned self-enrollment off.
    SelfEnrollOff,
}

#[derive(Debug)]
pub enum EnrollError {
    Change(ChangeError),
    Helper(HelperRefusal),
}

impl From<Error> for EnrollError {
    fn from(error: Error) -> Self {
        EnrollError::Change(ChangeError::Failed(error))
    }
}

struct Connection {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

pub struct HelperStore {
    connection: RefCell<Connection>,
    user: String,
    location: PathBuf,
}

impl std::fmt::Debug for HelperStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HelperStore({})", self.location.display())
    }
}

fn helper_path() -> PathBuf {
    std::env::var_os("PAM_TOTP_HELPER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(HELPER_PATH))
}

impl HelperStore {
    /// Whether the helper is there to run (without it, a user of protected storage is told
    /// that root manages it, as before).
    pub fn installed() -> bool {
        helper_path().exists()
    }

    /// Starts the helper and greets it. The helper works for the user of this process's
    /// real uid, whatever is asked.
    pub fn connect() -> Result<HelperStore> {
        let path = helper_path();
        let mut child = Command::new(&path)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::Helper(format!(
                    "cannot run {}: {e}; protected storage needs the helper installed setuid root (the pam-totp package does this)",
                    path.display()
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Helper("no pipe to the helper".into()));
        };
        let mut store = HelperStore {
            connection: RefCell::new(Connection {
                child,
                stdin: Some(stdin),
                stdout: BufReader::new(stdout),
            }),
            user: String::new(),
            location: PathBuf::new(),
        };
        match store.ask(&Request::Hello { version: VERSION })? {
            Response::Hello { user, location } => {
                store.user = user;
                store.location = location;
                Ok(store)
            }
            other => Err(unexpected(other)),
        }
    }

    /// The user the helper works for (the real uid's).
    pub fn user(&self) -> &str {
        &self.user
    }

    fn ask(&self, request: &Request) -> Result<Response> {
        let mut connection = self.connection.borrow_mut();
        let lost = || Error::Helper("the helper stopped answering (see the system log)".into());
        let stdin = connection.stdin.as_mut().ok_or_else(lost)?;
        stdin
            .write_all(request.encode().as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|_| lost())?;
        let mut line = Zeroizing::new(Vec::new());
        (&mut connection.stdout)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(|_| lost())?;
        if line.pop() != Some(b'\n') {
            return Err(lost());
        }
        Response::parse(&line)
            .map_err(|why| Error::Helper(format!("unreadable answer from the helper ({})", why.0)))
    }

    /// Starts a new enrollment: the helper makes the secret and keeps it until
    /// [`HelperStore::confirm_enrollment`]; the secret comes back once, to show.
    pub fn begin_enrollment(
        &self,
        params: OtpParams,
    ) -> std::result::Result<SecretString, EnrollError> {
        match self.ask(&Request::Enroll(params))? {
            Response::Secret(secret) => Ok(secret),
            Response::Refused(Refused::ProofNeeded) => {
                Err(EnrollError::Helper(HelperRefusal::ProofNeeded))
            }
            Response::Refused(Refused::SelfEnrollOff) => {
                Err(EnrollError::Helper(HelperRefusal::SelfEnrollOff))
            }
            other => Err(EnrollError::Change(change_error(other))),
        }
    }

    /// Confirms the enrollment begun with a code from the app; saved when it matches.
    pub fn confirm_enrollment(&self, code: &SecretString, count: usize) -> Change<Confirmed> {
        match self.ask(&Request::Confirm {
            code: code.clone(),
            count,
        })? {
            Response::Codes(codes) => Ok(Confirmed::Matched(codes)),
            Response::Refused(Refused::NoMatch) => Ok(Confirmed::NoMatch),
            other => Err(change_error(other)),
        }
    }

    /// New recovery codes, made by the helper, after a current code from the app; the old
    /// ones stay until [`HelperStore::commit`], called once these are shown.
    pub fn new_recovery_codes(
        &self,
        code: &SecretString,
        count: usize,
    ) -> Change<Vec<SecretString>> {
        match self.ask(&Request::RecoveryCodes {
            code: code.clone(),
            count,
        })? {
            Response::Codes(codes) => Ok(codes),
            other => Err(change_error(other)),
        }
    }

    /// Saves what `confirm_enrollment` or `new_recovery_codes` sent, now that it was shown
    /// (written and flushed). Without this call nothing of it is saved.
    pub fn commit(&self) -> Change<()> {
        match self.ask(&Request::Commit)? {
            Response::Done => Ok(()),
            other => Err(change_error(other)),
        }
    }
}

impl Drop for HelperStore {
    fn drop(&mut self) {
        let connection = self.connection.get_mut();
        // End of input ends the helper's run.
        drop(connection.stdin.take());
        let _ = connection.child.wait();
    }
}

fn unexpected(response: Response) -> Error {
    match response {
        Response::Failed(text) => Error::Helper(text),
        Response::Refused(Refused::BadRequest) => {
            Error::Helper("the helper refused the request (see the system log)".into())
        }
        _ => Error::Helper("unexpected answer from the helper".into()),
    }
}

fn change_error(response: Response) -> ChangeError {
    match response {
        Response::Refused(Refused::NotEnrolled) => ChangeError::Refused(Refusal::NotEnrolled),
        Response::Refused(Refused::Proof(verdict)) => ChangeError::Refused(Refusal::Proof(verdict)),
        Response::Refused(Refused::TotpRequired) => ChangeError::Refused(Refusal::TotpRequired),
        other => ChangeError::Failed(unexpected(other)),
    }
}

fn not_here(what: &str) -> ChangeError {
    ChangeError::Failed(Error::Internal(format!(
        "{what} goes through the helper's own requests with protected storage"
    )))
}

impl Store for HelperStore {
    fn location(&self) -> &Path {
        &self.location
    }

    /// The helper reads its own clock: `now` is not sent.
    fn prepare(&self, _now: u64) -> Result<Prepared> {
        match self.ask(&Request::Prepare)? {
            Response::Prepared(prepared) => Ok(prepared),
            other => Err(unexpected(other)),
        }
    }

    /// Logins run in the PAM module as root and read the store themselves.
    fn check_and_record(
        &self,
        _answer: &SecretString,
        _now: u64,
        _policy: Policy,
        _count: CountFailure,
        _remember: Option<&RemoteHost>,
    ) -> Result<Recorded> {
        Err(Error::Internal(
            "a login never goes through the helper".into(),
        ))
    }

    /// Logins (the only users of `grace_period`) read the store themselves, as root.
    fn remembers_host(&self, _host: &RemoteHost, _now: u64, _grace: u64) -> Result<Option<u64>> {
        Err(Error::Internal(
            "a login never goes through the helper".into(),
        ))
    }

    fn enrolled(&self) -> Result<Option<Enrolled>> {
        match self.ask(&Request::Status)? {
            Response::Status(enrolled) => Ok(enrolled),
            other => Err(unexpected(other)),
        }
    }

    fn prove(&self, answer: &SecretString, _now: u64, _policy: Policy) -> Change<Verdict> {
        match self.ask(&Request::Prove(answer.clone()))? {
            Response::Verdict { verdict, .. } => Ok(verdict),
            other => Err(change_error(other)),
        }
    }

    fn verify(&self, answer: &SecretString, _now: u64, _policy: Policy) -> Change<Verified> {
        match self.ask(&Request::Verify(answer.clone()))? {
            Response::Verdict { verdict, period } => Ok(Verified { verdict, period }),
            other => Err(change_error(other)),
        }
    }

    fn enroll(&self, _state: &State, _before_commit: &mut dyn BeforeCommit) -> Change<()> {
        Err(not_here("an enrollment"))
    }

    fn replace_recovery_codes(
        &self,
        _proof: Proof<'_>,
        _codes: &[RecoveryCodeHash],
        _now: u64,
        _policy: Policy,
        _before_commit: &mut dyn BeforeCommit,
    ) -> Change<()> {
        Err(not_here("new recovery codes"))
    }

    /// Root's repairs: never through the helper.
    fn set_aside_damaged(&self, _now: u64, _remove: bool) -> Change<Option<PathBuf>> {
        Err(not_here("setting a damaged state aside"))
    }

    fn clear_throttle(&self) -> Change<Throttle> {
        Err(not_here("clearing the throttle"))
    }

    fn resync(
        &self,
        _first: &SecretString,
        _second: &SecretString,
        _now: u64,
        _policy: Policy,
    ) -> Change<u64> {
        Err(not_here("resynchronising an HOTP token"))
    }

    fn remove(&self, proof: Proof<'_>, _now: u64, _policy: Policy) -> Change<()> {
        let Proof::Code(code) = proof else {
            return Err(not_here("removing without a code"));
        };
        match self.ask(&Request::Disable(code.clone()))? {
            Response::Done => Ok(()),
            other => Err(change_error(other)),
        }
    }
}
