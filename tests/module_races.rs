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
