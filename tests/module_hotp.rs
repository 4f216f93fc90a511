//! HOTP (RFC 4226) tokens through the real libpam: codes from `oathtool --hotp` (an
//! implementation we did not write) are accepted within `hotp_window` after the stored
//! counter, which then moves past them durably; codes at or behind it, or beyond the
//! window, are refused and counted; racing logins with one code have one winner; kill -9
//! at any moment never lets a code back in.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use std::fs;

fn login(env: &TestEnv, user: &Enrolled, answer: &str) -> Outcome {
    env.authenticate("login", &user.user.name, &[answer])
}

fn counter(user: &Enrolled) -> u64 {
    user.state().hotp_counter
}

fn log(env: &TestEnv) -> String {
    env.syslog_lines().join("\n")
}

#[test]
fn a_code_in_the_window_is_accepted_and_the_counter_moves_past_it() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let bob = enroll_hotp(&env, "bob", 5, 2);
    // The expected code, then one 3 presses ahead (presses that never reached a login).
    assert_eq!(login(&env, &bob, &bob.hotp_code(5)).code, PAM_SUCCESS);
    assert_eq!(counter(&bob), 6);
    assert_eq!(login(&env, &bob, &bob.hotp_code(9)).code, PAM_SUCCESS);
    assert_eq!(counter(&bob), 10);
    let state = bob.state();
    assert_eq!(
        state.last_success.unwrap().method,
        pam_totp::state::Method::Hotp
    );
    assert!(
        log(&env).contains("accepted HOTP code for bob (counter 9)"),
        "{}",
        log(&env)
    );
    // The enrollment file is left alone; the counter lives in the counters file.
    let enrollment = fs::read_to_string(&bob.state_path).unwrap();
    assert!(enrollment.contains("kind = \"hotp\""), "{enrollment}");
    assert!(!enrollment.contains(&bob.hotp_code(10)));
}

#[test]
fn a_replayed_code_and_a_code_behind_the_counter_are_refused_and_counted() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=100");
    let bob = enroll_hotp(&env, "bob", 20, 0);
    let code = bob.hotp_code(22);
    assert_eq!(login(&env, &bob, &code).code, PAM_SUCCESS);
    let replay = login(&env, &bob, &code);
    assert_eq!(replay.code, PAM_AUTH_ERR, "{replay}");
    // Skipped over by the last login (21), and used before the enrollment's counter (19).
    for behind in [21, 19] {
        assert_eq!(login(&env, &bob, &bob.hotp_code(behind)).code, PAM_AUTH_ERR);
    }
    let state = bob.state();
    assert_eq!(state.hotp_counter, 23, "a refusal never moves the counter");
    assert_eq!(state.throttle.failures, 3, "each refusal counted");
    assert!(
        log(&env).contains("refused bob: replayed code"),
        "{}",
        log(&env)
    );
    // The next code still works.
    assert_eq!(login(&env, &bob, &bob.hotp_code(23)).code, PAM_SUCCESS);
}

