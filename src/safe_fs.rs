//! Opening files that decide who gets in, safely, written once: every component below a
//! trusted directory is opened with O_NOFOLLOW (never through a symbolic link), checks are
//! made on the open descriptor (fstat, so nothing can be swapped in between), and reads are
//! capped. Callers (the config file, the state store, the recovery codes file) choose what
//! to expect and turn a [`Violation`] into their own message.

use crate::error::Error;
use crate::secret::SecretBytes;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
/// New files: never an existing one, never through a link, private from the start.
const NEW_FILE_FLAGS: OFlag = OFlag::O_WRONLY
    .union(OFlag::O_CREAT)
    .union(OFlag::O_EXCL)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
const PRIVATE: Mode = Mode::S_IRUSR.union(Mode::S_IWUSR);

/// Opens a directory the admin named (a home, a fixed prefix): as given, links included.
pub(crate) fn open_trusted_dir(path: &Path) -> nix::Result<OwnedFd> {
    open(path, DIR_FLAGS, Mode::empty())
}

/// Opens a file the admin named (the config file) for reading, as given. O_NONBLOCK: a FIFO
/// put there must not hang a login.
pub(crate) fn open_trusted_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Opens the directory `name` in `dir`, never through a link.
pub(crate) fn open_dir_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(dir, name, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty())
}

/// Makes the directory `name` in `dir`, mode 0700; one that exists already is fine.
pub(crate) fn make_dir_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    match mkdirat(dir, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens the file `name` in `dir` for reading, never through a link, never blocking.
pub(crate) fn open_file_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
}

/// Opens the existing file `name` in `dir` for reading and writing, never through a link,
/// never blocking (the counters file of state v2, written in place).
pub(crate) fn open_rw_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
}

/// Opens (or makes, mode 0600) the lock file `name` in `dir`, never through a link.
pub(crate) fn open_lock_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        PRIVATE,
    )
}

/// Makes a new file `name` in `dir`, mode 0600: never an existing file, never a link.
pub(crate) fn create_new_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(dir, name, NEW_FILE_FLAGS, PRIVATE)
}

/// Makes a new file at `path`, mode 0600: never an existing file, never a link.
pub(crate) fn create_new(path: &Path) -> nix::Result<OwnedFd> {
    open(path, NEW_FILE_FLAGS, PRIVATE)
}

/// What kind of file is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    RegularFile,
    /// Opened with O_DIRECTORY already, or anything the caller accepts.
    Any,
}

/// Who may own it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Is(u32),
    RootOr(u32),
}

/// What an open file must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    pub(crate) kind: Kind,
    pub(crate) owner: Owner,
    /// Permission bits that must be clear (0o022: nobody else may write; 0o077: private).
    pub(crate) forbidden_mode: u32,
}

/// How an open file fails its [`Expect`], checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    NotRegular,
    /// A regular file with another name somewhere: it may be someone else's file (a link
    /// to root's where protected_hardlinks=0), so owner or mode advice would be wrong.
    HardLinks {
        links: u64,
    },
    Owner {
        uid: u32,
    },
    Mode {
        mode: u32,
    },
}

/// The refusal of a file with more than one name. Its own message, without owner or mode
/// advice: chown on a link to root's file would hand root's file to the user.
pub(crate) fn hard_links_refusal(path: &Path, links: u64) -> Error {
    Error::Unsafe {
        path: path.to_owned(),
        problem: format!(
            "has {links} hard links; a file that decides who gets in must have exactly one name"
        ),
        fix: format!(
            "remove this name (rm {}) and create the file anew; its other names stay as they are",
            path.display()
        ),
    }
}

/// The refusal of something that is not a regular file where one is expected (a device, a
/// FIFO, a directory): no owner or mode advice, that would change a system file.
pub(crate) fn not_regular_refusal(path: &Path, fix: String) -> Error {
    Error::Unsafe {
        path: path.to_owned(),
        problem: "not a regular file".into(),
        fix,
    }
}

/// The home as sshd's StrictModes wants it: owned by the user or root, writable by nobody
/// else. Whoever else can write it can rename `.config` away, and with `nullok` the user
/// would then log in with the password alone.
pub(crate) fn check_home(stat: &FileStat, uid: u32) -> Result<(), Violation> {
    check(
        stat,
        &Expect {
            kind: Kind::Any,
            owner: Owner::RootOr(uid),
            forbidden_mode: 0o022,
        },
    )
}

