//! State v2 through the real libpam: a v1 state (as the current release writes it) is
//! converted by its first change; a login then rewrites one 4 KiB counters record in place;
//! one damaged record falls back to the other, two are refused with the way out; a hung
//! lock holder, a leftover temp directory, a full disk and a read-only one never turn into
//! a blocked user or an oracle.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use pam_totp::otp::HashAlgorithm;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BLOCK: usize = 4096;

fn log(env: &TestEnv) -> String {
    env.syslog_lines().join("\n")
}

fn counters_path(user: &Enrolled) -> PathBuf {
    user.state_dir().join("state.toml.counters")
}

/// The generation of each block (offset 16, little-endian; see the format in the README).
fn generations(bytes: &[u8]) -> [u64; 2] {
    let at = |block: usize| {
        let start = block * BLOCK + 16;
        u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap())
    };
    [at(0), at(1)]
}

/// Flips one byte of a block's counters area: the checksum no longer matches.
fn damage_block(path: &Path, block: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[block * BLOCK + 100] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

fn current_block(path: &Path) -> usize {
    let [a, b] = generations(&fs::read(path).unwrap());
    if b > a { 1 } else { 0 }
}

fn login(env: &TestEnv, answer: &str) -> Outcome {
    env.authenticate("login", "alice", &[answer])
}

/// Enrolled with a v1 state, converted by one login with the first recovery code.
fn converted(env: &TestEnv) -> Enrolled {
    let alice = enroll_with(env, "alice", HashAlgorithm::SHA1, 6, 30, 10);
    totp_service(env, "login", "max_failures=1000");
    assert_eq!(login(env, &alice.recovery[0]).code, PAM_SUCCESS);
    alice
}

#[test]
fn the_first_login_converts_v1_and_a_login_then_writes_the_counters_in_place() {
    let env = TestEnv::new();
    let alice = enroll_with(&env, "alice", HashAlgorithm::SHA1, 6, 30, 5);
    totp_service(&env, "login", "");
    let code = alice.current_code();
    assert_eq!(login(&env, &code).code, PAM_SUCCESS);

    let enrollment = fs::read_to_string(&alice.state_path).unwrap();
    assert!(enrollment.starts_with("version = 2\n"), "{enrollment}");
    assert!(enrollment.contains("enrollment_id = "), "{enrollment}");
    let counters = counters_path(&alice);
    let meta = fs::metadata(&counters).unwrap();
    assert_eq!(meta.len(), 2 * BLOCK as u64);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), alice.user.uid);
    assert_eq!(meta.nlink(), 1);

    // The replay guard was carried over and is kept per login.
    assert_eq!(login(&env, &code).code, PAM_AUTH_ERR, "replayed");
    let before = fs::read(&counters).unwrap();
    let inode = meta.ino();
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_SUCCESS);
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_AUTH_ERR, "burned");
    let after = fs::read(&counters).unwrap();
    assert_eq!(fs::metadata(&counters).unwrap().ino(), inode, "in place");
    assert_eq!(
        fs::read_to_string(&alice.state_path).unwrap(),
        enrollment,
        "a login leaves the enrollment file alone"
    );
    let [a0, b0] = generations(&before);
    let [a1, b1] = generations(&after);
    assert!(a1.max(b1) > a0.max(b0), "a newer record was written");
    let state = alice.state();
    assert_eq!(state.recovery_codes.len(), 4);
    assert!(state.last_step.is_some());
}

#[test]
fn a_v1_state_with_used_recovery_codes_keeps_them_used() {
    let env = TestEnv::new();
    let alice = enroll_with(&env, "alice", HashAlgorithm::SHA1, 6, 30, 4);
    totp_service(&env, "login", "");
    // What the current release leaves after recovery code 0 was used: its hash removed.
    let mut state = alice.state();
    state.recovery_codes.remove(0);
    alice.write_state(&state);

    assert_eq!(login(&env, &alice.recovery[0]).code, PAM_AUTH_ERR);
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_SUCCESS);
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_AUTH_ERR);
    assert_eq!(login(&env, &alice.recovery[0]).code, PAM_AUTH_ERR);
    assert_eq!(login(&env, &alice.recovery[2]).code, PAM_SUCCESS);
    assert_eq!(alice.state().recovery_codes.len(), 1);
}

