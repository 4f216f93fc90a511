//! Rolling 2FA out by a date: `nullok_until=` through the real libpam (pam_wrapper +
//! nss_wrapper), and `pam-totp report` to see who is left.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

#[test]
fn nullok_until_lets_the_unenrolled_through_with_the_deadline_then_stops() {
    let env = TestEnv::new();
    env.add_user("alice");
    let config = empty_config(&env);
    for (service, date) in [("before", "9999-12-31"), ("after", "2000-01-01")] {
        env.service(
            service,
            &format!(
                "auth required {{module}} config={} nullok_until={date}\nauth required pam_permit.so\n",
                config.display()
            ),
        );
    }
    let out = env.authenticate("before", "alice", &[]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "not asked for a code: {out}");
    assert!(
        out.infos()
            .iter()
            .any(|m| m.contains("after 9999-12-31 (UTC)") && m.contains("pam-totp enroll")),
        "told the deadline and the command: {out}"
    );
    let out = env.authenticate("after", "alice", &["123456"]);
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "after the date, as without it: {out}"
    );
    assert!(out.infos().is_empty(), "{out}");

    let lines = env.syslog_lines().join("\n");
    assert!(
        lines.contains("ignored alice: not enrolled (nullok_until 9999-12-31)"),
        "{lines}"
    );
    assert!(lines.contains("refused alice: not enrolled"), "{lines}");
}

#[test]
fn nullok_with_nullok_until_is_a_configuration_error() {
    let env = TestEnv::new();
    env.add_user("alice");
    totp_service(&env, "both", "nullok nullok_until=9999-12-31");
    let out = env.authenticate("both", "alice", &[]);
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert_ne!(out.code, PAM_IGNORE, "{out}");
    let lines = env.syslog_lines().join("\n");
    assert!(lines.contains("cannot be combined"), "{lines}");
}

fn cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let config = empty_config(env);
    env.command(env!("CARGO_BIN_EXE_pam-totp"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pam-totp")
}

#[test]
fn report_shows_who_is_left_and_goes_on_past_unreadable_homes() {
    if !is_root() {
        eprintln!("SKIPPED report: needs root (other users' homes)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.add_root();
    let alice = enroll(&env, "alice");
    let bob = env.add_user("bob");
    std::fs::write(bob.home.join(".google_authenticator"), "JBSWY3DPEHPK3PXP\n").unwrap();
    give_to(&bob, &bob.home.join(".google_authenticator"));
    let carol = env.add_user("carol");
    // carol's home belongs to root and is closed: read as carol, it cannot be looked in.
    std::os::unix::fs::chown(&carol.home, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&carol.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    totp_service(&env, "login", "");
    let out = env.authenticate("login", "alice", &[&alice.recovery[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");

    let out = cli(&env, &["report", "--json"]);
    assert_eq!(out.status.code(), Some(1), "carol could not be read");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| {
        lines
            .iter()
            .find(|l| l["user"] == name)
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .clone()
    };
    assert_eq!(lines.len(), 4, "root, alice, bob, carol: {stdout}");
    let a = of("alice");
    assert_eq!(a["enrolled"], true, "{a}");
    assert_eq!(a["recovery_codes_left"], 4, "{a}");
    assert_eq!(a["last_success"]["method"], "recovery", "{a}");
    assert_eq!(a["throttled"], false, "{a}");
    assert_eq!(a["google_authenticator_file"], false, "{a}");
    assert_eq!(
        a["state_file"].as_str().unwrap(),
        alice.state_path.display().to_string()
    );
    let b = of("bob");
    assert_eq!(b["enrolled"], false, "{b}");
    assert_eq!(b["google_authenticator_file"], true, "{b}");
    let c = of("carol");
    assert!(c["problem"].is_string(), "{c}");
    assert!(!stdout.contains(&alice.secret), "never a secret");

    let out = cli(&env, &["report", "alice", "bob"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("alice: enrolled;"), "{text}");
    assert!(text.contains("bob: NOT enrolled;"), "{text}");
    assert!(text.contains("pam-totp --user bob import"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
}
