//! The filesystem store: one state per user, in state format v2 (two files) or v1 (one).
//!
//! - The path comes from the `secret=` template ([`SecretPath`]). The part fixed by the admin
//!   (the home, or the template's prefix before the first `%`) is opened as is; every
//!   component below it is opened with O_NOFOLLOW and checked for owner and mode
//!   ([`safe_fs`]).
//! - Files below a home are touched as the user ([`Identity::assume`]); root-owned storage
//!   is touched as the process and must belong to it. A login opens its files as the user
//!   before the prompt and keeps them for the locked cycle after it, which goes through
//!   them while their names still refer to them ([`kept`]): one switch per login.
//! - Every change is made under an OFD lock on a separate lock file, waited for at most
//!   [`LOCK_WAIT`]. A login changes only the counters: one pwrite of a 4 KiB record over
//!   the older of the two in the counters file, then fdatasync, before it returns
//!   ([`counters_file`]). Enroll, new recovery codes and the conversion of a v1 state write
//!   a new enrollment ([`migrate_v1::replace_enrollment`]): counters first, then the
//!   enrollment file by temp file, fsync, rename, fsync of the directory. A crash leaves the
//!   old state or the new one; a crashed holder's lock dies with its file descriptor, and a
//!   stale temp file (or directory) is removed, or stepped around, by the next writer.

mod checks;
mod kept;
mod locked;
mod on_disk;

use super::counters_file::{self, CountersError};
use super::migrate_v1::{self, CountersTarget, Names, Step};
use super::transaction::{Backend, Create, Locked};
use crate::config::{Options, SecretPath};
use crate::error::{Error, Result};
use crate::privileges::{Account, Identity, IdentityGuard};
use crate::safe_fs::{self, Expect, FileId, Kind, OpenFailure, Owner, ReadFailure, Violation};
use crate::state::State;
use crate::state::counters_v2::{
    Counters, EnrollmentId, Found, Invalid, Picked, RECORD_SIZE, RecoveryId, find,
};
use crate::state::enrollment_v2::{self, Enrollment};
use kept::{Kept, KeptDir, KeptReads, KeptState};
use locked::{AsUser, FsLocked, HeldLock};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::stat::FileStat;
use nix::unistd::{Uid, UnlinkatFlags, fsync, linkat, unlinkat};
use on_disk::{OnDisk, ParseCache, Parsed, V2};
use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// No state file is anywhere near this; a larger one is refused before it is read.
pub(crate) const MAX_STATE_SIZE: u64 = 64 * 1024;
const LOCK_SUFFIX: &str = ".lock";
/// How long a change waits for another holder of the lock (a login takes milliseconds; a
/// stopped or hung holder must not block every later login of the user; 16 recovery-code
/// logins of one user at once, one argon2 check each under the lock, fit on a loaded machine).
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How many times a lock file found replaced right after it was locked is opened again.
const LOCK_ATTEMPTS: usize = 3;

/// Told what and where, for each repair.
type Reporter = std::rc::Rc<dyn Fn(&str)>;

/// Who hears of a repair made on the way ([`FsStore::report_repairs`]).
#[derive(Clone, Default)]
struct RepairReport(Option<Reporter>);

impl std::fmt::Debug for RepairReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "reported"
        } else {
            "unreported"
        })
    }
}

/// A user's state file and the rules for touching it.
#[derive(Debug, Clone)]
pub struct FsStore {
    anchor: PathBuf,
    dirs: Vec<OsString>,
    file: OsString,
    /// Who must own every directory below the anchor and every file.
    owner: Uid,
    /// Whose file-system identity to act with; `None`: the process's own (root-owned
    /// storage, read by the module as root).
    identity: Option<Identity>,
    in_home: bool,
    path: PathBuf,
    names: Names,
    /// The lock file beside the state, and its path for messages: made once, not at each
    /// of a login's two uses.
    lock_name: OsString,
    lock_path: PathBuf,
    last_parsed: ParseCache,
    /// What the read before prompting opened and checked: the login's locked
    /// read-decide-write starts from it, with one directory walk and one identity switch
    /// per login.
    kept: Kept,
    repairs: RepairReport,
}

/// Whether the counters file is opened to be written (under the lock) or only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    /// For writing if the file and its filesystem allow it, else for reading (a read before
    /// a change: what cannot be written is reported by the write, under the lock).
    WriteIfAllowed,
}

