//! The recovery codes file (`--codes-file`): a new file, never an existing one, never
//! through a symlink, mode 0600, owned by whoever the codes are for. Written inside the
//! store's change, just before the commit, and removed again if the commit fails. Showing
//! the codes is the last step before the commit, so codes nobody saw are never saved.

use super::{Actor, Failure, Result};
use crate::safe_fs;
use crate::secret::SecretString;
use crate::store::{Aborted, BeforeCommit};
use nix::errno::Errno;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why the codes file could not be made.
#[derive(Debug)]
pub enum CodesFileProblem {
    /// Permission denied, or a read-only file system: made as `owner`, who cannot write there.
    NotWritable {
        errno: Errno,
        owner: String,
    },
    Os(Errno),
    Io(io::Error),
}

#[derive(Debug, Clone)]
pub struct CodesFile {
    path: PathBuf,
}

/// A codes file this process created, which can be taken back if the state is not saved.
struct WrittenCodesFile {
    path: PathBuf,
    identity: crate::privileges::Identity,
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
        let fd = safe_fs::create_new(&self.path).map_err(|errno| match errno {
            Errno::EEXIST => Failure::CodesFileExists(self.path.clone()),
            Errno::EACCES | Errno::EPERM | Errno::EROFS => Failure::CodesFile {
                path: self.path.clone(),
                problem: CodesFileProblem::NotWritable {
                    errno,
                    owner: actor.file_owner().name.clone(),
                },
            },
            other => Failure::CodesFile {
                path: self.path.clone(),
                problem: CodesFileProblem::Os(other),
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
                problem: CodesFileProblem::Io(e),
            });
        }
        Ok(written)
    }
}

/// Shows what the person must see before the change is committed (the new recovery
/// codes, a provisioned secret), written and flushed; an error stops the commit.
pub type Show<'a> = &'a mut dyn FnMut() -> io::Result<()>;

/// How new recovery codes reach the person, both before the commit: the codes file (if
/// any), then `show`.
pub struct Delivery<'a> {
    pub codes_file: Option<&'a CodesFile>,
    pub show: Show<'a>,
}

/// The steps before a store's commit: the codes file (if any), then showing the result.
pub(super) struct WriteCodes<'a, 'd> {
    file: Option<&'d CodesFile>,
    show: Show<'d>,
    actor: &'a Actor,
    shown: &'a [SecretString],
    now: u64,
    written: Option<WrittenCodesFile>,
    failure: Option<Failure>,
}

impl<'a, 'd> WriteCodes<'a, 'd> {
    pub(super) fn new(
        delivery: Delivery<'d>,
        actor: &'a Actor,
        shown: &'a [SecretString],
        now: u64,
    ) -> Self {
        WriteCodes {
            file: delivery.codes_file,
            show: delivery.show,
            actor,
            shown,
            now,
            written: None,
            failure: None,
        }
    }

    /// Why the file could not be written, once the change was aborted for it.
    pub(super) fn failure(&mut self) -> Option<Failure> {
        self.failure.take()
    }
}

impl BeforeCommit for WriteCodes<'_, '_> {
    fn run(&mut self) -> std::result::Result<(), Aborted> {
        if let Some(file) = self.file {
            match file.create(self.actor, self.shown, self.now) {
                Ok(written) => self.written = Some(written),
                Err(failure) => {
                    self.failure = Some(failure);
                    return Err(Aborted);
                }
            }
        }
        // Codes nobody saw must not replace the ones a person has.
        if let Err(error) = (self.show)() {
            self.undo();
            self.failure = Some(Failure::Output(error));
            return Err(Aborted);
        }
        Ok(())
    }

    fn undo(&mut self) {
        if let Some(written) = self.written.take() {
            written.discard();
        }
    }
}
