//! pam_totp.so and the files it reads: symlinks, owners, modes, damaged or hostile
//! content, failed writes. Every refusal fails closed (PAM_AUTHINFO_UNAVAIL) with one log
//! line that says what is wrong and how to fix it.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use pam_totp::otp::HashAlgorithm;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn log(env: &TestEnv) -> String {
    env.syslog_lines().join("\n")
}

/// Moves `path` aside and puts a symlink to the moved copy in its place.
fn replace_with_symlink(path: &Path) {
    let real = path.with_file_name(format!(
        "{}-real",
        path.file_name().unwrap().to_string_lossy()
    ));
    fs::rename(path, &real).unwrap();
    symlink(&real, path).unwrap();
}

fn assert_refused(env: &TestEnv, user: &str, answer: &str, expected_in_log: &str) {
    let out = env.authenticate("login", user, &[answer]);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    let log = log(env);
    assert!(
        log.contains(expected_in_log),
        "expected {expected_in_log:?} in:\n{log}"
    );
}

#[test]
fn symlinked_config_dir_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nullok");
    replace_with_symlink(&alice.user.home.join(".config"));
    assert_refused(&env, "alice", &alice.current_code(), "symbolic link");
}

#[test]
fn symlinked_state_dir_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nullok");
    replace_with_symlink(&alice.state_dir());
    assert_refused(&env, "alice", &alice.current_code(), "symbolic link");
}

#[test]
fn symlinked_state_file_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nullok");
    replace_with_symlink(&alice.state_path);
    assert_refused(&env, "alice", &alice.current_code(), "symbolic link");
}

#[test]
fn dangling_symlink_is_refused_not_taken_for_no_enrollment() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nullok");
    fs::remove_file(&alice.state_path).unwrap();
    symlink("/nonexistent/state.toml", &alice.state_path).unwrap();
    assert_refused(&env, "alice", "123456", "symbolic link");
}

#[test]
fn group_readable_state_file_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    set_mode(&alice.state_path, 0o640);
    assert_refused(&env, "alice", &alice.current_code(), "chmod 600");
}

#[test]
fn world_readable_state_file_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    set_mode(&alice.state_path, 0o604);
    assert_refused(&env, "alice", &alice.current_code(), "chmod 600");
}

#[test]
fn group_writable_state_dir_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    set_mode(&alice.state_dir(), 0o770);
    assert_refused(&env, "alice", &alice.current_code(), "chmod 700");
}

#[test]
fn world_writable_config_dir_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    set_mode(&alice.user.home.join(".config"), 0o777);
    assert_refused(
        &env,
        "alice",
        &alice.current_code(),
        "writable by group or others",
    );
}

#[test]
fn state_file_owned_by_someone_else_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED state_file_owned_by_someone_else_is_refused: needs root to chown");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    let mallory = env.add_user("mallory");
    totp_service(&env, "login", "");
    std::os::unix::fs::chown(&alice.state_path, Some(mallory.uid), Some(mallory.gid)).unwrap();
    assert_refused(&env, "alice", &alice.current_code(), "chown alice");
}

#[test]
fn state_dir_owned_by_someone_else_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED state_dir_owned_by_someone_else_is_refused: needs root to chown");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    let mallory = env.add_user("mallory");
    totp_service(&env, "login", "");
    std::os::unix::fs::chown(alice.state_dir(), Some(mallory.uid), None).unwrap();
    assert_refused(&env, "alice", &alice.current_code(), "not by alice");
}

#[test]
fn a_fifo_in_place_of_the_state_file_is_refused_without_hanging() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    fs::remove_file(&alice.state_path).unwrap();
    nix::unistd::mkfifo(
        &alice.state_path,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    give_to(&alice.user, &alice.state_path);
    assert_refused(&env, "alice", "123456", "not a regular file");
}