/// The counters file as opened.
struct OpenedCounters {
    file: File,
    id: FileId,
    size: u64,
    writable: bool,
}

impl FsStore {
    /// The store of `account` under the options' `secret=` template.
    pub fn for_account(options: &Options, account: &Account) -> Result<FsStore> {
        let template: &SecretPath = &options.secret;
        // A name that could walk out of its directory never comes from a sane passwd
        // database, but the name reached us from a remote client: check anyway.
        if account.name.contains('/') || account.name == "." || account.name == ".." {
            return Err(Error::UnknownUser(account.name.clone()));
        }
        let resolved = template.resolve(&account.name, &account.home)?;
        // With `%u` last in the file name, user "bob.lock" would get bob's lock file as its
        // state (and "bob.counters" bob's counters): enrolling it would replace them. No such
        // name is ever served; it is refused as unknown. (`%u.toml` can never collide.)
        let file = resolved.file.to_string_lossy();
        if [LOCK_SUFFIX, ".counters", ".tmp"]
            .iter()
            .any(|suffix| file.ends_with(suffix))
            || file.contains(".damaged-")
        {
            return Err(Error::UnknownUser(account.name.clone()));
        }
        // Sized once: a separator before each component.
        let length = resolved.anchor.as_os_str().len()
            + resolved.dirs.iter().map(|d| d.len() + 1).sum::<usize>()
            + resolved.file.len()
            + 1;
        let mut path = PathBuf::with_capacity(length);
        path.push(&resolved.anchor);
        path.extend(&resolved.dirs);
        path.push(&resolved.file);
        let names = Names::for_state_file(&path)
            .ok_or_else(|| Error::BadOption(format!("secret={}: no file name", path.display())))?;
        let (owner, identity) = if resolved.in_home {
            (account.uid, Some(account.identity()?))
        } else {
            // Root-owned storage: the module (root) reads it as itself; it must be root's.
            (Uid::effective(), None)
        };
        let (lock_name, lock_path) = lock_file_of(&path, &resolved.file);
        Ok(FsStore {
            anchor: resolved.anchor,
            dirs: resolved.dirs,
            file: resolved.file,
            owner,
            identity,
            in_home: resolved.in_home,
            path,
            names,
            lock_name,
            lock_path,
            last_parsed: ParseCache::default(),
            kept: Kept::default(),
            repairs: RepairReport::default(),
        })
    }

    /// Tells `report` of every repair an admin change makes on the way (a damaged newest
    /// counters record rewritten from the older one): what and where, never a secret.
    pub fn report_repairs(mut self, report: impl Fn(&str) + 'static) -> FsStore {
        self.repairs = RepairReport(Some(std::rc::Rc::new(report)));
        self
    }

