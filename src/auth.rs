//! The login decision, written against a [`Conversation`] so it holds no FFI: the PAM
//! front end supplies libpam's conversation, tests and the CLI their own.

use crate::codes::{self, Entered, TotpMatch};
use crate::error::{Error, Result};
use crate::log::Priority;
use crate::options::{FirstPass, Options};
use crate::privileges::Account;
use crate::secret::SecretString;
use crate::state::{LastSuccess, Method, State};
use crate::store::Store;
use std::time::{SystemTime, UNIX_EPOCH};

/// First lockout after `max_failures` consecutive failures; each further failure doubles it.
pub const THROTTLE_BASE_SECONDS: u64 = 30;
pub const THROTTLE_MAX_SECONDS: u64 = 3600;
const FORWARD_PASS_PROMPT: &str = "Password and verification code: ";

/// The conversation with the person logging in.
pub trait Conversation {
    /// Asks a question; `Ok(None)` when the application gave no answer.
    fn prompt(
        &mut self,
        text: &str,
        echo: bool,
    ) -> std::result::Result<Option<SecretString>, ConversationFailed>;
    fn info(&mut self, text: &str);
    fn error(&mut self, text: &str);
    /// The token an earlier module asked for (PAM_AUTHTOK), if any.
    fn authtok(&mut self) -> Option<SecretString>;
    /// Hands the password on to later modules (`forward_pass`).
    fn set_authtok(&mut self, token: &SecretString) -> bool;
}

#[derive(Debug)]
pub struct ConversationFailed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success(Method),
    /// Not enrolled, and the admin chose `nullok`.
    Ignore,
    /// Wrong, replayed, malformed or empty code; unknown user; not enrolled.
    Denied,
    /// The state could not be read, trusted or written.
    Unavailable,
    /// Too many failed codes: refused without checking.
    Throttled,
    BadConfig,
    ConversationFailed,
}

/// What happened, and the one log line that says so (never a secret or a code).
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    pub priority: Priority,
    pub message: String,
}

impl Decision {
    fn new(outcome: Outcome, message: String) -> Decision {
        let priority = match outcome {
            Outcome::Success(_) | Outcome::Ignore => Priority::Info,
            Outcome::Denied | Outcome::Throttled | Outcome::ConversationFailed => Priority::Notice,
            Outcome::Unavailable | Outcome::BadConfig => Priority::Error,
        };
        Decision {
            outcome,
            priority,
            message,
        }
    }

    fn unavailable(user: &str, error: &Error) -> Decision {
        Decision::new(
            Outcome::Unavailable,
            format!("cannot check {user}: {error}"),
        )
    }
}

pub fn now() -> Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Clock)
}

/// What checking one answer did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Totp { step: u64 },
    Recovery { remaining: usize },
    Wrong { reason: &'static str, failures: u32 },
    Throttled { seconds: u64 },
}

impl Verdict {
    pub fn accepted(self) -> bool {
        matches!(self, Verdict::Totp { .. } | Verdict::Recovery { .. })
    }
}

/// Checks an answer against the state and records the result in it: an accepted code is
/// burned and the failure count reset; a wrong one (if `count_failure`) counts toward
/// throttling. The caller writes the state back, under the same lock it was read with.
pub fn judge(
    state: &mut State,
    answer: &SecretString,
    now: u64,
    options: &Options,
    count_failure: bool,
) -> Result<Verdict> {
    if let Some(seconds) = state.throttled_for(now) {
        return Ok(Verdict::Throttled { seconds });
    }
    let reason = match codes::classify(answer.expose(), state.digits) {
        Entered::Totp(code) => match codes::find_totp_step(state, &code, now, options.window)? {
            TotpMatch::Fresh(step) => {
                state.last_step = Some(step);
                record_success(state, now, Method::Totp);
                return Ok(Verdict::Totp { step });
            }
            TotpMatch::Replayed => "replayed code",
            TotpMatch::NoMatch => "wrong code",
        },
        Entered::Recovery { id, code } => {
            match codes::verify_recovery_code(&state.recovery_codes, &id, &code)? {
                Some(index) => {
                    state.recovery_codes.remove(index);
                    record_success(state, now, Method::Recovery);
                    return Ok(Verdict::Recovery {
                        remaining: state.recovery_codes.len(),
                    });
                }
                None => "wrong recovery code",
            }
        }
        Entered::Malformed => "malformed code",
        Entered::Empty => "empty code",
    };
    if count_failure {
        record_failure(state, now, options.max_failures);
    }
    Ok(Verdict::Wrong {
        reason,
        failures: state.throttle.failures,
    })
}

