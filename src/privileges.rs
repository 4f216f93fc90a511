//! Acting as the user when touching the user's files.
//!
//! The module runs as root inside sshd or sudo. Files in a user's home are opened with the
//! user's file-system identity (setfsuid/setfsgid and the user's supplementary groups), so
//! root-squashing NFS homes work, and a user cannot trick root into reading or writing a
//! file the user could not. These calls change only the calling thread: all file access of
//! one operation happens on the thread that holds the guard.

use crate::error::{Error, Result};
use crate::sys;
use nix::errno::Errno;
use nix::unistd::{Gid, Uid, User, getgrouplist, setfsgid, setfsuid};
use std::ffi::CString;
use std::marker::PhantomData;
use std::path::PathBuf;

/// A user from the passwd database (never from `$HOME`).
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

impl Account {
    /// Looks the user up by name; `Ok(None)` when there is no such user.
    pub fn by_name(name: &str) -> Result<Option<Account>> {
        if name.is_empty() || name.contains('\0') {
            return Ok(None);
        }
        match User::from_name(name) {
            Ok(user) => Ok(user.map(Account::from)),
            Err(errno) if means_not_found(errno) => Ok(None),
            Err(errno) => Err(Error::Internal(format!(
                "looking up user {name:?} in the passwd database: {errno}"
            ))),
        }
    }

    pub fn by_uid(uid: Uid) -> Result<Option<Account>> {
        match User::from_uid(uid) {
            Ok(user) => Ok(user.map(Account::from)),
            Err(errno) if means_not_found(errno) => Ok(None),
            Err(errno) => Err(Error::Internal(format!(
                "looking up uid {uid} in the passwd database: {errno}"
            ))),
        }
    }

    /// The identity to assume for this user's files: uid, gid and supplementary groups.
    pub fn identity(&self) -> Result<Identity> {
        let name =
            CString::new(self.name.as_str()).map_err(|_| Error::UnknownUser(self.name.clone()))?;
        let groups = getgrouplist(&name, self.gid)
            .map_err(|errno| Error::Privileges(format!("groups of {}: {errno}", self.name)))?;
        Ok(Identity {
            uid: self.uid,
            gid: self.gid,
            groups: groups.into_iter().map(Gid::as_raw).collect(),
        })
    }
}

/// Where users are looked up: the passwd database ([`PasswdDatabase`]), or a test's own.
pub trait Accounts {
    /// `Ok(None)` when there is no such user.
    fn by_name(&self, name: &str) -> Result<Option<Account>>;
    fn by_uid(&self, uid: Uid) -> Result<Option<Account>>;
}

/// The system's passwd database (NSS), never `$HOME` or `$USER`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswdDatabase;

impl Accounts for PasswdDatabase {
    fn by_name(&self, name: &str) -> Result<Option<Account>> {
        Account::by_name(name)
    }

    fn by_uid(&self, uid: Uid) -> Result<Option<Account>> {
        Account::by_uid(uid)
    }
}

impl PasswdDatabase {
    /// Every name in the database, each once, in its order.
    pub fn all_names(&self) -> Vec<String> {
        let mut names = sys::passwd_names();
        let mut seen = std::collections::HashSet::new();
        names.retain(|name| seen.insert(name.clone()));
        names
    }
}

/// getpwnam_r(3): "ENOENT, ESRCH, EBADF, EPERM: the given name or uid was not found" —
/// some NSS backends report a missing user as one of these instead of a NULL result.
fn means_not_found(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM
    )
}

impl From<User> for Account {
    fn from(user: User) -> Self {
        Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        }
    }
}

/// A file-system identity: whom file access is checked against.
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    groups: Vec<libc::gid_t>,
}

impl Identity {
    /// Switches the calling thread's file-system identity to this one until the guard drops.
    /// Without root there is nothing to switch: access happens as the caller, and the
    /// ownership checks of the store still apply.
    pub fn assume(&self) -> Result<IdentityGuard> {
        if !Uid::effective().is_root() || self.uid.is_root() {
            return Ok(IdentityGuard {
                saved: None,
                _not_send: PhantomData,
            });
        }
        let saved_groups = sys::thread_groups()
            .map_err(|e| Error::Privileges(format!("reading supplementary groups: {e}")))?;
        sys::set_thread_groups(&self.groups)
            .map_err(|e| Error::Privileges(format!("setting supplementary groups: {e}")))?;
        let saved_gid = setfsgid(self.gid);
        let saved_uid = setfsuid(self.uid);
        let guard = IdentityGuard {
            saved: Some(Saved {
                uid: saved_uid,
                gid: saved_gid,
                groups: saved_groups,
            }),
            _not_send: PhantomData,
        };
        // setfsuid/setfsgid report no errors; asking again returns the value now in force.
        if setfsuid(self.uid) != self.uid || setfsgid(self.gid) != self.gid {
            return Err(Error::Privileges(format!(
                "the kernel refused fsuid {} / fsgid {}",
                self.uid, self.gid
            )));
        }
        Ok(guard)
    }
}

struct Saved {
    uid: Uid,
    gid: Gid,
    groups: Vec<libc::gid_t>,
}

/// Restores the thread's previous file-system identity when dropped, on every path.
#[must_use = "the identity is restored as soon as the guard is dropped"]
pub struct IdentityGuard {
    saved: Option<Saved>,
    /// setfsuid() is per-thread: the guard must be dropped on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl Drop for IdentityGuard {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // The effective uid stayed root, so switching back cannot be refused.
            setfsuid(saved.uid);
            setfsgid(saved.gid);
            let _ = sys::set_thread_groups(&saved.groups);
        }
    }
}
