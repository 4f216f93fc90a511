//! The commands: each asks what it needs, calls `manage`, and tells the outcome. Each
//! returns the line to log (what was done, never a secret or a code).

use super::args::EnrollArgs;
use super::prompt::{self, Input};
use super::{CliError, Context, qr, store};
use pam_totp::auth::{self, Verdict};
use pam_totp::manage::{self, CodesFile, Enrollment, Failure, NewCodes, PAM_LINE, Status};
use pam_totp::secret::SecretString;
use pam_totp::state::{HashAlgorithm, Method};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// Tries a person gets at each code prompt; every wrong code also counts toward the
/// module's throttling, as at login.
const TRIES: usize = 3;

type Done = Result<String, CliError>;

fn now() -> Result<u64, CliError> {
    Ok(auth::now()?)
}

/// Writes to standard output (results: QR code, codes, status).
fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Writes to standard error (notes that go with a prompt).
fn note(text: &str) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_all(text.as_bytes())?;
    stderr.flush()
}

/// Asks for a code up to [`TRIES`] times and hands each answer to `check`. A wrong code
/// (or a recovery code where one from the app is needed) lets the person try again;
/// anything else ends it. `cancelled` says what Ctrl-C or end of input leaves.
fn ask_code<T>(
    question: &str,
    cancelled: &'static str,
    mut check: impl FnMut(&SecretString) -> Result<T, Failure>,
) -> Result<T, CliError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = match prompt::ask(question)? {
            Input::Answer(answer) => answer,
            Input::Interrupted | Input::Closed if tries == 1 => {
                return Err(CliError::Cancelled(cancelled));
            }
            Input::Interrupted | Input::Closed => {
                return Err(CliError::Refused(format!(
                    "cancelled after {} code(s) not accepted; {cancelled}",
                    tries - 1
                )));
            }
        };
        let result = if answer.expose().trim().is_empty() {
            Err(None)
        } else {
            check(&answer).map_err(Some)
        };
        match result {
            Ok(value) => return Ok(value),
            Err(failure) if tries < TRIES => match failure {
                None => note("No code entered. Try again.\n")?,
                Some(
                    failure @ (Failure::Refused(Verdict::Wrong { .. }) | Failure::TotpRequired),
                ) => note(&format!("{failure}. Try again.\n"))?,
                Some(other) => return Err(other.into()),
            },
            Err(None) => return Err(CliError::Refused(format!("no code entered; {cancelled}"))),
            Err(Some(failure)) => return Err(failure.into()),
        }
    }
}

/// `--secret -`: the secret from standard input (echo off on a terminal).
fn read_secret() -> Result<SecretString, CliError> {
    match prompt::ask("Secret to import (base32): ")? {
        Input::Answer(secret) => Ok(secret),
        Input::Interrupted | Input::Closed => Err(CliError::Cancelled("nothing was saved")),
    }
}

fn for_whom(context: &Context) -> String {
    if context.actor.for_other() {
        format!(" --user {}", context.actor.target.name)
    } else {
        String::new()
    }
}

/// What `enroll --json` prints, in this order.
#[derive(serde::Serialize)]
struct Provisioned<'a> {
    user: &'a str,
    secret: &'a str,
    otpauth_uri: &'a str,
    recovery_codes: Vec<&'a str>,
}

