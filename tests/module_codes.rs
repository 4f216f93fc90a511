//! pam_totp.so through the real libpam (pam_wrapper + nss_wrapper): which codes open the
//! door, which never do, and what the user and the log are told.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use pam_totp::otp::HashAlgorithm;

const PROMPT: &str = "Verification code: ";

#[test]
fn right_code_is_accepted() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
    assert_eq!(alice.state().last_success.unwrap().method.as_str(), "totp");
}

#[test]
fn wrong_code_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let out = env.authenticate("login", "alice", &[&wrong_code(&alice)]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(alice.state().throttle.failures, 1);
}

#[test]
fn empty_and_malformed_codes_are_refused() {
    let env = TestEnv::new();
    enroll(&env, "alice");
    totp_service(&env, "login", "");
    for answer in ["", "12345", "1234567", "abcdef", "12345x"] {
        let out = env.authenticate("login", "alice", &[answer]);
        assert_eq!(out.code, PAM_AUTH_ERR, "{answer:?}: {out}");
    }
}

#[test]
fn replayed_code_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let code = alice.current_code();
    assert_eq!(
        env.authenticate("login", "alice", &[&code]).code,
        PAM_SUCCESS
    );
    let again = env.authenticate("login", "alice", &[&code]);
    assert_eq!(again.code, PAM_AUTH_ERR, "{again}");
    assert!(
        env.syslog_lines()
            .iter()
            .any(|l| l.contains("replayed code")),
        "{:?}",
        env.syslog_lines()
    );
}

#[test]
fn an_older_code_is_refused_after_a_newer_one() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let now = fresh_now(30);
    let current = alice.code_at(now);
    let previous = alice.code_at(now - 30);
    assert_eq!(
        env.authenticate("login", "alice", &[&current]).code,
        PAM_SUCCESS
    );
    assert_eq!(
        env.authenticate("login", "alice", &[&previous]).code,
        PAM_AUTH_ERR
    );
}

#[test]
fn window_edges_one_step_accepted_two_refused() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    for (name, offset, expected) in [
        ("minus2", -2i64, PAM_AUTH_ERR),
        ("minus1", -1, PAM_SUCCESS),
        ("plus1", 1, PAM_SUCCESS),
        ("plus2", 2, PAM_AUTH_ERR),
    ] {
        let user = enroll(&env, name);
        let now = fresh_now(30) as i64;
        let code = user.code_at((now + offset * 30) as u64);
        let out = env.authenticate("login", name, &[&code]);
        assert_eq!(out.code, expected, "offset {offset}: {out}");
    }
}

#[test]
fn window_option_widens_the_window() {
    let env = TestEnv::new();
    totp_service(&env, "login", "window=2");
    let user = enroll(&env, "alice");
    let now = fresh_now(30);
    let out = env.authenticate("login", "alice", &[&user.code_at(now - 60)]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

#[test]
fn every_algorithm_and_digit_count_matches_oathtool() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    for algorithm in [
        HashAlgorithm::SHA1,
        HashAlgorithm::SHA256,
        HashAlgorithm::SHA512,
    ] {
        for digits in [6u8, 7, 8] {
            let name = format!("u{}d{digits}", algorithm.as_str().to_lowercase());
            let user = enroll_with(&env, &name, algorithm, digits, 30, 0);
            let code = user.current_code();
            assert_eq!(code.len(), usize::from(digits));
            let out = env.authenticate("login", &name, &[&code]);
            assert_eq!(out.code, PAM_SUCCESS, "{algorithm:?}/{digits}: {out}");
        }
    }
}

#[test]
fn a_sixty_second_period_works() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let user = enroll_with(&env, "alice", HashAlgorithm::SHA1, 6, 60, 0);
    let out = env.authenticate("login", "alice", &[&user.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

#[test]
fn recovery_code_works_once() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let code = alice.recovery[0].clone();
    let out = env.authenticate("login", "alice", &[&code]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // Sent once: sshd shows every PAM_TEXT_INFO it gets, so a second send is a second copy.
    let notices: Vec<_> = out
        .infos()
        .into_iter()
        .filter(|m| m.contains("left"))
        .collect();
    assert_eq!(notices.len(), 1, "{out}");
    assert!(notices[0].contains("4 are left"), "{out}");
    assert_eq!(alice.state().recovery_codes.len(), 4);
    let again = env.authenticate("login", "alice", &[&code]);
    assert_eq!(again.code, PAM_AUTH_ERR, "{again}");
}

#[test]
fn recovery_code_ignores_case_spaces_and_dashes() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let lower = alice.recovery[1].to_lowercase();
    let spaced = alice.recovery[2].replace('-', " ");
    let bare = alice.recovery[3].replace('-', "");
    for code in [lower, spaced, bare] {
        let out = env.authenticate("login", "alice", &[&code]);
        assert_eq!(out.code, PAM_SUCCESS, "{code}: {out}");
    }
}

#[test]
fn other_recovery_codes_stay_valid_after_one_is_used() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    assert_eq!(
        env.authenticate("login", "alice", &[&alice.recovery[0]])
            .code,
        PAM_SUCCESS
    );
    for code in &alice.recovery[1..] {
        assert_eq!(
            env.authenticate("login", "alice", &[code]).code,
            PAM_SUCCESS
        );
    }
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(
        out.code, PAM_SUCCESS,
        "TOTP still works after the last recovery code: {out}"
    );
}

#[test]
fn a_wrong_recovery_code_is_refused() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    // Right id, wrong secret part; and an id that does not exist.
    let mut wrong = alice.recovery[0].clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '2' { '3' } else { '2' });
    for code in [wrong, "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ".to_string()] {
        let out = env.authenticate("login", "alice", &[&code]);
        assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    }
    assert_eq!(alice.state().recovery_codes.len(), 5);
}

