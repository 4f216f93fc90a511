//! `password requisite pam_totp.so`: a code before a password change, through the real
//! libpam's pam_chauthtok (pam_wrapper + nss_wrapper), which calls the stack with
//! PAM_PRELIM_CHECK and then PAM_UPDATE_AUTHTOK. pam_permit.so stands in for pam_unix
//! (tests/e2e changes a real password with the real passwd).
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

const PROMPT: &str = "Verification code: ";

/// The password stack: pam_totp first, then a stand-in for the module that changes it.
fn password_service(env: &TestEnv, args: &str) {
    let config = empty_config(env);
    env.service(
        "passwd",
        &format!(
            "auth required {{module}} config={0} {args}\n\
             password requisite {{module}} config={0} {args}\n\
             password required pam_permit.so\n",
            config.display()
        ),
    );
}

/// As the user (a setuid passwd run by them): root is asked for nothing, as by pam_unix.
fn as_user(user: &User) -> AuthOptions {
    let opts = AuthOptions::new().chauthtok();
    if is_root() { opts.ruid(user.uid) } else { opts }
}

#[test]
fn a_right_code_lets_the_password_change_and_is_burned() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "");
    let code = alice.current_code();
    let out = env.authenticate_with("passwd", "alice", &[&code], &as_user(&alice.user));
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // Asked once: in PRELIM_CHECK, not again in UPDATE_AUTHTOK.
    assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
    assert!(alice.state().last_step.is_some(), "the code was not burned");
    let lines = env.syslog_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("accepted TOTP code for alice")),
        "{lines:?}"
    );
    let again = env.authenticate_with("passwd", "alice", &[&code], &as_user(&alice.user));
    assert_ne!(
        again.code, PAM_SUCCESS,
        "a replayed code let a change through: {again}"
    );
}

#[test]
fn a_wrong_code_refuses_the_change_and_counts() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "");
    let out = env.authenticate_with(
        "passwd",
        "alice",
        &[&wrong_code(&alice)],
        &as_user(&alice.user),
    );
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(alice.state().throttle.failures, 1);
    let lines = env.syslog_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refused alice: wrong code (1 consecutive failures)")),
        "{lines:?}"
    );
}

#[test]
fn a_recovery_code_is_accepted_and_burned() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "");
    let out = env.authenticate_with(
        "passwd",
        "alice",
        &[&alice.recovery[0]],
        &as_user(&alice.user),
    );
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(alice.state().recovery_codes.len(), alice.recovery.len() - 1);
}

#[test]
fn a_throttled_user_cannot_change_the_password() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "max_failures=1");
    let wrong = wrong_code(&alice);
    let out = env.authenticate_with("passwd", "alice", &[&wrong], &as_user(&alice.user));
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    let out = env.authenticate_with(
        "passwd",
        "alice",
        &[&alice.current_code()],
        &as_user(&alice.user),
    );
    assert_eq!(out.code, PAM_MAXTRIES, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
}

#[test]
fn not_enrolled_is_refused_unless_nullok() {
    let env = TestEnv::new();
    let bob = env.add_user("bob");
    password_service(&env, "");
    let out = env.authenticate_with("passwd", "bob", &["123456"], &as_user(&bob));
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    password_service(&env, "nullok");
    let out = env.authenticate_with("passwd", "bob", &[], &as_user(&bob));
    assert_eq!(out.code, PAM_SUCCESS, "ignored, pam_permit decides: {out}");
    assert!(out.prompts().is_empty(), "{out}");
}

#[test]
fn the_token_options_never_take_the_new_password_for_a_code() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    for args in ["forward_pass", "use_first_pass", "try_first_pass"] {
        password_service(&env, args);
        let out = env.authenticate_with(
            "passwd",
            "alice",
            &[&alice.current_code()],
            &as_user(&alice.user),
        );
        assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{args}: {out}");
        assert_eq!(out.code, PAM_SUCCESS, "{args}: {out}");
        // The next step's code for the next round: the replay guard refuses this one.
        let state = alice.state();
        let mut fresh = state.clone();
        fresh.last_step = None;
        alice.write_state(&fresh);
    }
}