#[test]
fn damaged_and_hostile_state_files_are_refused_without_quoting_them() {
    let env = TestEnv::new();
    totp_service(&env, "login", "nullok");
    let good = {
        let probe = enroll(&env, "probe");
        fs::read(&probe.state_path).unwrap()
    };
    let hostile_argon2 = String::from_utf8(good.clone())
        .unwrap()
        .replace("m=19456,t=2,p=1", "m=4194304,t=1,p=1");
    assert!(hostile_argon2.contains("m=4194304"));
    // Cut inside a value: a cut at a line boundary can leave valid TOML with fewer codes.
    let cut = String::from_utf8_lossy(&good).find("hash = \"").unwrap() + 20;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "invalid"),
        ("truncated", good[..cut].to_vec(), "invalid"),
        (
            "non_utf8",
            b"version = 1\nsecret = \"\xff\xfe\"\n".to_vec(),
            "not UTF-8",
        ),
        ("huge", vec![b'#'; 70 * 1024], "larger than"),
        (
            "hostile_argon2",
            hostile_argon2.into_bytes(),
            "argon2 cost above the cap",
        ),
        ("garbage", b"SECRETGARBAGE = [[[".to_vec(), "invalid"),
        (
            "short_secret",
            b"version = 1\nsecret = \"GEZDGNBV\"\n".to_vec(),
            "bits",
        ),
    ];
    for (name, bytes, expected) in cases {
        let user = env.add_user(name);
        let path = default_state_path(&user);
        write_raw_state(&user, &path, &bytes);
        env.clear_syslog();
        assert_refused(&env, name, "123456", expected);
        assert!(!log(&env).contains("SECRETGARBAGE"), "{}", log(&env));
    }
}

#[test]
fn failed_write_denies_login_and_keeps_the_old_state() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let code = alice.current_code();
    // The lock file exists but no temp file can be created: like a read-only home.
    fs::write(alice.state_dir().join("state.toml.lock"), "").unwrap();
    set_mode(&alice.state_dir().join("state.toml.lock"), 0o600);
    give_to(&alice.user, &alice.state_dir().join("state.toml.lock"));
    let before = fs::read(&alice.state_path).unwrap();
    set_mode(&alice.state_dir(), 0o500);
    let out = env.authenticate("login", "alice", &[&code]);
    set_mode(&alice.state_dir(), 0o700);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    assert!(log(&env).contains("cannot create"), "{}", log(&env));
    assert_eq!(
        fs::read(&alice.state_path).unwrap(),
        before,
        "old state intact"
    );
    // The code was not burned: it still works once the directory is writable.
    assert_eq!(
        env.authenticate("login", "alice", &[&code]).code,
        PAM_SUCCESS
    );
}

#[test]
fn stale_temp_and_lock_files_never_block_a_login() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    for name in ["state.toml.tmp", "state.toml.lock"] {
        let path = alice.state_dir().join(name);
        fs::write(&path, "half-written garbage from a crash").unwrap();
        set_mode(&path, 0o600);
        give_to(&alice.user, &path);
    }
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(!alice.state_dir().join("state.toml.tmp").exists());
}

#[test]
fn state_is_rewritten_as_the_user_with_mode_0600() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    assert_eq!(
        env.authenticate("login", "alice", &[&alice.current_code()])
            .code,
        PAM_SUCCESS
    );
    let meta = fs::metadata(&alice.state_path).unwrap();
    assert_eq!(meta.uid(), alice.user.uid);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(alice.state().last_step.is_some());
}