#[test]
fn throttling_refuses_unchecked_and_success_resets_it() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    // No failure delay: the 30 s pause is measured against the clock below.
    totp_service(&env, "login", "max_failures=2 fail_delay=0");
    let wrong = wrong_code(&alice);
    for _ in 0..2 {
        assert_eq!(
            env.authenticate("login", "alice", &[&wrong]).code,
            PAM_AUTH_ERR
        );
    }
    // Throttled: refused without a prompt, even with the right code at hand.
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_MAXTRIES, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
    assert!(
        out.errors().iter().any(|m| m.contains("Try again in")),
        "{out}"
    );
    let state = alice.state();
    assert_eq!(state.throttle.failures, 2);
    assert!(state.throttle.locked_until > now() + 20);
    // The delay has passed: a right code gets in and clears the count.
    let mut state = state;
    state.throttle.locked_until = now() - 1;
    alice.write_state(&state);
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(alice.state().throttle, Default::default());
}

#[test]
fn each_failure_past_the_limit_doubles_the_delay() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "max_failures=1");
    let wrong = wrong_code(&alice);
    let mut delays = vec![];
    for _ in 0..3 {
        let before = now();
        assert_eq!(
            env.authenticate("login", "alice", &[&wrong]).code,
            PAM_AUTH_ERR
        );
        let mut state = alice.state();
        delays.push(state.throttle.locked_until - before);
        state.throttle.locked_until = 0; // let the next attempt through
        alice.write_state(&state);
    }
    assert!(delays[0] >= 29 && delays[0] <= 31, "{delays:?}");
    assert!(delays[1] >= 59 && delays[1] <= 61, "{delays:?}");
    assert!(delays[2] >= 119 && delays[2] <= 121, "{delays:?}");
}

#[test]
fn unknown_user_is_prompted_then_refused() {
    let env = TestEnv::new();
    totp_service(&env, "login", "nullok");
    let out = env.authenticate("login", "nobody-here", &["123456"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(
        out.prompts(),
        vec![PROMPT.to_string()],
        "no enumeration: {out}"
    );
}

#[test]
fn not_enrolled_without_nullok_is_prompted_then_refused() {
    let env = TestEnv::new();
    env.add_user("bob");
    totp_service(&env, "login", "");
    let out = env.authenticate("login", "bob", &["123456"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(out.prompts(), vec![PROMPT.to_string()], "{out}");
}

#[test]
fn not_enrolled_with_nullok_is_ignored_without_a_prompt() {
    let env = TestEnv::new();
    env.add_user("bob");
    // PAM_IGNORE alone makes libpam fail the stack; what follows decides.
    let config = empty_config(&env);
    env.service(
        "login",
        &format!(
            "auth required {{module}} config={} nullok\nauth required pam_permit.so\n",
            config.display()
        ),
    );
    let out = env.authenticate("login", "bob", &[]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "{out}");
    let lines = env.syslog_lines().join("\n");
    assert!(
        lines.contains("ignored bob: not enrolled (nullok)"),
        "{lines}"
    );
}

#[test]
fn nullok_never_lets_an_enrolled_user_skip_the_code() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nullok");
    assert_eq!(
        env.authenticate("login", "alice", &[&wrong_code(&alice)])
            .code,
        PAM_AUTH_ERR
    );
    assert_eq!(env.authenticate("login", "alice", &[""]).code, PAM_AUTH_ERR);
}

#[test]
fn custom_prompt_and_echo() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "[prompt=Your code please: ] echo");
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(
        out.messages[0],
        (PROMPT_ECHO_ON.to_string(), "Your code please: ".to_string()),
        "{out}"
    );
}

#[test]
fn unknown_option_fails_closed_with_a_log_line() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "nulok");
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SERVICE_ERR, "{out}");
    assert!(
        env.syslog_lines()
            .iter()
            .any(|l| l.contains("unknown option \"nulok\"")),
        "{:?}",
        env.syslog_lines()
    );
}

