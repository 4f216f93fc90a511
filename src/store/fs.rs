//! The filesystem store: one state per user, in state format v2 (two files) or v1 (one).
//!
//! - The path comes from the `secret=` template ([`SecretPath`]). The part fixed by the admin
//!   (the home, or the template's prefix before the first `%`) is opened as is; every
//!   component below it is opened with O_NOFOLLOW and checked for owner and mode
//!   ([`safe_fs`]).
//! - Files below a home are touched as the user ([`Identity::assume`]); root-owned storage
//!   is touched as the process and must belong to it.
//! - Every change is made under an OFD lock on a separate lock file, waited for at most
//!   [`LOCK_WAIT`]. A login changes only the counters: one pwrite of a 4 KiB record over
//!   the older of the two in the counters file, then fdatasync, before it returns
//!   ([`counters_file`]). Enroll, new recovery codes and the conversion of a v1 state write
//!   a new enrollment ([`migrate_v1::replace_enrollment`]): counters first, then the
//!   enrollment file by temp file, fsync, rename, fsync of the directory. A crash leaves the
//!   old state or the new one; a crashed holder's lock dies with its file descriptor, and a
//!   stale temp file (or directory) is removed, or stepped around, by the next writer.

use super::counters_file::{self, CountersError};
use super::migrate_v1::{self, CountersTarget, Names, Step};
use super::transaction::{Backend, Create, Locked};
use crate::config::{Options, SecretPath};
use crate::error::{Error, Result};
use crate::privileges::{Account, Identity, IdentityGuard};
use crate::safe_fs::{self, Expect, Kind, OpenFailure, Owner, ReadFailure, Violation};
use crate::state::State;
use crate::state::counters_v2::{Counters, EnrollmentId, Picked, RECORD_SIZE, RecoveryId, pick};
use crate::state::enrollment_v2::{self, Enrollment};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::unistd::{Uid, UnlinkatFlags, fsync, linkat, unlinkat};
use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// No state file is anywhere near this; a larger one is refused before it is read.
pub(crate) const MAX_STATE_SIZE: u64 = 64 * 1024;
const LOCK_SUFFIX: &str = ".lock";
/// How long a change waits for another holder of the lock (a login takes milliseconds; a
/// stopped or hung holder must not block every later login of the user; 16 recovery-code
/// logins of one user at once, one argon2 check each under the lock, fit on a loaded machine).
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(10);

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
    last_parsed: ParseCache,
    /// The state's directory as the read before prompting opened and checked it: the
    /// login's locked read-decide-write then starts from it, one directory walk per login.
    walked: WalkedDir,
}

#[derive(Debug, Default)]
struct WalkedDir(RefCell<Option<OwnedFd>>);

impl Clone for WalkedDir {
    fn clone(&self) -> Self {
        WalkedDir::default()
    }
}

/// A state file's contents, parsed: a whole v1 state, or a v2 enrollment.
#[derive(Clone)]
enum Parsed {
    V1(State),
    V2(Enrollment),
}

/// What was read: the state, and for v2 the counters file open and its current record.
enum OnDisk {
    V1(State),
    V2(V2),
}

struct V2 {
    enrollment: Enrollment,
    counters: File,
    current: Picked,
}

impl V2 {
    /// The model: the enrollment with the counters applied (burned codes left out).
    fn state(&self) -> State {
        let counters = &self.current.record.counters;
        State {
            secret: self.enrollment.secret.clone(),
            algorithm: self.enrollment.algorithm,
            digits: self.enrollment.digits,
            period: self.enrollment.period,
            last_step: counters.last_step,
            throttle: counters.throttle.clone(),
            last_success: counters.last_success,
            recovery_codes: self
                .enrollment
                .recovery_codes
                .iter()
                .filter(|code| !counters.burned().iter().any(|b| b.as_str() == code.id))
                .cloned()
                .collect(),
        }
    }

