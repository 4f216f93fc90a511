//! `enroll --secret-file PATH`: a secret to import, read from a file the caller owns and
//! no one else can read, never through a symbolic link, size-capped.

use super::{Failure, Result};
use crate::safe_fs::{self, Expect, Kind, OpenFailure, Owner, ReadFailure, Violation};
use crate::secret::SecretString;
use nix::unistd::Uid;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// No base32 secret is anywhere near this (a 512-bit one is 104 characters).
const MAX_SECRET_FILE: u64 = 4096;

/// Why the secret file was refused; the CLI words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFileProblem {
    Link,
    NotRegular,
    /// More than one name: it may be someone else's file.
    HardLinks(u64),
    /// Owned by this uid, not by the caller.
    Owner(u32),
    /// Readable or writable by group or others.
    Mode(u32),
    TooLarge,
    NotText,
    Os(String),
}

/// Reads the secret in `path` (surrounding whitespace dropped), which `caller` must own
/// with no access for group or others.
pub fn read_secret_file(path: &Path, caller: Uid) -> Result<SecretString> {
    let fail = |problem| Failure::SecretFile {
        path: path.to_owned(),
        problem,
    };
    let (parent, name) = split(path).ok_or_else(|| fail(SecretFileProblem::NotRegular))?;
    let dir = safe_fs::open_trusted_dir(&parent)
        .map_err(|e| fail(SecretFileProblem::Os(e.desc().into())))?;
    let fd = safe_fs::open_file_in(&dir, name).map_err(|errno| {
        fail(
            match safe_fs::why_not_opened(&dir, name, errno, caller.as_raw()) {
                OpenFailure::Link => SecretFileProblem::Link,
                OpenFailure::Owner { uid } => SecretFileProblem::Owner(uid),
                OpenFailure::HardLinks { links } => SecretFileProblem::HardLinks(links),
                OpenFailure::NotRegular => SecretFileProblem::NotRegular,
                OpenFailure::NotDirectory | OpenFailure::Other(_) => {
                    SecretFileProblem::Os(errno.desc().into())
                }
            },
        )
    })?;
    let stat = safe_fs::inspect(&fd).map_err(|e| fail(SecretFileProblem::Os(e.desc().into())))?;
    let expect = Expect {
        kind: Kind::RegularFile,
        owner: Owner::Is(caller.as_raw()),
        forbidden_mode: 0o077,
    };
    safe_fs::check(&stat, &expect).map_err(|violation| {
        fail(match violation {
            Violation::NotRegular => SecretFileProblem::NotRegular,
            Violation::HardLinks { links } => SecretFileProblem::HardLinks(links),
            Violation::Owner { uid } => SecretFileProblem::Owner(uid),
            Violation::Mode { mode } => SecretFileProblem::Mode(mode),
        })
    })?;
    let bytes = safe_fs::read_capped(fd, stat.st_size as u64, MAX_SECRET_FILE).map_err(|e| {
        fail(match e {
            ReadFailure::TooLarge => SecretFileProblem::TooLarge,
            ReadFailure::Grew => SecretFileProblem::Os("it changed while it was read".into()),
            ReadFailure::Io(e) => SecretFileProblem::Os(e.to_string()),
        })
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(SecretFileProblem::NotText))?;
    Ok(SecretString::new(text.trim().to_owned()))
}

/// The directory to open as given, and the last component, opened without following it.
fn split(path: &Path) -> Option<(PathBuf, &OsStr)> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    Some((parent, name))
}
