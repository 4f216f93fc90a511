//! Concurrent logins with the same code: exactly one wins, every time. Sixteen pam_client
//! processes are parked just before pam_authenticate and released together.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

const RACERS: usize = 16;
const ROUNDS: usize = 8;

fn race(env: &TestEnv, user: &str, code: &str) -> Vec<Outcome> {
    let mut pending: Vec<PendingAuth> = (0..RACERS)
        .map(|_| env.spawn_authenticate("login", user, &[code]))
        .collect();
    release_all(&mut pending);
    wait_all(pending)
}

fn successes(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| o.code == PAM_SUCCESS).count()
}

#[test]
fn sixteen_logins_racing_one_recovery_code_exactly_one_wins() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    for round in 0..ROUNDS {
        let name = format!("racer{round}");
        let user = enroll(&env, &name);
        let outcomes = race(&env, &name, &user.recovery[0]);
        assert_eq!(successes(&outcomes), 1, "round {round}: {outcomes:#?}");
        for outcome in &outcomes {
            assert!(
                outcome.code == PAM_SUCCESS || outcome.code == PAM_AUTH_ERR,
                "round {round}: {outcome}"
            );
        }
        let state = user.state();
        assert_eq!(
            state.recovery_codes.len(),
            4,
            "round {round}: the code is gone"
        );
        assert_eq!(
            state.throttle.failures as usize,
            RACERS - 1,
            "every loser counted"
        );
    }
}

#[test]
fn sixteen_logins_racing_one_totp_code_exactly_one_wins() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    for round in 0..ROUNDS {
        let name = format!("racer{round}");
        let user = enroll(&env, &name);
        let code = user.current_code();
        let outcomes = race(&env, &name, &code);
        assert_eq!(successes(&outcomes), 1, "round {round}: {outcomes:#?}");
        assert!(user.state().last_step.is_some());
    }
}

#[test]
fn racing_different_recovery_codes_all_win_and_all_are_burned() {
    let env = TestEnv::new();
    totp_service(&env, "login", "");
    let user = enroll_with(&env, "alice", pam_totp::otp::HashAlgorithm::SHA1, 6, 30, 8);
    let mut pending: Vec<PendingAuth> = user
        .recovery
        .iter()
        .map(|code| env.spawn_authenticate("login", "alice", &[code]))
        .collect();
    release_all(&mut pending);
    let outcomes = wait_all(pending);
    assert_eq!(successes(&outcomes), 8, "{outcomes:#?}");
    assert!(user.state().recovery_codes.is_empty(), "no update was lost");
}

/// Converts the user's v1 state to v2 with one login, so a race starts from v2.
fn converted(env: &TestEnv, name: &str) -> fixtures::Enrolled {
    let user = enroll_with(env, name, pam_totp::otp::HashAlgorithm::SHA1, 6, 30, 6);
    let out = env.authenticate("login", name, &[&user.recovery[5]]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    user
}

#[test]
fn on_a_v2_state_sixteen_logins_racing_one_code_exactly_one_wins() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    for round in 0..ROUNDS / 2 {
        let name = format!("v2racer{round}");
        let user = converted(&env, &name);
        let outcomes = race(&env, &name, &user.recovery[0]);
        assert_eq!(successes(&outcomes), 1, "round {round}: {outcomes:#?}");
        let state = user.state();
        assert_eq!(state.recovery_codes.len(), 4, "round {round}");
        assert_eq!(
            state.throttle.failures as usize,
            RACERS - 1,
            "round {round}"
        );
        let outcomes = race(&env, &name, &user.current_code());
        assert_eq!(successes(&outcomes), 1, "round {round}: {outcomes:#?}");
    }
}

fn id_of(code: &str) -> &str {
    code.split('-').next().unwrap()
}

#[test]
fn kill_9_at_any_moment_leaves_a_valid_state_and_no_code_comes_back() {
    let env = TestEnv::new();
    totp_service(&env, "login", "max_failures=1000");
    let user = enroll_with(&env, "alice", pam_totp::otp::HashAlgorithm::SHA1, 6, 30, 12);
    let mut burned: Vec<String> = Vec::new();
    for round in 0..10u64 {
        // Two logins at once (a conversion, then in-place writes), killed a little later
        // each round: before, during and after the argon2 check and the write.
        let codes = [&user.recovery[2 * (round as usize % 6)], &user.recovery[1]];
        let mut pending: Vec<PendingAuth> = codes
            .iter()
            .map(|code| env.spawn_authenticate("login", "alice", &[code.as_str()]))
            .collect();
        release_all(&mut pending);
        std::thread::sleep(std::time::Duration::from_millis(round * 7));
        for p in &pending {
            if let Some(pid) = p.pid() {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
        drop(pending);
        let state = pam_totp::store::fs::read_state_file(&user.state_path)
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .expect("still enrolled");
        let left: Vec<&str> = state.recovery_codes.iter().map(|c| &*c.id).collect();
        for id in &burned {
            assert!(
                !left.contains(&id.as_str()),
                "round {round}: {id} came back"
            );
        }
        for code in &user.recovery {
            if !left.contains(&id_of(code)) && !burned.iter().any(|b| b == id_of(code)) {
                burned.push(id_of(code).to_owned());
            }
        }
    }
    // Every code is either burned (refused) or still good exactly once.
    for code in &user.recovery {
        let out = env.authenticate("login", "alice", &[code]);
        let expected = if burned.iter().any(|b| b == id_of(code)) {
            PAM_AUTH_ERR
        } else {
            PAM_SUCCESS
        };
        assert_eq!(out.code, expected, "{code}: {out}");
        assert_eq!(
            env.authenticate("login", "alice", &[code]).code,
            PAM_AUTH_ERR
        );
    }
}
