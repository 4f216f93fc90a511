//! `pam-totp recovery-codes`, `disable` and `verify`.

use super::{Done, ask_code, damaged_kept, for_whom, note, out, show_codes};
use crate::cli::messages::{self, reason_words};
use crate::cli::prompt::{self, Input};
use crate::cli::{CliError, Context, now, store};
use pam_totp::admin::{self, CodesFile, Delivery, Failure, NewCodes};
use pam_totp::clock;
use pam_totp::policy::{Verdict, WrongReason};
use pam_totp::secret::SecretString;
use pam_totp::state::Method;
use std::fmt::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

pub fn recovery_codes(
    context: &Context,
    count: usize,
    codes_file: Option<&Path>,
    json: bool,
) -> Done {
    let actor = &context.actor;
    let codes_file = codes_file.map(CodesFile::new).transpose()?;
    let store = store(context)?;
    if actor.needs_proof() {
        admin::ready_for_code(actor, &store, now()?)?;
    }
    let new_codes = NewCodes::make(count)?;
    // Shown (written and flushed) after the proof and before the commit: if it cannot be
    // written, the old codes stay.
    let text = if json {
        let codes: Vec<&str> = new_codes.shown().iter().map(SecretString::expose).collect();
        let object = serde_json::json!({
            "user": actor.target.name,
            "recovery_codes": codes,
            "codes_file": codes_file.as_ref().map(|f| f.path().display().to_string()),
        });
        Zeroizing::new(format!("{object}\n"))
    } else {
        let mut text = Zeroizing::new(format!(
            "New recovery codes for {}; the old ones no longer work.\n",
            actor.target.name
        ));
        show_codes(&mut text, &new_codes, codes_file.as_ref(), context);
        text
    };
    let mut show = || out(&text);
    if actor.needs_proof() {
        ask_code(
            "Current code from the app: ",
            "the recovery codes were left as they were",
            |answer| {
                admin::replace_recovery_codes(
                    actor,
                    &store,
                    Some(answer),
                    &new_codes,
                    Delivery {
                        codes_file: codes_file.as_ref(),
                        show: &mut show,
                    },
                    clock::now()?,
                    &context.options,
                )
            },
        )?;
    } else {
        admin::replace_recovery_codes(
            actor,
            &store,
            None,
            &new_codes,
            Delivery {
                codes_file: codes_file.as_ref(),
                show: &mut show,
            },
            now()?,
            &context.options,
        )?;
    }
    Ok(format!("replaced the recovery codes ({} new)", count))
}

pub fn disable(context: &Context, json: bool) -> Done {
    let actor = &context.actor;
    let store = store(context)?;
    let mut kept = None;
    if actor.needs_proof() {
        admin::ready_for_code(actor, &store, now()?)?;
        ask_code(
            "Current code from the app, or a recovery code: ",
            "two-factor authentication stays on",
            |answer| admin::disable(actor, &store, Some(answer), clock::now()?, &context.options),
        )?;
    } else {
        match admin::disable(actor, &store, None, now()?, &context.options) {
            Ok(()) => {}
            // Root may replace a damaged file: kept aside, then removed.
            Err(failure) if admin::is_damaged(&failure) => {
                match admin::set_aside_damaged(actor, &store, now()?, true)? {
                    Some(path) => kept = Some(path),
                    None => return Err(failure.into()),
                }
            }
            Err(failure) => return Err(failure.into()),
        }
    }
    if let Some(path) = &kept {
        note(&damaged_kept(path))?;
    }
    if json {
        let object = serde_json::json!({
            "user": actor.target.name,
            "enrolled": false,
            "damaged_kept_as": kept.as_ref().map(|p| p.display().to_string()),
        });
        out(&format!("{object}\n"))?;
        return Ok("disabled two-factor authentication (enrollment removed)".into());
    }
    out(&format!(
        "Two-factor authentication is off for {0}: the enrollment was removed.\n\
         Where a service uses pam_totp.so without nullok, {0} cannot log in there until enrolled again\n\
         (`pam-totp enroll{1}`).\n",
        actor.target.name,
        for_whom(context)
    ))?;
    Ok("disabled two-factor authentication (enrollment removed)".into())
}

