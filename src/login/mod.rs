//! The login: the whole `pam_sm_authenticate` decision, written against a
//! [`Conversation`], a [`Store`], a user lookup and a clock, all passed in ([`Env`]), so it
//! holds no FFI and reads nothing itself: the PAM front end supplies the real ones, tests
//! and the fuzz target their own.

pub mod conversation;
#[cfg(test)]
mod tests;

pub use conversation::{Conversation, ConversationFailed};

use crate::config::{FirstPass, Options};
use crate::error::{Error, Result};
use crate::input::split_forwarded;
use crate::log::Priority;
use crate::otp::totp::find_totp_step;
use crate::otp::{HashAlgorithm, OtpParams};
use crate::otp::{hotp, totp};
use crate::policy::{CountFailure, Policy, Verdict};
use crate::privileges::{Account, Accounts};
use crate::secret::SecretString;
use crate::state::{Method, RemoteHost};
use crate::store::{Prepared, Store};

const FORWARD_PASS_PROMPT: &str = "Password and verification code: ";

/// What the login works with besides the conversation and the options.
pub struct Env<'a> {
    /// Where users are looked up ([`PasswdDatabase`](crate::privileges::PasswdDatabase)).
    pub accounts: &'a dyn Accounts,
    /// The store of an account ([`FsStore::for_account`](crate::store::fs::FsStore::for_account)).
    pub store_for: &'a dyn Fn(&Account) -> Result<Box<dyn Store + 'a>>,
    /// The time now ([`clock::now`](crate::clock::now)); read when the login starts and
    /// again when the code has been typed.
    pub clock: &'a dyn Fn() -> Result<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success(Method),
    /// No code asked: the host passed with one within `grace_period`.
    Remembered,
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
            Outcome::Success(_) | Outcome::Remembered | Outcome::Ignore => Priority::Info,
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
        // A damaged state file is no dead end: say what root runs to replace it.
        let fix = match error {
            Error::Corrupt { .. } => format!(
                "; fix: as root, `pam-totp --user {user} disable` (TOTP off) or `pam-totp --user {user} enroll` (a new secret); either keeps the damaged file aside"
            ),
            _ => String::new(),
        };
        Decision::new(
            Outcome::Unavailable,
            format!("cannot check {user}: {error}{fix}"),
        )
    }

    fn throttled(user: &str, seconds: u64, conv: &mut dyn Conversation) -> Decision {
        conv.error(&format!(
            "Too many wrong codes. Try again in {seconds} seconds."
        ));
        Decision::new(
            Outcome::Throttled,
            format!("refused {user}: throttled for {seconds} more seconds"),
        )
    }
}

/// What a code is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `pam_sm_authenticate`: a remembered host may pass without one (`grace_period`).
    Login,
    /// `pam_sm_chauthtok`: always asked, and no host is remembered by it.
    PasswordChange,
}

/// The whole `pam_sm_authenticate` decision for `user`.
pub fn authenticate(
    user: &str,
    options: &Options,
    env: &Env<'_>,
    conv: &mut dyn Conversation,
) -> Decision {
    decide(user, options, env, conv, Purpose::Login)
}

/// The check before a password change (`pam_sm_chauthtok`, PAM_PRELIM_CHECK): the same
/// rules, throttling and log lines as a login, except that `grace_period` never applies
/// (a password change is not a login from a known place; it always takes a code).
pub fn before_password_change(
    user: &str,
    options: &Options,
    env: &Env<'_>,
    conv: &mut dyn Conversation,
) -> Decision {
    // Always a prompt of its own: in the password stack PAM_AUTHTOK is the *new* password,
    // so use_first_pass/try_first_pass would take it for a code, and forward_pass would
    // set the new password from the answer.
    let options = Options {
        forward_pass: false,
        first_pass: FirstPass::Prompt,
        ..options.clone()
    };
    decide(user, &options, env, conv, Purpose::PasswordChange)
}

