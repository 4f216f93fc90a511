//! The rules for one answer, pure over the model: which codes are accepted (window, replay,
//! single-use recovery codes) and how failures throttle further attempts. It sits below
//! the store, because a store that checks codes itself (the filesystem store; a
//! privileged helper; a database) applies exactly these rules.

use crate::config::Options;
use crate::error::Result;
use crate::input::{self, Entered};
use crate::otp::{self, HotpMatch, Kind, TotpMatch};
use crate::recovery;
use crate::secret::SecretString;
use crate::state::{LastSuccess, Method, State};

/// First lockout after `max_failures` consecutive failures; each further failure doubles it.
pub(crate) const THROTTLE_BASE_SECONDS: u64 = 30;
pub(crate) const THROTTLE_MAX_SECONDS: u64 = 3600;

/// The options that decide about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Time steps before and after now a TOTP code may come from.
    pub window: u32,
    /// Consecutive failed codes before attempts are refused for a while.
    pub max_failures: u32,
    /// Counters after the stored one an HOTP code may come from.
    pub hotp_window: u32,
}

impl From<&Options> for Policy {
    fn from(options: &Options) -> Self {
        Policy {
            window: options.window,
            max_failures: options.max_failures,
            hotp_window: options.hotp_window,
        }
    }
}

/// Whether a wrong answer counts toward throttling. `No` for a token tried in passing
/// (`try_first_pass`: it may well be the password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFailure {
    Yes,
    No,
}

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongReason {
    /// The code of a time step at or before the last accepted one (TOTP), or of a counter
    /// before the stored one (HOTP).
    Replayed,
    WrongCode,
    WrongRecoveryCode,
    /// Neither a TOTP code nor a recovery code.
    Malformed,
    Empty,
}

impl WrongReason {
    /// The words in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            WrongReason::Replayed => "replayed code",
            WrongReason::WrongCode => "wrong code",
            WrongReason::WrongRecoveryCode => "wrong recovery code",
            WrongReason::Malformed => "malformed code",
            WrongReason::Empty => "empty code",
        }
    }
}

/// What checking one answer did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Totp {
        step: u64,
    },
    /// An HOTP code of this counter; the next one is stored.
    Hotp {
        counter: u64,
    },
    Recovery {
        remaining: usize,
    },
    Wrong {
        reason: WrongReason,
        failures: u32,
    },
    Throttled {
        seconds: u64,
    },
}

impl Verdict {
    pub fn accepted(self) -> bool {
        matches!(
            self,
            Verdict::Totp { .. } | Verdict::Hotp { .. } | Verdict::Recovery { .. }
        )
    }

    /// Whether the state must be written back after this verdict.
    pub(crate) fn changes_state(self, count: CountFailure) -> bool {
        match self {
            Verdict::Throttled { .. } => false,
            Verdict::Wrong { .. } => count == CountFailure::Yes,
            Verdict::Totp { .. } | Verdict::Hotp { .. } | Verdict::Recovery { .. } => true,
        }
    }
}

/// Checks an answer against the state and records the result in it: an accepted code is
/// burned and the failure count reset; a wrong one (if counted) counts toward throttling.
/// The caller writes the state back, under the same lock it was read with.
pub(crate) fn judge(
    state: &mut State,
    answer: &SecretString,
    now: u64,
    policy: Policy,
    count: CountFailure,
) -> Result<Verdict> {
    if let Some(seconds) = state.throttled_for(now) {
        return Ok(Verdict::Throttled { seconds });
    }
    let reason = match input::classify(answer.expose(), state.digits) {
        Entered::Totp(code) if state.kind == Kind::Hotp => {
            let found = otp::find_hotp_counter(
                &state.secret,
                state.params(),
                state.hotp_counter,
                &code,
                policy.hotp_window,
            )?;
            match found {
                // The hotp module never returns u64::MAX, so + 1 cannot overflow.
                HotpMatch::Fresh(counter) => {
                    state.hotp_counter = counter + 1;
                    record_success(state, now, Method::Hotp);
                    return Ok(Verdict::Hotp { counter });
                }
                HotpMatch::Replayed => WrongReason::Replayed,
                HotpMatch::NoMatch => WrongReason::WrongCode,
            }
        }
        Entered::Totp(code) => {
            let found = otp::find_totp_step(
                &state.secret,
                state.params(),
                state.last_step,
                &code,
                now,
                policy.window,
            )?;
            match found {
                TotpMatch::Fresh(step) => {
                    state.last_step = Some(step);
                    record_success(state, now, Method::Totp);
                    return Ok(Verdict::Totp { step });
                }
                TotpMatch::Replayed => WrongReason::Replayed,
                TotpMatch::NoMatch => WrongReason::WrongCode,
            }
        }
        Entered::Recovery { id, code } => match use_recovery_code(state, &id, &code, now)? {
            Some(verdict) => return Ok(verdict),
            None => WrongReason::WrongRecoveryCode,
        },
        Entered::LegacyScratch(code) => {
            let id = recovery::scratch_code_id(&state.secret, &code)?;
            match use_recovery_code(state, &id, &code, now)? {
                Some(verdict) => return Ok(verdict),
                None => WrongReason::WrongRecoveryCode,
            }
        }
        Entered::Malformed => WrongReason::Malformed,
        Entered::Empty => WrongReason::Empty,
    };
    if count == CountFailure::Yes {
        record_failure(state, now, policy.max_failures);
    }
    Ok(Verdict::Wrong {
        reason,
        failures: state.throttle.failures,
    })
}