    /// The counters that make `state` out of this enrollment, or `None` when `state` is
    /// another enrollment (new secret, parameters or recovery codes): that is a new
    /// enrollment file. Codes missing from `state` are burned; none can come back.
    fn counters_for(&self, state: &State) -> Option<Counters> {
        let e = &self.enrollment;
        if state.secret != e.secret
            || state.algorithm != e.algorithm
            || state.digits != e.digits
            || state.period != e.period
            || !state
                .recovery_codes
                .iter()
                .all(|code| e.recovery_codes.contains(code))
        {
            return None;
        }
        let mut counters = self.current.record.counters.clone();
        counters.last_step = state.last_step;
        counters.throttle = state.throttle.clone();
        counters.last_success = state.last_success;
        for code in &e.recovery_codes {
            if state.recovery_codes.contains(code) {
                continue;
            }
            // Gone from `state`: used up. The counters burn by id, and two imported scratch
            // codes may share one: burning the id would kill the other as well, and not
            // burning it would let this one in again. Such a code is taken out of the
            // enrollment file itself instead (a new enrollment file, `None`).
            if state.recovery_codes.iter().any(|c| c.id == code.id) {
                return None;
            }
            // The enrollment holds at most as many codes as the list has room for.
            counters.burn(RecoveryId::parse(&code.id)?).ok()?;
        }
        Some(counters)
    }
}

/// The last bytes read and what they parsed to. A login reads the state twice (before
/// prompting, then under the lock); when nothing changed in between, the second read
/// skips parsing and validating it again (the enrollment's TOML, the counters' checksums).
#[derive(Default)]
struct ParseCache {
    state: RefCell<Option<(Zeroizing<Vec<u8>>, Parsed)>>,
    counters: RefCell<Option<(Vec<u8>, EnrollmentId, Picked)>>,
}

impl ParseCache {
    fn parse(&self, bytes: Zeroizing<Vec<u8>>, path: &Path) -> Result<Parsed> {
        if let Some((cached, parsed)) = &*self.state.borrow()
            && **cached == *bytes
        {
            return Ok(parsed.clone());
        }
        // Everything this build writes starts with its version line: no second parse to
        // tell the versions apart.
        let parsed = if bytes.starts_with(b"version = 2\n") {
            Parsed::V2(Enrollment::parse(&bytes, path)?)
        } else {
            match State::parse(&bytes, path) {
                Ok(state) => Parsed::V1(state),
                Err(e) => match enrollment_v2::file_version(&bytes) {
                    Some(enrollment_v2::VERSION) => Parsed::V2(Enrollment::parse(&bytes, path)?),
                    _ => return Err(e),
                },
            }
        };
        *self.state.borrow_mut() = Some((bytes, parsed.clone()));
        Ok(parsed)
    }

    fn pick(
        &self,
        bytes: Vec<u8>,
        expected: &EnrollmentId,
    ) -> std::result::Result<Picked, CountersError> {
        if let Some((cached, id, picked)) = &*self.counters.borrow()
            && *cached == bytes
            && id == expected
        {
            return Ok(picked.clone());
        }
        let (a, b) = bytes.split_at(RECORD_SIZE);
        let picked = pick(a, b, expected).map_err(CountersError::NoRecord)?;
        *self.counters.borrow_mut() = Some((bytes, *expected, picked.clone()));
        Ok(picked)
    }
}

impl Clone for ParseCache {
    fn clone(&self) -> Self {
        ParseCache::default()
    }
}

/// Never prints the cached bytes: they hold the secret.
impl std::fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParseCache")
    }
}