#[test]
fn root_owned_storage_outside_the_home() {
    let env = TestEnv::new();
    let store = env.root().join("store");
    fs::create_dir(&store).unwrap();
    set_mode(&store, 0o700);
    totp_service(
        &env,
        "login",
        &format!("secret={}/%u.toml", store.display()),
    );
    let user = env.add_user("alice");
    // Root-owned storage belongs to whoever runs the module (root in production).
    let me = common::User {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        home: env.root().to_owned(),
        ..user.clone()
    };
    let alice = enroll_at(me, store.join("alice.toml"), HashAlgorithm::SHA1, 6, 30, 1);
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // A group-writable store directory is refused, and so is a readable one: it would tell
    // every local user who is enrolled.
    set_mode(&store, 0o775);
    assert_refused(&env, "alice", &alice.recovery[0], "private to it");
    for mode in [0o755, 0o750, 0o701] {
        set_mode(&store, mode);
        assert_refused(&env, "alice", &alice.recovery[0], "chmod 700");
    }
    set_mode(&store, 0o700);
    let out = env.authenticate("login", "alice", &[&alice.recovery[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

#[test]
fn a_missing_root_owned_store_is_an_error_even_with_nullok() {
    let env = TestEnv::new();
    env.add_user("alice");
    totp_service(
        &env,
        "login",
        &format!("nullok secret={}/missing/%u.toml", env.root().display()),
    );
    assert_refused(&env, "alice", "123456", "cannot open directory");
}

#[test]
fn state_path_template_with_home() {
    let env = TestEnv::new();
    let user = env.add_user("alice");
    let path = user.home.join(".pam-totp-alice.toml");
    let alice = enroll_at(user, path, HashAlgorithm::SHA1, 6, 30, 0);
    totp_service(&env, "login", "secret=%h/.pam-totp-%u.toml");
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

#[test]
fn a_group_writable_home_is_refused_even_with_nullok_and_no_state() {
    // Whoever can write the home can rename .config away: with nullok that would be a
    // login with the password alone. Refused (never ignored), as sshd's StrictModes does.
    let env = TestEnv::new();
    let alice = env.add_user("alice");
    totp_service(&env, "login", "nullok");
    set_mode(&alice.home, 0o775);
    let out = env.authenticate("login", "alice", &[]);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    let lines = log(&env);
    assert!(
        lines.contains(&format!("chmod go-w {}", alice.home.display())),
        "{lines}"
    );
    // A world-writable one too; a sane one is back to "not enrolled" (nullok: ignored).
    set_mode(&alice.home, 0o757);
    assert_eq!(
        env.authenticate("login", "alice", &[]).code,
        PAM_AUTHINFO_UNAVAIL
    );
    set_mode(&alice.home, 0o755);
    env.clear_syslog();
    env.authenticate("login", "alice", &[]);
    assert!(
        log(&env).contains("ignored alice: not enrolled"),
        "{}",
        log(&env)
    );
}

#[test]
fn a_home_owned_by_someone_else_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED a_home_owned_by_someone_else_is_refused: needs root to chown");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    let mallory = env.add_user("mallory");
    totp_service(&env, "login", "nullok");
    std::os::unix::fs::chown(&alice.user.home, Some(mallory.uid), None).unwrap();
    assert_refused(
        &env,
        "alice",
        &alice.current_code(),
        &format!("chown alice {}", alice.user.home.display()),
    );
    // Owned by root is fine, as for sshd.
    std::os::unix::fs::chown(&alice.user.home, Some(0), None).unwrap();
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

#[test]
fn a_hard_linked_state_file_is_refused_with_its_own_message() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let other_name = alice.user.home.join("another-name");
    fs::hard_link(&alice.state_path, &other_name).unwrap();
    assert_refused(&env, "alice", &alice.current_code(), "has 2 hard links");
    let log = log(&env);
    assert!(!log.contains("chown") && !log.contains("chmod"), "{log}");
}

#[test]
fn a_hard_link_to_a_root_file_gets_no_chown_advice() {
    if !is_root() {
        eprintln!("SKIPPED a_hard_link_to_a_root_file_gets_no_chown_advice: needs root");
        return;
    }
    // Where protected_hardlinks=0 a user can link root's file into their state directory:
    // "chown alice" would hand root's file to alice.
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let roots = env.root().join("roots-secret");
    fs::write(&roots, "root's").unwrap();
    set_mode(&roots, 0o600);
    fs::remove_file(&alice.state_path).unwrap();
    fs::hard_link(&roots, &alice.state_path).unwrap();
    assert_refused(&env, "alice", "123456", "hard links");
    let log = log(&env);
    assert!(!log.contains("chown") && !log.contains("chmod"), "{log}");
    assert_eq!(fs::metadata(&roots).unwrap().uid(), 0);
}

#[test]
fn a_config_that_is_no_regular_file_gets_no_chmod_advice() {
    let env = TestEnv::new();
    enroll(&env, "alice");
    let fifo = env.root().join("fifo.conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let dir = env.root().join("dir.conf");
    fs::create_dir(&dir).unwrap();
    for config in [Path::new("/dev/zero"), &fifo, &dir] {
        env.clear_syslog();
        env.service(
            "login",
            &format!("auth required {{module}} config={}\n", config.display()),
        );
        let out = env.authenticate("login", "alice", &["123456"]);
        assert_eq!(out.code, PAM_SERVICE_ERR, "{}: {out}", config.display());
        let log = log(&env);
        assert!(log.contains("not a regular file"), "{log}");
        assert!(!log.contains("chmod") && !log.contains("chown"), "{log}");
    }
}

#[test]
fn a_hard_linked_config_is_refused_with_its_own_message() {
    let env = TestEnv::new();
    enroll(&env, "alice");
    let config = empty_config(&env);
    fs::hard_link(&config, env.root().join("second-name.conf")).unwrap();
    totp_service(&env, "login", "");
    let out = env.authenticate("login", "alice", &["123456"]);
    assert_eq!(out.code, PAM_SERVICE_ERR, "{out}");
    let log = log(&env);
    assert!(log.contains("has 2 hard links"), "{log}");
    assert!(!log.contains("chmod") && !log.contains("chown"), "{log}");
}

#[test]
fn a_literal_percent_u_in_root_owned_storage_is_refused() {
    // `%%u` is the text "%u": every user would share one file.
    let env = TestEnv::new();
    env.add_user("alice");
    let store = env.root().join("store");
    fs::create_dir(&store).unwrap();
    set_mode(&store, 0o700);
    totp_service(
        &env,
        "login",
        &format!("nullok secret={}/%%u.toml", store.display()),
    );
    let out = env.authenticate("login", "alice", &["123456"]);
    assert_eq!(out.code, PAM_SERVICE_ERR, "{out}");
    assert!(log(&env).contains("not %%u"), "{}", log(&env));
}

#[test]
fn a_home_entered_through_a_supplementary_group_works_and_roots_groups_never_help() {
    if !is_root() {
        eprintln!("SKIPPED a_home_entered_through_a_supplementary_group_works: needs root");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let home = &alice.user.home;
    // Only root's own group may enter: alice must not get in through root's groups.
    std::os::unix::fs::chown(home, Some(0), Some(0)).unwrap();
    set_mode(home, 0o750);
    let out = env.authenticate("login", "alice", &[&alice.recovery[0]]);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    assert!(log(&env).contains("Permission denied"), "{}", log(&env));

    // A group alice is a member of (not her primary one) may enter: resolved when needed.
    let mut groups = fs::read_to_string(env.group_path()).unwrap();
    groups.push_str("staff:x:62999:alice\n");
    fs::write(env.group_path(), groups).unwrap();
    std::os::unix::fs::chown(home, Some(0), Some(62999)).unwrap();
    let out = env.authenticate("login", "alice", &[&alice.recovery[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}\n{}", log(&env));
}

#[test]
fn the_module_loads_no_libgcc_s_and_panics_still_unwind() {
    // build.rs links the unwinder statically: no libgcc_s.so.1 to load at every pam_start.
    let module = module_path();
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&module)
        .output()
        .expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("(NEEDED)"), "{dynamic}");
    assert!(!dynamic.contains("libgcc_s"), "{dynamic}");
    // This test binary is linked the same way: a panic still unwinds to a catch.
    let caught = std::panic::catch_unwind(|| panic!("unwinds"));
    assert!(caught.is_err());
}
