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
        .check_and_record(&answer, 1_700_000_000, policy, CountFailure::Yes, None)
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

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const HASH: &str =
    "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";

fn state_with(codes: usize, digits: u8) -> crate::state::State {
    let alphabet = crate::recovery::RECOVERY_ALPHABET;
    let hashes = (0..codes)
        .map(|i| crate::recovery::RecoveryCodeHash {
            id: format!(
                "22{}{}",
                char::from(alphabet[i / 31]),
                char::from(alphabet[i % 31])
            )
            .into(),
            hash: HASH.into(),
        })
        .collect();
    crate::state::State::new(
        SecretString::new(SECRET.into()),
        crate::otp::HashAlgorithm::SHA1,
        digits,
        30,
        hashes,
    )
    .unwrap()
}

#[test]
fn a_changed_state_file_is_read_again_and_large_ones_are_fine_up_to_64_kib() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/s/state.toml", home.path());
    let locked = store.lock(Create::Yes).unwrap();
    // 100 codes: several KiB, well inside the cap.
    locked.write(&state_with(100, 6)).unwrap();
    drop(locked);
    assert_eq!(store.load().unwrap().unwrap().recovery_codes.len(), 100);
    // Rewritten: the next read sees the new bytes, not the parse of the old ones.
    store
        .lock(Create::No)
        .unwrap()
        .write(&state_with(1, 8))
        .unwrap();
    let again = store.load().unwrap().unwrap();
    assert_eq!((again.recovery_codes.len(), again.digits), (1, 8));
    // Over the cap: refused before parsing.
    let path = home.path().join("s/state.toml");
    fs::write(&path, " ".repeat(64 * 1024 + 1)).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("larger than 65536 bytes"), "{err}");
    // The store prints no bytes of the state (the secret is in them).
    assert!(format!("{store:?}").contains("ParseCache"));
    assert!(!format!("{store:?}").contains(SECRET));
}

#[test]
fn messages_name_the_lock_file_itself() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let lock_path = dir.join("state.toml.lock");
    let store = store_at("~/state/state.toml", home.path());
    // A lock file with the wrong mode.
    fs::write(&lock_path, "").unwrap();
    fs::set_permissions(&lock_path, fs::Permissions::from_mode(0o644)).unwrap();
    match store.lock(Create::No) {
        Err(Error::Unsafe { path, .. }) => assert_eq!(path, lock_path),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a 0644 lock file was accepted"),
    }
    // A link in its place.
    fs::remove_file(&lock_path).unwrap();
    symlink(home.path().join("elsewhere"), &lock_path).unwrap();
    match store.lock(Create::No) {
        Err(Error::Unsafe { path, .. }) => assert_eq!(path, lock_path),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("locked through a link"),
    }
}

/// Two imported scratch codes whose ids collide (found by search: the id is a keyed hash).
fn colliding_scratch_codes() -> (SecretString, SecretString) {
    let secret = SecretString::new(SECRET.into());
    let mut seen = std::collections::HashMap::new();
    for n in 10_000_000u32.. {
        let code = SecretString::new(n.to_string());
        let id = crate::recovery::scratch_code_id(&secret, &code).unwrap();
        if let Some(first) = seen.insert(id, code.clone()) {
            return (first, code);
        }
    }
    unreachable!("31^4 ids cannot hold ninety million codes apart")
}

#[test]
fn a_used_scratch_code_that_shares_its_id_never_works_again() {
    // Found by review: the v2 counters burn recovery codes by id, and two imported scratch
    // codes may share one; the used one was left in the enrollment file and came back.
    let (first, second) = colliding_scratch_codes();
    let secret = SecretString::new(SECRET.into());
    let mut state = state_with(0, 6);
    state.recovery_codes =
        crate::recovery::hash_scratch_codes(&secret, &[first.clone(), second.clone()]).unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    store
        .enroll(&state, &mut super::NothingBefore)
        .map_err(|_| "enroll")
        .unwrap();
    let policy = Policy::from(&Options::default());
    let now = 1_700_000_000;
    let check = |code: &SecretString, at: u64| {
        store
            .check_and_record(code, at, policy, CountFailure::Yes, None)
            .unwrap()
            .verdict
    };
    assert!(check(&first, now).accepted());
    assert!(!check(&first, now + 1).accepted(), "a used code came back");
    assert!(
        check(&second, now + 2).accepted(),
        "the other code still works, once"
    );
    assert!(!check(&second, now + 3).accepted());
    assert!(!check(&first, now + 4).accepted());
}