/// Whether the counters file is opened to be written (under the lock) or only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
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
        let mut path = resolved.anchor.clone();
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
        Ok(FsStore {
            anchor: resolved.anchor,
            dirs: resolved.dirs,
            file: resolved.file,
            owner,
            identity,
            in_home: resolved.in_home,
            path,
            names,
            last_parsed: ParseCache::default(),
            walked: WalkedDir::default(),
        })
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
        self.path.with_file_name(name)
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
        let fd = match safe_fs::open_file_in(dir, &self.file) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(dir, &self.file, e, "open")),
        };
        let stat = self.check_file(&fd, &self.path)?;
        let bytes = match safe_fs::read_capped(fd, stat.st_size as u64, MAX_STATE_SIZE) {
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
            Parsed::V1(state) => return Ok(Some(OnDisk::V1(state))),
            Parsed::V2(enrollment) => enrollment,
        };
        let counters_path = self.names.path_of(&self.names.counters);
        let counters = match self.open_counters(dir, access)? {
            Some(file) => file,
            None => {
                return Err(Error::corrupt(
                    &counters_path,
                    "counters file is missing; logins are refused because the replay guard \
                     is lost: restore it from a backup, or (as root) run \
                     `pam-totp --user NAME disable` and enroll again",
                ));
            }
        };
        let current = self
            .load_counters(&counters, &enrollment.id)
            .map_err(|e| e.into_error(&counters_path))?;
        Ok(Some(OnDisk::V2(V2 {
            enrollment,
            counters,
            current,
        })))
    }

    /// Opens the counters file beside the state, as checked as the state file itself and
    /// with one link only; `None` if it does not exist.
    fn open_counters(&self, dir: &OwnedFd, access: Access) -> Result<Option<File>> {
        let name = &self.names.counters;
        let path = self.names.path_of(name);
        let opened = match access {
            Access::Read => safe_fs::open_file_in(dir, name),
            Access::Write => safe_fs::open_rw_in(dir, name),
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(dir, name, e, "open")),
        };
        let stat = self.check_file(&fd, &path)?;
        if stat.st_nlink != 1 {
            return Err(Error::Unsafe {
                problem: format!("has {} hard links, not 1", stat.st_nlink),
                fix: format!("remove the other links to {}", path.display()),
                path,
            });
        }
        Ok(Some(File::from(fd)))
    }

    /// The current record of enrollment `expected` in the counters file.
    fn load_counters(
        &self,
        file: &File,
        expected: &EnrollmentId,
    ) -> std::result::Result<Picked, CountersError> {
        let both = counters_file::read_both(file)?;
        self.last_parsed.pick(both, expected)
    }

    fn check_dir(&self, fd: &OwnedFd, path: &Path) -> Result<()> {
        let stat = safe_fs::inspect(fd).map_err(|e| Error::io(path, "inspect", e))?;
        let expect = Expect {
            kind: Kind::Any,
            owner: Owner::Is(self.owner.as_raw()),
            forbidden_mode: 0o022,
        };
        match safe_fs::check(&stat, &expect) {
            Ok(()) => Ok(()),
            Err(Violation::Owner { uid }) => Err(self.wrong_owner(path, uid)),
            // Kind::Any: a directory is refused for its owner or its mode only.
            Err(Violation::Mode { .. } | Violation::NotRegular | Violation::HardLinks { .. }) => {
                Err(Error::Unsafe {
                    path: path.to_owned(),
                    problem: format!(
                        "directory is writable by group or others (mode {:o})",
                        stat.st_mode & 0o7777
                    ),
                    fix: format!("chmod 700 {}", path.display()),
                })
            }
        }
    }

    fn check_file(&self, fd: &OwnedFd, path: &Path) -> Result<nix::sys::stat::FileStat> {
        let stat = safe_fs::inspect(fd).map_err(|e| Error::io(path, "inspect", e))?;
        let expect = Expect {
            kind: Kind::RegularFile,
            owner: Owner::Is(self.owner.as_raw()),
            forbidden_mode: 0o077,
        };
        match safe_fs::check(&stat, &expect) {
            Ok(()) => Ok(stat),
            Err(Violation::NotRegular) => Err(safe_fs::not_regular_refusal(
                path,
                format!("remove {} and enroll again", path.display()),
            )),
            Err(Violation::HardLinks { links }) => Err(safe_fs::hard_links_refusal(path, links)),
            Err(Violation::Owner { uid }) => Err(self.wrong_owner(path, uid)),
            Err(Violation::Mode { mode }) => Err(Error::Unsafe {
                path: path.to_owned(),
                problem: format!("readable or writable by group or others (mode {mode:o})"),
                fix: format!("chmod 600 {}", path.display()),
            }),
        }
    }

    fn owner_name(&self) -> String {
        Account::by_uid(self.owner)
            .ok()
            .flatten()
            .map_or_else(|| self.owner.to_string(), |a| a.name)
    }

    fn wrong_owner(&self, path: &Path, uid: u32) -> Error {
        let owner = self.owner_name();
        Error::Unsafe {
            path: path.to_owned(),
            problem: format!("owned by uid {uid}, not by {owner}"),
            fix: format!("chown {owner} {}", path.display()),
        }
    }

    /// Names what went wrong opening `name` in `dir`: a symlink gets its own message.
    fn open_error(&self, dir: &OwnedFd, name: &OsStr, errno: Errno, action: &'static str) -> Error {
        let path = self.path_of_component(name);
        match safe_fs::why_not_opened(dir, name, errno, self.owner.as_raw()) {
            OpenFailure::Link => Error::Unsafe {
                problem: "is a symbolic link; state is never read through a link".into(),
                fix: format!("replace {} with the real directory or file", path.display()),
                path,
            },
            OpenFailure::Owner { uid } => self.wrong_owner(&path, uid),
            OpenFailure::HardLinks { links } => safe_fs::hard_links_refusal(&path, links),
            OpenFailure::NotRegular => safe_fs::not_regular_refusal(
                &path,
                format!("remove {} and enroll again", path.display()),
            ),
            OpenFailure::NotDirectory => Error::Unsafe {
                problem: "is not a directory".into(),
                fix: format!("remove {}", path.display()),
                path,
            },
            OpenFailure::Other(errno) => Error::io(path, action, errno),
        }
    }

    fn path_of_component(&self, name: &OsStr) -> PathBuf {
        // The component is either one of our directories or a file in the last one.
        let mut path = self.anchor.clone();
        for dir in &self.dirs {
            path.push(dir);
            if dir == name {
                return path;
            }
        }
        path.push(name);
        path
    }
}

