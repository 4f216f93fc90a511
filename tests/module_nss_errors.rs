//! A passwd database that fails (issue 13, item 18): an NSS backend that cannot answer
//! (an unreachable LDAP server, say) must deny the login as an error, never read as "no
//! such user"; one that says "not found" through errno (ENOENT) is an unknown user. The
//! failures come from a real NSS module (`tests/harness/c/nss_failing.c`) that nss_wrapper
//! loads beside its passwd file, so the lookups go through getpwnam_r/getpwuid_r as in
//! production.
#![allow(clippy::disallowed_methods)] // the shared fixtures read the clock; the library may not

mod common;
mod fixtures;

use common::harness::helpers::{self, Helper};
use common::*;
use fixtures::*;
use std::process::{Command, Output};

/// The environment that makes nss_wrapper load the failing module and makes the lookup of
/// `what` (`NSS_FAILING_NAME` or `NSS_FAILING_UID`) = `value` fail with `errno`.
fn failing_lookup(what: &str, value: &str, errno: &str) -> Vec<(String, String)> {
    let module = helpers::build(Helper::NssFailing).unwrap_or_else(|e| panic!("{e}"));
    vec![
        (
            "NSS_WRAPPER_MODULE_SO_PATH".into(),
            module.display().to_string(),
        ),
        ("NSS_WRAPPER_MODULE_FN_PREFIX".into(), "failing".into()),
        (what.into(), value.into()),
        ("NSS_FAILING_ERRNO".into(), errno.into()),
    ]
}

/// One login of `user` on `service` whose passwd lookup fails with `errno`.
fn login_failing(env: &TestEnv, service: &str, user: &str, errno: &str) -> Outcome {
    let mut opts = AuthOptions::new();
    for (k, v) in failing_lookup("NSS_FAILING_NAME", user, errno) {
        opts = opts.env(k, v);
    }
    env.authenticate_with(service, user, &["123456"], &opts)
}

/// The module's own log lines (pam_wrapper and libpam log too).
fn module_lines(env: &TestEnv) -> Vec<String> {
    env.syslog_lines()
        .into_iter()
        .filter(|l| l.contains("pam_totp"))
        .collect()
}

/// A world where another user exists, so the passwd file is not empty: the failing
/// lookup is of a name the file lacks, as nss_wrapper asks its module only then.
fn world() -> TestEnv {
    let env = TestEnv::new();
    env.add_user("alice");
    totp_service(&env, "login", "");
    totp_service(&env, "login-nullok", "nullok");
    env
}

#[test]
fn a_passwd_database_that_cannot_answer_denies_the_login_even_with_nullok() {
    let env = world();
    for service in ["login", "login-nullok"] {
        env.clear_syslog();
        let out = login_failing(&env, service, "carol", "EIO");
        // An error, not "no such user": an unknown user would be prompted and get
        // PAM_AUTH_ERR, a stack's `authinfo_unavail=...` is the admin's to decide.
        assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{service}: {out}");
        assert!(
            out.prompts().is_empty(),
            "{service}: asked for a code: {out}"
        );
        let lines = module_lines(&env);
        assert_eq!(lines.len(), 1, "{service}: one log line: {lines:#?}");
        let line = &lines[0];
        for part in [
            "carol",
            "passwd database",
            "EIO",
            "fix: check the passwd sources",
        ] {
            assert!(line.contains(part), "{service}: {part:?} missing: {line}");
        }
        assert!(!line.contains("unknown user"), "{service}: {line}");
        assert!(!line.contains("123456"), "{service}: a code logged: {line}");
    }
}

#[test]
fn a_passwd_database_reporting_enoent_means_an_unknown_user() {
    let env = world();
    // nullok skips only enrolled-less known users: an unknown one is refused either way.
    for service in ["login", "login-nullok"] {
        env.clear_syslog();
        let out = login_failing(&env, service, "dave", "ENOENT");
        assert_eq!(out.code, PAM_AUTH_ERR, "{service}: {out}");
        // Prompted like anyone else: the prompt does not tell who exists.
        assert_eq!(out.prompts(), ["Verification code: "], "{service}: {out}");
        let lines = module_lines(&env);
        assert_eq!(lines.len(), 1, "{service}: one log line: {lines:#?}");
        assert!(
            lines[0].contains("unknown user \"dave\""),
            "{service}: {}",
            lines[0]
        );
        assert!(
            !lines[0].contains("passwd database"),
            "{service}: {}",
            lines[0]
        );
    }
}

/// `pam-totp status` as the caller, whose uid lookup fails with `errno`. Nothing for the
/// caller's uid is in the passwd file (no user is added: without root every fake user
/// would get the caller's uid), so nss_wrapper asks the failing module.
fn cli_with_failing_caller(errno: &str) -> Output {
    let env = TestEnv::new();
    let config = empty_config(&env);
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut cmd: Command = env.command(env!("CARGO_BIN_EXE_pam-totp"));
    cmd.arg("--config").arg(&config).arg("status");
    for (k, v) in failing_lookup("NSS_FAILING_UID", &uid.to_string(), errno) {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null())
        .output()
        .expect("run pam-totp")
}

#[test]
fn the_cli_fails_when_the_passwd_database_cannot_name_the_caller() {
    let out = cli_with_failing_caller("EIO");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    assert!(
        stderr.contains(&format!("looking up uid {uid} in the passwd database"))
            && stderr.contains("EIO"),
        "{stderr}"
    );
    assert!(!stderr.contains("has no entry"), "{stderr}");
}

#[test]
fn the_cli_says_the_caller_has_no_entry_when_the_database_reports_enoent() {
    let out = cli_with_failing_caller("ENOENT");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    assert!(
        stderr.contains(&format!(
            "the calling uid {uid} has no entry in the passwd database"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("EIO"), "{stderr}");
}

/// `protect --all-users` lists the names with `getent passwd` (the system's database) and
/// looks each one up; one whose lookup fails is a failure to report (exit 1, named), never
/// a user skipped in silence while the run says every enrollment was moved. Root only.
#[test]
fn protect_all_users_reports_a_user_whose_lookup_fails() {
    if !is_root() {
        eprintln!("SKIPPED: protect --all-users needs root");
        return;
    }
    let env = TestEnv::new();
    let config = empty_config(&env);
    // Root (the caller) is in the passwd file, with a home that does not exist: nothing of
    // the real system is looked at. "daemon", which every Debian system lists, is not, so
    // nss_wrapper asks the failing module for it.
    let home = env.root().join("home/root");
    std::fs::write(
        env.passwd_path(),
        format!("root:x:0:0:root:{}:/bin/sh\n", home.display()),
    )
    .unwrap();
    let mut cmd: Command = env.command(env!("CARGO_BIN_EXE_pam-totp"));
    cmd.arg("--config")
        .arg(&config)
        .args(["protect", "--all-users"]);
    for (k, v) in failing_lookup("NSS_FAILING_NAME", "daemon", "EIO") {
        cmd.env(k, v);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pam-totp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("daemon: not moved") && stderr.contains("passwd database"),
        "{stderr}"
    );
}
