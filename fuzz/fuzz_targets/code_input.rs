//! What a user types at the prompt: `input::classify` for 6, 7 and 8 digits, and
//! `otp::find_totp_step` at any time (0 through u64::MAX) against a state picked from a
//! fixed table, with an arbitrary replay guard (`last_step`).
//!
//! Input layout: [state index][window][now: u64 LE][has last_step][last_step: u64 LE][text…];
//! missing header bytes are zero. The window is taken modulo 32: the options cap it at 10,
//! and the cost of `find_totp_step` is linear in it by design (2·window+1 HMACs), so an
//! unbounded u32 window is a hang by construction, not a finding.
//!
//! Asserts: never panics or overflows; `classify` returns only well-formed codes and sorts a
//! recovery code (or nothing) the same whatever the digits; a `Fresh(step)` is inside the
//! window, after `last_step`, and really is the code of that step; the code generated for
//! `now` itself is always found (fresh unless the replay guard covers it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::input::{self, Entered};
use pam_totp::otp::{self, HashAlgorithm, TotpMatch};
use pam_totp::recovery;
use pam_totp::secret::SecretString;
use pam_totp::state::State;
use std::sync::OnceLock;

const MAX_WINDOW: u8 = 32;

/// "1234567890" repeated to 10, 20 and 64 bytes: the shortest, usual and longest secrets.
const SECRETS: [&str; 3] = [
    "GEZDGNBVGY3TQOJQ",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA",
];

/// Every secret length × algorithm × digits × the shortest, default and longest period.
fn states() -> &'static [State] {
    static STATES: OnceLock<Vec<State>> = OnceLock::new();
    STATES.get_or_init(|| {
        let mut all = Vec::new();
        for secret in SECRETS {
            for algorithm in [
                HashAlgorithm::SHA1,
                HashAlgorithm::SHA256,
                HashAlgorithm::SHA512,
            ] {
                for digits in 6..=8 {
                    for period in [10, 30, 300] {
                        let secret = SecretString::new(secret.to_owned());
                        all.push(
                            State::new(secret, algorithm, digits, period, vec![])
                                .expect("a valid state"),
                        );
                    }
                }
            }
        }
        all
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }
}

fn check_classify(text: &str) {
    let recovery_shape = |e: &Entered| match e {
        Entered::Recovery { id, .. } => Some(id.clone()),
        _ => None,
    };
    let mut shapes = Vec::new();
    for digits in 6..=8u8 {
        let entered = input::classify(text, digits);
        match &entered {
            Entered::Totp(code) => {
                let code = code.expose();
                assert_eq!(code.len(), usize::from(digits));
                assert!(code.bytes().all(|b| b.is_ascii_digit()));
            }
            Entered::Recovery { id, code } => {
                let code = code.expose();
                assert_eq!(code.len(), 20);
                assert!(recovery::is_recovery_id(id));
                assert_eq!(&code[..4], id);
                assert!(
                    code.bytes()
                        .all(|b| recovery::RECOVERY_ALPHABET.contains(&b))
                );
            }
            Entered::LegacyScratch(code) => {
                // Only where it cannot be a TOTP code: 8 digits when codes have 6 or 7.
                assert!(digits != 8);
                assert_eq!(code.expose().len(), 8);
                assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
            Entered::Empty => {
                assert!(text.chars().all(|c| c.is_whitespace() || c == '-'));
            }
            Entered::Malformed => {}
        }
        shapes.push((recovery_shape(&entered), matches!(entered, Entered::Empty)));
    }
    assert!(
        shapes.windows(2).all(|w| w[0] == w[1]),
        "recovery/empty classification depends on digits"
    );
}

fn check_find(state: &State, text: &str, now: u64, window: u32) {
    let current = now / state.period;
    let first = current.saturating_sub(u64::from(window));
    let last = current.saturating_add(u64::from(window));

    let code = SecretString::new(text.to_owned());
    match otp::find_totp_step(
        &state.secret,
        state.params(),
        state.last_step,
        &code,
        now,
        window,
    )
    .expect("find_totp_step")
    {
        TotpMatch::Fresh(step) => {
            assert!(
                (first..=last).contains(&step),
                "step {step} outside the window"
            );
            assert!(
                state.last_step.is_none_or(|l| step > l),
                "replayed step is fresh"
            );
            let time = step
                .checked_mul(state.period)
                .expect("a matched step has a time");
            let expected = state.code_at(time).expect("code_at");
            assert_eq!(
                expected.expose(),
                text,
                "fresh step does not have this code"
            );
        }
        TotpMatch::Replayed => assert!(state.last_step.is_some(), "replay without a guard"),
        TotpMatch::NoMatch => {}
    }

    // The code of `now` itself is always in the window.
    let own = state.code_at(now).expect("code_at");
    match otp::find_totp_step(
        &state.secret,
        state.params(),
        state.last_step,
        &own,
        now,
        window,
    )
    .expect("find_totp_step")
    {
        TotpMatch::Fresh(step) => {
            // Usually `current`; a later step of the window when the code of now is also
            // the code of that step (the matcher then burns the later one, on purpose).
            assert!(
                (first..=last).contains(&step) && step >= current,
                "step {step} for the code of now"
            );
            assert!(state.last_step.is_none_or(|l| step > l));
            if step != current {
                let time = step.checked_mul(state.period).expect("a step in the window");
                let later = state.code_at(time).expect("code_at");
                assert_eq!(later.expose(), own.expose(), "a later step with another code");
            }
        }
        TotpMatch::Replayed => {
            assert!(
                state.last_step.is_some_and(|l| l >= current),
                "current step is fresh"
            );
        }
        TotpMatch::NoMatch => panic!("the code of now is not found at now"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let table = states();
    let mut state = table[usize::from(input.byte()) % table.len()].clone();
    let window = u32::from(input.byte() % MAX_WINDOW);
    let now = input.u64();
    let has_last = input.byte() & 1 == 1;
    let last_step = input.u64();
    state.last_step = has_last.then_some(last_step);
    let text = String::from_utf8_lossy(input.0);

    check_classify(&text);
    check_find(&state, &text, now, window);
});