/// Burns the recovery code (or imported scratch code) `id` + `code` if it is stored.
fn use_recovery_code(
    state: &mut State,
    id: &str,
    code: &SecretString,
    now: u64,
) -> Result<Option<Verdict>> {
    let Some(index) = recovery::verify_recovery_code(&state.recovery_codes, id, code)? else {
        return Ok(None);
    };
    state.recovery_codes.remove(index);
    record_success(state, now, Method::Recovery);
    Ok(Some(Verdict::Recovery {
        remaining: state.recovery_codes.len(),
    }))
}

fn record_success(state: &mut State, now: u64, method: Method) {
    state.throttle = Default::default();
    state.last_success = Some(LastSuccess { time: now, method });
}

/// `state` as it is if the attempt being judged turns out wrong: what a change writes down
/// before judging its proof (see `store::transaction`), so that stopping a write can never
/// tell a right code from a wrong one.
pub(crate) fn counted_as_failure(state: &State, now: u64, policy: Policy) -> State {
    let mut counted = state.clone();
    record_failure(&mut counted, now, policy.max_failures);
    counted
}

/// Makes `state`, read from an older copy because the newer one is torn or damaged, cover
/// whatever the one write it may be behind did: every monotonic counter is raised by the
/// most one write can move it. The replay guard to the last step a code typed by `now` can
/// be accepted for (a lost success was judged at or before `now`); the failures by one, with
/// its lockout (a lost success would have reset them: counting errs on the safe side). A
/// burned recovery code cannot be recovered this way: the store writes burns to both copies.
/// The HOTP counter by one: a write that moves it further (a token that was ahead, a
/// resync) is written to both copies by the store, like a burn, so a lost single write
/// moved it by one at most. A counter added later belongs here too.
pub(crate) fn cover_lost_write(state: &mut State, now: u64, policy: Policy) {
    match state.kind {
        Kind::Totp => {
            // The widest window any service may use, not this caller's: the lost write may
            // have come from a service with a wider `window=` (sshd 10, sudo 1).
            let latest =
                otp::totp::time_step(now, state.period).saturating_add(otp::MAX_WINDOW.into());
            state.last_step = Some(state.last_step.map_or(latest, |step| step.max(latest)));
        }
        Kind::Hotp => state.hotp_counter = state.hotp_counter.saturating_add(1),
    }
    record_failure(state, now, policy.max_failures);
}

