//! Pins for the filesystem store's checks that no other test holds (issue 13, item 18): the
//! user-name guard, the owner of a root-owned store directory, what a login does when the
//! state directories are missing, and O_NOFOLLOW on the lock file.

use super::fs::FsStore;
use super::transaction::{Backend, Create};
use super::{Prepared, Store};
use crate::config::{Options, SecretPath};
use crate::error::Error;
use crate::policy::{CountFailure, Policy};
use crate::privileges::Account;
use crate::secret::SecretString;
use nix::unistd::{Uid, geteuid};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

/// Whoever runs the tests, with `home` as the home.
fn me(name: &str, home: &Path) -> Account {
    let real = Account::by_uid(geteuid())
        .unwrap()
        .expect("the test user is in passwd");
    Account {
        name: name.into(),
        uid: real.uid,
        gid: real.gid,
        home: home.to_owned(),
    }
}

fn options(secret: &str) -> Options {
    Options {
        secret: SecretPath::parse(secret).unwrap(),
        ..Options::default()
    }
}

fn store_at(secret: &str, home: &Path) -> FsStore {
    let real = Account::by_uid(geteuid()).unwrap().unwrap();
    FsStore::for_account(&options(secret), &me(&real.name, home)).unwrap()
}

#[test]
fn user_names_that_leave_their_directory_are_refused() {
    let home = tempfile::tempdir().unwrap();
    // Root-owned storage: the name is the file name. "a/b" would pass the template's own
    // component check (it checks the expanded text, which has no empty part).
    for name in ["a/b", "/", "/etc/passwd", ".", "..", "../x"] {
        let err = FsStore::for_account(&options("/srv/totp/%u.toml"), &me(name, home.path()))
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownUser(ref n) if n == name),
            "{name}: {err}"
        );
    }
    for name in ["..x", ".x", "x.", "alice"] {
        assert!(
            FsStore::for_account(&options("/srv/totp/%u"), &me(name, home.path())).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn a_root_owned_store_directory_owned_by_another_user_is_refused() {
    if !geteuid().is_root() {
        eprintln!("skipped: needs root to give the directory away");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store_dir = root.path().join("store");
    fs::create_dir(&store_dir).unwrap();
    fs::set_permissions(&store_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let secret = format!("{}/%u.toml", store_dir.display());
    let store = store_at(&secret, root.path());
    assert!(
        store.load().unwrap().is_none(),
        "a root-owned store is trusted"
    );
    nix::unistd::chown(&store_dir, Some(Uid::from_raw(54321)), None).unwrap();
    let err = store.load().unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("must belong to root"), "{err}");
    assert!(store.lock(Create::Yes).is_err());
    // Mode is checked too (0750 with the right owner: private to root since the hmod merge).
    nix::unistd::chown(&store_dir, Some(Uid::from_raw(0)), None).unwrap();
    assert!(store.load().is_ok());
    fs::set_permissions(&store_dir, fs::Permissions::from_mode(0o750)).unwrap();
    assert!(store.load().is_err());
}

#[test]
fn a_login_never_creates_missing_state_directories() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    let config = home.path().join(".config");
    // Not enrolled, before and after the answer, and nothing is made on the way.
    assert_eq!(store.prepare(1_700_000_000).unwrap(), Prepared::NotEnrolled);
    let answer = SecretString::new("123456".into());
    let policy = Policy::from(&Options::default());
    let err = store
        .check_and_record(&answer, 1_700_000_000, policy, CountFailure::Yes)
        .unwrap_err();
    assert!(matches!(err, Error::NotEnrolled(_)), "{err}");
    assert!(matches!(store.lock(Create::No), Err(Error::NotEnrolled(_))));
    assert!(!config.exists(), "a login made {}", config.display());
    // Half there: the same.
    fs::create_dir(&config).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(store.prepare(1_700_000_000).unwrap(), Prepared::NotEnrolled);
    assert!(matches!(store.lock(Create::No), Err(Error::NotEnrolled(_))));
    assert!(!config.join("pam-totp").exists());
    // Enrollment (Create::Yes) makes them, private.
    drop(store.lock(Create::Yes).unwrap());
    let made = fs::metadata(config.join("pam-totp")).unwrap();
    assert!(made.is_dir());
    assert_eq!(made.mode() & 0o777, 0o700);
    assert_eq!(made.uid(), geteuid().as_raw());
    // A missing home is "not enrolled", not an error.
    let gone = store_at("~/.config/pam-totp/state.toml", &home.path().join("gone"));
    assert_eq!(gone.prepare(1_700_000_000).unwrap(), Prepared::NotEnrolled);
}

#[test]
fn the_lock_file_is_never_opened_through_a_link() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let target = home.path().join("elsewhere");
    symlink(&target, dir.join("state.toml.lock")).unwrap();
    let store = store_at("~/state/state.toml", home.path());
    let err = match store.lock(Create::No) {
        Ok(_) => panic!("locked through a link"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(!target.exists(), "the link was followed");
    // With the link gone, the lock file is made, mode 0600.
    fs::remove_file(dir.join("state.toml.lock")).unwrap();
    drop(store.lock(Create::No).unwrap());
    let lock = fs::symlink_metadata(dir.join("state.toml.lock")).unwrap();
    assert!(lock.is_file());
    assert_eq!(lock.mode() & 0o777, 0o600);
}