fn totp_code(state: &crate::state::State, at: u64) -> SecretString {
    state.code_at(at).unwrap()
}

#[test]
fn a_right_proof_gets_nothing_done_when_its_attempt_cannot_be_counted_first() {
    // Found by review of the setuid helper: a wrong proof whose count could not be written
    // was an error, but a right one still disabled (unlink) or verified (no write), so
    // whoever can make writes fail (a full disk, the helper's caller's limits) could guess
    // codes unthrottled. Every proof is now written down as a failure before it is judged.
    use super::memory::{MemoryStore, Step};
    use super::{ChangeError, Proof};
    let policy = Policy::from(&Options::default());
    let now = 1_700_000_000;
    let state = state_with(0, 6);
    let right = totp_code(&state, now);

    let store = MemoryStore::new(Some(state.clone()));
    store.fail_at(Step::Write);
    assert!(matches!(
        store.remove(Proof::Code(&right), now, policy),
        Err(ChangeError::Failed(_))
    ));
    assert!(
        store.state().is_some(),
        "disabled without a counted attempt"
    );
    assert!(matches!(
        store.verify(&right, now, policy),
        Err(ChangeError::Failed(_))
    ));
    assert!(matches!(
        store.prove(&right, now, policy),
        Err(ChangeError::Failed(_))
    ));

    // Healthy: the count is written before the verdict, then taken back by a right code.
    let store = MemoryStore::new(Some(state.clone()));
    let wrong = SecretString::new("000000".into());
    let wrong = if wrong == right {
        SecretString::new("111111".into())
    } else {
        wrong
    };
    assert!(store.prove(&wrong, now, policy).is_err());
    assert_eq!(store.writes(), 1);
    assert_eq!(store.state().unwrap().throttle.failures, 1);
    assert!(store.prove(&right, now, policy).is_ok());
    assert_eq!(
        store.writes(),
        3,
        "counted, then the success written over it"
    );
    assert_eq!(store.state().unwrap().throttle.failures, 0);
    let verified = store
        .verify(&totp_code(&state, now + 30), now + 30, policy)
        .map_err(|_| "verify")
        .unwrap();
    assert!(verified.verdict.accepted());
    assert_eq!(store.state().unwrap().throttle.failures, 0, "taken back");
    assert_eq!(
        store.state().unwrap().last_step,
        Some(now / 30),
        "not used up"
    );
}

#[test]
fn a_user_name_that_names_another_users_side_file_is_refused() {
    // Found by review: with `%u` last in the file name, user "bob.lock" would get bob's
    // lock file as its state file, and enrolling it would replace bob's lock.
    let root = tempfile::tempdir().unwrap();
    let template = format!("{}/%u", root.path().display());
    for name in [
        "bob.lock",
        "bob.counters",
        "bob.tmp",
        "bob.damaged-1700000000",
    ] {
        let err = FsStore::for_account(&options(&template), &me(name, root.path()))
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::UnknownUser(_)), "{name}: {err}");
    }
    // Dots are fine otherwise, and `%u.toml` never collides.
    assert!(FsStore::for_account(&options(&template), &me("john.doe", root.path())).is_ok());
    let toml = format!("{}/%u.toml", root.path().display());
    assert!(FsStore::for_account(&options(&toml), &me("bob.lock", root.path())).is_ok());
}