#[test]
fn root_is_not_asked_as_pam_unix_asks_root_for_no_current_password() {
    if !is_root() {
        eprintln!("SKIPPED root_is_not_asked...: needs root");
        return;
    }
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "");
    let out = env.authenticate_with("passwd", "alice", &[], &AuthOptions::new().chauthtok());
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
    assert!(alice.state().last_step.is_none());
    let lines = env.syslog_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("not asked: root changes the password of alice")),
        "{lines:?}"
    );
}

#[test]
fn an_expired_password_right_after_a_login_with_a_code_is_not_asked_again() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "");
    let opts = AuthOptions::new().expired();
    let out = env.authenticate_with("passwd", "alice", &[&alice.current_code()], &opts);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.chauthtok, Some(PAM_SUCCESS), "{out}");
    assert_eq!(
        out.prompts(),
        vec![PROMPT.to_string()],
        "asked twice: {out}"
    );
    let lines = env.syslog_lines();
    assert!(
        lines.iter().any(|l| l.contains("not asked again")),
        "{lines:?}"
    );
}

#[test]
fn the_code_of_a_login_spares_only_one_expired_password_change() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    password_service(&env, "fail_delay=0");
    let opts = AuthOptions::new().expired_twice();
    let out = env.authenticate_with("passwd", "alice", &[&alice.current_code()], &opts);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // The second change in the handle is asked (and, with no answer left, refused).
    assert_eq!(
        out.prompts(),
        vec![PROMPT.to_string(), PROMPT.to_string()],
        "{out}"
    );
    assert_ne!(out.chauthtok, Some(PAM_SUCCESS), "{out}");
}

#[test]
fn a_failed_check_before_a_password_change_waits_out_the_failure_delay() {
    // libpam applies pam_fail_delay only in pam_authenticate; the module waits itself in
    // pam_chauthtok. Without the wait a refusal returns in milliseconds. Only a lower bound
    // is asserted (a loaded machine makes runs slower, never faster).
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    let bob = env.add_user("bob");
    password_service(&env, "fail_delay=2500");
    let floor = std::time::Duration::from_millis(2500);
    for (user, answer) in [(&alice.user, wrong_code(&alice)), (&bob, "123456".into())] {
        let start = std::time::Instant::now();
        let out = env.authenticate_with("passwd", &user.name, &[&answer], &as_user(user));
        let took = start.elapsed();
        assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
        assert!(took >= floor, "{}: a refusal took only {took:?}", user.name);
    }
}

#[test]
fn a_failed_authentication_later_in_the_handle_voids_the_earlier_code_for_the_change() {
    // Two pam_totp lines in one auth stack share the handle's data: the first accepts a
    // code, the second refuses a wrong one. The change that follows must ask again, since
    // the handle's last verdict on this user was a refusal.
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    let config = empty_config(&env);
    env.service(
        "passwd",
        &format!(
            "auth required {{module}} config={0} fail_delay=0\n\
             auth optional {{module}} config={0} fail_delay=0\n\
             password requisite {{module}} config={0} fail_delay=0\n\
             password required pam_permit.so\n",
            config.display()
        ),
    );
    let opts = AuthOptions::new().expired();
    let answers = [alice.current_code(), wrong_code(&alice)];
    let out = env.authenticate_with("passwd", "alice", &[&answers[0], &answers[1]], &opts);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(
        alice.state().throttle.failures,
        1,
        "the second line refused"
    );
    // Asked again by the change (and, with no answer left, refused).
    assert_eq!(
        out.prompts(),
        vec![PROMPT.to_string(); 3],
        "the change was not asked: {out}"
    );
    assert_ne!(out.chauthtok, Some(PAM_SUCCESS), "{out}");
    let lines = env.syslog_lines();
    assert!(
        !lines.iter().any(|l| l.contains("not asked again")),
        "{lines:?}"
    );
}