pub fn enroll(context: &Context, args: EnrollArgs) -> Done {
    let actor = &context.actor;
    let imported = match args.secret.as_deref() {
        Some("-") => Some(read_secret()?),
        Some(text) => Some(SecretString::new(text.to_owned())),
        None => None,
    };
    let mut enrollment = Enrollment::new(
        imported.as_ref().map(SecretString::expose),
        args.algorithm.into(),
        args.digits,
        args.period,
    )?;
    let codes_file = args.codes_file.as_deref().map(CodesFile::new).transpose()?;
    let store = store(context)?;
    let replacing = store.load()?.is_some();
    if replacing && actor.needs_proof() {
        note(&format!(
            "{} is already enrolled. To replace the enrollment, first enter a current code from the app (or a recovery code).\n",
            actor.target.name
        ))?;
        manage::ready_for_code(actor, &store, now()?)?;
        ask_code(
            "Current code: ",
            "the enrollment was left as it was",
            |answer| manage::prove(actor, &store, answer, auth::now()?, &context.options),
        )?;
    }
    let issuer = args.issuer.unwrap_or_else(manage::default_issuer);
    let label = args
        .label
        .unwrap_or_else(|| manage::default_label(&actor.target.name));
    let uri = enrollment.otpauth_uri(&issuer, &label);
    // What the log line says; known once confirmed (or not), before the enrollment is saved.
    let what = |enrollment: &Enrollment| enrollment.describe(args.recovery_codes, replacing);

    if args.json {
        let secret = Zeroizing::new(enrollment.secret().expose().to_owned());
        let new_codes = NewCodes::make(args.recovery_codes)?;
        let done = what(&enrollment);
        enrollment.save(actor, &store, &new_codes, codes_file.as_ref(), now()?)?;
        let codes: Vec<&str> = new_codes.shown().iter().map(SecretString::expose).collect();
        let object = serde_json::to_string(&Provisioned {
            user: &actor.target.name,
            secret: secret.as_str(),
            otpauth_uri: uri.as_str(),
            recovery_codes: codes,
        })
        .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?;
        let text = Zeroizing::new(format!("{object}\n"));
        out(&text)?;
        return Ok(done);
    }

    let mut text = Zeroizing::new(String::new());
    if let Some(drawing) = qr::render(&uri, args.qr, args.invert).map_err(CliError::Refused)? {
        text.push_str(&drawing);
        text.push_str("\nScan the QR code with an authenticator app, or add this key by hand:\n");
    } else {
        text.push_str("Add this key to an authenticator app:\n");
    }
    let _ = writeln!(text, "\n    {}\n", enrollment.grouped_secret().as_str());
    let _ = writeln!(
        text,
        "Apps accept the key in upper or lower case, and the spaces are optional."
    );
    let _ = writeln!(
        text,
        "Type: time-based (TOTP); account: {label}; issuer: {issuer};\n{}, {} digits, a new code every {} seconds.",
        enrollment.algorithm().as_str(),
        enrollment.digits(),
        enrollment.period()
    );
    if enrollment.algorithm() != HashAlgorithm::SHA1
        || enrollment.digits() != 6
        || enrollment.period() != 30
    {
        text.push_str(
            "Note: some apps (Google Authenticator among them) ignore settings other than SHA1, 6 digits, 30 seconds; check that the app's codes are accepted.\n",
        );
    }
    let _ = writeln!(text, "otpauth URI: {}\n", uri.as_str());
    out(&text)?;
    drop(text);

    if !args.no_confirm {
        let question = format!(
            "Code shown by the app for {label} ({} digits): ",
            enrollment.digits()
        );
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = match prompt::ask(&question)? {
                Input::Answer(answer) => answer,
                Input::Interrupted | Input::Closed => {
                    return Err(CliError::Cancelled("nothing was saved"));
                }
            };
            if enrollment.confirm(&answer, now()?, &context.options)? {
                break;
            }
            if tries == TRIES {
                return Err(CliError::Refused(format!(
                    "no code matched in {TRIES} tries; nothing was saved. Check that the phone's clock is right and that the app shows an entry for {label}, then run `pam-totp enroll` again"
                )));
            }
            note(
                "That code does not match. Check that the app shows the entry just added, and type the code it shows now.\n",
            )?;
        }
        note("The code matches.\n")?;
    }

    let new_codes = NewCodes::make(args.recovery_codes)?;
    let done = what(&enrollment);
    enrollment.save(actor, &store, &new_codes, codes_file.as_ref(), now()?)?;

    let mut text = Zeroizing::new(format!(
        "\nTwo-factor authentication is set up for {}{}.\n",
        actor.target.name,
        if replacing {
            "; the old enrollment and its recovery codes no longer work"
        } else {
            ""
        }
    ));
    show_codes(&mut text, &new_codes, codes_file.as_ref(), context);
    let _ = write!(
        text,
        "\nNext:\n  - Logins ask for a code once an administrator adds this line to the service's\n    file in /etc/pam.d (for example /etc/pam.d/sshd), after the password line:\n        {PAM_LINE}\n  - `pam-totp status{0}` shows the enrollment; `pam-totp verify{0}` checks a code\n    without using it up.\n",
        for_whom(context)
    );
    out(&text)?;
    Ok(done)
}

fn show_codes(
    text: &mut String,
    new_codes: &NewCodes,
    codes_file: Option<&CodesFile>,
    context: &Context,
) {
    if new_codes.is_empty() {
        let _ = writeln!(
            text,
            "\nNo recovery codes were made: without the app, only an administrator can let {} in.",
            context.actor.target.name
        );
        return;
    }
    let _ = writeln!(
        text,
        "\nRecovery codes: each works once, in place of a code from the app. Keep them\nsomewhere safe: they are not shown again.\n"
    );
    for code in new_codes.shown() {
        let _ = writeln!(text, "    {}", code.expose());
    }
    if let Some(file) = codes_file {
        let _ = writeln!(
            text,
            "\nThey were also saved to {} (mode 0600).",
            file.path().display()
        );
    }
}

pub fn status(context: &Context, json: bool) -> Done {
    let store = store(context)?;
    let status = manage::status(&context.actor, &store, now()?, &context.options)?;
    if json {
        let text = serde_json::to_string(&status)
            .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?;
        out(&format!("{text}\n"))?;
    } else {
        out(&describe_status(&status, context))?;
    }
    Ok("viewed the status".into())
}

