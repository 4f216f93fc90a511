//! `pam-totp enroll`.

use super::{Done, TRIES, for_whom, note, out, prove_before_replacing, read_secret, show_codes};
use crate::cli::args::EnrollArgs;
use crate::cli::messages::{self, PAM_LINE};
use crate::cli::prompt::{self, Input};
use crate::cli::{CliError, Context, now, qr, store};
use pam_totp::admin::{self, CodesFile, Delivery, Enrollment, NewCodes};
use pam_totp::secret::SecretString;
use std::fmt::Write as _;
use zeroize::Zeroizing;

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
    // `--secret` takes only "-" (args.rs): a literal would be readable in the process list.
    let imported = match (&args.secret, &args.secret_file) {
        (Some(_), _) => Some(read_secret()?),
        (None, Some(path)) => Some(admin::read_secret_file(path, actor.caller.uid)?),
        (None, None) => None,
    };
    let mut enrollment = Enrollment::new(
        imported.as_ref().map(SecretString::expose),
        args.algorithm.into(),
        args.digits,
        args.period,
    )?;
    if args.hotp {
        enrollment = enrollment.into_hotp(args.counter.unwrap_or(0));
    }
    let codes_file = args.codes_file.as_deref().map(CodesFile::new).transpose()?;
    let store = store(context)?;
    // Root may replace a damaged state file: kept aside (a second link) just before the
    // new enrollment is saved over it, so a cancelled enroll leaves it where it was.
    let (replacing, damaged) = match pam_totp::store::Store::enrolled(&store) {
        Ok(enrolled) => (enrolled.is_some(), false),
        Err(error) => {
            let failure = admin::Failure::from(error);
            if !(admin::is_damaged(&failure) && actor.for_other()) {
                return Err(failure.into());
            }
            (true, true)
        }
    };
    if replacing && actor.needs_proof() {
        prove_before_replacing(context, &store)?;
    }
    let qr_style = args.qr_style();
    let issuer = args.issuer.unwrap_or_else(admin::default_issuer);
    let label = args
        .label
        .unwrap_or_else(|| admin::default_label(&actor.target.name));
    let uri = enrollment.otpauth_uri(&issuer, &label);
    // What the log line says; known once confirmed (or not), before the enrollment is saved.
    let what =
        |enrollment: &Enrollment| messages::enrolled(enrollment, args.recovery_codes, replacing);

    if args.json {
        let secret = Zeroizing::new(enrollment.secret().expose().to_owned());
        let new_codes = NewCodes::make(args.recovery_codes)?;
        let done = what(&enrollment);
        let codes: Vec<&str> = new_codes.shown().iter().map(SecretString::expose).collect();
        let object = Zeroizing::new(
            serde_json::to_string(&Provisioned {
                user: &actor.target.name,
                secret: secret.as_str(),
                otpauth_uri: uri.as_str(),
                recovery_codes: codes,
            })
            .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?,
        );
        let text = Zeroizing::new(format!("{}\n", object.as_str()));
        // Shown before the commit: a secret nobody saw is never enrolled.
        save_shown(
            context,
            &*store,
            enrollment,
            &new_codes,
            codes_file.as_ref(),
            damaged,
            &text,
        )?;
        return Ok(done);
    }

    let mut text = Zeroizing::new(String::new());
    if let Some(drawing) = qr::render(&uri, qr_style, args.invert).map_err(CliError::Refused)? {
        if let Some(warning) = qr::too_wide(&drawing, qr::terminal_columns()) {
            note(&warning)?;
        }
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
    text.push_str(&messages::enroll_type(&enrollment, &label, &issuer));
    if let Some(note) = messages::unusual_settings(&enrollment) {
        text.push_str(note);
    }
    let _ = writeln!(text, "otpauth URI: {}\n", uri.as_str());
    out(&text)?;
    drop(text);

    if !args.no_confirm {
        let question = messages::confirm_question(&enrollment, &label);
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
                return Err(CliError::Refused(messages::confirm_failed(
                    &enrollment,
                    &label,
                    TRIES,
                )));
            }
            note(messages::confirm_retry(&enrollment))?;
        }
        note("The code matches.\n")?;
    }

    let new_codes = NewCodes::make(args.recovery_codes)?;
    let done = what(&enrollment);

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
    // Shown before the commit: recovery codes nobody saw are never saved.
    save_shown(
        context,
        &*store,
        enrollment,
        &new_codes,
        codes_file.as_ref(),
        damaged,
        &text,
    )?;
    Ok(done)
}

/// Keeps the damaged state aside before the new enrollment replaces it, and says so.
/// Keeps a damaged state aside (root replacing it), then saves `enrollment`: `text` is
/// shown, and the codes file written, before the store commits.
fn save_shown(
    context: &Context,
    store: &dyn pam_totp::store::Store,
    enrollment: Enrollment,
    new_codes: &NewCodes,
    codes_file: Option<&CodesFile>,
    damaged: bool,
    text: &str,
) -> Result<(), CliError> {
    if damaged {
        keep_damaged(context, store)?;
    }
    enrollment.save(
        &context.actor,
        store,
        new_codes,
        Delivery {
            codes_file,
            show: &mut || out(text),
        },
        now()?,
    )?;
    Ok(())
}

fn keep_damaged(context: &Context, store: &dyn pam_totp::store::Store) -> Result<(), CliError> {
    if let Some(path) = admin::set_aside_damaged(&context.actor, store, now()?, false)? {
        note(&super::damaged_kept(&path))?;
    }
    Ok(())
}
