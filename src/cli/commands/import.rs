//! `pam-totp import`: a google-authenticator file becomes a pam-totp enrollment.

use super::{Done, ask_code, note, out};
use crate::cli::args::ImportArgs;
use crate::cli::messages::{self, Says};
use crate::cli::{CliError, Context, now};
use pam_totp::admin::{self, Actor, Failure, GaImport, ImportProblem, Imported};
use pam_totp::clock;
use pam_totp::config::Options;
use pam_totp::privileges::{Account, PasswdDatabase};
use pam_totp::store::Store;
use pam_totp::store::fs::FsStore;
use serde::Serialize;
use std::fmt::Write as _;

/// What `import --json` prints per user, in this order.
#[derive(Serialize)]
struct ImportJson<'a> {
    user: &'a str,
    imported: bool,
    source: Option<String>,
    state_file: Option<String>,
    algorithm: Option<&'static str>,
    digits: Option<u8>,
    period: Option<u64>,
    recovery_codes: Option<usize>,
    /// "totp" or "hotp" when imported.
    kind: Option<&'static str>,
    hotp_counter: Option<u64>,
    not_carried: Vec<&'a str>,
    replaced: bool,
    removed: bool,
    /// Why not, when `imported` is false.
    error: Option<String>,
}

impl<'a> ImportJson<'a> {
    fn of(user: &'a str, result: &'a Result<Imported, Failure>) -> Self {
        match result {
            Ok(done) => ImportJson {
                user,
                imported: true,
                source: Some(done.source.display().to_string()),
                state_file: Some(done.state_file.display().to_string()),
                algorithm: Some("SHA1"),
                digits: Some(6),
                period: done.hotp_counter.is_none().then_some(done.period),
                recovery_codes: Some(done.recovery_codes),
                kind: Some(if done.hotp_counter.is_some() {
                    "hotp"
                } else {
                    "totp"
                }),
                hotp_counter: done.hotp_counter,
                not_carried: done.not_carried.iter().map(String::as_str).collect(),
                replaced: done.replaced,
                removed: done.removed,
                error: None,
            },
            Err(failure) => ImportJson {
                user,
                imported: false,
                source: None,
                state_file: None,
                algorithm: None,
                digits: None,
                period: None,
                recovery_codes: None,
                kind: None,
                hotp_counter: None,
                not_carried: vec![],
                replaced: false,
                removed: false,
                error: Some(Says(failure).to_string()),
            },
        }
    }
}

fn json_line(user: &str, result: &Result<Imported, Failure>) -> Result<String, CliError> {
    serde_json::to_string(&ImportJson::of(user, result))
        .map(|line| format!("{line}\n"))
        .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))
}

pub fn import(context: &Context, args: ImportArgs) -> Done {
    if args.all_users {
        return import_all(context, &args);
    }
    let actor = &context.actor;
    if args.force && !actor.caller.uid.is_root() {
        return Err(CliError::Refused(
            "--force is for root; to replace your own enrollment, run import without it (a current code is asked)".into(),
        ));
    }
    let ga = GaImport::read(actor, args.file.as_deref())?;
    let store = FsStore::for_account(&context.options, &actor.target)?;
    let enrolled = store.enrolled()?.is_some();
    let mut replace = args.force;
    if enrolled && !args.force && actor.needs_proof() {
        note(&format!(
            "{} is already enrolled in pam-totp. To replace that enrollment with the imported one, first enter a current code (or a recovery code) of the pam-totp enrollment.\n",
            actor.target.name
        ))?;
        admin::ready_for_code(actor, &store, now()?)?;
        ask_code(
            "Current code: ",
            "the enrollment was left as it was",
            |answer| admin::prove(actor, &store, answer, clock::now()?, &context.options),
        )?;
        replace = true;
    }
    let result = ga.save(actor, &store, replace, args.remove);
    // A failure is printed by the front end ({"error": …} with --json).
    let done = result?;
    if args.json {
        out(&json_line(&actor.target.name, &Ok(done.clone()))?)?;
        return Ok(logged(&done));
    }
    out(&described(&done))?;
    Ok(logged(&done))
}

