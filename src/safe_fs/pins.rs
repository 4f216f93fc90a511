//! Pins for the flags every opener leaves on its descriptor (issue 13, item 18): close on
//! exec everywhere (a login's children must not inherit the state or its lock), never
//! blocking where a FIFO could be put in place, and the access mode each caller needs.

use super::*;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::os::unix::fs::PermissionsExt;

fn cloexec(fd: &OwnedFd) -> bool {
    FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap()).contains(FdFlag::FD_CLOEXEC)
}

fn status(fd: &OwnedFd) -> OFlag {
    OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap())
}

#[test]
fn every_opener_sets_close_on_exec_and_its_access_mode() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let top = open_trusted_dir(dir.path()).unwrap();
    assert!(cloexec(&top));

    let sub = open_dir_in(&top, OsStr::new("sub")).unwrap();
    assert!(cloexec(&sub));

    let file = open_file_in(&top, OsStr::new("file")).unwrap();
    assert!(cloexec(&file));
    assert!(status(&file).contains(OFlag::O_NONBLOCK));
    assert_eq!(status(&file) & OFlag::O_ACCMODE, OFlag::O_RDONLY);

    let lock = open_lock_in(&top, OsStr::new("lock")).unwrap();
    assert!(cloexec(&lock));
    assert!(status(&lock).contains(OFlag::O_NONBLOCK));
    assert_eq!(status(&lock) & OFlag::O_ACCMODE, OFlag::O_RDWR);
    // Made when missing, private; opened again when present.
    let made = inspect(&lock).unwrap();
    assert_eq!(made.st_mode & 0o777, 0o600);
    drop(lock);
    assert!(open_lock_in(&top, OsStr::new("lock")).is_ok());

    let new = create_new_in(&top, OsStr::new("new")).unwrap();
    assert!(cloexec(&new));
    assert_eq!(status(&new) & OFlag::O_ACCMODE, OFlag::O_WRONLY);
    assert_eq!(inspect(&new).unwrap().st_mode & 0o777, 0o600);

    let other = create_new(&dir.path().join("other")).unwrap();
    assert!(cloexec(&other));
    assert!(create_new(&dir.path().join("other")).is_err(), "O_EXCL");

    assert!(open_trusted_file(&dir.path().join("file")).is_ok());
}

#[test]
fn a_directory_is_made_private_and_an_existing_one_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let top = open_trusted_dir(dir.path()).unwrap();
    make_dir_in(&top, OsStr::new("d")).unwrap();
    make_dir_in(&top, OsStr::new("d")).unwrap();
    let d = open_dir_in(&top, OsStr::new("d")).unwrap();
    assert_eq!(inspect(&d).unwrap().st_mode & 0o777, 0o700);
    // A link to a directory is not a directory here.
    std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("l")).unwrap();
    let errno = open_dir_in(&top, OsStr::new("l")).unwrap_err();
    assert_eq!(
        why_not_opened(&top, OsStr::new("l"), errno, 0),
        OpenFailure::Link
    );
    // A file where a directory should be.
    std::fs::write(dir.path().join("f"), "").unwrap();
    let errno = open_dir_in(&top, OsStr::new("f")).unwrap_err();
    assert_eq!(
        why_not_opened(&top, OsStr::new("f"), errno, 0),
        OpenFailure::NotDirectory
    );
    assert_eq!(
        why_not_opened(&top, OsStr::new("missing"), Errno::ENOENT, 0),
        OpenFailure::Other(Errno::ENOENT)
    );
}

#[test]
fn root_or_accepts_root_and_the_named_owner_only() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give the file away");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, "").unwrap();
    let expect = |owner| Expect {
        kind: Kind::RegularFile,
        owner,
        forbidden_mode: 0o022,
    };
    let stat = || inspect(File::open(&path).unwrap()).unwrap();
    assert_eq!(
        check(&stat(), &expect(Owner::RootOr(54321))),
        Ok(()),
        "root's"
    );
    nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(54321)), None).unwrap();
    assert_eq!(
        check(&stat(), &expect(Owner::RootOr(54321))),
        Ok(()),
        "the owner's"
    );
    assert_eq!(
        check(&stat(), &expect(Owner::RootOr(54320))),
        Err(Violation::Owner { uid: 54321 })
    );
}

#[test]
fn a_mode_violation_reports_the_permission_bits_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
    let stat = inspect(open_trusted_dir(dir.path()).unwrap()).unwrap();
    let expect = Expect {
        kind: Kind::Any,
        owner: Owner::Is(stat.st_uid),
        forbidden_mode: 0o022,
    };
    assert_eq!(check(&stat, &expect), Err(Violation::Mode { mode: 0o775 }));
}