#[test]
fn setcred_succeeds_after_authentication() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let out = env.authenticate_with(
        "login",
        "alice",
        &[&alice.current_code()],
        &AuthOptions::new().setcred(),
    );
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.setcred, Some(PAM_SUCCESS), "{out}");
}

#[test]
fn log_lines_name_the_decision_and_never_a_secret_or_code() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "debug");
    let code = alice.current_code();
    let wrong = wrong_code(&alice);
    env.authenticate("login", "alice", &[&wrong]);
    env.authenticate("login", "alice", &[&code]);
    env.authenticate("login", "alice", &[&alice.recovery[0]]);
    env.authenticate("login", "alice", &[&alice.recovery[0]]);
    let lines = env.syslog_lines();
    let all = lines.join("\n");
    assert!(all.contains("refused alice: wrong code"), "{all}");
    assert!(all.contains("accepted TOTP code for alice"), "{all}");
    assert!(
        all.contains("accepted recovery code for alice, 4 left"),
        "{all}"
    );
    assert!(all.contains("refused alice: wrong recovery code"), "{all}");
    let recovery_secret_part = alice.recovery[0].replace('-', "")[4..].to_string();
    for secret in [
        &alice.secret,
        &code,
        &wrong,
        &alice.recovery[0],
        &recovery_secret_part,
    ] {
        assert!(
            !all.contains(secret.as_str()),
            "{secret} leaked into the log:\n{all}"
        );
    }
    // One decision line per attempt (the debug lines aside).
    let decisions = lines.iter().filter(|l| l.contains("alice")).count();
    assert_eq!(decisions, 4, "{all}");
}

/// How long one pam_authenticate (with pam_start and pam_end around it) takes.
fn timed(env: &TestEnv, user: &str, answer: &str) -> (i32, std::time::Duration) {
    let start = std::time::Instant::now();
    let out = env.authenticate("login", user, &[answer]);
    (out.code, start.elapsed())
}

#[test]
fn a_failed_attempt_asks_libpam_for_the_failure_delay() {
    // libpam waits between half and one and a half times the delay asked for; without the
    // request a failure returns in milliseconds. Only a lower bound is asserted.
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "fail_delay=1000");
    let floor = std::time::Duration::from_millis(490);
    let (code, took) = timed(&env, "alice", &wrong_code(&alice));
    assert_eq!(code, PAM_AUTH_ERR);
    assert!(took >= floor, "a wrong code took only {took:?}");
    let (code, took) = timed(&env, "nobody-here", "123456");
    assert_eq!(code, PAM_AUTH_ERR);
    assert!(took >= floor, "an unknown user took only {took:?}");
    env.add_user("bob");
    let (code, took) = timed(&env, "bob", "123456");
    assert_eq!(code, PAM_AUTH_ERR);
    assert!(
        took >= floor,
        "a user without enrollment took only {took:?}"
    );
}

#[test]
fn the_failure_delay_is_two_seconds_by_default_like_pam_unix() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "");
    let (code, took) = timed(&env, "alice", &wrong_code(&alice));
    assert_eq!(code, PAM_AUTH_ERR);
    assert!(
        took >= std::time::Duration::from_millis(990),
        "a wrong code took only {took:?}"
    );
}

#[test]
fn nullok_from_the_config_file_is_turned_off_for_one_service() {
    let env = TestEnv::new();
    env.add_user("bob");
    let config = env.root().join("nullok.conf");
    std::fs::write(&config, "nullok = true\nfail_delay = 0\n").unwrap();
    for (service, extra) in [("lenient", ""), ("strict", " nullok=false")] {
        env.service(
            service,
            &format!(
                "auth required {{module}} config={}{extra}\n",
                config.display()
            ),
        );
    }
    // A stack whose only module ignores fails with PAM_PERM_DENIED; the log says why.
    let out = env.authenticate("lenient", "bob", &[]);
    assert_eq!(out.code, PAM_PERM_DENIED, "{out}");
    assert!(env.syslog_lines().join("\n").contains("ignored bob"));
    let out = env.authenticate("strict", "bob", &["123456"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert!(
        env.syslog_lines()
            .join("\n")
            .contains("refused bob: not enrolled")
    );
}

#[test]
fn try_first_pass_with_use_first_pass_is_a_configuration_error() {
    let env = TestEnv::new();
    let alice = enroll(&env, "alice");
    totp_service(&env, "login", "try_first_pass use_first_pass");
    let out = env.authenticate("login", "alice", &[&alice.current_code()]);
    assert_eq!(out.code, PAM_SERVICE_ERR, "{out}");
    assert!(
        env.syslog_lines().join("\n").contains("contradict"),
        "{:?}",
        env.syslog_lines()
    );
}