/// A counters write that the kernel refuses (here: a descriptor opened read-only, EBADF)
/// is an error at once, never retried as if interrupted (that would hang the login under
/// its lock), and the file keeps its current record.
#[test]
fn a_refused_counters_write_is_an_error_not_a_retry() {
    use super::counters_file::{self, CountersError};
    use crate::state::Throttle;
    use crate::state::counters_v2::{Counters, EnrollmentId, Record};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters");
    let first = Record {
        generation: 1,
        enrollment_id: EnrollmentId([3; 16]),
        counters: Counters::new(Some(7), Throttle::default(), None),
    };
    let file = fs::File::create(&path).unwrap();
    let current = counters_file::write_initial(&file, &first).unwrap();
    drop(file);
    let before = fs::read(&path).unwrap();
    let read_only = fs::File::open(&path).unwrap();
    let next = Counters::new(Some(8), Throttle::default(), None);
    let err = counters_file::update(&read_only, &current, next).unwrap_err();
    assert!(
        matches!(&err, CountersError::Io { action: "write", source } if source.raw_os_error() == Some(libc::EBADF)),
        "{err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}

fn memory_state() -> crate::state::State {
    crate::state::State::new(
        SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
        crate::otp::HashAlgorithm::SHA1,
        6,
        30,
        Vec::new(),
    )
    .unwrap()
}

/// Root's unlock clears a throttle that is there (and writes nothing when there is none).
#[test]
fn clearing_the_throttle_clears_it_and_returns_what_it_was() {
    use super::memory::MemoryStore;
    use crate::state::Throttle;
    let mut state = memory_state();
    let throttled = Throttle {
        failures: 7,
        locked_until: u64::MAX,
    };
    state.throttle = throttled.clone();
    let store = MemoryStore::new(Some(state));
    assert_eq!(store.clear_throttle().unwrap(), throttled);
    assert_eq!(store.state().unwrap().throttle, Throttle::default());
    assert_eq!(store.writes(), 1);
    assert_eq!(store.clear_throttle().unwrap(), Throttle::default());
    assert_eq!(store.writes(), 1, "nothing to clear, nothing written");
}

/// A backend without files has nothing to keep aside: it says so, rather than naming a
/// copy that does not exist (set_aside_damaged would report an empty path as kept).
#[test]
fn a_store_without_files_keeps_nothing_aside() {
    use super::memory::MemoryStore;
    let store = MemoryStore::new(Some(memory_state()));
    let locked = store.lock(Create::No).unwrap();
    assert!(matches!(
        locked.keep_aside(".damaged-1"),
        Err(Error::Internal(_))
    ));
}

/// A new enrollment over a v2 one writes its first counters record into the block not
/// holding the current one, in the same file (so a crash before the enrollment file is
/// renamed still leaves the old enrollment its record); a TOTP login then costs one write.
#[test]
fn a_new_enrollment_over_v2_writes_the_counters_in_place_and_a_login_writes_once() {
    use std::os::unix::fs::MetadataExt;
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    let counters = home.path().join(".config/pam-totp/state.toml.counters");
    let state = state_with(0, 6);
    let enroll = |state: &crate::state::State| {
        store
            .enroll(state, &mut super::NothingBefore)
            .map_err(|_| "enroll")
            .unwrap();
    };
    enroll(&state);
    let inode = fs::metadata(&counters).unwrap().ino();
    // Another secret: a new enrollment, not a change of counters.
    let mut state = state.clone();
    state.secret = SecretString::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into());
    enroll(&state);
    assert_eq!(fs::metadata(&counters).unwrap().ino(), inode, "in place");
    let generations = || {
        let bytes = fs::read(&counters).unwrap();
        let at = |start: usize| u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap());
        at(16).max(at(4096 + 16))
    };
    let before = generations();
    let now = 1_700_000_000;
    let policy = Policy::from(&Options::default());
    let verdict = store
        .check_and_record(
            &totp_code(&state, now),
            now,
            policy,
            CountFailure::Yes,
            None,
        )
        .unwrap()
        .verdict;
    assert!(verdict.accepted(), "{verdict:?}");
    assert_eq!(generations(), before + 1, "one write for a TOTP login");
}

/// New recovery codes with the same secret are a new enrollment file, not a change of
/// counters: the new codes work, the old ones do not.
#[test]
fn new_recovery_codes_replace_the_old_ones_in_the_enrollment_file() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    let (old, old_hashes) = crate::recovery::new_recovery_codes(1).unwrap();
    let mut state = state_with(0, 6);
    state.recovery_codes = old_hashes;
    store
        .enroll(&state, &mut super::NothingBefore)
        .map_err(|_| "enroll")
        .unwrap();
    let (new, new_hashes) = crate::recovery::new_recovery_codes(1).unwrap();
    let now = 1_700_000_000;
    let policy = Policy::from(&Options::default());
    store
        .replace_recovery_codes(
            super::Proof::NotNeeded,
            &new_hashes,
            now,
            policy,
            &mut super::NothingBefore,
        )
        .map_err(|_| "replace")
        .unwrap();
    let check = |code: &SecretString| {
        store
            .check_and_record(code, now, policy, CountFailure::Yes, None)
            .unwrap()
            .verdict
    };
    assert!(!check(&old[0]).accepted(), "an old code still works");
    assert!(check(&new[0]).accepted(), "the new code does not work");
}