pub fn verify(context: &Context, json: bool) -> Done {
    let actor = &context.actor;
    let store = store(context)?;
    admin::ready_for_code(actor, &store, now()?)?;
    let answer = match prompt::ask("Code to check (from the app, or a recovery code): ")? {
        Input::Answer(answer) => answer,
        Input::Interrupted | Input::Closed => {
            return Err(CliError::Cancelled("nothing was checked"));
        }
    };
    if answer.expose().trim().is_empty() {
        return Err(CliError::Refused(
            "no code entered; nothing was checked".into(),
        ));
    }
    let checked = admin::verify(actor, &store, &answer, now()?, &context.options)?;
    if json && let Some(method) = accepted_method(checked.verdict) {
        let object = serde_json::json!({
            "user": actor.target.name,
            "accepted": true,
            "method": method,
            "offset_seconds": checked.offset_steps.map(|steps| steps * checked.period as i64),
        });
        out(&format!("{object}\n"))?;
        return Ok(verified_log(checked.verdict).into());
    }
    let mut text = String::new();
    match checked.verdict {
        Verdict::Totp { .. } => {
            text.push_str("Accepted: a login would take this code now. It was not used up.\n");
            let offset = checked.offset_steps.unwrap_or(0);
            let seconds = offset.unsigned_abs() * checked.period;
            let _ = match offset {
                0 => writeln!(text, "The app's clock agrees with this machine's."),
                o if o < 0 => writeln!(
                    text,
                    "The code is from {seconds} seconds ago: the app's clock is behind this machine's (still inside the accepted window)."
                ),
                _ => writeln!(
                    text,
                    "The code is from {seconds} seconds ahead: the app's clock is ahead of this machine's (still inside the accepted window)."
                ),
            };
        }
        Verdict::Hotp { counter } => text.push_str(&messages::hotp_verified(counter)),
        Verdict::Recovery { .. } => {
            text.push_str(
                "Accepted: this is an unused recovery code, and a login would take it now. It was not used up.\n",
            );
        }
        Verdict::Wrong { reason, failures } => {
            let hint = if reason == WrongReason::WrongCode {
                ". If the app's code looks right, check the phone's clock"
            } else {
                ""
            };
            return Err(CliError::Refused(format!(
                "not accepted: a login would refuse this code now ({}). It counted as a failed attempt ({failures} in a row; after {} in a row, codes are not checked for a while){hint}",
                reason_words(reason),
                context.options.max_failures
            )));
        }
        Verdict::Throttled { seconds } => {
            return Err(Failure::Refused(Verdict::Throttled { seconds }).into());
        }
    }
    out(&text)?;
    Ok(verified_log(checked.verdict).into())
}

/// The log line of an accepted `verify`: an HOTP code is used up, any other is not.
fn verified_log(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Hotp { .. } => messages::HOTP_VERIFIED_LOG,
        _ => "verified a code (accepted, not used up)",
    }
}

/// The method of an accepted code, as `status --json` names it; `None` if refused.
fn accepted_method(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Totp { .. } => Some(Method::Totp.as_str()),
        Verdict::Hotp { .. } => Some(Method::Hotp.as_str()),
        Verdict::Recovery { .. } => Some(Method::Recovery.as_str()),
        Verdict::Wrong { .. } | Verdict::Throttled { .. } => None,
    }
}

pub fn unlock(context: &Context, json: bool) -> Done {
    let actor = &context.actor;
    let store = store(context)?;
    let was = admin::unlock(actor, &store)?;
    let now = now()?;
    if json {
        let object = serde_json::json!({
            "user": actor.target.name,
            "unlocked": true,
            "failures_cleared": was.failures,
            "was_locked": was.locked_until > now,
        });
        out(&format!("{object}\n"))?;
    } else if was.failures == 0 && was.locked_until <= now {
        out(&format!(
            "{} was not throttled; nothing to clear.\n",
            actor.target.name
        ))?;
    } else {
        out(&format!(
            "Throttling cleared for {}: {} wrong codes in a row forgotten{}; codes are checked again now.\n",
            actor.target.name,
            was.failures,
            if was.locked_until > now {
                format!(" ({} seconds of waiting dropped)", was.locked_until - now)
            } else {
                String::new()
            }
        ))?;
    }
    Ok(format!(
        "cleared throttling ({} wrong codes in a row, locked until {})",
        was.failures, was.locked_until
    ))
}
