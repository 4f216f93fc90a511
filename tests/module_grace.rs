//! `grace_period` through the real libpam (pam_wrapper + nss_wrapper): PAM_RHOST set as sshd
//! sets it (pam_client --rhost); a host that passed with a code is let through unasked for
//! the period, and only that host, and never when throttled or without an rhost.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use std::fs;
use std::path::PathBuf;
use std::process::Output;

const PROMPT: &str = "Verification code: ";
const HOST: &str = "198.51.100.7";

fn from(rhost: &str) -> AuthOptions {
    AuthOptions::new().rhost(rhost)
}

fn counters_path(alice: &Enrolled) -> PathBuf {
    let mut name = alice.state_path.file_name().unwrap().to_owned();
    name.push(".counters");
    alice.state_path.with_file_name(name)
}

/// Every file in the state directory, with its contents.
fn state_files(alice: &Enrolled) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(alice.state_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// alice, enrolled, who just logged in from HOST with a code (service "ssh").
fn logged_in_from_host(env: &TestEnv, args: &str) -> Enrolled {
    logged_in_from(env, HOST, args)
}

/// alice, enrolled, who just logged in from `rhost` with a code (service "ssh").
fn logged_in_from(env: &TestEnv, rhost: &str, args: &str) -> Enrolled {
    let alice = enroll(env, "alice");
    totp_service(env, "ssh", args);
    let out = env.authenticate_with("ssh", "alice", &[&alice.current_code()], &from(rhost));
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(
        counters_path(&alice).exists(),
        "not a v2 state after the login"
    );
    alice
}

#[test]
fn the_same_host_is_not_asked_within_the_period_and_nothing_is_written() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600");
    let before = state_files(&alice);
    env.clear_syslog();
    let out = env.authenticate_with("ssh", "alice", &[], &from(HOST));
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "asked although remembered: {out}");
    let lines = env.syslog_lines();
    let skipped: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("accepted alice without a code"))
        .collect();
    assert_eq!(skipped.len(), 1, "{lines:?}");
    assert!(skipped[0].contains("grace_period=600"), "{lines:?}");
    assert_eq!(state_files(&alice), before, "a login without a code wrote");
}

#[test]
fn another_host_and_a_login_without_rhost_are_asked() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600");
    for opts in [
        from("198.51.100.8"),
        from("198.51.100.70"),
        AuthOptions::new(),
    ] {
        let out = env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &opts);
        assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
        assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
    }
}

#[test]
fn a_host_remembered_for_one_service_is_asked_by_another() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600");
    totp_service(&env, "sudo", "grace_period=600");
    let out = env.authenticate_with("sudo", "alice", &[&wrong_code(&alice)], &from(HOST));
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
    // And the service it passed for still lets it through.
    let out = env.authenticate_with("ssh", "alice", &[], &from(HOST));
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
}

#[test]
fn a_loopback_or_localhost_rhost_is_asked_every_time() {
    for rhost in ["127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"] {
        let env = TestEnv::new();
        let alice = logged_in_from(&env, rhost, "grace_period=600");
        assert!(
            alice.state().remembered_hosts.is_empty(),
            "{rhost} was remembered"
        );
        let out = env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from(rhost));
        assert_eq!(out.code, PAM_AUTH_ERR, "{rhost}: {out}");
        assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{rhost}: {out}");
    }
}

#[test]
fn after_the_period_the_host_is_asked_again() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=2");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from(HOST));
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
}

#[test]
fn grace_period_off_asks_a_host_that_passed() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600");
    totp_service(&env, "ssh", "");
    let out = env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from(HOST));
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
}

#[test]
fn a_throttled_user_is_refused_from_a_remembered_host() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600 max_failures=2");
    for _ in 0..2 {
        let out =
            env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from("203.0.113.9"));
        assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    }
    let out = env.authenticate_with("ssh", "alice", &[], &from(HOST));
    assert_eq!(out.code, PAM_MAXTRIES, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
}

#[test]
fn the_counters_file_does_not_hold_the_rhost_or_its_plain_hash() {
    use sha2::{Digest, Sha256};
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600");
    let counters = fs::read(counters_path(&alice)).unwrap();
    let plain = Sha256::digest(HOST.as_bytes());
    assert!(!counters.windows(HOST.len()).any(|w| w == HOST.as_bytes()));
    assert!(!counters.windows(32).any(|w| w == plain.as_slice()));
    assert_eq!(alice.state().remembered_hosts.len(), 1);
}

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    let config = empty_config(env);
    env.command(env!("CARGO_BIN_EXE_pam-totp"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pam-totp")
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "pam-totp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn disable_new_recovery_codes_and_a_new_enrollment_forget_the_host() {
    if !is_root() {
        eprintln!(
            "SKIPPED disable_new_recovery_codes_and_a_new_enrollment_forget_the_host: needs root"
        );
        return;
    }
    for step in ["recovery-codes", "enroll", "disable"] {
        let env = TestEnv::new();
        env.add_root();
        let alice = logged_in_from_host(&env, "grace_period=600 nullok");
        let args: &[&str] = match step {
            "recovery-codes" => &["--user", "alice", "recovery-codes", "--count", "3"],
            "enroll" => &["--user", "alice", "enroll", "--no-confirm", "--json"],
            _ => &["--user", "alice", "disable"],
        };
        assert_ok(&cli(&env, args));
        let out = env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from(HOST));
        if step == "disable" {
            // Not enrolled any more (nullok): ignored (the only module, so libpam denies),
            // not let through as remembered.
            assert_ne!(out.code, PAM_SUCCESS, "{step}: {out}");
            let lines = env.syslog_lines();
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("ignored alice: not enrolled")),
                "{step}: {lines:?}"
            );
            assert!(
                !lines.iter().any(|l| l.contains("without a code")),
                "{step}: {lines:?}"
            );
        } else {
            assert_eq!(out.code, PAM_AUTH_ERR, "{step}: {out}");
            assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{step}: {out}");
        }
    }
}

/// Flips one byte of a counters block (see the format in the README): its checksum fails.
fn damage_newest_counters_block(alice: &Enrolled) {
    let path = counters_path(alice);
    let mut bytes = fs::read(&path).unwrap();
    let generation = |block: usize| {
        let at = block * 4096 + 16;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let newest = usize::from(generation(1) > generation(0));
    bytes[newest * 4096 + 100] ^= 0x55;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn a_damaged_newest_counters_record_never_lets_a_remembered_host_skip_a_lockout() {
    let env = TestEnv::new();
    let alice = logged_in_from_host(&env, "grace_period=600 max_failures=2");
    // Two wrong codes: the second write (the newest record) holds the lockout; the older
    // record still remembers HOST and has one failure, no lockout.
    for _ in 0..2 {
        let out =
            env.authenticate_with("ssh", "alice", &[&wrong_code(&alice)], &from("203.0.113.9"));
        assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    }
    damage_newest_counters_block(&alice);
    let out = env.authenticate_with("ssh", "alice", &[], &from(HOST));
    assert_ne!(
        out.code, PAM_SUCCESS,
        "the lost lockout let HOST in unasked: {out}"
    );
    assert!(!out.prompts().is_empty(), "not asked for a code: {out}");
}
