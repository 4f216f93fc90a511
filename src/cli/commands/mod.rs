//! The commands: each asks what it needs, calls `pam_totp::admin`, and tells the outcome.
//! Each returns the line to log (what was done, never a secret or a code).

mod changes;
mod enroll;
mod import;
pub mod protected;
mod report;
mod resync;
mod status;

pub use changes::{disable, recovery_codes, unlock, verify};
pub use enroll::enroll;
pub use import::import;
pub use report::report;
pub use resync::resync;
pub use status::status;

use super::messages::Says;
use super::prompt::{self, Input};
use super::{CliError, Context};
use pam_totp::admin::{CodesFile, Failure, NewCodes};
use pam_totp::policy::Verdict;
use pam_totp::secret::SecretString;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Tries a person gets at each code prompt; every wrong code also counts toward the
/// module's throttling, as at login.
pub(super) const TRIES: usize = 3;

pub(super) type Done = Result<String, CliError>;

/// Writes to standard output (results: QR code, codes, status).
pub(super) fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Writes to standard error (notes that go with a prompt).
pub(super) fn note(text: &str) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_all(text.as_bytes())?;
    stderr.flush()
}

/// Asks for a code up to [`TRIES`] times and hands each answer to `check`. A wrong code
/// (or a recovery code where one from the app is needed) lets the person try again;
/// anything else ends it. `cancelled` says what Ctrl-C or end of input leaves.
pub(super) fn ask_code<T>(
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
                ) => note(&format!("{}. Try again.\n", Says(&failure)))?,
                Some(other) => return Err(other.into()),
            },
            Err(None) => return Err(CliError::Refused(format!("no code entered; {cancelled}"))),
            Err(Some(failure)) => return Err(failure.into()),
        }
    }
}

/// Before an enrolled user's enrollment is replaced: a current code from the app (or a
/// recovery code), burned, as a login would take it.
pub(super) fn prove_before_replacing(
    context: &Context,
    store: &dyn pam_totp::store::Store,
) -> Result<(), CliError> {
    let actor = &context.actor;
    note(&format!(
        "{} is already enrolled. To replace the enrollment, first enter a current code from the app (or a recovery code).\n",
        actor.target.name
    ))?;
    pam_totp::admin::ready_for_code(actor, store, super::now()?)?;
    ask_code(
        "Current code: ",
        "the enrollment was left as it was",
        |answer| {
            pam_totp::admin::prove(
                actor,
                store,
                answer,
                pam_totp::clock::now()?,
                &context.options,
            )
        },
    )?;
    Ok(())
}

/// `--secret -`: the secret from standard input (echo off on a terminal).
pub(super) fn read_secret() -> Result<SecretString, CliError> {
    match prompt::ask("Secret to import (base32): ")? {
        Input::Answer(secret) => Ok(secret),
        Input::Interrupted | Input::Closed => Err(CliError::Cancelled("nothing was saved")),
    }
}

/// What root is told when a damaged state file was set aside.
pub(super) fn damaged_kept(path: &std::path::Path) -> String {
    format!(
        "The state file could not be read (damaged); it was kept as {} (same owner, mode 0600) and replaced.\n",
        path.display()
    )
}

pub(super) fn for_whom(context: &Context) -> String {
    if context.actor.for_other() {
        format!(" --user {}", context.actor.target.name)
    } else {
        String::new()
    }
}

pub(super) fn show_codes(
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
