//! `import`: a google-authenticator file (`~/.google_authenticator`) becomes an ordinary
//! enrollment with the same secret and period (SHA1, 6 digits, as GA), or for an HOTP file
//! the same secret and counter, so the app on the phone (or the token) keeps working; GA's unused scratch codes become recovery codes, stored only as
//! argon2id hashes. The GA file is the user's and is read like our own state: as the user,
//! never through a link, owner and mode checked, size capped, parsed as hostile input.
//! Nothing is written unless all of it is understood.

use super::{Actor, Failure, Result, failure_of};
use crate::error::Error;
use crate::import::ga_format::{self, GaError, GaFile, GaMode};
use crate::otp::{HashAlgorithm, PERIODS};
use crate::privileges::IdentityGuard;
use crate::recovery::{self, MAX_RECOVERY_CODES};
use crate::safe_fs::{self, Expect, Kind, OpenFailure, Owner, ReadFailure, Violation};
use crate::state::State;
use crate::store::{NothingBefore, Store};
use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where google-authenticator keeps its file, in the user's home.
pub const GA_FILE_NAME: &str = ".google_authenticator";

const NOT_REGULAR_FIX: &str = "point pam-totp import at the file google-authenticator wrote";

/// Why a GA file is not imported (besides unsafe files and I/O, which are [`Error`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportProblem {
    Missing,
    /// The parser refused it (never quoting it: line 1 is the secret).
    Format(GaError),
    /// GA's STEP_SIZE is outside the periods pam-totp accepts.
    Period(u32),
    TooManyScratchCodes(usize),
    /// The target is enrolled already (and neither `--force` nor a proof was given).
    AlreadyEnrolled,
}

/// A GA file, read and understood, not yet saved.
#[derive(Debug)]
pub struct GaImport {
    path: PathBuf,
    dir: OwnedFd,
    name: OsString,
    ga: GaFile,
}

/// What was imported, for the CLI's report (never a secret or a code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub user: String,
    pub source: PathBuf,
    pub state_file: PathBuf,
    pub period: u64,
    /// An HOTP file: the next counter, carried over from its HOTP_COUNTER.
    pub hotp_counter: Option<u64>,
    pub recovery_codes: usize,
    /// GA settings that have no equivalent here, in words ("WINDOW_SIZE 17: …").
    pub not_carried: Vec<String>,
    /// Whether an existing enrollment was replaced.
    pub replaced: bool,
    /// Whether the GA file was removed (`--remove`).
    pub removed: bool,
}