/// An enrollment file that does not start with this build's version line (edited by hand,
/// a comment first) is still read as version 2, not refused as a broken version 1.
#[test]
fn an_enrollment_file_with_a_comment_first_is_still_version_2() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    let state = state_with(0, 6);
    store
        .enroll(&state, &mut super::NothingBefore)
        .map_err(|_| "enroll")
        .unwrap();
    let path = home.path().join(".config/pam-totp/state.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("version = 2\n"), "{text}");
    fs::write(&path, format!("# edited by hand\n{text}")).unwrap();
    let read = store_at("~/.config/pam-totp/state.toml", home.path())
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(read.secret, state.secret);
}

/// The parse cache answers only for the same bytes and the same enrollment id: an
/// enrollment file that now names another id (restored from elsewhere) is checked against
/// the counters again, and refused when none of their records is of that enrollment.
#[test]
fn the_counters_cache_never_answers_for_another_enrollment_id() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    store
        .enroll(&state_with(0, 6), &mut super::NothingBefore)
        .map_err(|_| "enroll")
        .unwrap();
    assert!(store.load().unwrap().is_some());
    let path = home.path().join(".config/pam-totp/state.toml");
    let text = fs::read_to_string(&path).unwrap();
    let start = text.find("enrollment_id = \"").unwrap() + "enrollment_id = \"".len();
    let other = format!(
        "{}{}{}",
        &text[..start],
        "0".repeat(32),
        &text[start + 32..]
    );
    assert_ne!(other, text);
    fs::write(&path, other).unwrap();
    let err = store.load().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

/// An HOTP code from a token that was ahead moves the counter by more than one: written
/// to both blocks, so the newest one damaged later does not give that code back (a
/// fallback alone covers a move of one).
#[test]
fn an_hotp_jump_survives_damage_to_the_newest_counters_record() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at("~/.config/pam-totp/state.toml", home.path());
    let state = state_with(0, 6).into_hotp(0);
    store
        .enroll(&state, &mut super::NothingBefore)
        .map_err(|_| "enroll")
        .unwrap();
    let code = crate::otp::hotp_code(&state.secret, state.params(), 3).unwrap();
    let now = 1_700_000_000;
    let policy = Policy::from(&Options::default());
    let check = |code: &SecretString| {
        store
            .check_and_record(code, now, policy, CountFailure::Yes, None)
            .unwrap()
            .verdict
    };
    assert!(check(&code).accepted());
    let counters = home.path().join(".config/pam-totp/state.toml.counters");
    let mut bytes = fs::read(&counters).unwrap();
    let generation = |block: usize, bytes: &[u8]| {
        let at = block * 4096 + 16;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let newest = usize::from(generation(1, &bytes) > generation(0, &bytes));
    bytes[newest * 4096 + 100] ^= 0x55;
    fs::write(&counters, bytes).unwrap();
    let verdict = check(&code);
    assert!(!verdict.accepted(), "the code came back: {verdict:?}");
}

/// Enrolling again with the same secret and no recovery codes, one parameter changed (an
/// admin's `enroll --secret-file F --period 60 --recovery-codes 0`): the new parameter is
/// what logins use. Found by the mutation run of `counters_for`, which could tell such an
/// enrollment from a change of counters by the secret and the codes alone, and no test saw.
#[test]
fn one_parameter_changed_alone_is_a_new_enrollment() {
    use crate::otp::{HashAlgorithm, Kind};
    let now = 1_700_000_000;
    let policy = Policy::from(&Options::default());
    let first = state_with(0, 6);
    type Change = fn(&mut crate::state::State);
    let changes: [(&str, Change); 3] = [
        ("period", |s| s.period = 60),
        ("digits", |s| s.digits = 8),
        ("algorithm", |s| s.algorithm = HashAlgorithm::SHA512),
    ];
    for (what, change) in changes {
        let home = tempfile::tempdir().unwrap();
        let store = store_at("~/.config/pam-totp/state.toml", home.path());
        let enroll = |state: &crate::state::State| {
            store
                .enroll(state, &mut super::NothingBefore)
                .map_err(|_| "enroll")
                .unwrap();
        };
        enroll(&first);
        let mut second = first.clone();
        change(&mut second);
        assert_eq!(second.kind, Kind::Totp);
        enroll(&second);
        let code = totp_code(&second, now);
        let verdict = store
            .check_and_record(&code, now, policy, CountFailure::Yes, None)
            .unwrap()
            .verdict;
        assert!(verdict.accepted(), "{what}: {verdict:?}");
    }
}