    /// The state file's full path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn assume_identity(&self) -> Result<Option<IdentityGuard>> {
        self.identity.as_ref().map(Identity::assume).transpose()
    }

    fn sibling(&self, suffix: &str) -> OsString {
        let mut name = self.file.clone();
        name.push(suffix);
        name
    }

    fn path_of(&self, name: &OsStr) -> PathBuf {
        migrate_v1::sibling_path(&self.path, &self.file, name)
    }

    /// Opens the directory holding the state file: the anchor as given, then every
    /// component without following symlinks, each checked. `None` when one is missing.
    fn open_dirs(&self, create: Create) -> Result<Option<OwnedFd>> {
        let mut dir = match safe_fs::open_trusted_dir(&self.anchor) {
            Ok(fd) => fd,
            // A user without a home is simply not enrolled; a missing root-owned store is
            // the admin's mistake, and must not turn `nullok` into "everyone skips 2FA".
            Err(Errno::ENOENT) if self.in_home => return Ok(None),
            Err(e) => return Err(Error::io(&self.anchor, "open directory", e)),
        };
        let stat = safe_fs::inspect(&dir).map_err(|e| Error::io(&self.anchor, "inspect", e))?;
        if self.in_home {
            // Checked as sshd's StrictModes does; refused, never "not enrolled".
            let fix = match safe_fs::check_home(&stat, self.owner.as_raw()) {
                Ok(()) => None,
                Err(Violation::Owner { .. }) => Some(format!(
                    "chown {} {}",
                    self.owner_name(),
                    self.anchor.display()
                )),
                Err(_) => Some(format!("chmod go-w {}", self.anchor.display())),
            };
            if let Some(fix) = fix {
                return Err(Error::Unsafe {
                    path: self.anchor.clone(),
                    problem: format!(
                        "the home directory must belong to its user or root and be writable by nobody else (owner uid {}, mode {:o})",
                        stat.st_uid,
                        stat.st_mode & 0o7777
                    ),
                    fix,
                });
            }
        } else {
            // Private, not only unwritable: a readable directory tells every local user
            // who is enrolled and when each last tried. The module runs as root.
            let expect = Expect {
                kind: Kind::Any,
                owner: Owner::RootOr(self.owner.as_raw()),
                forbidden_mode: 0o077,
            };
            if safe_fs::check(&stat, &expect).is_err() {
                return Err(Error::Unsafe {
                    path: self.anchor.clone(),
                    problem: format!(
                        "the state directory must belong to root and be private to it (mode {:o})",
                        stat.st_mode & 0o7777
                    ),
                    fix: format!("chown root: {0} && chmod 700 {0}", self.anchor.display()),
                });
            }
        }
        let mut path = self.anchor.clone();
        for name in &self.dirs {
            path.push(name);
            let next = match safe_fs::open_dir_in(&dir, name) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create == Create::Yes => {
                    safe_fs::make_dir_in(&dir, name)
                        .map_err(|e| Error::io(&path, "create directory", e))?;
                    // The new entry is made durable in its parent before anything is written
                    // below it: after a power cut, a state file synced inside a directory
                    // whose entry was lost would read as "not enrolled" (nullok: no code).
                    nix::unistd::fsync(&dir)
                        .map_err(|e| Error::io(&path, "sync the parent of", e))?;
                    safe_fs::open_dir_in(&dir, name)
                        .map_err(|e| self.open_error(&dir, name, e, "open directory"))?
                }
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(self.open_error(&dir, name, e, "open directory")),
            };
            self.check_dir(&next, &path)?;
            dir = next;
        }
        Ok(Some(dir))
    }

    /// Reads and parses the state in `dir`; `None` if it does not exist. A v2 state's
    /// counters file is opened for `access` and kept open (the login's write goes through
    /// it, under the lock).
    fn read_in(&self, dir: &OwnedFd, access: Access) -> Result<Option<OnDisk>> {
        Ok(self
            .open_and_read(dir, access)?
            .map(|(on_disk, ..)| on_disk))
    }

    /// [`FsStore::read_in`], with the state file left open, and which file it is.
    fn open_and_read(
        &self,
        dir: &OwnedFd,
        access: Access,
    ) -> Result<Option<(OnDisk, File, FileId)>> {
        let fd = match safe_fs::open_file_in(dir, &self.file) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(dir, &self.file, e, "open")),
        };
        let stat = self.check_file(&fd, &self.path)?;
        let file = File::from(fd);
        let on_disk = self.read_opened(&file, &stat, || self.open_counters(dir, access))?;
        Ok(Some((on_disk, file, FileId::of(&stat))))
    }

    /// Parses the state file `file` (`stat`: its checked status); for v2, reads the
    /// counters that `counters` opens.
    fn read_opened(
        &self,
        file: &File,
        stat: &FileStat,
        counters: impl FnOnce() -> Result<Option<OpenedCounters>>,
    ) -> Result<OnDisk> {
        let bytes = match safe_fs::read_capped_from_start(file, stat.st_size as u64, MAX_STATE_SIZE)
        {
            Ok(bytes) => bytes,
            Err(ReadFailure::TooLarge) => {
                return Err(Error::corrupt(
                    &self.path,
                    format!("larger than {MAX_STATE_SIZE} bytes"),
                ));
            }
            Err(ReadFailure::Grew) => {
                return Err(Error::corrupt(&self.path, "grew while being read"));
            }
            Err(ReadFailure::Io(e)) => return Err(Error::io(&self.path, "read", e)),
        };
        let enrollment = match self.last_parsed.parse(bytes, &self.path)? {
            Parsed::V1(state) => return Ok(OnDisk::V1(state)),
            Parsed::V2(enrollment) => enrollment,
        };
        let counters_path = &self.names.counters_path;
        let Some(counters) = counters()? else {
            return Err(Error::corrupt(
                counters_path,
                "counters file is missing; logins are refused because the replay guard \
                 is lost: restore it from a backup, or (as root) run \
                 `pam-totp --user NAME disable` and enroll again",
            ));
        };
        let Found {
            picked: current,
            other_damaged,
        } = self
            .load_counters(&counters.file, counters.size, &enrollment.id)
            .map_err(|e| e.into_error(counters_path))?;
        // An HOTP enrollment without its counter has no replay guard; a TOTP one with a
        // counter is not what this build writes. Either is refused, never guessed at.
        let has_counter = current.record.counters.hotp_counter.is_some();
        if has_counter != (enrollment.kind == crate::otp::Kind::Hotp) {
            return Err(Error::corrupt(
                counters_path,
                format!(
                    "the counters do not match the enrollment ({} {} an HOTP counter)",
                    enrollment.kind.as_str(),
                    if has_counter { "with" } else { "without" }
                ),
            ));
        }
        Ok(OnDisk::V2(V2 {
            enrollment,
            counters: counters.file,
            counters_id: counters.id,
            writable: counters.writable,
            current,
            other_damaged,
        }))
    }

    /// Opens the counters file beside the state, as checked as the state file itself and
    /// with one link only, with its size; `None` if it does not exist.
    fn open_counters(&self, dir: &OwnedFd, access: Access) -> Result<Option<OpenedCounters>> {
        let name = &self.names.counters;
        let path = &self.names.counters_path;
        let (opened, writable) = match access {
            Access::Read => (safe_fs::open_file_in(dir, name), false),
            Access::Write => (safe_fs::open_rw_in(dir, name), true),
            Access::WriteIfAllowed => match safe_fs::open_rw_in(dir, name) {
                Ok(fd) => (Ok(fd), true),
                Err(Errno::EACCES | Errno::EPERM | Errno::EROFS | Errno::ETXTBSY) => {
                    (safe_fs::open_file_in(dir, name), false)
                }
                Err(e) => (Err(e), false),
            },
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(dir, name, e, "open")),
        };
        let stat = self.check_file(&fd, path)?;
        self.check_counters_links(&stat)?;
        Ok(Some(OpenedCounters {
            file: File::from(fd),
            id: FileId::of(&stat),
            size: stat.st_size as u64,
            writable,
        }))
    }

    /// The counters file has one name only (checked with its owner and mode).
    fn check_counters_links(&self, stat: &FileStat) -> Result<()> {
        if stat.st_nlink != 1 {
            let path = &self.names.counters_path;
            return Err(Error::Unsafe {
                problem: format!("has {} hard links, not 1", stat.st_nlink),
                fix: format!("remove the other links to {}", path.display()),
                path: path.clone(),
            });
        }
        Ok(())
    }

    /// The current record of enrollment `expected` in the counters file (`size`: from the
    /// fstat that checked it).
    fn load_counters(
        &self,
        file: &File,
        size: u64,
        expected: &EnrollmentId,
    ) -> std::result::Result<Found, CountersError> {
        let both = counters_file::read_both(file, size)?;
        self.last_parsed.pick(both, expected)
    }
}

