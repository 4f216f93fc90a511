//! The operations behind the `pam-totp` CLI: enroll, status, new recovery codes, disable,
//! verify. Every read and write goes through [`Store`] and every code is checked by
//! [`auth::judge`], so the CLI and the PAM module never disagree about where state lives,
//! how it is written, or whether a code is good. Nothing here prompts or prints: the CLI
//! asks the person, these functions decide.
//!
//! A person is never asked to type while the store is locked: the CLI reads the answer
//! first, then one of these functions locks, reads, decides and writes.

use crate::auth::{self, Verdict};
use crate::codes::{self, Entered, TotpMatch};
use crate::error::Error;
use crate::log::{self, Priority};
use crate::options::Options;
use crate::privileges::{Account, Identity};
use crate::secret::SecretString;
use crate::state::{HashAlgorithm, LastSuccess, MAX_RECOVERY_CODES, RecoveryCodeHash, State};
use crate::store::{Locked, Store};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{Uid, getuid};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Recovery codes made at enrollment unless asked otherwise.
pub const DEFAULT_RECOVERY_CODES: usize = 10;
/// Issuer in the otpauth URI when the host name cannot be read.
pub const FALLBACK_ISSUER: &str = "pam-totp";
/// The line an admin adds to a service in /etc/pam.d.
pub const PAM_LINE: &str = "auth required pam_totp.so";

