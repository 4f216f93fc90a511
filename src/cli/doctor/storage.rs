//! Where state lives: root-owned storage (`secret=` an absolute path) must be root's and
//! closed to others; and, with `--user`, that user's state as the module would read it.

use super::Root;
use super::findings::{Finding, Location, Severity};
use pam_totp::config::{Options, SecretPath};
use pam_totp::privileges::Account;
use pam_totp::store::Store;
use pam_totp::store::fs::FsStore;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directory root-owned storage keeps its files in: the template's fixed part.
fn storage_dir(secret: &SecretPath) -> Option<PathBuf> {
    if secret.in_home() {
        return None;
    }
    let template = secret.as_str();
    let cut = template.find('%')?;
    let dir = &template[..template[..cut].rfind('/')?];
    Some(PathBuf::from(if dir.is_empty() { "/" } else { dir }))
}

/// Owner root and mode 0700 for root-owned storage.
pub(crate) fn check_dir(root: &Root, options: &Options, source: &Path, out: &mut Vec<Finding>) {
    let Some(dir) = storage_dir(&options.secret) else {
        return;
    };
    let location = Some(Location::file(&dir));
    let fix = format!(
        "install -d -o root -g root -m 0700 {0} (or: chown root:root {0} && chmod 0700 {0})",
        dir.display()
    );
    let meta = match std::fs::symlink_metadata(root.path(&dir)) {
        Ok(meta) => meta,
        Err(e) => {
            out.push(Finding::new(
                Severity::Error,
                "storage.missing",
                location,
                format!(
                    "the storage directory of secret={} (from {}) cannot be used ({e})",
                    options.secret,
                    source.display()
                ),
                "no user can enroll and every enrolled login fails while it is missing",
                fix,
            ));
            return;
        }
    };
    let mode = meta.mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != root.owner() {
        out.push(Finding::new(
            Severity::Error,
            "storage.unsafe",
            location,
            format!(
                "the storage directory is {} owned by uid {}",
                if meta.is_dir() {
                    "a directory"
                } else {
                    "not a directory"
                },
                meta.uid()
            ),
            "the module refuses state below a directory root does not own: every login fails",
            fix,
        ));
    } else if mode & 0o022 != 0 {
        out.push(Finding::new(
            Severity::Error,
            "storage.writable",
            location,
            format!("the storage directory has mode {mode:04o}: others can write it"),
            "the module refuses it (every login fails); until fixed, anyone could replace a user's state",
            fix,
        ));
    } else if mode & 0o077 != 0 {
        out.push(Finding::new(
            Severity::Error,
            "storage.readable",
            location,
            format!("the storage directory has mode {mode:04o}, not 0700"),
            "the module refuses it (every login fails): others could list who is enrolled",
            fix,
        ));
    }
}

/// A passwd entry from the checked tree's /etc/passwd (for `--root`).
fn account_in(root: &Root, name: &str) -> Option<Account> {
    let text = std::fs::read_to_string(root.path(Path::new("/etc/passwd"))).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[0] != name {
            return None;
        }
        Some(Account {
            name: name.to_owned(),
            uid: fields[2].parse::<u32>().ok()?.into(),
            gid: fields[3].parse::<u32>().ok()?.into(),
            home: root.path(Path::new(fields[5])),
        })
    })
}

/// The user's state, read as the module reads it (read-only: no lock, nothing written).
pub(crate) fn check_user(
    root: &Root,
    options: &Options,
    name: &str,
    now: u64,
    out: &mut Vec<Finding>,
) {
    let account = if root.is_live() {
        Account::by_name(name).ok().flatten()
    } else {
        account_in(root, name)
    };
    let Some(account) = account else {
        out.push(Finding::new(
            Severity::Error,
            "user.unknown",
            None,
            format!("there is no user {name:?} in the passwd database"),
            "doctor cannot check the state of a user it cannot find",
            "check the name given to --user",
        ));
        return;
    };
    let mut options = options.clone();
    if !root.is_live() && !options.secret.in_home() {
        let moved = root.path(Path::new(options.secret.as_str()));
        match SecretPath::parse(&moved.display().to_string()) {
            Ok(secret) => options.secret = secret,
            Err(error) => {
                out.push(Finding::new(
                    Severity::Error,
                    "user.state-unusable",
                    None,
                    format!("the state of {name} cannot be found under --root: {error}"),
                    "doctor reads the tree given with --root",
                    "check secret= in the config file",
                ));
                return;
            }
        }
    }
    let loaded = FsStore::for_account(&options, &account).and_then(|store| {
        let state = store.enrolled()?;
        Ok((store.path().to_owned(), state))
    });
    let (what, severity, id, why, fix) = match loaded {
        Err(error) => (
            format!("the state of {name} cannot be used: {error}"),
            Severity::Error,
            "user.state-unusable",
            "the module refuses the login when it cannot read or trust the state",
            "follow the fix in the message; `pam-totp --user NAME status` shows the state",
        ),
        Ok((path, None)) => (
            format!(
                "{name} is not enrolled (no {})",
                root.shown(&path).display()
            ),
            if options.nullok {
                Severity::Note
            } else {
                Severity::Warning
            },
            "user.not-enrolled",
            if options.nullok {
                "with nullok this user logs in without a code"
            } else {
                "this user cannot log in through a stack with pam_totp.so"
            },
            "the user runs `pam-totp enroll` (or root: `pam-totp --user NAME enroll`)",
        ),
        Ok((_, Some(state))) => {
            let throttled =
                (state.throttle.locked_until > now).then(|| state.throttle.locked_until - now);
            if let Some(seconds) = throttled {
                (
                    format!(
                        "{name} is throttled for {seconds} more seconds after {} wrong codes",
                        state.throttle.failures
                    ),
                    Severity::Warning,
                    "user.throttled",
                    "no code is checked until then; if the user did not type them, someone is guessing",
                    "wait, or look at the auth log for where the attempts come from",
                )
            } else if state.recovery_codes_left == 0 {
                (
                    format!("{name} has no recovery codes left"),
                    Severity::Warning,
                    "user.no-recovery-codes",
                    "a lost phone then means an administrator has to step in",
                    "the user runs `pam-totp recovery-codes`",
                )
            } else {
                (
                    format!(
                        "{name} is enrolled, {} recovery code(s) left",
                        state.recovery_codes_left
                    ),
                    Severity::Note,
                    "user.enrolled",
                    "the state can be read and trusted",
                    "",
                )
            }
        }
    };
    out.push(Finding::new(severity, id, None, what, why, fix));
}