pub(crate) fn inspect(fd: impl AsFd) -> nix::Result<FileStat> {
    fstat(fd)
}

/// Checks an open file's stat against what is expected.
pub(crate) fn check(stat: &FileStat, expect: &Expect) -> Result<(), Violation> {
    let is_regular =
        SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG;
    if expect.kind == Kind::RegularFile && !is_regular {
        return Err(Violation::NotRegular);
    }
    // Before the owner: a second name is the problem, whoever owns the file.
    if is_regular && stat.st_nlink > 1 {
        return Err(Violation::HardLinks { links: nlink(stat) });
    }
    let owner_ok = match expect.owner {
        Owner::Is(uid) => stat.st_uid == uid,
        Owner::RootOr(uid) => stat.st_uid == 0 || stat.st_uid == uid,
    };
    if !owner_ok {
        return Err(Violation::Owner { uid: stat.st_uid });
    }
    if stat.st_mode & expect.forbidden_mode != 0 {
        return Err(Violation::Mode {
            mode: stat.st_mode & 0o7777,
        });
    }
    Ok(())
}

/// The link count: nlink_t is u64 here but u32 on some targets.
#[allow(clippy::unnecessary_cast)]
fn nlink(stat: &FileStat) -> u64 {
    stat.st_nlink as u64
}

/// Why opening `name` in `dir` failed, as far as it matters to the person fixing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenFailure {
    /// A symbolic link: never followed.
    Link,
    /// Permission denied, and owned by someone other than `expected_owner` (a directory, or
    /// a regular file with one name).
    Owner {
        uid: u32,
    },
    /// A regular file with more than one name: no owner advice.
    HardLinks {
        links: u64,
    },
    /// Neither a directory nor a regular file (a FIFO, a device, a socket).
    NotRegular,
    NotDirectory,
    Other(Errno),
}

/// Looks (without following links) at what refused to open.
pub(crate) fn why_not_opened(
    dir: &OwnedFd,
    name: &OsStr,
    errno: Errno,
    expected_owner: u32,
) -> OpenFailure {
    let is_link = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|s| s.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
    if is_link || errno == Errno::ELOOP {
        return OpenFailure::Link;
    }
    if errno == Errno::EACCES
        && let Ok(stat) = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFREG && stat.st_nlink > 1 {
            return OpenFailure::HardLinks {
                links: nlink(&stat),
            };
        }
        if kind != SFlag::S_IFREG && kind != SFlag::S_IFDIR {
            return OpenFailure::NotRegular;
        }
        if stat.st_uid != expected_owner {
            return OpenFailure::Owner { uid: stat.st_uid };
        }
    }
    if errno == Errno::ENOTDIR {
        return OpenFailure::NotDirectory;
    }
    OpenFailure::Other(errno)
}

/// A capped read that did not succeed.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// More than the cap.
    TooLarge,
    /// Within the cap when inspected, more when read.
    Grew,
    Io(io::Error),
}

/// Reads a whole file of at most `cap` bytes (`size`: what fstat said of it). Wiped when
/// dropped: it may hold a secret. A file longer than `size` grew while being read: refused,
/// and never read past one byte more, so the buffer (sized once) is never reallocated,
/// which would leave an unwiped copy behind.
pub(crate) fn read_capped(
    file: impl Into<File>,
    size: u64,
    cap: u64,
) -> Result<SecretBytes, ReadFailure> {
    read_capped_from_start(&file.into(), size, cap)
}

/// [`read_capped`] of a file kept open, from its first byte whatever its offset (pread):
/// a file read once already is read again without being opened again.
pub(crate) fn read_capped_from_start(
    file: &File,
    size: u64,
    cap: u64,
) -> Result<SecretBytes, ReadFailure> {
    if size > cap {
        return Err(ReadFailure::TooLarge);
    }
    let mut bytes = SecretBytes::with_capacity(size as usize + 1);
    FromStart { file, offset: 0 }
        .take(size + 1)
        .read_to_end(bytes.as_mut_vec())
        .map_err(ReadFailure::Io)?;
    if bytes.len() as u64 > size {
        return Err(ReadFailure::Grew);
    }
    Ok(bytes)
}

/// Reads `file` by position (pread), leaving its offset alone.
struct FromStart<'a> {
    file: &'a File,
    offset: u64,
}

impl Read for FromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

