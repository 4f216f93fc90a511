//! Pins for looking users up and switching identity (issue 13, item 18).

use super::*;

#[test]
fn only_the_documented_errnos_mean_not_found() {
    for errno in [Errno::ENOENT, Errno::ESRCH, Errno::EBADF, Errno::EPERM] {
        assert!(means_not_found(errno), "{errno}");
    }
    for errno in [
        Errno::EIO,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::ENOMEM,
        Errno::ERANGE,
    ] {
        assert!(!means_not_found(errno), "{errno}");
    }
}

#[test]
fn the_passwd_database_finds_root_by_name_and_uid() {
    let by_uid = PasswdDatabase
        .by_uid(Uid::from_raw(0))
        .unwrap()
        .expect("root is in passwd");
    assert_eq!((by_uid.name.as_str(), by_uid.uid.as_raw()), ("root", 0));
    let by_name = PasswdDatabase
        .by_name("root")
        .unwrap()
        .expect("root is in passwd");
    assert_eq!(by_name.uid.as_raw(), 0);
    assert_eq!(by_name.home, by_uid.home);
    // Names no database holds.
    for name in ["", "ro\0ot", "no-such-user-pam-totp-pins"] {
        assert!(PasswdDatabase.by_name(name).unwrap().is_none(), "{name:?}");
    }
}

#[test]
fn root_keeps_its_identity_for_its_own_files() {
    let root = Identity {
        uid: Uid::from_raw(0),
        gid: Gid::from_raw(0),
        name: CString::new("root").unwrap(),
    };
    assert!(root.assume().unwrap().saved.is_none());
}

#[test]
fn another_users_identity_is_assumed_and_restored() {
    if !Uid::effective().is_root() {
        // Without root nothing is switched.
        let other = Identity {
            uid: Uid::from_raw(54321),
            gid: Gid::from_raw(54321),
            name: CString::new("pam-totp-pins-nobody").unwrap(),
        };
        assert!(other.assume().unwrap().saved.is_none());
        return;
    }
    let dir = tempfile::tempdir().unwrap(); // root's, mode 0700
    let other = Identity {
        uid: Uid::from_raw(54321),
        gid: Gid::from_raw(54321),
        name: CString::new("pam-totp-pins-nobody").unwrap(),
    };
    {
        let guard = other.assume().unwrap();
        assert!(guard.saved.is_some());
        let err = std::fs::write(dir.path().join("as-other"), "x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    }
    std::fs::write(dir.path().join("as-root"), "x").unwrap();
}

#[test]
fn a_thread_without_groups_keeps_none_and_still_acts_as_the_user() {
    if !Uid::effective().is_root() {
        return;
    }
    // On a thread of its own: the groups and fsuid are per thread.
    std::thread::spawn(|| {
        let dir = tempfile::tempdir().unwrap(); // root's, mode 0700
        crate::sys::set_thread_groups(&[]).unwrap();
        let other = Identity {
            uid: Uid::from_raw(54321),
            gid: Gid::from_raw(54321),
            name: CString::new("pam-totp-pins-nobody").unwrap(),
        };
        {
            let mut guard = other.assume().unwrap();
            assert!(crate::sys::thread_groups().unwrap().is_empty());
            assert_eq!(setfsuid(QUERY_UID), other.uid);
            assert_eq!(setfsgid(QUERY_GID), other.gid);
            let err = std::fs::write(dir.path().join("as-other"), "x").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
            // No such user: widen finds the primary group alone, and sets it.
            let _ = guard.widen();
        }
        // Restored, including the groups that widen set.
        assert!(crate::sys::thread_groups().unwrap().is_empty());
        assert_eq!(setfsuid(QUERY_UID), Uid::from_raw(0));
        std::fs::write(dir.path().join("as-root"), "x").unwrap();
    })
    .join()
    .unwrap();
}