fn record_failure(state: &mut State, now: u64, max_failures: u32) {
    let failures = state.throttle.failures.saturating_add(1);
    state.throttle.failures = failures;
    if failures >= max_failures {
        let doublings = (failures - max_failures).min(16);
        let delay = (THROTTLE_BASE_SECONDS << doublings).min(THROTTLE_MAX_SECONDS);
        state.throttle.locked_until = now.saturating_add(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;
    use crate::state::Throttle;

    fn state() -> State {
        State::new(
            otp::new_secret().unwrap(),
            HashAlgorithm::SHA1,
            6,
            30,
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn throttling_doubles_and_resets_on_success() {
        let policy = Policy::from(&Options::default());
        let mut state = state();
        let now = 1_700_000_000;
        let wrong = SecretString::new("000000".into());
        let mut locks = vec![];
        for _ in 0..7 {
            // A wrong code may by chance be right; make sure it is not.
            if state.code_at(now).unwrap() == wrong {
                return;
            }
            state.throttle.locked_until = 0;
            judge(&mut state, &wrong, now, policy, CountFailure::Yes).unwrap();
            locks.push(state.throttle.locked_until.saturating_sub(now));
        }
        assert_eq!(locks, vec![0, 0, 0, 0, 30, 60, 120]);
        state.throttle.locked_until = now + 10;
        let good = state.code_at(now).unwrap();
        assert_eq!(
            judge(&mut state, &good, now, policy, CountFailure::Yes).unwrap(),
            Verdict::Throttled { seconds: 10 }
        );
        assert!(
            judge(&mut state, &good, now + 10, policy, CountFailure::Yes)
                .unwrap()
                .accepted()
        );
        assert_eq!(state.throttle, Default::default());
    }

    #[test]
    fn a_lost_write_is_covered_by_raising_every_counter_it_may_have_moved() {
        let policy = Policy {
            window: 2,
            max_failures: 3,
            hotp_window: 4,
        };
        let now = 1_700_000_000;
        let step = now / 30;
        let mut state = state();
        state.throttle.failures = 2;
        cover_lost_write(&mut state, now, policy);
        // The widest window, whatever this caller's (2 here).
        assert_eq!(state.last_step, Some(step + u64::from(otp::MAX_WINDOW)));
        assert_eq!(state.throttle.failures, 3);
        assert_eq!(state.throttle.locked_until, now + THROTTLE_BASE_SECONDS);
        // Every code of the window is refused as replayed now, the latest one too.
        state.throttle = Throttle::default();
        let wide = Policy {
            window: 10,
            ..policy
        };
        for k in [-2i64, 0, 2, 10] {
            let code = state.code_at((now as i64 + 30 * k) as u64).unwrap();
            let verdict = judge(&mut state, &code, now, wide, CountFailure::No).unwrap();
            assert!(
                matches!(
                    verdict,
                    Verdict::Wrong {
                        reason: WrongReason::Replayed,
                        ..
                    }
                ),
                "{k}: {verdict:?}"
            );
        }
        // A guard already ahead is never lowered.
        state.last_step = Some(step + 20);
        cover_lost_write(&mut state, now, policy);
        assert_eq!(state.last_step, Some(step + 20));
        // HOTP: the counter moves by one (what a lost single write can have done); no
        // TOTP guard appears.
        let mut hotp = self::state().into_hotp(20);
        let next = at_hotp(&hotp, 20);
        cover_lost_write(&mut hotp, now, policy);
        assert_eq!((hotp.hotp_counter, hotp.last_step), (21, None));
        assert_eq!(hotp.throttle.failures, 1);
        let verdict = judge(&mut hotp, &next, now, policy, CountFailure::No).unwrap();
        assert!(!verdict.accepted(), "{verdict:?}");
        let after = at_hotp(&hotp, 21);
        assert!(
            judge(&mut hotp, &after, now, policy, CountFailure::No)
                .unwrap()
                .accepted()
        );
    }

    fn at_hotp(state: &State, counter: u64) -> SecretString {
        otp::hotp_code(&state.secret, state.params(), counter).unwrap()
    }

    #[test]
    fn an_hotp_code_moves_the_counter_past_it_and_never_works_again() {
        let policy = Policy::from(&Options::default());
        let mut state = state().into_hotp(5);
        let now = 1_700_000_000;
        let at = |state: &State, c| otp::hotp_code(&state.secret, state.params(), c).unwrap();
        let code = at(&state, 8);
        let verdict = judge(&mut state, &code, now, policy, CountFailure::Yes).unwrap();
        assert_eq!(verdict, Verdict::Hotp { counter: 8 });
        assert_eq!(state.hotp_counter, 9);
        assert_eq!(state.last_success.unwrap().method, Method::Hotp);
        // The same code again, and one skipped over: replays, counted as failures.
        for (code, failures) in [(code, 1), (at(&state, 6), 2)] {
            assert_eq!(
                judge(&mut state, &code, now, policy, CountFailure::Yes).unwrap(),
                Verdict::Wrong {
                    reason: WrongReason::Replayed,
                    failures
                }
            );
        }
        // Past the window: wrong, and the counter stays.
        let far = at(&state, 9 + u64::from(policy.hotp_window) + 1);
        let verdict = judge(&mut state, &far, now, policy, CountFailure::Yes).unwrap();
        assert!(matches!(verdict, Verdict::Wrong { .. }), "{verdict:?}");
        assert_eq!(state.hotp_counter, 9);
        // The edge of the window is in it.
        let edge = at(&state, 9 + u64::from(policy.hotp_window));
        assert!(
            judge(&mut state, &edge, now, policy, CountFailure::Yes)
                .unwrap()
                .accepted()
        );
        assert_eq!(state.hotp_counter, 10 + u64::from(policy.hotp_window));
    }

    #[test]
    fn an_uncounted_miss_changes_nothing() {
        let policy = Policy::from(&Options::default());
        let mut state = state();
        let before = state.clone();
        let verdict = judge(
            &mut state,
            &SecretString::new("not a code".into()),
            1_700_000_000,
            policy,
            CountFailure::No,
        )
        .unwrap();
        assert!(matches!(
            verdict,
            Verdict::Wrong {
                reason: WrongReason::Malformed,
                failures: 0
            }
        ));
        assert!(!verdict.changes_state(CountFailure::No));
        assert_eq!(state, before);
    }
}
