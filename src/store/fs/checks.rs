//! The owner and mode checks of the store's directories and files, and the messages (with
//! the fix) when one fails.

use super::*;

impl FsStore {
    pub(super) fn check_dir(&self, fd: &OwnedFd, path: &Path) -> Result<()> {
        let stat = safe_fs::inspect(fd).map_err(|e| Error::io(path, "inspect", e))?;
        self.check_dir_stat(&stat, path)
    }

    /// [`FsStore::check_dir`] of a status already taken.
    pub(super) fn check_dir_stat(
        &self,
        stat: &nix::sys::stat::FileStat,
        path: &Path,
    ) -> Result<()> {
        let expect = Expect {
            kind: Kind::Any,
            owner: Owner::Is(self.owner.as_raw()),
            forbidden_mode: 0o022,
        };
        match safe_fs::check(stat, &expect) {
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

    pub(super) fn check_file(&self, fd: &OwnedFd, path: &Path) -> Result<nix::sys::stat::FileStat> {
        let stat = safe_fs::inspect(fd).map_err(|e| Error::io(path, "inspect", e))?;
        self.check_file_stat(&stat, path)?;
        Ok(stat)
    }

    /// [`FsStore::check_file`] of a status already taken.
    pub(super) fn check_file_stat(
        &self,
        stat: &nix::sys::stat::FileStat,
        path: &Path,
    ) -> Result<()> {
        let expect = Expect {
            kind: Kind::RegularFile,
            owner: Owner::Is(self.owner.as_raw()),
            forbidden_mode: 0o077,
        };
        match safe_fs::check(stat, &expect) {
            Ok(()) => Ok(()),
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

    pub(super) fn owner_name(&self) -> String {
        Account::by_uid(self.owner)
            .ok()
            .flatten()
            .map_or_else(|| self.owner.to_string(), |a| a.name)
    }

    pub(super) fn wrong_owner(&self, path: &Path, uid: u32) -> Error {
        let owner = self.owner_name();
        Error::Unsafe {
            path: path.to_owned(),
            problem: format!("owned by uid {uid}, not by {owner}"),
            fix: format!("chown {owner} {}", path.display()),
        }
    }

    /// Names what went wrong opening `name` in `dir`: a symlink gets its own message.
    pub(super) fn open_error(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        errno: Errno,
        action: &'static str,
    ) -> Error {
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

    pub(super) fn path_of_component(&self, name: &OsStr) -> PathBuf {
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