impl Backend for FsStore {
    fn location(&self) -> &Path {
        &self.path
    }

    fn note_repair(&self, note: &str) {
        if let Some(report) = &self.repairs.0 {
            report(note);
        }
    }

    /// Reads the state without locking; `None` if not enrolled.
    fn load(&self) -> Result<Option<State>> {
        self.load_keeping(Access::Read)
    }

    /// Reads the state without locking before a change (a login's prompt, then its locked
    /// cycle), keeping a v2 state's files open for it.
    fn load_for_change(&self) -> Result<Option<State>> {
        self.load_keeping(Access::WriteIfAllowed)
    }

    /// Takes the lock for a read-decide-write cycle, waiting at most [`LOCK_WAIT`]. Errors
    /// with `NotEnrolled` if the directory does not exist, unless `create` (enrollment)
    /// makes it, mode 0700.
    fn lock(&self, create: Create) -> Result<Box<dyn Locked + '_>> {
        let (lock_name, lock_path) = (&self.lock_name, &self.lock_path);
        let deadline = Instant::now() + LOCK_WAIT;
        let kept = self.kept.take();
        let walked = match kept {
            Some(KeptDir {
                dir,
                files: Some(files),
            }) => {
                // Opened as the user before prompting: locked and read through as they
                // are, with no second switch to the user's identity, if the lock file is
                // still the one under its name.
                let lock = HeldLock::take(files.lock, lock_path, deadline)?;
                if self.still_the_lock(&dir, lock_name, files.lock_id, lock_path)? {
                    return Ok(Box::new(FsLocked {
                        store: self,
                        dir,
                        read: RefCell::new(None),
                        kept: RefCell::new(Some(files.reads)),
                        kept_state: RefCell::new(None),
                        _lock: lock,
                        kept_lock: Some(files.lock_id),
                        as_user: AsUser::default(),
                    }));
                }
                Some(dir)
            }
            Some(KeptDir { dir, files: None }) => Some(dir),
            None => None,
        };
        let mut as_user = self.assume_identity()?;
        let dir = with_groups_if_refused(&mut as_user, || {
            match walked.as_ref().map(OwnedFd::try_clone) {
                Some(Ok(dir)) => Ok(dir),
                _ => self
                    .open_dirs(create)?
                    .ok_or_else(|| Error::NotEnrolled(self.path.clone())),
            }
        })?;
        for _ in 0..LOCK_ATTEMPTS {
            let (lock, lock_id) = with_groups_if_refused(&mut as_user, || {
                let lock = safe_fs::open_lock_in(&dir, lock_name)
                    .map_err(|e| self.open_error(&dir, lock_name, e, "open lock file"))?;
                let stat = self.check_file(&lock, lock_path)?;
                Ok((lock, FileId::of(&stat)))
            })?;
            let lock = HeldLock::take(lock, lock_path, deadline)?;
            // Removed or replaced while this waited (by the user, or a stopped holder's
            // file removed by hand): whoever opens the name now would not be kept out.
            // Lock the file under the name instead.
            if self.still_the_lock(&dir, lock_name, lock_id, lock_path)? {
                return Ok(Box::new(FsLocked {
                    store: self,
                    dir,
                    read: RefCell::new(None),
                    kept: RefCell::new(None),
                    kept_state: RefCell::new(None),
                    _lock: lock,
                    kept_lock: None,
                    as_user: AsUser::assumed(as_user),
                }));
            }
        }
        Err(Error::io(
            lock_path,
            "lock (the lock file was replaced each time it was locked)",
            Errno::EAGAIN,
        ))
    }
}