#[test]
fn a_code_beyond_the_window_is_refused_unless_hotp_window_reaches_it() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let bob = enroll_hotp(&env, "bob", 0, 0);
    // Default window 10: counters 0..=10.
    assert_eq!(login(&env, &bob, &bob.hotp_code(11)).code, PAM_AUTH_ERR);
    assert_eq!(counter(&bob), 0);
    totp_service(&env, "wide", "hotp_window=20");
    let out = env.authenticate("wide", "bob", &[&bob.hotp_code(11)]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(counter(&bob), 12);
    totp_service(&env, "narrow", "hotp_window=0");
    let out = env.authenticate("narrow", "bob", &[&bob.hotp_code(13)]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    let out = env.authenticate("narrow", "bob", &[&bob.hotp_code(12)]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // Out of bounds: the module refuses to run, whatever the code.
    totp_service(&env, "bad", "hotp_window=101");
    let out = env.authenticate("bad", "bob", &[&bob.hotp_code(13)]);
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(counter(&bob), 13);
}

#[test]
fn recovery_codes_work_and_throttling_applies_as_for_totp() {
    let env = TestEnv::new();
    // The replayed recovery code and two wrong codes: three failures, then throttled.
    totp_service(&env, "login", "max_failures=3");
    let bob = enroll_hotp(&env, "bob", 0, 2);
    assert_eq!(login(&env, &bob, &bob.recovery[0]).code, PAM_SUCCESS);
    assert_eq!(login(&env, &bob, &bob.recovery[0]).code, PAM_AUTH_ERR);
    let wrong = (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| (0..=10).all(|n| *c != bob.hotp_code(n)))
        .unwrap();
    assert_eq!(login(&env, &bob, &wrong).code, PAM_AUTH_ERR);
    assert_eq!(login(&env, &bob, &wrong).code, PAM_AUTH_ERR);
    // Throttled now: even the right code is not checked, and not used up.
    let out = login(&env, &bob, &bob.hotp_code(0));
    assert_eq!(out.code, PAM_MAXTRIES, "{out}");
    assert_eq!(counter(&bob), 0);
}

#[test]
fn a_time_based_code_of_the_same_secret_is_not_an_hotp_code() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let bob = enroll_hotp(&env, "bob", 0, 0);
    let totp = bob.current_code();
    if (0..=10).any(|n| bob.hotp_code(n) == totp) {
        return; // one chance in 90,000
    }
    assert_eq!(login(&env, &bob, &totp).code, PAM_AUTH_ERR);
}

#[test]
fn an_hotp_enrollment_whose_counters_lack_the_counter_is_refused_not_reset() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let bob = enroll_hotp(&env, "bob", 50, 0);
    let text = fs::read_to_string(&bob.state_path).unwrap();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("enrollment_id = \""))
        .map(|l| l.trim_end_matches('"'))
        .and_then(pam_totp::state::counters_v2::EnrollmentId::from_hex)
        .unwrap();
    // Valid counters of this enrollment, without an HOTP counter: counter 0's code would
    // be accepted again if that read as "counter 0".
    write_counters(
        &bob.user,
        &bob.state_path,
        id,
        pam_totp::state::counters_v2::Counters::default(),
    );
    let out = login(&env, &bob, &bob.hotp_code(0));
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
    assert!(
        log(&env).contains("the counters do not match the enrollment"),
        "{}",
        log(&env)
    );
}

#[test]
fn sixteen_logins_racing_one_hotp_code_exactly_one_wins() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    for round in 0..6u64 {
        let name = format!("racer{round}");
        let user = enroll_hotp(&env, &name, round * 3, 0);
        let code = user.hotp_code(round * 3 + 2);
        let mut pending: Vec<PendingAuth> = (0..16)
            .map(|_| env.spawn_authenticate("login", &name, &[&code]))
            .collect();
        release_all(&mut pending);
        let outcomes = wait_all(pending);
        let wins = outcomes.iter().filter(|o| o.code == PAM_SUCCESS).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:#?}");
        assert!(
            outcomes
                .iter()
                .all(|o| o.code == PAM_SUCCESS || o.code == PAM_AUTH_ERR)
        );
        let state = user.state();
        assert_eq!(state.hotp_counter, round * 3 + 3, "round {round}");
        assert_eq!(state.throttle.failures, 15, "every loser counted");
    }
}

#[test]
fn kill_9_at_any_moment_never_lets_an_hotp_code_back_in() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    let bob = enroll_hotp(&env, "bob", 0, 0);
    let mut highest = 0;
    for round in 0..10u64 {
        // Two logins with the next two codes, killed a little later each round.
        let next = counter(&bob);
        let codes = [bob.hotp_code(next), bob.hotp_code(next + 1)];
        let mut pending: Vec<PendingAuth> = codes
            .iter()
            .map(|code| env.spawn_authenticate("login", "bob", &[code.as_str()]))
            .collect();
        release_all(&mut pending);
        std::thread::sleep(std::time::Duration::from_millis(round * 3));
        for p in &pending {
            if let Some(pid) = p.pid() {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
        drop(pending);
        let state = pam_totp::store::fs::read_state_file(&bob.state_path)
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .expect("still enrolled");
        assert!(
            state.hotp_counter >= highest,
            "round {round}: the counter went back from {highest} to {}",
            state.hotp_counter
        );
        highest = state.hotp_counter;
    }
    // Every code before the stored counter is refused; the one at it works once.
    for n in highest.saturating_sub(10)..highest {
        assert_eq!(
            login(&env, &bob, &bob.hotp_code(n)).code,
            PAM_AUTH_ERR,
            "{n}"
        );
    }
    let code = bob.hotp_code(highest);
    assert_eq!(login(&env, &bob, &code).code, PAM_SUCCESS);
    assert_eq!(login(&env, &bob, &code).code, PAM_AUTH_ERR);
}