/// The log line: what was imported, never a secret or a code.
fn logged(done: &Imported) -> String {
    format!(
        "imported {} for {} ({} recovery codes from its scratch codes{}{})",
        done.source.display(),
        done.user,
        done.recovery_codes,
        if done.replaced {
            "; replaced the enrollment"
        } else {
            ""
        },
        if done.removed { "; file removed" } else { "" }
    )
}

fn described(done: &Imported) -> String {
    let mut text = String::new();
    let same = match done.hotp_counter {
        None => format!(
            "Same secret, SHA1, 6 digits, a new code every {} seconds: the authenticator app keeps working.",
            done.period
        ),
        Some(counter) => messages::imported_hotp(counter),
    };
    let _ = writeln!(
        text,
        "Imported {} for {} into {}{}.\n{same}",
        done.source.display(),
        done.user,
        done.state_file.display(),
        if done.replaced {
            " (the old pam-totp enrollment and its recovery codes no longer work)"
        } else {
            ""
        },
    );
    let _ = writeln!(
        text,
        "{} scratch code(s) became recovery codes: each works once, typed at the code prompt.",
        done.recovery_codes
    );
    if !done.not_carried.is_empty() {
        text.push_str("Not carried over:\n");
        for note in &done.not_carried {
            let _ = writeln!(text, "  - {note}");
        }
    }
    if done.removed {
        text.push_str("The google-authenticator file was removed.\n");
    } else {
        text.push_str(
            "The google-authenticator file was left as it is; remove it once pam_google_authenticator.so is gone from the PAM stacks (or import with --remove).\n",
        );
    }
    text
}

/// `--all-users`: every user of the passwd database with a google-authenticator file,
/// one line (or JSON object) each, on past failures; exit 1 if any failed.
fn import_all(context: &Context, args: &ImportArgs) -> Done {
    if !context.actor.caller.uid.is_root() {
        return Err(CliError::Refused(
            "--all-users is for root: it reads every user's google-authenticator file".into(),
        ));
    }
    let (mut imported, mut failed, mut without) = (0, 0, 0);
    for name in PasswdDatabase.all_names() {
        let result = import_one(&context.actor, &context.options, &name, args);
        if let Err(Failure::Import {
            problem: ImportProblem::Missing,
            ..
        }) = result
        {
            without += 1;
            continue;
        }
        if args.json {
            out(&json_line(&name, &result)?)?;
        } else {
            match &result {
                Ok(done) => out(&format!(
                    "{name}: imported {} ({} recovery codes{})\n",
                    done.source.display(),
                    done.recovery_codes,
                    if done.not_carried.is_empty() {
                        String::new()
                    } else {
                        format!("; not carried over: {}", done.not_carried.join("; "))
                    }
                ))?,
                Err(failure) => out(&format!("{name}: not imported: {}\n", Says(failure)))?,
            }
        }
        match result {
            Ok(_) => imported += 1,
            Err(_) => failed += 1,
        }
    }
    let summary = format!(
        "import --all-users: {imported} imported, {failed} failed, {without} without a google-authenticator file"
    );
    if failed > 0 {
        // Said once, as the error line (exit 1).
        return Err(CliError::Refused(summary));
    }
    if !args.json {
        note(&format!("{summary}\n"))?;
    }
    Ok(summary)
}

fn import_one(
    root: &Actor,
    options: &Options,
    name: &str,
    args: &ImportArgs,
) -> Result<Imported, Failure> {
    let target =
        Account::by_name(name)?.ok_or_else(|| pam_totp::Error::UnknownUser(name.to_owned()))?;
    let actor = Actor {
        caller: root.caller.clone(),
        target,
    };
    // A home that does not exist holds no file to import: the user is skipped.
    if !actor.target.home.is_dir() {
        return Err(Failure::Import {
            path: actor.target.home.join(admin::import::GA_FILE_NAME),
            problem: ImportProblem::Missing,
        });
    }
    let ga = GaImport::read(&actor, None)?;
    let store = FsStore::for_account(options, &actor.target)?;
    ga.save(&actor, &store, args.force, args.remove)
}