fn record_success(state: &mut State, now: u64, method: Method) {
    state.throttle = Default::default();
    state.last_success = Some(LastSuccess { time: now, method });
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

/// The whole `pam_sm_authenticate` decision for `user`.
pub fn authenticate(user: &str, options: &Options, conv: &mut dyn Conversation) -> Decision {
    let now = match now() {
        Ok(now) => now,
        Err(e) => return Decision::unavailable(user, &e),
    };
    let account = match Account::by_name(user) {
        Ok(Some(account)) => account,
        Ok(None) => {
            ask_anyway(options, conv);
            return Decision::new(Outcome::Denied, format!("refused unknown user {user:?}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    let store = match Store::for_account(options, &account) {
        Ok(store) => store,
        Err(e @ Error::BadOption(_)) => {
            return Decision::new(Outcome::BadConfig, format!("cannot check {user}: {e}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    // Read once before prompting, unlocked: whether to ask at all (nullok, throttling)
    // must be known first, and the lock must never be held while a person types.
    let digits = match store.load() {
        Ok(Some(state)) => {
            if let Some(seconds) = state.throttled_for(now) {
                conv.error(&format!(
                    "Too many wrong codes. Try again in {seconds} seconds."
                ));
                return Decision::new(
                    Outcome::Throttled,
                    format!("refused {user}: throttled for {seconds} more seconds"),
                );
            }
            state.digits
        }
        Ok(None) if options.nullok => {
            return Decision::new(
                Outcome::Ignore,
                format!(
                    "ignored {user}: not enrolled (nullok), no {}",
                    store.path().display()
                ),
            );
        }
        Ok(None) => {
            ask_anyway(options, conv);
            return Decision::new(
                Outcome::Denied,
                format!(
                    "refused {user}: not enrolled, no {}",
                    store.path().display()
                ),
            );
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    let first = match first_answer(options, conv, digits) {
        Ok(answer) => answer,
        Err(outcome) => return refused_before_checking(user, outcome),
    };
    let decision = check_answer(user, &store, &first, options, conv);
    if !(first.tentative && decision.outcome == Outcome::Denied) {
        return decision;
    }
    // try_first_pass: the earlier token was not a code; ask for one.
    match prompt_code(options, conv) {
        Ok(code) => {
            let answer = Answer {
                code,
                tentative: false,
            };
            check_answer(user, &store, &answer, options, conv)
        }
        Err(outcome) => refused_before_checking(user, outcome),
    }
}

fn refused_before_checking(user: &str, outcome: Outcome) -> Decision {
    let why = match outcome {
        Outcome::ConversationFailed => "the conversation with the client failed",
        _ => "no code given (use_first_pass and no earlier token)",
    };
    Decision::new(outcome, format!("refused {user}: {why}"))
}

/// Prompts as for a real check, so that whether anyone is asked for a code does not tell
/// who has an account or an enrollment; the answers are thrown away.
fn ask_anyway(options: &Options, conv: &mut dyn Conversation) {
    if let Ok(answer) = first_answer(options, conv, 6)
        && answer.tentative
    {
        let _ = prompt_code(options, conv);
    }
}

/// One answer to check. `tentative`: an earlier module's token tried first
/// (`try_first_pass`); it may well be the password, so a miss is not counted as a failure.
struct Answer {
    code: SecretString,
    tentative: bool,
}

fn prompt_code(
    options: &Options,
    conv: &mut dyn Conversation,
) -> std::result::Result<SecretString, Outcome> {
    conv.prompt(&options.prompt, options.echo)
        .map(Option::unwrap_or_default)
        .map_err(|ConversationFailed| Outcome::ConversationFailed)
}

/// The first answer to check, as the options say: a prompt, PAM_AUTHTOK, or the tail of a
/// combined password+code prompt (`forward_pass`, which hands the password on).
fn first_answer(
    options: &Options,
    conv: &mut dyn Conversation,
    digits: u8,
) -> std::result::Result<Answer, Outcome> {
    let answer = |code, tentative| Answer { code, tentative };
    if options.forward_pass {
        let combined = conv
            .prompt(FORWARD_PASS_PROMPT, options.echo)
            .map_err(|ConversationFailed| Outcome::ConversationFailed)?
            .unwrap_or_default();
        let (password, code) = split_forwarded(&combined, digits);
        conv.set_authtok(&password);
        return Ok(answer(code, false));
    }
    match options.first_pass {
        FirstPass::Prompt => Ok(answer(prompt_code(options, conv)?, false)),
        FirstPass::Use => Ok(answer(conv.authtok().ok_or(Outcome::Denied)?, false)),
        FirstPass::Try => match conv.authtok() {
            Some(code) => Ok(answer(code, true)),
            None => Ok(answer(prompt_code(options, conv)?, false)),
        },
    }
}

/// Splits "password" + "code": a dashed recovery code (24 characters) or `digits` digits
/// at the end. With neither, all of it is the password and the code is empty.
fn split_forwarded(combined: &SecretString, digits: u8) -> (SecretString, SecretString) {
    let text = combined.expose();
    let recovery_len = 24;
    let split_at = |len: usize| -> (SecretString, SecretString) {
        let cut = text.len() - len;
        (
            SecretString::new(text[..cut].to_owned()),
            SecretString::new(text[cut..].to_owned()),
        )
    };
    if text.is_char_boundary(text.len().saturating_sub(recovery_len)) && text.len() >= recovery_len
    {
        let tail = &text[text.len() - recovery_len..];
        let dashed = tail.bytes().enumerate().all(|(i, b)| {
            if i % 5 == 4 {
                b == b'-'
            } else {
                b.is_ascii_alphanumeric()
            }
        });
        if dashed {
            return split_at(recovery_len);
        }
    }
    let digits = usize::from(digits);
    if text.len() >= digits
        && text.is_char_boundary(text.len() - digits)
        && text[text.len() - digits..]
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return split_at(digits);
    }
    (combined.clone(), SecretString::default())
}

/// Checks one answer under the lock, writes the result, and tells the user what they need
/// to know (recovery codes left).
fn check_answer(
    user: &str,
    store: &Store,
    answer: &Answer,
    options: &Options,
    conv: &mut dyn Conversation,
) -> Decision {
    let result = (|| -> Result<(Verdict, Option<Error>)> {
        // The time the code was typed, not when the prompt went out: typing takes a while.
        let now = now()?;
        let locked = store.lock(false)?;
        let mut state = locked
            .read()?
            .ok_or_else(|| Error::NotEnrolled(store.path().to_owned()))?;
        let verdict = judge(&mut state, &answer.code, now, options, !answer.tentative)?;
        let changed = match verdict {
            Verdict::Throttled { .. } => false,
            Verdict::Wrong { .. } => !answer.tentative,
            Verdict::Totp { .. } | Verdict::Recovery { .. } => true,
        };
        if !changed {
            return Ok((verdict, None));
        }
        match locked.write(&state) {
            Ok(()) => Ok((verdict, None)),
            // A success that cannot be burned is no success.
            Err(e) if verdict.accepted() => Err(e),
            // A failure that cannot be recorded is still a failure; say so in the log.
            Err(e) => Ok((verdict, Some(e))),
        }
    })();
    let (verdict, write_error) = match result {
        Ok(pair) => pair,
        Err(e @ Error::NotEnrolled(_)) => {
            return Decision::new(Outcome::Denied, format!("refused {user}: {e}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    match verdict {
        Verdict::Totp { .. } => Decision::new(
            Outcome::Success(Method::Totp),
            format!("accepted TOTP code for {user}"),
        ),
        Verdict::Recovery { remaining } => {
            conv.info(&recovery_notice(remaining));
            Decision::new(
                Outcome::Success(Method::Recovery),
                format!("accepted recovery code for {user}, {remaining} left"),
            )
        }
        Verdict::Throttled { seconds } => {
            conv.error(&format!(
                "Too many wrong codes. Try again in {seconds} seconds."
            ));
            Decision::new(
                Outcome::Throttled,
                format!("refused {user}: throttled for {seconds} more seconds"),
            )
        }
        Verdict::Wrong { reason, failures } => {
            let mut message = format!("refused {user}: {reason}");
            if !answer.tentative {
                message.push_str(&format!(" ({failures} consecutive failures"));
                if failures >= options.max_failures {
                    message.push_str(", now throttled");
                }
                message.push(')');
            }
            if let Some(e) = write_error {
                message.push_str(&format!("; the failure was not recorded: {e}"));
            }
            Decision::new(Outcome::Denied, message)
        }
    }
}

pub fn recovery_notice(remaining: usize) -> String {
    match remaining {
        0 => {
            "You used your last recovery code. Run `pam-totp recovery-codes` now to make new ones."
                .into()
        }
        1 => "Recovery code accepted; 1 is left. Run `pam-totp recovery-codes` to make new ones."
            .into(),
        n => format!(
            "Recovery code accepted; {n} are left. Run `pam-totp recovery-codes` to make new ones."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::HashAlgorithm;

    fn state() -> State {
        State::new(
            codes::new_secret().unwrap(),
            HashAlgorithm::SHA1,
            6,
            30,
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn throttling_doubles_and_resets_on_success() {
        let options = Options::default();
        let mut state = state();
        let now = 1_700_000_000;
        let wrong = SecretString::new("000000".into());
        let mut locks = vec![];
        for _ in 0..7 {
            // A wrong code may by chance be right; make sure it is not.
            if codes::code_at(&state, now).unwrap() == wrong {
                return;
            }
            state.throttle.locked_until = 0;
            judge(&mut state, &wrong, now, &options, true).unwrap();
            locks.push(state.throttle.locked_until.saturating_sub(now));
        }
        assert_eq!(locks, vec![0, 0, 0, 0, 30, 60, 120]);
        state.throttle.locked_until = now + 10;
        let good = codes::code_at(&state, now).unwrap();
        assert_eq!(
            judge(&mut state, &good, now, &options, true).unwrap(),
            Verdict::Throttled { seconds: 10 }
        );
        assert!(
            judge(&mut state, &good, now + 10, &options, true)
                .unwrap()
                .accepted()
        );
        assert_eq!(state.throttle, Default::default());
    }

    #[test]
    fn forwarded_password_and_code_are_split() {
        let split = |s: &str, d| {
            let (p, c) = split_forwarded(&SecretString::new(s.into()), d);
            (p.expose().to_owned(), c.expose().to_owned())
        };
        assert_eq!(
            split("hunter2123456", 6),
            ("hunter2".into(), "123456".into())
        );
        assert_eq!(split("pw12345678", 8), ("pw".into(), "12345678".into()));
        assert_eq!(
            split("pwABCD-EFGH-JKMN-PQRS-TUVW", 6),
            ("pw".into(), "ABCD-EFGH-JKMN-PQRS-TUVW".into())
        );
        assert_eq!(split("onlypassword", 6), ("onlypassword".into(), "".into()));
        assert_eq!(split("ééé", 6), ("ééé".into(), "".into()));
    }
}