#[test]
fn one_damaged_counters_record_the_other_is_used() {
    let env = TestEnv::new();
    let alice = converted(&env);
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_SUCCESS);
    let counters = counters_path(&alice);

    // The older record damaged (a torn write's result): nothing is lost.
    damage_block(&counters, 1 - current_block(&counters));
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_AUTH_ERR, "burned");
    assert_eq!(login(&env, &alice.recovery[2]).code, PAM_SUCCESS);

    // The current record damaged (media damage): the previous one is read.
    damage_block(&counters, current_block(&counters));
    let out = login(&env, &alice.recovery[3]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}\n{}", log(&env));
    assert_eq!(login(&env, &alice.recovery[3]).code, PAM_AUTH_ERR);
}

/// The newest record damaged after it was acknowledged (media damage, not a torn write):
/// the reader must take the older one without giving back what the lost one used up.
#[test]
fn a_damaged_newest_record_never_gives_back_a_used_recovery_code() {
    let env = TestEnv::new();
    let alice = converted(&env);
    let counters = counters_path(&alice);
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_SUCCESS);
    damage_block(&counters, current_block(&counters));
    let out = login(&env, &alice.recovery[1]);
    assert_eq!(out.code, PAM_AUTH_ERR, "the burn came back: {out}");
    // Either block alone still holds the burn: it was written to both.
    damage_block(&counters, current_block(&counters));
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_AUTH_ERR);
    assert_eq!(login(&env, &alice.recovery[2]).code, PAM_SUCCESS);
}

#[test]
fn a_damaged_newest_record_never_gives_back_a_used_totp_step() {
    let env = TestEnv::new();
    let alice = converted(&env);
    let counters = counters_path(&alice);
    let code = alice.current_code();
    assert_eq!(login(&env, &code).code, PAM_SUCCESS);
    damage_block(&counters, current_block(&counters));
    env.clear_syslog();
    let out = login(&env, &code);
    assert_eq!(out.code, PAM_AUTH_ERR, "the step came back: {out}");
    let log = log(&env);
    assert!(
        log.contains("counters block") && log.contains("is damaged"),
        "{log}"
    );
    assert!(log.contains(&counters.display().to_string()), "{log}");
    assert!(
        !log.contains(&code) && !log.contains(&alice.secret),
        "{log}"
    );
    // The guard now covers the whole window of now (window=1 by default), the lost write
    // is counted as a failure (then this refusal), and both blocks are valid again: a
    // further damage to either leaves a record, and is covered once more.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let state = alice.state();
    assert!(
        state.last_step >= Some(now / 30 + 1),
        "{:?}",
        state.last_step
    );
    assert_eq!(state.throttle.failures, 2);
    damage_block(&counters, 1 - current_block(&counters));
    assert_eq!(login(&env, &alice.recovery[2]).code, PAM_SUCCESS);
    // A repaired file is read without a note.
    env.clear_syslog();
    assert_eq!(login(&env, &alice.recovery[3]).code, PAM_SUCCESS);
    assert!(
        !self::log(&env).contains("is damaged"),
        "{}",
        self::log(&env)
    );
}