impl GaImport {
    /// Reads `path` (default: the target's `~/.google_authenticator`) as the target user.
    /// The directory is the one the caller named (or the home), opened as given; the file
    /// is opened without following links and must be a regular file of the target's,
    /// readable by nobody else (what GA itself demands), at most GA's size cap.
    pub fn read(actor: &Actor, path: Option<&Path>) -> Result<GaImport> {
        let path = match path {
            Some(path) => path.to_owned(),
            None => actor.target.home.join(GA_FILE_NAME),
        };
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(import_failure(&path, ImportProblem::Missing));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let owner = actor.target.uid.as_raw();
        let _as_user = as_target(actor)?;
        let dir = match safe_fs::open_trusted_dir(parent) {
            Ok(dir) => dir,
            Err(Errno::ENOENT) => return Err(import_failure(&path, ImportProblem::Missing)),
            Err(e) => return Err(Error::io(parent, "open directory", e).into()),
        };
        let fd = match safe_fs::open_file_in(&dir, name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(import_failure(&path, ImportProblem::Missing)),
            Err(e) => {
                return Err(match safe_fs::why_not_opened(&dir, name, e, owner) {
                    OpenFailure::Link => unsafe_file(
                        &path,
                        "it is a symbolic link",
                        "replace the link with the file itself",
                    ),
                    OpenFailure::Owner { uid } => unsafe_file(
                        &path,
                        &format!("it belongs to uid {uid}, not to {}", actor.target.name),
                        &format!("chown {} {}", actor.target.name, path.display()),
                    ),
                    OpenFailure::HardLinks { links } => {
                        safe_fs::hard_links_refusal(&path, links).into()
                    }
                    OpenFailure::NotRegular => {
                        safe_fs::not_regular_refusal(&path, NOT_REGULAR_FIX.into()).into()
                    }
                    OpenFailure::NotDirectory | OpenFailure::Other(_) => {
                        Error::io(&path, "open", e).into()
                    }
                });
            }
        };
        let stat = safe_fs::inspect(&fd).map_err(|e| Error::io(&path, "inspect", e))?;
        let expect = Expect {
            kind: Kind::RegularFile,
            owner: Owner::Is(owner),
            forbidden_mode: 0o077,
        };
        if let Err(violation) = safe_fs::check(&stat, &expect) {
            return Err(match violation {
                Violation::NotRegular => {
                    safe_fs::not_regular_refusal(&path, NOT_REGULAR_FIX.into()).into()
                }
                // Another name may be someone else's file: no owner or mode advice.
                Violation::HardLinks { links } => safe_fs::hard_links_refusal(&path, links).into(),
                Violation::Owner { uid } => unsafe_file(
                    &path,
                    &format!("it belongs to uid {uid}, not to {}", actor.target.name),
                    &format!("chown {} {}", actor.target.name, path.display()),
                ),
                Violation::Mode { mode } => unsafe_file(
                    &path,
                    &format!("its mode {mode:04o} lets others read it"),
                    &format!("chmod 600 {}", path.display()),
                ),
            });
        }
        let cap = ga_format::MAX_FILE_SIZE as u64;
        let bytes = match safe_fs::read_capped(fd, stat.st_size as u64, cap) {
            Ok(bytes) => bytes,
            Err(ReadFailure::Grew) => {
                // Written to as it was read (the file is GA's, in the user's home).
                return Err(Error::io(&path, "read (it changed meanwhile)", Errno::EAGAIN).into());
            }
            Err(ReadFailure::TooLarge) => {
                let size = usize::try_from(stat.st_size).unwrap_or(usize::MAX);
                return Err(import_failure(
                    &path,
                    ImportProblem::Format(GaError::TooLarge { size }),
                ));
            }
            Err(ReadFailure::Io(e)) => return Err(Error::io(&path, "read", e).into()),
        };
        let ga = ga_format::parse(&bytes)
            .map_err(|e| import_failure(&path, ImportProblem::Format(e)))?;
        // HOTP files have no time step (GA ignores STEP_SIZE for them).
        if ga.mode == GaMode::Totp && !PERIODS.contains(&u64::from(ga.step_size)) {
            return Err(import_failure(&path, ImportProblem::Period(ga.step_size)));
        }
        if ga.scratch_codes.len() > MAX_RECOVERY_CODES {
            let count = ga.scratch_codes.len();
            return Err(import_failure(
                &path,
                ImportProblem::TooManyScratchCodes(count),
            ));
        }
        let name = name.to_owned();
        Ok(GaImport {
            path,
            dir,
            name,
            ga,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GA settings that do not carry over, in words, so none is dropped silently.
    pub fn not_carried(&self) -> Vec<String> {
        let ga = &self.ga;
        let mut notes = vec![];
        if let Some(window) = ga.window_size {
            notes.push(format!(
                "WINDOW_SIZE {window} (±{} steps): pam-totp uses its own window= option",
                ga.window_steps_each_side()
            ));
        }
        if let Some(limit) = ga.rate_limit {
            notes.push(format!(
                "RATE_LIMIT {} {}: pam-totp throttles with max_failures= instead",
                limit.attempts, limit.interval
            ));
        }
        if let Some(skew) = ga.time_skew {
            notes.push(format!(
                "TIME_SKEW {skew}: learned clock drift is not carried; keep the clock synchronised (NTP)"
            ));
        }
        if ga.disallow_reuse {
            notes.push("DISALLOW_REUSE: always on in pam-totp (no code works twice)".into());
        }
        for name in &ga.other_options {
            notes.push(format!("{name}: no equivalent in pam-totp"));
        }
        notes
    }

    /// Saves the enrollment in `store`, replacing an existing one only when `replace` (the
    /// caller checked `--force` or a proof); then, with `remove`, removes the GA file.
    pub fn save(
        self,
        actor: &Actor,
        store: &dyn Store,
        replace: bool,
        remove: bool,
    ) -> Result<Imported> {
        let replaced = store.enrolled()?.is_some();
        if replaced && !replace {
            return Err(import_failure(&self.path, ImportProblem::AlreadyEnrolled));
        }
        let not_carried = self.not_carried();
        let ga = &self.ga;
        // Hashing takes a moment per code: done before the store is locked.
        let codes = recovery::hash_scratch_codes(&ga.secret, &ga.scratch_codes)?;
        let (period, hotp_counter) = match ga.mode {
            GaMode::Totp => (u64::from(ga.step_size), None),
            // GA's HOTP_COUNTER is the next counter it would accept, as ours is.
            GaMode::Hotp { counter } => (u64::from(ga_format::DEFAULT_STEP_SIZE), Some(counter)),
        };
        let mut state = State::new(ga.secret.clone(), HashAlgorithm::SHA1, 6, period, codes)?;
        if let Some(counter) = hotp_counter {
            state = state.into_hotp(counter);
        }
        store
            .enroll(&state, &mut NothingBefore)
            .map_err(|e| failure_of(e, actor, store, None))?;
        let removed = remove && {
            let _as_user = as_target(actor)?;
            unlinkat(&self.dir, self.name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| Error::io(&self.path, "remove", e))?;
            true
        };
        Ok(Imported {
            user: actor.target.name.clone(),
            source: self.path.clone(),
            state_file: store.location().to_owned(),
            period,
            hotp_counter,
            recovery_codes: state.recovery_codes.len(),
            not_carried,
            replaced,
            removed,
        })
    }
}

/// Acts with the target's file-system identity (root importing for a user), so that a
/// link or permission in the user's home cannot make root read what the user could not.
fn as_target(actor: &Actor) -> Result<IdentityGuard> {
    Ok(actor.target.identity()?.assume()?)
}

fn import_failure(path: &Path, problem: ImportProblem) -> Failure {
    Failure::Import {
        path: path.to_owned(),
        problem,
    }
}

fn unsafe_file(path: &Path, problem: &str, fix: &str) -> Failure {
    Failure::Library(Error::Unsafe {
        path: path.to_owned(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    })
}