/// The status of the entry `name` in `dir` itself, a link never followed: what it is now,
/// to compare with a file opened earlier through the same name.
pub(crate) fn stat_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Which file a status is of: the same pair means the same file, while either is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    pub(crate) fn of(stat: &FileStat) -> FileId {
        FileId {
            device: stat.st_dev,
            inode: stat.st_ino,
        }
    }
}

#[cfg(test)]
mod pins;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir_fd(path: &Path) -> OwnedFd {
        open_trusted_dir(path).unwrap()
    }

    #[test]
    fn links_below_the_trusted_directory_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), "x").unwrap();
        symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let fd = dir_fd(dir.path());
        let errno = open_file_in(&fd, OsStr::new("link")).unwrap_err();
        assert_eq!(
            why_not_opened(&fd, OsStr::new("link"), errno, 0),
            OpenFailure::Link
        );
        assert!(create_new_in(&fd, OsStr::new("link")).is_err());
        assert!(create_new_in(&fd, OsStr::new("real")).is_err());
    }

    #[test]
    fn checks_come_in_order_kind_owner_mode() {
        let dir = tempfile::tempdir().unwrap();
        let stat = inspect(dir_fd(dir.path())).unwrap();
        let me = stat.st_uid;
        let expect = |kind, owner, forbidden_mode| Expect {
            kind,
            owner,
            forbidden_mode,
        };
        assert_eq!(
            check(&stat, &expect(Kind::RegularFile, Owner::Is(me + 1), 0o777)),
            Err(Violation::NotRegular)
        );
        assert_eq!(
            check(&stat, &expect(Kind::Any, Owner::Is(me + 1), 0o777)),
            Err(Violation::Owner { uid: me })
        );
        assert!(matches!(
            check(&stat, &expect(Kind::Any, Owner::RootOr(me), 0o700)),
            Err(Violation::Mode { .. })
        ));
        assert_eq!(
            check(&stat, &expect(Kind::Any, Owner::RootOr(me), 0)),
            Ok(())
        );
    }

    #[test]
    fn a_second_name_is_refused_before_the_owner_is_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, "x").unwrap();
        let open = || open_file_in(&dir_fd(dir.path()), OsStr::new("state")).unwrap();
        let stat = inspect(open()).unwrap();
        let someone_else = Expect {
            kind: Kind::RegularFile,
            owner: Owner::Is(stat.st_uid + 1),
            forbidden_mode: 0,
        };
        assert_eq!(
            check(&stat, &someone_else),
            Err(Violation::Owner { uid: stat.st_uid })
        );
        std::fs::hard_link(&path, dir.path().join("second")).unwrap();
        let stat = inspect(open()).unwrap();
        assert_eq!(
            check(&stat, &someone_else),
            Err(Violation::HardLinks { links: 2 })
        );
        let error = hard_links_refusal(&path, 2).to_string();
        assert!(
            !error.contains("chown") && !error.contains("chmod"),
            "{error}"
        );
    }

    #[test]
    fn a_home_is_checked_as_sshd_strict_modes_does() {
        let dir = tempfile::tempdir().unwrap();
        let me = inspect(dir_fd(dir.path())).unwrap().st_uid;
        for (mode, ok) in [
            (0o700, true),
            (0o755, true),
            (0o1755, true),
            (0o775, false),
            (0o757, false),
        ] {
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
            let stat = inspect(dir_fd(dir.path())).unwrap();
            assert_eq!(check_home(&stat, me).is_ok(), ok, "mode {mode:o}");
        }
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let stat = inspect(dir_fd(dir.path())).unwrap();
        let owner_ok = check_home(&stat, me + 1).is_ok();
        // Owned by the user or root: root's home check passes for anyone, others' fails.
        assert_eq!(owner_ok, me == 0);
    }

    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "12345").unwrap();
        let read = |size, cap| read_capped(File::open(&path).unwrap(), size, cap);
        assert_eq!(&*read(5, 5).unwrap(), b"12345");
        assert!(matches!(read(5, 4), Err(ReadFailure::TooLarge)));
        assert!(matches!(read(3, 4), Err(ReadFailure::Grew)));
        // Longer than fstat said, even under the cap: it grew while being read.
        assert!(matches!(read(4, 64), Err(ReadFailure::Grew)));
        // Shorter (truncated since): what is there.
        assert_eq!(&*read(9, 64).unwrap(), b"12345");
    }
}
