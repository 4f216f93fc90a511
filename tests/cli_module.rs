//! The CLI and the module together, as an admin would use them: root provisions a user with
//! `pam-totp`, the user logs in through pam_totp.so (real libpam via pam_wrapper), root makes
//! new recovery codes and disables, and the module follows every step.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use pam_totp::otp::HashAlgorithm;
use std::process::Output;

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

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "pam-totp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn provisioned_by_root_then_login_regenerate_and_disable() {
    if !is_root() {
        eprintln!("SKIPPED provisioned_by_root_then_login_regenerate_and_disable: needs root");
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    env.add_user("alice");
    totp_service(&env, "login", "");
    let config = empty_config(&env);
    env.service(
        "rollout",
        &format!(
            "auth required {{module}} config={} nullok\nauth required pam_permit.so\n",
            config.display()
        ),
    );

    let enrolled = json(&cli(
        &env,
        &["--user", "alice", "enroll", "--no-confirm", "--json"],
    ));
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    let first_codes = strings(&enrolled["recovery_codes"]);
    assert_eq!(first_codes.len(), 10);

    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    let out = env.authenticate("login", "alice", &[&code]);
    assert_eq!(out.code, PAM_SUCCESS, "TOTP from the CLI's secret: {out}");
    let out = env.authenticate("login", "alice", &[&first_codes[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "recovery code from the CLI: {out}");
    assert!(
        out.infos().iter().any(|m| m.contains("9 are left")),
        "{out}"
    );

    let status = json(&cli(&env, &["--user", "alice", "status", "--json"]));
    assert_eq!(status["recovery_codes_left"].as_u64(), Some(9), "{status}");

    let renewed = cli(&env, &["--user", "alice", "recovery-codes", "--count", "3"]);
    assert!(
        renewed.status.success(),
        "{}",
        String::from_utf8_lossy(&renewed.stderr)
    );
    let shown = String::from_utf8_lossy(&renewed.stdout).to_string();
    let new_codes: Vec<&str> = shown
        .split_whitespace()
        .filter(|w| w.len() == 24 && w.matches('-').count() == 4)
        .collect();
    assert_eq!(new_codes.len(), 3, "{shown}");
    let out = env.authenticate("login", "alice", &[&first_codes[1]]);
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "old recovery codes die at once: {out}"
    );
    let out = env.authenticate("login", "alice", &[new_codes[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "new recovery code: {out}");

    let disabled = cli(&env, &["--user", "alice", "disable"]);
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30) + 30);
    let out = env.authenticate("login", "alice", &[&code]);
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "nothing is accepted after disable: {out}"
    );
    let out = env.authenticate("login", "alice", &[new_codes[1]]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    let out = env.authenticate("rollout", "alice", &[]);
    assert_eq!(
        out.code, PAM_SUCCESS,
        "with nullok the module steps aside: {out}"
    );
    assert!(out.prompts().is_empty(), "{out}");

    let lines = env.syslog_lines().join("\n");
    assert!(
        lines.contains("ignored alice: not enrolled (nullok)"),
        "{lines}"
    );
    for action in ["enrolled", "replaced the recovery codes", "disabled"] {
        let line = format!("root (uid 0) for alice (uid 61000): {action}");
        assert!(
            lines.contains(&line),
            "the CLI logs who did what for whom:\n{lines}"
        );
    }
    // Every line, module's and CLI's, goes to authpriv (facility 10: priorities 80..=87).
    for line in env.syslog_lines() {
        let priority: u32 = line[1..line.find('>').unwrap()].parse().unwrap();
        assert_eq!(priority / 8, 10, "{line}");
    }
    for secret_text in [secret.as_str(), first_codes[0].as_str(), new_codes[0]] {
        assert!(
            !lines.contains(secret_text),
            "a secret reached the log:\n{lines}"
        );
    }
}

#[test]
fn cli_and_module_agree_on_root_owned_storage_from_the_config_file() {
    if !is_root() {
        eprintln!(
            "SKIPPED cli_and_module_agree_on_root_owned_storage_from_the_config_file: needs root"
        );
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let alice = env.add_user("alice");
    let store = env.root().join("store");
    std::fs::create_dir(&store).unwrap();
    // Private, as the module requires of root-owned storage.
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let config = env.root().join("shared.conf");
    std::fs::write(
        &config,
        format!("secret = \"{}/%u.toml\"\n", store.display()),
    )
    .unwrap();
    env.service(
        "login",
        &format!("auth required {{module}} config={}\n", config.display()),
    );
    let output = env
        .command(env!("CARGO_BIN_EXE_pam-totp"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--user", "alice", "enroll", "--no-confirm", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let secret = json(&output)["secret"].as_str().unwrap().to_owned();
    assert!(
        store.join("alice.toml").exists(),
        "the CLI wrote where the config says"
    );
    assert!(
        !alice.home.join(".config").exists(),
        "and nothing in the home"
    );
    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    let out = env.authenticate("login", "alice", &[&code]);
    assert_eq!(out.code, PAM_SUCCESS, "the module reads it there: {out}");
}

/// Root provisions alice; returns her secret and recovery codes.
fn provisioned(env: &TestEnv) -> (String, Vec<String>) {
    env.add_root();
    env.add_user("alice");
    totp_service(env, "login", "");
    let enrolled = json(&cli(
        env,
        &["--user", "alice", "enroll", "--no-confirm", "--json"],
    ));
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    (secret, strings(&enrolled["recovery_codes"]))
}

/// A login held at its prompt (a person typing) while `meanwhile` runs, then answered.
fn answered_after(env: &TestEnv, answer: &str, meanwhile: impl FnOnce()) -> Outcome {
    let mut login = env.spawn_authenticate_with(
        "login",
        "alice",
        &[answer],
        &AuthOptions::new().pause_at_prompt(),
    );
    login.until_prompt();
    meanwhile();
    login.wait()
}

// The module keeps the files it read before prompting and uses them under the lock, with no
// second switch to the user's identity, only while their names still refer to them: what
// root changes while the user types is what the answer is checked against.

#[test]
fn new_recovery_codes_made_while_the_user_types_refuse_the_old_one() {
    if !is_root() {
        eprintln!(
            "SKIPPED new_recovery_codes_made_while_the_user_types_refuse_the_old_one: needs root"
        );
        return;
    }
    let env = TestEnv::new();
    let (_, first_codes) = provisioned(&env);
    let out = env.authenticate("login", "alice", &[&first_codes[0]]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    let out = answered_after(&env, &first_codes[1], || {
        let renewed = cli(&env, &["--user", "alice", "recovery-codes", "--count", "3"]);
        assert!(
            renewed.status.success(),
            "{}",
            String::from_utf8_lossy(&renewed.stderr)
        );
    });
    assert_eq!(out.code, PAM_AUTH_ERR, "an old recovery code let in: {out}");
}

#[test]
fn a_disable_while_the_user_types_lets_nobody_in() {
    if !is_root() {
        eprintln!("SKIPPED a_disable_while_the_user_types_lets_nobody_in: needs root");
        return;
    }
    let env = TestEnv::new();
    let (secret, _) = provisioned(&env);
    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    let out = answered_after(&env, &code, || {
        let disabled = cli(&env, &["--user", "alice", "disable"]);
        assert!(
            disabled.status.success(),
            "{}",
            String::from_utf8_lossy(&disabled.stderr)
        );
    });
    assert_ne!(out.code, PAM_SUCCESS, "let in after disable: {out}");
    // And a login held at its prompt with nothing changed is let in, once.
    let env = TestEnv::new();
    let (secret, _) = provisioned(&env);
    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    assert_eq!(answered_after(&env, &code, || {}).code, PAM_SUCCESS);
    assert_eq!(
        env.authenticate("login", "alice", &[&code]).code,
        PAM_AUTH_ERR,
        "a replay"
    );
}