/// Why an operation did not happen. Its `Display` is one line for the person at the
/// terminal: what went wrong and how to fix it, never a secret or a code.
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
    /// `--secret` is not base32, or too short or long.
    BadSecret(String),
    /// `--issuer` or `--label` cannot go into an otpauth URI.
    BadName(String),
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
    /// The recovery codes file could not be created or written.
    CodesFile {
        path: PathBuf,
        problem: String,
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
    !(options.secret.starts_with("~/") || options.secret.starts_with("%h/"))
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Library(error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Library(Error::UnknownUser(user)) => write!(
                f,
                "unknown user {user:?}: no such account in the passwd database; check the name given to --user"
            ),
            Failure::Library(error) => write!(f, "{error}"),
            Failure::NotPermitted { caller, target } => write!(
                f,
                "{caller} may not act for {target}: only root can use --user for another user (drop --user to act for yourself, or ask an administrator)"
            ),
            Failure::NoCaller(uid) => write!(
                f,
                "the calling uid {uid} has no entry in the passwd database; ask an administrator to add one"
            ),
            Failure::NotEnrolled { user, path } => write!(
                f,
                "{user} is not enrolled (no {}); run `pam-totp enroll` first",
                path.display()
            ),
            Failure::Refused(Verdict::Throttled { seconds }) => write!(
                f,
                "too many wrong codes; no code is checked for {seconds} more seconds, try again then; nothing was changed"
            ),
            Failure::Refused(Verdict::Wrong { reason, failures }) => {
                write!(
                    f,
                    "{reason}: not accepted, and counted as a failed attempt ({failures} in a row)"
                )?;
                if *reason == "replayed code" {
                    f.write_str("; each code works once: wait for the next one")?;
                }
                Ok(())
            }
            Failure::Refused(_) => f.write_str("the code was not accepted; nothing was changed"),
            Failure::TotpRequired => f.write_str(
                "this needs a code from the authenticator app, not a recovery code (lost the app? `pam-totp enroll` accepts a recovery code and sets up a new one)",
            ),
            Failure::BadSecret(why) => write!(f, "--secret: {why}; nothing was changed"),
            Failure::BadName(why) => f.write_str(why),
            Failure::RootManaged {
                user,
                config,
                command,
                problem,
            } => write!(
                f,
                "the state of {user} is kept in storage managed by root (secret= in {}), which {user} cannot use ({problem}); ask an administrator to run `pam-totp --user {user} {command}`",
                config.display()
            ),
            Failure::CodesFileExists(path) => write!(
                f,
                "{} already exists; recovery codes are only ever written to a new file: name one that does not exist yet; nothing was changed",
                path.display()
            ),
            Failure::CodesFile { path, problem } => write!(
                f,
                "cannot write the recovery codes to {}: {problem}; nothing was changed",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Failure {}

pub type Result<T> = std::result::Result<T, Failure>;

/// Who runs the command, and for whom.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Account,
    pub target: Account,
}

impl Actor {
    /// The caller from getuid() and the passwd database (never `$HOME` or `$USER`). Only
    /// root may name another user with `requested`.
    pub fn resolve(requested: Option<&str>) -> Result<Actor> {
        let uid = getuid();
        let caller = Account::by_uid(uid)?.ok_or(Failure::NoCaller(uid))?;
        let target = match requested {
            None => caller.clone(),
            Some(name) => {
                let target = Account::by_name(name)?;
                if !uid.is_root() && target.as_ref().is_none_or(|t| t.uid != uid) {
                    // Refused before saying whether the user exists.
                    return Err(Failure::NotPermitted {
                        caller: caller.name,
                        target: name.to_owned(),
                    });
                }
                target.ok_or_else(|| Error::UnknownUser(name.to_owned()))?
            }
        };
        Ok(Actor { caller, target })
    }

    /// Root acting for another user: the support path, where no code is asked.
    pub fn for_other(&self) -> bool {
        self.caller.uid.is_root() && self.target.uid != self.caller.uid
    }

    /// Whether the target must prove a current code before a change.
    pub fn needs_proof(&self) -> bool {
        !self.for_other()
    }

    /// The identity new files of the target are made with: the target's when root acts
    /// for them, the caller's own otherwise.
    pub fn file_identity(&self) -> Result<Identity> {
        if self.for_other() {
            Ok(self.target.identity()?)
        } else {
            Ok(self.caller.identity()?)
        }
    }

    /// One syslog line (authpriv): who did what, for whom. `what` never holds a secret.
    pub fn audit(&self, priority: Priority, what: &str) {
        log::cli_syslog(priority, &self.audit_line(what));
    }

    pub fn audit_line(&self, what: &str) -> String {
        if self.caller.uid == self.target.uid {
            format!("{} (uid {}): {what}", self.caller.name, self.caller.uid)
        } else {
            format!(
                "{} (uid {}) for {} (uid {}): {what}",
                self.caller.name, self.caller.uid, self.target.name, self.target.uid
            )
        }
    }
}

/// Recovery codes made but not yet stored: the readable codes (to show once) and their
/// hashes. Made before any lock is taken, since hashing takes a moment.
pub struct NewCodes {
    shown: Vec<SecretString>,
    hashes: Vec<RecoveryCodeHash>,
}

impl NewCodes {
    pub fn make(count: usize) -> Result<NewCodes> {
        let (shown, hashes) = codes::new_recovery_codes(count.min(MAX_RECOVERY_CODES))?;
        Ok(NewCodes { shown, hashes })
    }

    pub fn shown(&self) -> &[SecretString] {
        &self.shown
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

/// The store of the target under the options (the same file and keys the module reads).
pub fn store_for(options: &Options, actor: &Actor) -> Result<Store> {
    Ok(Store::for_account(options, &actor.target)?)
}

fn not_enrolled(actor: &Actor, store: &Store) -> Failure {
    Failure::NotEnrolled {
        user: actor.target.name.clone(),
        path: store.path().to_owned(),
    }
}

/// Locks an existing enrollment; a missing state directory means not enrolled.
fn lock_existing<'a>(actor: &Actor, store: &'a Store) -> Result<(Locked<'a>, State)> {
    let locked = match store.lock(false) {
        Ok(locked) => locked,
        Err(Error::NotEnrolled(_)) => return Err(not_enrolled(actor, store)),
        Err(e) => return Err(e.into()),
    };
    let state = locked.read()?.ok_or_else(|| not_enrolled(actor, store))?;
    Ok((locked, state))
}

/// What the CLI needs before it asks for a code: the state exists and is not throttled.
/// Returns the number of digits a TOTP code has. Reads without the lock, like the module.
pub fn ready_for_code(actor: &Actor, store: &Store, now: u64) -> Result<u8> {
    let state = store.load()?.ok_or_else(|| not_enrolled(actor, store))?;
    if let Some(seconds) = state.throttled_for(now) {
        return Err(Failure::Refused(Verdict::Throttled { seconds }));
    }
    Ok(state.digits)
}

/// Judges `answer` as a login would and writes what it changed: an accepted code is
/// burned, a wrong one counted toward throttling. `Ok` only when it was accepted.
fn judge_and_record(
    locked: &Locked<'_>,
    state: &mut State,
    answer: &SecretString,
    now: u64,
    options: &Options,
) -> Result<Verdict> {
    let verdict = auth::judge(state, answer, now, options, true)?;
    match verdict {
        Verdict::Throttled { .. } => Err(Failure::Refused(verdict)),
        Verdict::Wrong { .. } => {
            // A failure that cannot be recorded is still a refusal.
            let _ = locked.write(state);
            Err(Failure::Refused(verdict))
        }
        Verdict::Totp { .. } | Verdict::Recovery { .. } => Ok(verdict),
    }
}

/// Proves a current code (TOTP or recovery) of an existing enrollment and burns it. Used
/// before an enrolled user replaces their enrollment.
pub fn prove(
    actor: &Actor,
    store: &Store,
    answer: &SecretString,
    now: u64,
    options: &Options,
) -> Result<Verdict> {
    let (locked, mut state) = lock_existing(actor, store)?;
    let verdict = judge_and_record(&locked, &mut state, answer, now, options)?;
    // A success that cannot be burned is no success.
    locked.write(&state)?;
    Ok(verdict)
}

/// A new enrollment, not yet saved.
pub struct Enrollment {
    state: State,
    imported: bool,
    confirmed: bool,
}

impl Enrollment {
    /// A new 160-bit secret from the OS generator, or `secret` (base32 typed or pasted by a
    /// person: any case, spaces and dashes allowed) imported from another system.
    pub fn new(
        secret: Option<&str>,
        algorithm: HashAlgorithm,
        digits: u8,
        period: u64,
    ) -> Result<Enrollment> {
        let imported = secret.is_some();
        let secret = match secret {
            None => codes::new_secret()?,
            Some(text) => codes::normalize_secret(text).ok_or_else(|| {
                Failure::BadSecret(
                    "not a base32 secret: use the letters A-Z and digits 2-7 (case, spaces, dashes and = padding do not matter)"
                        .into(),
                )
            })?,
        };
        let state = State::new(secret, algorithm, digits, period, vec![]).map_err(|e| match e {
            Error::BadOption(why) if imported && why.contains("secret") => Failure::BadSecret(why),
            other => other.into(),
        })?;
        Ok(Enrollment {
            state,
            imported,
            confirmed: false,
        })
    }

    pub fn secret(&self) -> &SecretString {
        &self.state.secret
    }

    pub fn algorithm(&self) -> HashAlgorithm {
        self.state.algorithm
    }

    pub fn digits(&self) -> u8 {
        self.state.digits
    }

    pub fn period(&self) -> u64 {
        self.state.period
    }

    /// The secret in groups of four, for typing by hand.
    pub fn grouped_secret(&self) -> Zeroizing<String> {
        let secret = self.state.secret.expose().as_bytes();
        let groups: Vec<&str> = secret
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Zeroizing::new(groups.join(" "))
    }

    /// The otpauth URI authenticator apps read from the QR code (Key Uri Format):
    /// `otpauth://totp/ISSUER:LABEL?secret=…&issuer=…&algorithm=…&digits=…&period=…`.
    pub fn otpauth_uri(&self, issuer: &str, label: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            url_encode(issuer),
            url_encode(label),
            self.state.secret.expose(),
            url_encode(issuer),
            self.state.algorithm.as_str(),
            self.state.digits,
            self.state.period
        ))
    }

    /// Checks a code typed from the app against the new secret, with the module's window.
    /// A match is remembered as burned, so the same code cannot then be replayed at login.
    pub fn confirm(&mut self, answer: &SecretString, now: u64, options: &Options) -> Result<bool> {
        let Entered::Totp(code) = codes::classify(answer.expose(), self.state.digits) else {
            return Ok(false);
        };
        match codes::find_totp_step(&self.state, &code, now, options.window)? {
            TotpMatch::Fresh(step) => {
                self.state.last_step = Some(step);
                self.confirmed = true;
                Ok(true)
            }
            TotpMatch::Replayed | TotpMatch::NoMatch => Ok(false),
        }
    }

    /// Saves the enrollment with `new_codes` as its recovery codes, replacing any existing
    /// state atomically. With `codes_file`,
    /// the codes are first written to that new file; if the state then cannot be written,
    /// the file is removed again and the old state (if any) is left as it was.
    pub fn save(
        mut self,
        actor: &Actor,
        store: &Store,
        new_codes: &NewCodes,
        codes_file: Option<&CodesFile>,
        now: u64,
    ) -> Result<()> {
        self.state.recovery_codes = new_codes.hashes.clone();
        let locked = match store.lock(true) {
            Ok(locked) => locked,
            Err(Error::NotEnrolled(path)) => {
                return Err(Error::Unsafe {
                    problem: format!(
                        "cannot create the state file: the home directory {} of {} does not exist",
                        actor.target.home.display(),
                        actor.target.name
                    ),
                    fix: format!(
                        "create it (mkdir -m 700 {0} && chown {1}: {0}) or set secret= in the config file",
                        actor.target.home.display(),
                        actor.target.name
                    ),
                    path,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let written = match codes_file {
            Some(file) => Some(file.create(actor, &new_codes.shown, now)?),
            None => None,
        };
        if let Err(e) = locked.write(&self.state) {
            if let Some(written) = written {
                written.discard();
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The line for syslog: what was enrolled, never the secret.
    pub fn describe(&self, recovery_count: usize, replaced: bool) -> String {
        format!(
            "{} ({}, {} digits, {} s period, {} recovery codes{}{})",
            if replaced {
                "replaced the enrollment"
            } else {
                "enrolled"
            },
            self.state.algorithm.as_str(),
            self.state.digits,
            self.state.period,
            recovery_count,
            if self.imported {
                ", imported secret"
            } else {
                ""
            },
            if self.confirmed {
                ""
            } else {
                ", not confirmed with a code"
            },
        )
    }
}

/// `user@host`, the default label in the app.
pub fn default_label(user: &str) -> String {
    format!(
        "{user}@{}",
        host_name().unwrap_or_else(|| "localhost".into())
    )
}

/// The host name, the default issuer in the app (so entries from different machines can be
/// told apart); [`FALLBACK_ISSUER`] when it cannot be read.
pub fn default_issuer() -> String {
    host_name().unwrap_or_else(|| FALLBACK_ISSUER.into())
}

fn host_name() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    (!name.is_empty()).then_some(name)
}

/// Checks an issuer or label for the otpauth URI: apps split the label at the first colon.
pub fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 100 {
        return Err(Failure::BadName(format!(
            "{what} must be 1 to 100 characters"
        )));
    }
    if value.contains(':') || value.chars().any(char::is_control) {
        return Err(Failure::BadName(format!(
            "{what} may not contain a colon or control characters"
        )));
    }
    Ok(())
}

/// RFC 3986's unreserved characters stay as they are; everything else is percent-encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a label or issuer for the otpauth URI.
pub fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// A new file for recovery codes: never an existing file, never through a symlink, mode
/// 0600, owned by whoever the codes are for.
#[derive(Debug, Clone)]
pub struct CodesFile {
    path: PathBuf,
}

/// A codes file this process created, which can be taken back if the state is not saved.
struct WrittenCodesFile {
    path: PathBuf,
    identity: Identity,
}

impl WrittenCodesFile {
    fn discard(self) {
        if let Ok(_as_owner) = self.identity.assume() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl CodesFile {
    /// Refuses at once a path that exists (even a dangling symlink), before anything is
    /// asked or made; the creation itself is O_EXCL, so a file that appears later is
    /// refused too.
    pub fn new(path: &Path) -> Result<CodesFile> {
        if path.symlink_metadata().is_ok() {
            return Err(Failure::CodesFileExists(path.to_owned()));
        }
        Ok(CodesFile {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create(&self, actor: &Actor, shown: &[SecretString], now: u64) -> Result<WrittenCodesFile> {
        let identity = actor.file_identity()?;
        let as_owner = identity.assume()?;
        let fd = open(
            &self.path,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| match errno {
            Errno::EEXIST => Failure::CodesFileExists(self.path.clone()),
            Errno::EACCES | Errno::EPERM | Errno::EROFS => Failure::CodesFile {
                path: self.path.clone(),
                problem: format!(
                    "{errno}; it is created as {}: choose a directory that user can write to",
                    if actor.for_other() {
                        &actor.target.name
                    } else {
                        &actor.caller.name
                    }
                ),
            },
            other => Failure::CodesFile {
                path: self.path.clone(),
                problem: other.to_string(),
            },
        })?;
        let written = WrittenCodesFile {
            path: self.path.clone(),
            identity: identity.clone(),
        };
        let mut text = Zeroizing::new(format!(
            "# pam-totp recovery codes for {}, made at Unix time {now}.\n\
             # Each code works once, in place of a code from the app. Keep this file private.\n",
            actor.target.name
        ));
        for code in shown {
            text.push_str(code.expose());
            text.push('\n');
        }
        let mut file = File::from(fd);
        if let Err(e) = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
        {
            drop(file);
            drop(as_owner);
            written.discard();
            return Err(Failure::CodesFile {
                path: self.path.clone(),
                problem: e.to_string(),
            });
        }
        Ok(written)
    }
}

/// Replaces every recovery code in one locked transaction: the old ones stop working the
/// moment the new state is written. `proof` must be a current TOTP code (burned), unless
/// root acts for another user (`None`).
pub fn replace_recovery_codes(
    actor: &Actor,
    store: &Store,
    proof: Option<&SecretString>,
    new_codes: &NewCodes,
    codes_file: Option<&CodesFile>,
    now: u64,
    options: &Options,
) -> Result<()> {
    let (locked, mut state) = lock_existing(actor, store)?;
    if let Some(answer) = proof {
        if let Entered::Recovery { .. } = codes::classify(answer.expose(), state.digits) {
            return Err(Failure::TotpRequired);
        }
        judge_and_record(&locked, &mut state, answer, now, options)?;
    }
    let burned = state.clone();
    state.recovery_codes = new_codes.hashes.clone();
    let written = match codes_file.map(|file| file.create(actor, &new_codes.shown, now)) {
        None => None,
        Some(Ok(written)) => Some(written),
        Some(Err(e)) => {
            // The accepted code stays used up; the old recovery codes stay valid.
            if proof.is_some() {
                locked.write(&burned)?;
            }
            return Err(e);
        }
    };
    if let Err(e) = locked.write(&state) {
        if let Some(written) = written {
            written.discard();
        }
        return Err(e.into());
    }
    Ok(())
}

/// Removes the enrollment atomically, after a current code (TOTP or recovery) unless
/// root acts for another user (`None`).
pub fn disable(
    actor: &Actor,
    store: &Store,
    proof: Option<&SecretString>,
    now: u64,
    options: &Options,
) -> Result<()> {
    let (locked, mut state) = lock_existing(actor, store)?;
    if let Some(answer) = proof {
        judge_and_record(&locked, &mut state, answer, now, options)?;
    }
    if !locked.remove()? {
        return Err(not_enrolled(actor, store));
    }
    Ok(())
}

/// What `verify` found.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub verdict: Verdict,
    /// For an accepted TOTP code: how many time steps the app is ahead (+) or behind (-).
    pub offset_steps: Option<i64>,
    pub period: u64,
}

/// Says whether the module would accept `answer` now, without using it up: an accepted
/// code is not burned (nothing is written), a wrong one counts toward throttling exactly
/// as a failed login does.
pub fn verify(
    actor: &Actor,
    store: &Store,
    answer: &SecretString,
    now: u64,
    options: &Options,
) -> Result<Checked> {
    let (locked, state) = lock_existing(actor, store)?;
    let mut trial = state.clone();
    let verdict = auth::judge(&mut trial, answer, now, options, true)?;
    if let Verdict::Wrong { .. } = verdict {
        locked.write(&trial)?;
    }
    let offset_steps = match verdict {
        Verdict::Totp { step } => Some(step as i64 - codes::time_step(now, state.period) as i64),
        _ => None,
    };
    Ok(Checked {
        verdict,
        offset_steps,
        period: state.period,
    })
}

/// Everything `status` shows; also its `--json` form.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub user: String,
    pub enrolled: bool,
    pub state_file: String,
    pub algorithm: Option<&'static str>,
    pub digits: Option<u8>,
    pub period: Option<u64>,
    pub recovery_codes_left: Option<usize>,
    pub last_success: Option<LastSuccess>,
    pub throttle: Option<ThrottleStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThrottleStatus {
    /// Consecutive wrong codes since the last success.
    pub failures: u32,
    /// Unix time before which no code is checked (0: not throttled).
    pub locked_until: u64,
    /// Seconds from now until codes are checked again (0: not throttled).
    pub seconds_left: u64,
    /// Wrong codes in a row after which codes stop being checked for a while.
    pub max_failures: u32,
}

pub fn status(actor: &Actor, store: &Store, now: u64, options: &Options) -> Result<Status> {
    let state = store.load()?;
    let mut status = Status {
        user: actor.target.name.clone(),
        enrolled: state.is_some(),
        state_file: store.path().display().to_string(),
        algorithm: None,
        digits: None,
        period: None,
        recovery_codes_left: None,
        last_success: None,
        throttle: None,
    };
    if let Some(state) = state {
        status.algorithm = Some(state.algorithm.as_str());
        status.digits = Some(state.digits);
        status.period = Some(state.period);
        status.recovery_codes_left = Some(state.recovery_codes.len());
        status.last_success = state.last_success;
        status.throttle = Some(ThrottleStatus {
            failures: state.throttle.failures,
            locked_until: state.throttle.locked_until,
            seconds_left: state.throttled_for(now).unwrap_or(0),
            max_failures: options.max_failures,
        });
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment() -> Enrollment {
        Enrollment::new(Some("jbsw y3dp-ehpk 3pxp"), HashAlgorithm::SHA256, 8, 60).unwrap()
    }

    #[test]
    fn uri_encodes_issuer_and_label() {
        let uri = enrollment().otpauth_uri("ACME Corp", "alice@web 1");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ACME%20Corp:alice%40web%201?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Corp&algorithm=SHA256&digits=8&period=60"
        );
    }

    #[test]
    fn secret_is_shown_in_groups_of_four() {
        assert_eq!(
            enrollment().grouped_secret().as_str(),
            "JBSW Y3DP EHPK 3PXP"
        );
    }

    #[test]
    fn malformed_and_short_secrets_are_refused() {
        for bad in ["not base32!", "", "JBSWY3DP"] {
            let result = Enrollment::new(Some(bad), HashAlgorithm::SHA1, 6, 30);
            assert!(
                matches!(result, Err(Failure::BadSecret(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn confirming_burns_the_step() {
        let mut enrollment = enrollment();
        let now = 1_700_000_000;
        let code = codes::code_at(&enrollment.state, now).unwrap();
        let options = Options::default();
        assert!(enrollment.confirm(&code, now, &options).unwrap());
        assert_eq!(enrollment.state.last_step, Some(now / 60));
        assert!(!enrollment.confirm(&code, now, &options).unwrap());
    }

    #[test]
    fn audit_lines_say_who_for_whom() {
        let account = |name: &str, uid| Account {
            name: name.into(),
            uid: Uid::from_raw(uid),
            gid: nix::unistd::Gid::from_raw(uid),
            home: PathBuf::from("/home").join(name),
        };
        let admin = Actor {
            caller: account("root", 0),
            target: account("bob", 1001),
        };
        assert!(admin.for_other() && !admin.needs_proof());
        assert_eq!(
            admin.audit_line("disabled"),
            "root (uid 0) for bob (uid 1001): disabled"
        );
        let own = Actor {
            caller: account("bob", 1001),
            target: account("bob", 1001),
        };
        assert!(own.needs_proof());
        assert_eq!(own.audit_line("enrolled"), "bob (uid 1001): enrolled");
    }

    #[test]
    fn names_with_colons_are_refused() {
        assert!(check_name("--issuer", "a:b").is_err());
        assert!(check_name("--label", "").is_err());
        assert!(check_name("--label", "alice@host").is_ok());
    }
}