impl Backend for FsStore {
    fn location(&self) -> &Path {
        &self.path
    }

    /// Reads the state without locking (to decide before prompting); `None` if not enrolled.
    fn load(&self) -> Result<Option<State>> {
        // A walk that fails leaves nothing for `lock` to reuse: only a directory that passed
        // its checks in this very read is kept.
        self.walked.0.borrow_mut().take();
        let mut as_user = self.assume_identity()?;
        with_groups_if_refused(&mut as_user, || {
            let Some(dir) = self.open_dirs(Create::No)? else {
                return Ok(None);
            };
            let read = self.read_in(&dir, Access::Read);
            *self.walked.0.borrow_mut() = Some(dir);
            let walked = self.walked.0.borrow();
            let Some(dir) = walked.as_ref() else {
                return Err(Error::Internal("directory just kept is gone".into()));
            };
            match read {
                Ok(read) => Ok(read.map(|on_disk| on_disk.state())),
                // Without the lock, a change may have replaced the enrollment between the
                // reads of the two files, or two logins may have written both blocks during
                // the read: read once more before calling the counters bad. Never under the
                // lock.
                Err(Error::Corrupt { .. }) => {
                    Ok(self.read_in(dir, Access::Read)?.map(|d| d.state()))
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Takes the lock for a read-decide-write cycle, waiting at most [`LOCK_WAIT`]. Errors
    /// with `NotEnrolled` if the directory does not exist, unless `create` (enrollment)
    /// makes it, mode 0700.
    fn lock(&self, create: Create) -> Result<Box<dyn Locked + '_>> {
        let mut as_user = self.assume_identity()?;
        let lock_name = self.sibling(LOCK_SUFFIX);
        let lock_path = self.path_of(&lock_name);
        let walked = self.walked.0.borrow_mut().take();
        let (dir, lock) = with_groups_if_refused(&mut as_user, || {
            let dir = match walked.as_ref().map(OwnedFd::try_clone) {
                Some(Ok(dir)) => dir,
                _ => self
                    .open_dirs(create)?
                    .ok_or_else(|| Error::NotEnrolled(self.path.clone()))?,
            };
            let lock = safe_fs::open_lock_in(&dir, &lock_name)
                .map_err(|e| self.open_error(&dir, &lock_name, e, "open lock file"))?;
            self.check_file(&lock, &lock_path)?;
            Ok((dir, lock))
        })?;
        take_lock(&lock, &lock_path, LOCK_WAIT)?;
        Ok(Box::new(FsLocked {
            store: self,
            dir,
            read: RefCell::new(None),
            _lock: lock,
            _as_user: as_user,
        }))
    }
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

/// Takes the OFD write lock on `lock`, polling with a growing pause for at most `wait`.
fn take_lock(lock: &OwnedFd, path: &Path, wait: Duration) -> Result<()> {
    let whole_file = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_micros(200);
    loop {
        match fcntl(lock, FcntlArg::F_OFD_SETLK(&whole_file)) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {}
            Err(e) => return Err(Error::io(path, "lock", e)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::io(
                path,
                "lock (another process has held it for 10 s; a stopped login?)",
                Errno::ETIMEDOUT,
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

impl OnDisk {
    fn state(&self) -> State {
        match self {
            OnDisk::V1(state) => state.clone(),
            OnDisk::V2(v2) => v2.state(),
        }
    }
}

/// The store under its lock. Reading, writing and removing happen here only; the lock and
/// the user identity are released when this is dropped.
struct FsLocked<'a> {
    store: &'a FsStore,
    dir: OwnedFd,
    /// What the last `read` found: a write that only changes counters goes through it.
    read: RefCell<Option<OnDisk>>,
    _lock: OwnedFd,
    // Last: fields drop in order, so the identity is restored after the files are closed.
    _as_user: Option<IdentityGuard>,
}

impl Locked for FsLocked<'_> {
    fn read(&self) -> Result<Option<State>> {
        let on_disk = self.store.read_in(&self.dir, Access::Write)?;
        let state = on_disk.as_ref().map(OnDisk::state);
        *self.read.borrow_mut() = on_disk;
        Ok(state)
    }

    /// Records `state`. The counters of the enrollment just read: one pwrite + fdatasync.
    /// Anything else (v1, a new enrollment, new recovery codes): a new enrollment, crash-safe.
    /// On error the old state is intact.
    fn write(&self, state: &State) -> Result<()> {
        let store = self.store;
        if self.read.borrow().is_none() {
            // Enroll writes without reading: look at what is there, damaged or not, to
            // know where the new counters may go without breaking the old ones.
            let _ = self.read();
        }
        let mut read = self.read.borrow_mut();
        if let Some(OnDisk::V2(v2)) = &mut *read
            && let Some(counters) = v2.counters_for(state)
        {
            let path = store.names.path_of(&store.names.counters);
            v2.current = counters_file::update(&v2.counters, &v2.current, counters)
                .map_err(|e| e.into_error(&path))?;
            return Ok(());
        }
        let target = match &*read {
            Some(OnDisk::V2(v2)) => CountersTarget::InPlace {
                file: &v2.counters,
                keep: v2.current.slot,
            },
            _ => CountersTarget::New,
        };
        let written =
            migrate_v1::replace_enrollment(&self.dir, &store.names, state, target, Step::Done);
        // Whatever happened, the next write reads again.
        *read = None;
        written
    }

    /// A second hard link to the state file (the same file: owner and mode kept), made new;
    /// the state itself is then replaced or removed as usual.
    fn keep_aside(&self, suffix: &str) -> Result<PathBuf> {
        // Never over an earlier copy (two in the same second): `-1`, `-2`, ... after it.
        for attempt in 0..100 {
            let suffix = match attempt {
                0 => suffix.to_owned(),
                n => format!("{suffix}-{n}"),
            };
            let name = self.store.sibling(&suffix);
            let path = self.store.path_of(&name);
            match linkat(
                &self.dir,
                self.store.file.as_os_str(),
                &self.dir,
                name.as_os_str(),
                nix::fcntl::AtFlags::empty(),
            ) {
                Ok(()) => {
                    fsync(&self.dir).map_err(|e| Error::io(&path, "sync directory of", e))?;
                    return Ok(path);
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(Error::io(&path, "create", e)),
            }
        }
        Err(Error::Internal("too many damaged copies kept aside".into()))
    }

    /// Removes the state: the enrollment file (the commit point), then its counters (the
    /// lock file stays: removing it would race other lockers).
    fn remove(&self) -> Result<bool> {
        *self.read.borrow_mut() = None;
        let store = self.store;
        match unlinkat(
            &self.dir,
            store.file.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::io(&store.path, "remove", e)),
        }
        fsync(&self.dir).map_err(|e| Error::io(&store.path, "sync directory of", e))?;
        // Left behind, it would be ignored (no enrollment names its id); remove it anyway.
        let _ = unlinkat(
            &self.dir,
            store.names.counters.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        Ok(true)
    }
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
    let store = FsStore {
        anchor,
        dirs: Vec::new(),
        file: names.state.clone(),
        owner: Uid::from_raw(owner),
        identity: None,
        in_home: true,
        path: path.to_owned(),
        names,
        last_parsed: ParseCache::default(),
        walked: WalkedDir::default(),
    };
    store.load()
}