fn decide(
    user: &str,
    options: &Options,
    env: &Env<'_>,
    conv: &mut dyn Conversation,
    purpose: Purpose,
) -> Decision {
    let now = match (env.clock)() {
        Ok(now) => now,
        Err(e) => return Decision::unavailable(user, &e),
    };
    let account = match env.accounts.by_name(user) {
        Ok(Some(account)) => account,
        Ok(None) => {
            ask_anyway(options, conv, now);
            return Decision::new(Outcome::Denied, format!("refused unknown user {user:?}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    let store = match (env.store_for)(&account) {
        Ok(store) => store,
        Err(e @ Error::BadOption(_)) => {
            return Decision::new(Outcome::BadConfig, format!("cannot check {user}: {e}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    // Read once before prompting, unlocked: whether to ask at all (nullok, throttling)
    // must be known first, and the lock must never be held while a person types.
    let digits = match store.prepare(now) {
        Ok(Prepared::Ready { digits }) => digits,
        Ok(Prepared::Throttled { seconds }) => return Decision::throttled(user, seconds, conv),
        Ok(Prepared::NotEnrolled) if options.nullok => {
            return Decision::new(
                Outcome::Ignore,
                format!(
                    "ignored {user}: not enrolled (nullok), no {}",
                    store.location().display()
                ),
            );
        }
        Ok(Prepared::NotEnrolled)
            if options
                .nullok_until
                .as_ref()
                .is_some_and(|until| until.in_force(now)) =>
        {
            let date = options
                .nullok_until
                .as_ref()
                .map_or("", |u| u.date.as_str());
            // Told only while let through: the missing enrollment shows anyway (no
            // prompt), and the person can act before the deadline.
            conv.info(&format!(
                "Two-factor authentication will be required after {date} (UTC). Set it up now: run `pam-totp enroll`."
            ));
            return Decision::new(
                Outcome::Ignore,
                format!(
                    "ignored {user}: not enrolled (nullok_until {date}), no {}",
                    store.location().display()
                ),
            );
        }
        Ok(Prepared::NotEnrolled) => {
            ask_anyway(options, conv, now);
            return Decision::new(
                Outcome::Denied,
                format!(
                    "refused {user}: not enrolled, no {}",
                    store.location().display()
                ),
            );
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    // Only a login with a remote host (never a local one, sudo, su) and the option on,
    // for the service it passed for; throttling was refused above, and `remembers_host`
    // checks it again. Never with forward_pass (the options refuse the pair; this holds
    // even if they did not): its code prompt also carries the password.
    let host = match purpose {
        Purpose::Login if options.grace_period > 0 && !options.forward_pass => conv
            .remote_host()
            .zip(conv.service())
            .and_then(|(rhost, service)| RemoteHost::new(&rhost, &service)),
        _ => None,
    };
    if let Some(host) = &host {
        match store.remembers_host(host, now, u64::from(options.grace_period)) {
            Ok(Some(ago)) => {
                return Decision::new(
                    Outcome::Remembered,
                    format!(
                        "accepted {user} without a code: host {:?} passed with one {ago} seconds ago (grace_period={})",
                        host.as_str(),
                        options.grace_period
                    ),
                );
            }
            Ok(None) => {}
            Err(e) => return Decision::unavailable(user, &e),
        }
    }
    let host = host.as_ref();
    let first = match first_answer(options, conv, digits) {
        Ok(answer) => answer,
        Err(outcome) => return refused_before_checking(user, outcome),
    };
    let decision = check_answer(user, &*store, &first, options, env, conv, host);
    if !(first.count == CountFailure::No && decision.outcome == Outcome::Denied) {
        return decision;
    }
    // try_first_pass: the earlier token was not a code; ask for one.
    match prompt_code(options, conv) {
        Ok(code) => {
            let answer = Answer {
                code,
                count: CountFailure::Yes,
            };
            check_answer(user, &*store, &answer, options, env, conv, host)
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
/// who has an account or an enrollment; the answers are checked against a decoy secret
/// (the same HMACs as a real check, so the time taken tells less) and thrown away.
fn ask_anyway(options: &Options, conv: &mut dyn Conversation, now: u64) {
    if let Ok(answer) = first_answer(options, conv, 6) {
        decoy_check(options, &answer.code, now);
        if answer.count == CountFailure::No
            && let Ok(code) = prompt_code(options, conv)
        {
            decoy_check(options, &code, now);
        }
    }
}

/// The comparison of a real check, against a secret nobody has: its result is meaningless
/// and ignored. It costs the HMACs of the dearer kind of check, a TOTP window or an HOTP
/// look-ahead (and look-back), so that the time taken tells neither whether the user exists
/// nor which kind a real enrollment would be. The locked write of a real failure is not
/// imitated: writing files for unknown users would be worse; libpam's failure delay covers
/// that difference.
fn decoy_check(options: &Options, code: &SecretString, now: u64) {
    // A recovery-shaped answer costs an enrolled user one argon2 verification (an unknown
    // id too, see `verify_recovery_code`), and no HMAC: so does the decoy's (found by
    // review: an unknown user's decoy ran no argon2, tens of milliseconds less).
    match crate::input::classify(code.expose(), 6) {
        crate::input::Entered::Recovery { id, code } => {
            let _ = std::hint::black_box(crate::recovery::verify_recovery_code(&[], &id, &code));
            return;
        }
        crate::input::Entered::LegacyScratch(code) => {
            let _ = std::hint::black_box(crate::recovery::verify_recovery_code(&[], "", &code));
            return;
        }
        _ => {}
    }
    const DECOY_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let params = OtpParams {
        algorithm: HashAlgorithm::SHA1,
        digits: 6,
        period: 30,
    };
    let secret = SecretString::new(DECOY_SECRET.into());
    let _ = std::hint::black_box(find_totp_step(
        &secret,
        params,
        None,
        code,
        now,
        options.window,
    ));
    let totp_cost = totp::hmacs_per_check(options.window);
    let hotp_cost = hotp::hmacs_per_wrong_code(options.hotp_window);
    hotp::compare_decoy(&secret, params, code, hotp_cost.saturating_sub(totp_cost));
}

/// One answer to check. An earlier module's token tried first (`try_first_pass`) may well
/// be the password, so a miss is not counted as a failure (`CountFailure::No`).
struct Answer {
    code: SecretString,
    count: CountFailure,
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
    let answer = |code, count| Answer { code, count };
    if options.forward_pass {
        let combined = conv
            .prompt(FORWARD_PASS_PROMPT, options.echo)
            .map_err(|ConversationFailed| Outcome::ConversationFailed)?
            .unwrap_or_default();
        let (password, code) = split_forwarded(&combined, digits);
        conv.set_authtok(&password);
        return Ok(answer(code, CountFailure::Yes));
    }
    match options.first_pass {
        FirstPass::Prompt => Ok(answer(prompt_code(options, conv)?, CountFailure::Yes)),
        FirstPass::Use => Ok(answer(
            conv.authtok().ok_or(Outcome::Denied)?,
            CountFailure::Yes,
        )),
        FirstPass::Try => match conv.authtok() {
            Some(code) => Ok(answer(code, CountFailure::No)),
            None => Ok(answer(prompt_code(options, conv)?, CountFailure::Yes)),
        },
    }
}

/// Checks one answer through the store (which records the result), and tells the user
/// what they need to know (recovery codes left).
fn check_answer(
    user: &str,
    store: &dyn Store,
    answer: &Answer,
    options: &Options,
    env: &Env<'_>,
    conv: &mut dyn Conversation,
    remember: Option<&RemoteHost>,
) -> Decision {
    // The time the code was typed, not when the prompt went out: typing takes a while.
    let recorded = (env.clock)().and_then(|now| {
        store.check_and_record(
            &answer.code,
            now,
            Policy::from(options),
            answer.count,
            remember,
        )
    });
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(e @ Error::NotEnrolled(_)) => {
            return Decision::new(Outcome::Denied, format!("refused {user}: {e}"));
        }
        Err(e) => return Decision::unavailable(user, &e),
    };
    let mut decision = verdict_decision(user, &recorded, answer, options, conv);
    if let Some(note) = &recorded.note {
        decision.message.push_str(&format!("; {note}"));
    }
    decision
}

fn verdict_decision(
    user: &str,
    recorded: &crate::store::Recorded,
    answer: &Answer,
    options: &Options,
    conv: &mut dyn Conversation,
) -> Decision {
    match recorded.verdict {
        Verdict::Totp { .. } => Decision::new(
            Outcome::Success(Method::Totp),
            format!("accepted TOTP code for {user}"),
        ),
        Verdict::Hotp { counter } => Decision::new(
            Outcome::Success(Method::Hotp),
            format!("accepted HOTP code for {user} (counter {counter})"),
        ),
        Verdict::Recovery { remaining } => {
            conv.info(&recovery_notice(remaining));
            Decision::new(
                Outcome::Success(Method::Recovery),
                format!("accepted recovery code for {user}, {remaining} left"),
            )
        }
        Verdict::Throttled { seconds } => Decision::throttled(user, seconds, conv),
        Verdict::Wrong { reason, failures } => {
            let mut message = format!("refused {user}: {}", reason.as_str());
            if answer.count == CountFailure::Yes {
                message.push_str(&format!(" ({failures} consecutive failures"));
                if failures >= options.max_failures {
                    message.push_str(", now throttled");
                }
                message.push(')');
            }
            Decision::new(Outcome::Denied, message)
        }
    }
}

/// What a person who logged in with a recovery code is told.
fn recovery_notice(remaining: usize) -> String {
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
