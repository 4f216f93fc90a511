//! The filesystem store: one state file per user.
//!
//! - The path comes from the `secret=` template ([`SecretPath`]). The part fixed by the admin
//!   (the home, or the template's prefix before the first `%`) is opened as is; every
//!   component below it is opened with O_NOFOLLOW and checked for owner and mode
//!   ([`safe_fs`]).
//! - Files below a home are touched as the user ([`Identity::assume`]); root-owned storage
//!   is touched as the process and must belong to it.
//! - A change is made under an OFD lock on a separate lock file: read, decide, write a temp
//!   file (O_EXCL|O_NOFOLLOW), fsync it, rename it over the state, fsync the directory. A
//!   crash leaves the old state or the new one; a crashed holder's lock dies with its file
//!   descriptor, and a stale temp file is removed by the next writer.

use super::transaction::{Backend, Create, Locked};
use crate::config::{Options, SecretPath};
use crate::error::{Error, Result};
use crate::privileges::{Account, Identity, IdentityGuard};
use crate::safe_fs::{self, Expect, Kind, OpenFailure, Owner, ReadFailure, Violation};
use crate::state::State;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl, renameat};
use nix::unistd::{Uid, UnlinkatFlags, fsync, linkat, unlinkat};
use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// No state file is anywhere near this; a larger one is refused before it is read.
pub(crate) const MAX_STATE_SIZE: u64 = 64 * 1024;
const LOCK_SUFFIX: &str = ".lock";
const TEMP_SUFFIX: &str = ".tmp";

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
    last_parsed: ParseCache,
}

/// The last bytes read and what they parsed to. A login reads the state twice (before
/// prompting, then under the lock); when nothing changed in between, the second read
/// skips parsing and validating it again.
#[derive(Default)]
struct ParseCache(RefCell<Option<(Zeroizing<Vec<u8>>, State)>>);

impl ParseCache {
    fn parse(&self, bytes: Zeroizing<Vec<u8>>, path: &Path) -> Result<State> {
        if let Some((cached, state)) = &*self.0.borrow()
            && **cached == *bytes
        {
            return Ok(state.clone());
        }
        let state = State::parse(&bytes, path)?;
        *self.0.borrow_mut() = Some((bytes, state.clone()));
        Ok(state)
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
        let mut path = resolved.anchor.clone();
        path.extend(&resolved.dirs);
        path.push(&resolved.file);
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
            last_parsed: ParseCache::default(),
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

    /// Reads and parses the state file in `dir`; `None` if it does not exist.
    fn read_in(&self, dir: &OwnedFd) -> Result<Option<State>> {
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
        self.last_parsed.parse(bytes, &self.path).map(Some)
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
        let _as_user = self.assume_identity()?;
        let Some(dir) = self.open_dirs(Create::No)? else {
            return Ok(None);
        };
        self.read_in(&dir)
    }

    /// Takes the lock for a read-decide-write cycle. Errors with `NotEnrolled` if the
    /// directory does not exist, unless `create` (enrollment) makes it, mode 0700.
    fn lock(&self, create: Create) -> Result<Box<dyn Locked + '_>> {
        let as_user = self.assume_identity()?;
        let dir = self
            .open_dirs(create)?
            .ok_or_else(|| Error::NotEnrolled(self.path.clone()))?;
        let lock_name = self.sibling(LOCK_SUFFIX);
        let lock_path = self.path_of(&lock_name);
        let lock = safe_fs::open_lock_in(&dir, &lock_name)
            .map_err(|e| self.open_error(&dir, &lock_name, e, "open lock file"))?;
        self.check_file(&lock, &lock_path)?;
        let whole_file = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        loop {
            match fcntl(&lock, FcntlArg::F_OFD_SETLKW(&whole_file)) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::io(&lock_path, "lock", e)),
            }
        }
        Ok(Box::new(FsLocked {
            store: self,
            dir,
            _lock: lock,
            _as_user: as_user,
        }))
    }
}

/// The store under its lock. Reading, writing and removing happen here only; the lock and
/// the user identity are released when this is dropped.
struct FsLocked<'a> {
    store: &'a FsStore,
    dir: OwnedFd,
    _lock: OwnedFd,
    // Last: fields drop in order, so the identity is restored after the files are closed.
    _as_user: Option<IdentityGuard>,
}

impl Locked for FsLocked<'_> {
    fn read(&self) -> Result<Option<State>> {
        self.store.read_in(&self.dir)
    }

    /// Replaces the state atomically: temp file, fsync, rename, fsync of the directory.
    /// On error the old state is intact and the temp file gone.
    fn write(&self, state: &State) -> Result<()> {
        let text = state.to_toml()?;
        let temp = self.store.sibling(TEMP_SUFFIX);
        let temp_path = self.store.path_of(&temp);
        // Under the lock no one else writes, so a temp file here is a crash's leftover.
        match unlinkat(&self.dir, temp.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::io(&temp_path, "remove stale", e)),
        }
        let fd = safe_fs::create_new_in(&self.dir, &temp)
            .map_err(|e| Error::io(&temp_path, "create", e))?;
        let result = write_durably(File::from(fd), text.as_bytes(), &temp_path).and_then(|()| {
            renameat(
                &self.dir,
                temp.as_os_str(),
                &self.dir,
                self.store.file.as_os_str(),
            )
            .map_err(|e| Error::io(&self.store.path, "replace", e))?;
            fsync(&self.dir).map_err(|e| {
                Error::io(
                    self.store.path.parent().unwrap_or(Path::new("/")),
                    "sync",
                    e,
                )
            })
        });
        if result.is_err() {
            let _ = unlinkat(&self.dir, temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
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

    /// Removes the state file (the lock file stays: removing it would race other lockers).
    fn remove(&self) -> Result<bool> {
        match unlinkat(
            &self.dir,
            self.store.file.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::io(&self.store.path, "remove", e)),
        }
        fsync(&self.dir).map_err(|e| Error::io(&self.store.path, "sync directory of", e))?;
        Ok(true)
    }
}

fn write_durably(mut file: File, bytes: &[u8], path: &Path) -> Result<()> {
    file.write_all(bytes)
        .map_err(|e| Error::io(path, "write", e))?;
    file.sync_all().map_err(|e| Error::io(path, "sync", e))
}