fn describe_status(status: &Status, context: &Context) -> String {
    if !status.enrolled {
        return format!(
            "{} is not enrolled (no {}).\nRun `pam-totp enroll{}` to set up two-factor authentication.\n",
            status.user,
            status.state_file,
            for_whom(context)
        );
    }
    let mut text = format!("{} is enrolled.\n", status.user);
    let _ = writeln!(text, "  state file      {}", status.state_file);
    let _ = writeln!(
        text,
        "  codes           {}, {} digits, a new one every {} seconds",
        status.algorithm.unwrap_or_default(),
        status.digits.unwrap_or_default(),
        status.period.unwrap_or_default()
    );
    let left = status.recovery_codes_left.unwrap_or_default();
    let _ = writeln!(
        text,
        "  recovery codes  {left} left{}",
        if left == 0 {
            " (run `pam-totp recovery-codes` to make new ones)"
        } else {
            ""
        }
    );
    let last = match status.last_success {
        Some(success) => format!(
            "{}, with {}",
            utc(success.time),
            match success.method {
                Method::Totp => "a code from the app",
                Method::Recovery => "a recovery code",
            }
        ),
        None => "never".into(),
    };
    let _ = writeln!(text, "  last success    {last}");
    if let Some(throttle) = &status.throttle {
        let state = if throttle.seconds_left > 0 {
            format!(
                "no code is checked for {} more seconds ({} wrong codes in a row)",
                throttle.seconds_left, throttle.failures
            )
        } else {
            format!(
                "not throttled ({} wrong codes in a row; codes stop being checked for a while after {})",
                throttle.failures, throttle.max_failures
            )
        };
        let _ = writeln!(text, "  throttling      {state}");
    }
    text
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (proleptic Gregorian calendar).
fn utc(time: u64) -> String {
    let days = (time / 86_400) as i64;
    let seconds = time % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

pub fn recovery_codes(context: &Context, count: usize, codes_file: Option<&Path>) -> Done {
    let actor = &context.actor;
    let codes_file = codes_file.map(CodesFile::new).transpose()?;
    let store = store(context)?;
    if actor.needs_proof() {
        manage::ready_for_code(actor, &store, now()?)?;
    }
    let new_codes = NewCodes::make(count)?;
    if actor.needs_proof() {
        ask_code(
            "Current code from the app: ",
            "the recovery codes were left as they were",
            |answer| {
                manage::replace_recovery_codes(
                    actor,
                    &store,
                    Some(answer),
                    &new_codes,
                    codes_file.as_ref(),
                    auth::now()?,
                    &context.options,
                )
            },
        )?;
    } else {
        manage::replace_recovery_codes(
            actor,
            &store,
            None,
            &new_codes,
            codes_file.as_ref(),
            now()?,
            &context.options,
        )?;
    }
    let mut text = Zeroizing::new(format!(
        "New recovery codes for {}; the old ones no longer work.\n",
        actor.target.name
    ));
    show_codes(&mut text, &new_codes, codes_file.as_ref(), context);
    out(&text)?;
    Ok(format!("replaced the recovery codes ({} new)", count))
}

pub fn disable(context: &Context) -> Done {
    let actor = &context.actor;
    let store = store(context)?;
    if actor.needs_proof() {
        manage::ready_for_code(actor, &store, now()?)?;
        ask_code(
            "Current code from the app, or a recovery code: ",
            "two-factor authentication stays on",
            |answer| manage::disable(actor, &store, Some(answer), auth::now()?, &context.options),
        )?;
    } else {
        manage::disable(actor, &store, None, now()?, &context.options)?;
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

pub fn verify(context: &Context) -> Done {
    let actor = &context.actor;
    let store = store(context)?;
    manage::ready_for_code(actor, &store, now()?)?;
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
    let checked = manage::verify(actor, &store, &answer, now()?, &context.options)?;
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
        Verdict::Recovery { .. } => {
            text.push_str(
                "Accepted: this is an unused recovery code, and a login would take it now. It was not used up.\n",
            );
        }
        Verdict::Wrong { reason, failures } => {
            let hint = if reason == "wrong code" {
                ". If the app's code looks right, check the phone's clock"
            } else {
                ""
            };
            return Err(CliError::Refused(format!(
                "not accepted: a login would refuse this code now ({reason}). It counted as a failed attempt ({failures} in a row; after {} in a row, codes are not checked for a while){hint}",
                context.options.max_failures
            )));
        }
        Verdict::Throttled { seconds } => {
            return Err(Failure::Refused(Verdict::Throttled { seconds }).into());
        }
    }
    out(&text)?;
    Ok("verified a code (accepted, not used up)".into())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