/// The lock file's name beside the state file `file` at `path`, and its path.
fn lock_file_of(path: &Path, file: &OsStr) -> (OsString, PathBuf) {
    let mut name = file.to_owned();
    name.push(LOCK_SUFFIX);
    let path = migrate_v1::sibling_path(path, file, &name);
    (name, path)
}

/// Runs `access` as the user with the primary group; if that was refused (EACCES), once
/// more with the user's supplementary groups too (a home or directory that only a group
/// of the user may enter). Most logins never resolve the group list.
fn with_groups_if_refused<T>(
    as_user: &mut Option<IdentityGuard>,
    access: impl Fn() -> Result<T>,
) -> Result<T> {
    let result = access();
    let refused = matches!(
        &result,
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EACCES)
    );
    if refused
        && let Some(guard) = as_user.as_mut()
        && guard.widen()?
    {
        return access();
    }
    result
}

/// Reads the state at `path`, in either version, as the process: for tests and
/// diagnostics that look at a state from outside. The directory must belong to the owner
/// of the state; every other check of a login applies.
pub fn read_state_file(path: &Path) -> Result<Option<State>> {
    let names = Names::for_state_file(path)
        .ok_or_else(|| Error::BadOption(format!("{}: no file name", path.display())))?;
    let anchor = path.parent().unwrap_or(Path::new("/")).to_owned();
    let dir = safe_fs::open_trusted_dir(&anchor).map_err(|e| Error::io(&anchor, "open", e))?;
    let owner = safe_fs::inspect(&dir)
        .map_err(|e| Error::io(&anchor, "inspect", e))?
        .st_uid;
    let (lock_name, lock_path) = lock_file_of(path, &names.state);
    let store = FsStore {
        anchor,
        dirs: Vec::new(),
        file: names.state.clone(),
        owner: Uid::from_raw(owner),
        identity: None,
        in_home: true,
        path: path.to_owned(),
        names,
        lock_name,
        lock_path,
        last_parsed: ParseCache::default(),
        kept: Kept::default(),
        repairs: RepairReport::default(),
    };
    store.load()
}
