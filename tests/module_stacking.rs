//! pam_totp.so in a stack with a password module (pam_matrix stands in for pam_unix):
//! try_first_pass, use_first_pass and forward_pass. pam_matrix always prompts for its own
//! password, so what forward_pass hands on is read back with pam_wrapper's pam_get_items.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

fn stack(env: &TestEnv, lines: &[&str]) {
    let config = empty_config(env);
    let body: String = lines
        .iter()
        .map(|line| line.replace("CONFIG", &format!("config={}", config.display())) + "\n")
        .collect();
    env.service("login", &body);
}

fn enroll_with_password(env: &TestEnv, name: &str, password: &str) -> Enrolled {
    let user = env.add_user_with_password(name, password);
    let path = default_state_path(&user);
    enroll_at(user, path, pam_totp::otp::HashAlgorithm::SHA1, 6, 30, 2)
}

#[test]
fn password_then_code_both_needed() {
    let env = TestEnv::new();
    let alice = enroll_with_password(&env, "alice", "hunter2");
    stack(
        &env,
        &["auth requisite {matrix}", "auth required {module} CONFIG"],
    );
    let out = env.authenticate("login", "alice", &["hunter2", &alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    let out = env.authenticate("login", "alice", &["wrong", "000000"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(
        out.prompts().len(),
        1,
        "a wrong password never reaches the code prompt: {out}"
    );
    assert_eq!(alice.state().throttle.failures, 0, "nor burns an attempt");
}

#[test]
fn use_and_try_first_pass_take_a_code_from_pam_authtok_without_prompting() {
    for option in ["use_first_pass", "try_first_pass"] {
        let env = TestEnv::new();
        let alice = enroll(&env, "alice");
        stack(
            &env,
            &[
                "auth required {wrapper_modules}/pam_set_items.so",
                &format!("auth required {{module}} CONFIG {option}"),
            ],
        );
        let code = alice.current_code();
        let out = env.authenticate_with("login", "alice", &[], &AuthOptions::new().authtok(&code));
        assert_eq!(out.code, PAM_SUCCESS, "{option}: {out}");
        assert!(out.prompts().is_empty(), "{option}: {out}");
    }
}

#[test]
fn use_first_pass_without_a_token_is_refused_without_prompting() {
    let env = TestEnv::new();
    enroll(&env, "alice");
    stack(&env, &["auth required {module} CONFIG use_first_pass"]);
    let out = env.authenticate("login", "alice", &[]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
}

#[test]
fn try_first_pass_prompts_when_the_token_is_the_password() {
    let env = TestEnv::new();
    // A six-digit password looks like a code; it must not count as a failed code.
    let alice = enroll_with_password(&env, "alice", "314159");
    stack(
        &env,
        &[
            "auth requisite {matrix}",
            "auth required {module} CONFIG try_first_pass",
        ],
    );
    let out = env.authenticate("login", "alice", &["314159", &alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.prompts().len(), 2, "{out}");
    assert_eq!(alice.state().throttle.failures, 0);
}

/// alice (password hunter2) with `forward_pass`; pam_get_items reads back what it handed on.
fn forward_pass_stack() -> (TestEnv, Enrolled) {
    let env = TestEnv::new();
    let alice = enroll_with_password(&env, "alice", "hunter2");
    stack(
        &env,
        &[
            "auth required {module} CONFIG forward_pass",
            "auth optional {wrapper_modules}/pam_get_items.so",
        ],
    );
    (env, alice)
}

#[test]
fn forward_pass_splits_password_and_code_and_hands_the_password_on() {
    let (env, alice) = forward_pass_stack();
    let combined = format!("hunter2{}", alice.current_code());
    let out = env.authenticate("login", "alice", &[&combined]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(
        out.prompts(),
        vec!["Password and verification code: ".to_string()],
        "{out}"
    );
    assert_eq!(out.authtok.as_deref(), Some("hunter2"), "{out}");
}

#[test]
fn forward_pass_with_a_recovery_code() {
    let (env, alice) = forward_pass_stack();
    let combined = format!("hunter2{}", alice.recovery[0]);
    let out = env.authenticate("login", "alice", &[&combined]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.authtok.as_deref(), Some("hunter2"), "{out}");
}

#[test]
fn forward_pass_with_a_wrong_code_is_refused() {
    let (env, alice) = forward_pass_stack();
    let out = env.authenticate(
        "login",
        "alice",
        &[&format!("hunter2{}", wrong_code(&alice))],
    );
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    let out = env.authenticate("login", "alice", &["hunter2"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "password alone: {out}");
}
