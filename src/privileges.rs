//! Acting as the user when touching the user's files.
//!
//! The module runs as root inside sshd or sudo. Files in a user's home are opened with the
//! user's file-system identity (setfsuid/setfsgid, the primary group), so root-squashing
//! NFS homes work, and a user cannot trick root into reading or writing a file the user
//! could not. The supplementary groups are resolved (getgrouplist, which can cost more than
//! the rest of a login under a large group database) only when an access with the primary
//! group alone was refused ([`IdentityGuard::widen`]): never more access than the user has.
//! These calls change only the calling thread: all file access of one operation happens on
//! the thread that holds the guard.

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
                "looking up user {name:?} in the passwd database: {errno}; fix: check the \
                 passwd sources in /etc/nsswitch.conf (is sssd or the directory server \
                 reachable?)"
            ))),
        }
    }

    pub fn by_uid(uid: Uid) -> Result<Option<Account>> {
        match User::from_uid(uid) {
            Ok(user) => Ok(user.map(Account::from)),
            Err(errno) if means_not_found(errno) => Ok(None),
            Err(errno) => Err(Error::Internal(format!(
                "looking up uid {uid} in the passwd database: {errno}; fix: check the \
                 passwd sources in /etc/nsswitch.conf (is sssd or the directory server \
                 reachable?)"
            ))),
        }
    }

    /// The identity to assume for this user's files: uid and gid (the supplementary groups
    /// are looked up when first needed).
    pub fn identity(&self) -> Result<Identity> {
        let name =
            CString::new(self.name.as_str()).map_err(|_| Error::UnknownUser(self.name.clone()))?;
        Ok(Identity {
            uid: self.uid,
            gid: self.gid,
            name,
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
    /// For getgrouplist, when the supplementary groups are needed.
    name: CString,
}

impl Identity {
    /// Switches the calling thread's file-system identity to this one until the guard drops.
    /// Without root there is nothing to switch: access happens as the caller, and the
    /// ownership checks of the store still apply.
    pub fn assume(&self) -> Result<IdentityGuard> {
        let euid = Uid::effective();
        if !euid.is_root() && self.uid != euid {
            // No switch, so nothing drops capabilities a non-root caller holds (ambient
            // ones, a service's): with them, another user's files would not be opened as
            // that user. One syscall.
            refuse_file_capabilities(self.uid, "a non-root caller holds them")?;
        }
        if !euid.is_root() || self.uid.is_root() {
            return Ok(IdentityGuard {
                saved: None,
                widen: None,
                _not_send: PhantomData,
            });
        }
        #[cfg(test)]
        switch_count::add_one();
        let saved_groups = sys::thread_groups()
            .map_err(|e| Error::Privileges(format!("reading supplementary groups: {e}")))?;
        // The primary group only: root's own groups must not lend the user any access.
        // With none at all (a service started by systemd) there is nothing to take away:
        // the fsgid alone is the primary group. Each change of credentials costs the
        // kernel a few microseconds (about 2.7 here), and a login switches twice.
        let groups_changed = !saved_groups.is_empty();
        if groups_changed {
            sys::set_thread_groups(&[self.gid.as_raw()])
                .map_err(|e| Error::Privileges(format!("setting supplementary groups: {e}")))?;
        }
        let saved_gid = setfsgid(self.gid);
        let saved_uid = setfsuid(self.uid);
        let guard = IdentityGuard {
            saved: Some(Saved {
                uid: saved_uid,
                gid: saved_gid,
                groups: saved_groups,
                groups_changed,
            }),
            widen: Some((self.name.clone(), self.gid)),
            _not_send: PhantomData,
        };
        // setfsuid/setfsgid report no errors; called with an invalid id (-1) they change
        // nothing and return the value now in force (without the kernel preparing new
        // credentials, as asking with the same id again would).
        if setfsuid(QUERY_UID) != self.uid || setfsgid(QUERY_GID) != self.gid {
            return Err(Error::Privileges(format!(
                "the kernel refused fsuid {} / fsgid {}",
                self.uid, self.gid
            )));
        }
        // The switch takes root's power over files away only because the kernel clears
        // the file capabilities when the fsuid leaves 0, which SECBIT_NO_SETUID_FIXUP
        // turns off. Checked, not assumed (one syscall); the guard switches back.
        refuse_file_capabilities(self.uid, "SECBIT_NO_SETUID_FIXUP kept them")?;
        Ok(guard)
    }
}

/// The capabilities that override file permissions and ownership: the set the kernel
/// clears from the effective set when the fsuid leaves 0 (CAP_FS_SET), by number.
const FILE_CAPABILITIES: [(u32, &str); 8] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (2, "CAP_DAC_READ_SEARCH"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (9, "CAP_LINUX_IMMUTABLE"),
    (27, "CAP_MKNOD"),
    (32, "CAP_MAC_OVERRIDE"),
];

/// Fails (what, where, the fix) when the calling thread's effective set holds any file
/// capability: the user's files would be opened with powers the user does not have.
fn refuse_file_capabilities(uid: Uid, why: &str) -> Result<()> {
    let effective = sys::thread_effective_capabilities()
        .map_err(|e| Error::Privileges(format!("reading the thread's capabilities: {e}")))?;
    let held: Vec<&str> = FILE_CAPABILITIES
        .iter()
        .filter(|(bit, _)| effective & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::Privileges(format!(
        "file capabilities ({}) are in effect while acting as uid {uid} ({why}), so the user's files would not be opened with the user's rights; fix: run the service without SECBIT_NO_SETUID_FIXUP and without ambient file capabilities (systemd: SecureBits=, AmbientCapabilities=)",
        held.join(", ")
    )))
}

/// setfsuid(2)/setfsgid(2) with these (-1, never a valid id) only report the current one.
const QUERY_UID: Uid = Uid::from_raw(u32::MAX);
const QUERY_GID: Gid = Gid::from_raw(u32::MAX);

struct Saved {
    uid: Uid,
    gid: Gid,
    groups: Vec<libc::gid_t>,
    /// Whether the thread's groups were changed (by `assume` or `widen`): only then are
    /// they set back.
    groups_changed: bool,
}

/// Restores the thread's previous file-system identity when dropped, on every path.
#[must_use = "the identity is restored as soon as the guard is dropped"]
pub struct IdentityGuard {
    saved: Option<Saved>,
    /// Whose supplementary groups [`IdentityGuard::widen`] may add; `None` once added, or
    /// when nothing was switched.
    widen: Option<(CString, Gid)>,
    /// setfsuid() is per-thread: the guard must be dropped on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl IdentityGuard {
    /// After an access was refused (EACCES) with the primary group alone: adds the user's
    /// supplementary groups, so a retry has exactly the user's access. `false` when there
    /// is nothing to add (already added, or no identity was switched): do not retry.
    pub fn widen(&mut self) -> Result<bool> {
        let Some((name, gid)) = self.widen.take() else {
            return Ok(false);
        };
        let groups = getgrouplist(&name, gid).map_err(|errno| {
            Error::Privileges(format!("groups of {}: {errno}", name.to_string_lossy()))
        })?;
        let groups: Vec<libc::gid_t> = groups.into_iter().map(Gid::as_raw).collect();
        if let Some(saved) = self.saved.as_mut() {
            saved.groups_changed = true;
        }
        sys::set_thread_groups(&groups)
            .map_err(|e| Error::Privileges(format!("setting supplementary groups: {e}")))?;
        Ok(groups.len() > 1)
    }
}

impl Drop for IdentityGuard {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // The effective uid stayed root, so switching back cannot be refused.
            setfsuid(saved.uid);
            setfsgid(saved.gid);
            if saved.groups_changed {
                let _ = sys::set_thread_groups(&saved.groups);
            }
        }
    }
}

// Test builds count the switches to a user's identity each thread makes: a login makes one.
#[cfg(test)]
crate::test_counter::per_thread_counter!(switch_count);

#[cfg(test)]
mod pins;