#[test]
fn both_counters_records_damaged_is_refused_with_the_way_out() {
    let env = TestEnv::new();
    let alice = converted(&env);
    let counters = counters_path(&alice);
    damage_block(&counters, 0);
    damage_block(&counters, 1);
    for answer in [alice.current_code(), alice.recovery[1].clone()] {
        let out = login(&env, &answer);
        assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    }
    let log = log(&env);
    assert!(log.contains("no valid counters record"), "{log}");
    assert!(log.contains("pam-totp --user NAME disable"), "{log}");
    assert!(!log.contains(&alice.secret), "{log}");

    // A missing counters file is the same refusal, never a fresh start.
    fs::remove_file(&counters).unwrap();
    let out = login(&env, &alice.recovery[1]);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    assert!(self::log(&env).contains("counters file is missing"));
}

#[test]
fn root_disable_is_the_way_out_of_two_damaged_records() {
    if !is_root() {
        eprintln!("SKIPPED root_disable_is_the_way_out_of_two_damaged_records: needs root");
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let alice = converted(&env);
    let counters = counters_path(&alice);
    damage_block(&counters, 0);
    damage_block(&counters, 1);
    let config = empty_config(&env);
    let disabled = env
        .command(env!("CARGO_BIN_EXE_pam-totp"))
        .arg("--config")
        .arg(&config)
        .args(["--user", "alice", "disable"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    assert!(!alice.state_path.exists());
    assert!(!counters.exists());
    // Enrolled again (a v1 file, as a restore would write), the user logs in.
    let fresh = enroll_at(
        alice.user.clone(),
        alice.state_path.clone(),
        HashAlgorithm::SHA1,
        6,
        30,
        2,
    );
    assert_eq!(login(&env, &fresh.recovery[0]).code, PAM_SUCCESS);
}

#[test]
fn leftover_temp_directories_never_block_a_login() {
    let env = TestEnv::new();
    let alice = enroll_with(&env, "alice", HashAlgorithm::SHA1, 6, 30, 3);
    totp_service(&env, "login", "");
    for name in ["state.toml.tmp", "state.toml.counters.tmp"] {
        let dir = alice.state_dir().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("junk"), "left by a crash").unwrap();
        give_to(&alice.user, &dir.join("junk"));
        give_to(&alice.user, &dir);
    }
    let out = login(&env, &alice.recovery[0]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}\n{}", log(&env));
    // Enrolling anew (new recovery codes) steps around them again.
    assert_eq!(login(&env, &alice.recovery[1]).code, PAM_SUCCESS);
    assert_eq!(alice.state().recovery_codes.len(), 1);
}

/// A process holding the lock file's lock until killed (a POSIX lock: it conflicts with
/// the module's OFD lock).
struct LockHolder(std::process::Child);

impl LockHolder {
    fn hold(path: &Path) -> LockHolder {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\n\
                 f=open(sys.argv[1],'a+')\n\
                 fcntl.lockf(f,fcntl.LOCK_EX)\n\
                 print('locked',flush=True)\n\
                 time.sleep(600)",
            ])
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_hung_lock_holder_delays_a_login_a_few_seconds_then_it_is_refused() {
    let env = TestEnv::new();
    let alice = converted(&env);
    let lock = alice.state_dir().join("state.toml.lock");
    let holder = LockHolder::hold(&lock);
    let started = Instant::now();
    let out = login(&env, &alice.recovery[1]);
    let waited = started.elapsed();
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    assert!(waited >= Duration::from_secs(9), "{waited:?}");
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    assert!(log(&env).contains("held it for 10 s"), "{}", log(&env));
    drop(holder);
    assert_eq!(
        login(&env, &alice.recovery[1]).code,
        PAM_SUCCESS,
        "not burned"
    );
}

/// A mount made for one test, undone when dropped.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) -> bool {
        Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// What a person sees and what syslog says, for comparing two refusals.
fn answer_of(env: &TestEnv, answer: &str) -> (i32, Vec<(String, String)>, String) {
    env.clear_syslog();
    let out = login(env, answer);
    let log = log(env);
    (out.code, out.messages, log)
}

fn assert_no_oracle(env: &TestEnv, right: &str, wrong: &str, state: &[(PathBuf, Vec<u8>)]) {
    let (right_code, right_messages, right_log) = answer_of(env, right);
    let (wrong_code, wrong_messages, wrong_log) = answer_of(env, wrong);
    assert_eq!(right_code, PAM_AUTHINFO_UNAVAIL, "{right_log}");
    assert_eq!(wrong_code, right_code, "{wrong_log}");
    assert_eq!(wrong_messages, right_messages);
    assert_eq!(wrong_log, right_log);
    for (path, bytes) in state {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{} intact", path.display());
    }
}

fn snapshot(paths: &[PathBuf]) -> Vec<(PathBuf, Vec<u8>)> {
    paths
        .iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect()
}

#[test]
fn a_full_disk_gives_a_right_and_a_wrong_code_the_same_answer() {
    if !is_root() {
        eprintln!("SKIPPED a_full_disk_gives_a_right_and_a_wrong_code_the_same_answer: needs root");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll_with(&env, "alice", HashAlgorithm::SHA1, 6, 30, 3);
    totp_service(&env, "login", "max_failures=1000");
    let dir = alice.state_dir();
    let v1 = fs::read(&alice.state_path).unwrap();
    let options = format!(
        "size=64k,mode=0700,uid={},gid={}",
        alice.user.uid, alice.user.gid
    );
    if !Mount::run(&[
        "-t",
        "tmpfs",
        "-o",
        &options,
        "tmpfs",
        dir.to_str().unwrap(),
    ]) {
        eprintln!("SKIPPED a_full_disk_gives_a_right_and_a_wrong_code_the_same_answer: no mount");
        return;
    }
    let _mount = Mount(dir.clone());
    write_raw_state(&alice.user, &alice.state_path, &v1);
    fs::write(dir.join("state.toml.lock"), "").unwrap();
    fs::set_permissions(
        dir.join("state.toml.lock"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    give_to(&alice.user, &dir.join("state.toml.lock"));
    let filler = dir.join("filler");
    let _ = fs::write(&filler, vec![0u8; 128 * 1024]);

    // A v1 state must be converted, which needs room: both answers are refused alike.
    let code = alice.current_code();
    assert_no_oracle(
        &env,
        &code,
        &wrong_code(&alice),
        &snapshot(std::slice::from_ref(&alice.state_path)),
    );

    // With room again the code converts the state; full once more, a v2 login still works:
    // its write goes to blocks allocated once.
    fs::remove_file(&filler).unwrap();
    assert_eq!(login(&env, &code).code, PAM_SUCCESS);
    let _ = fs::write(&filler, vec![0u8; 128 * 1024]);
    assert_eq!(login(&env, &alice.recovery[0]).code, PAM_SUCCESS);
    assert_eq!(login(&env, &alice.recovery[0]).code, PAM_AUTH_ERR, "burned");
}

#[test]
fn a_read_only_disk_gives_a_right_and_a_wrong_code_the_same_answer() {
    if !is_root() {
        eprintln!(
            "SKIPPED a_read_only_disk_gives_a_right_and_a_wrong_code_the_same_answer: needs root"
        );
        return;
    }
    let env = TestEnv::new();
    let alice = converted(&env);
    let dir = alice.state_dir();
    let path = dir.to_str().unwrap();
    if !Mount::run(&["--bind", path, path]) {
        eprintln!(
            "SKIPPED a_read_only_disk_gives_a_right_and_a_wrong_code_the_same_answer: no mount"
        );
        return;
    }
    let mount = Mount(dir.clone());
    assert!(Mount::run(&["-o", "remount,ro,bind", path]));
    let state = snapshot(&[alice.state_path.clone(), counters_path(&alice)]);
    assert_no_oracle(&env, &alice.recovery[1], &wrong_code(&alice), &state);
    drop(mount);
    assert_eq!(
        login(&env, &alice.recovery[1]).code,
        PAM_SUCCESS,
        "not burned"
    );
}
