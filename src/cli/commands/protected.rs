//! The commands with protected storage (`secret=` root-owned): `enroll` and
//! `recovery-codes` for a user who is not root, through the setuid helper (which makes
//! the secret and the codes itself), and root's `protect`. `status`, `verify` and
//! `disable` need nothing special: they run the usual commands over a `HelperStore`.

use super::{Done, TRIES, ask_code, note, out, prove_before_replacing};
use crate::cli::args::EnrollArgs;
use crate::cli::messages::{self, PAM_LINE};
use crate::cli::prompt::{self, Input};
use crate::cli::{CliError, Context, now, qr};
use pam_totp::admin::protect::{Protected, protect as protect_account};
use pam_totp::admin::{self, Enrollment, Failure};
use pam_totp::log::Priority;
use pam_totp::otp::OtpParams;
use pam_totp::privileges::Account;
use pam_totp::secret::SecretString;
use pam_totp::store::helper::{Confirmed, EnrollError, HelperRefusal, HelperStore};
use pam_totp::store::{ChangeError, Refusal, Store};
use std::fmt::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

fn failure(error: ChangeError, context: &Context, store: &dyn Store) -> Failure {
    match error {
        ChangeError::Failed(error) => Failure::Library(error),
        ChangeError::Refused(Refusal::NotEnrolled) => Failure::NotEnrolled {
            user: context.actor.target.name.clone(),
            path: store.location().to_owned(),
        },
        ChangeError::Refused(Refusal::Proof(verdict)) => Failure::Refused(verdict),
        ChangeError::Refused(Refusal::TotpRequired) => Failure::TotpRequired,
        ChangeError::Refused(Refusal::NotHotp) => Failure::NotHotp,
        ChangeError::Refused(Refusal::Aborted) => Failure::Library(pam_totp::Error::Internal(
            "a change stopped before its commit".into(),
        )),
    }
}

/// The helper did not save what was just shown.
/// The helper did not confirm a commit. Whether the change was written is then not known
/// for sure (a reply lost after the write, an error after the rename), so the words never
/// tell the user to throw away codes that may be the ones in force.
fn not_committed(error: ChangeError, context: &Context, store: &dyn Store, left: &str) -> CliError {
    CliError::Refused(format!(
        "the save was not confirmed: {}; {left}",
        messages::Says(&failure(error, context, store))
    ))
}

fn root_only(option: &str) -> CliError {
    CliError::Refused(format!(
        "{option} is not available with protected storage (the state is kept by root); an administrator can use it: pam-totp --user NAME …"
    ))
}

fn codes_text(text: &mut String, codes: &[SecretString], user: &str) {
    if codes.is_empty() {
        let _ = writeln!(
            text,
            "\nNo recovery codes were made: without the app, only an administrator can let {user} in."
        );
        return;
    }
    text.push_str(
        "\nRecovery codes: each works once, in place of a code from the app. Keep them\nsomewhere safe: they are not shown again.\n\n",
    );
    for code in codes {
        let _ = writeln!(text, "    {}", code.expose());
    }
}

pub fn enroll(context: &Context, args: EnrollArgs) -> Done {
    let actor = &context.actor;
    // The helper makes TOTP secrets only; a token's seed comes from its vendor, and root
    // provisions it (`--user NAME enroll --hotp --secret -`).
    if args.hotp {
        return Err(Failure::HotpNeedsRoot.into());
    }
    if args.secret.is_some() || args.secret_file.is_some() {
        return Err(root_only("--secret"));
    }
    if args.no_confirm || args.json {
        return Err(root_only("--no-confirm"));
    }
    if args.codes_file.is_some() {
        return Err(root_only("--codes-file"));
    }
    let store = HelperStore::connect()?;
    let replacing = store.enrolled()?.is_some();
    if replacing {
        prove_before_replacing(context, &store)?;
    }
    let params = OtpParams {
        algorithm: args.algorithm.into(),
        digits: args.digits,
        period: args.period,
    };
    let secret = match store.begin_enrollment(params) {
        Ok(secret) => secret,
        Err(EnrollError::Helper(HelperRefusal::SelfEnrollOff)) => {
            return Err(CliError::Refused(format!(
                "self-enrollment is turned off on this machine (self_enroll = false in {}); ask an administrator to run `pam-totp --user {} enroll`",
                context.options.config.display(),
                actor.target.name
            )));
        }
        Err(EnrollError::Helper(HelperRefusal::ProofNeeded)) => {
            return Err(CliError::Refused(format!(
                "{} is already enrolled; a current code is needed to replace the enrollment",
                actor.target.name
            )));
        }
        Err(EnrollError::Change(e)) => return Err(failure(e, context, &store).into()),
    };
    // Only to show the key and the URI: the helper keeps (and checks against) its own copy.
    let shown = Enrollment::new(
        Some(secret.expose()),
        params.algorithm,
        params.digits,
        params.period,
    )?;
    drop(secret);
    let qr_style = args.qr_style();
    let issuer = args.issuer.unwrap_or_else(admin::default_issuer);
    let label = args
        .label
        .unwrap_or_else(|| admin::default_label(&actor.target.name));
    let uri = shown.otpauth_uri(&issuer, &label);
    let mut text = Zeroizing::new(String::new());
    if let Some(drawing) = qr::render(&uri, qr_style, args.invert).map_err(CliError::Refused)? {
        text.push_str(&drawing);
        text.push_str("\nScan the QR code with an authenticator app, or add this key by hand:\n");
    } else {
        text.push_str("Add this key to an authenticator app:\n");
    }
    let _ = writeln!(text, "\n    {}\n", shown.grouped_secret().as_str());
    let _ = writeln!(
        text,
        "Type: time-based (TOTP); account: {label}; issuer: {issuer};\n{}, {} digits, a new code every {} seconds.",
        params.algorithm.as_str(),
        params.digits,
        params.period
    );
    let _ = writeln!(text, "otpauth URI: {}\n", uri.as_str());
    let _ = writeln!(
        text,
        "This key is shown only now: it is kept in protected storage that your account cannot read.\n"
    );
    out(&text)?;
    drop(text);
    drop(uri);

    let question = format!(
        "Code shown by the app for {label} ({} digits): ",
        params.digits
    );
    let mut tries = 0;
    let codes = loop {
        tries += 1;
        let answer = match prompt::ask(&question)? {
            Input::Answer(answer) => answer,
            Input::Interrupted | Input::Closed => {
                return Err(CliError::Cancelled("nothing was saved"));
            }
        };
        match store.confirm_enrollment(&answer, args.recovery_codes) {
            Ok(Confirmed::Matched(codes)) => break codes,
            Ok(Confirmed::NoMatch) if tries < TRIES => note(
                "That code does not match. Check that the app shows the entry just added, and type the code it shows now.\n",
            )?,
            Ok(Confirmed::NoMatch) => {
                return Err(CliError::Refused(format!(
                    "no code matched in {TRIES} tries; nothing was saved. Check that the phone's clock is right and that the app shows an entry for {label}, then run `pam-totp enroll` again"
                )));
            }
            Err(e) => return Err(failure(e, context, &store).into()),
        }
    };
    note("The code matches.\n")?;
    let mut text = Zeroizing::new(format!(
        "\nTwo-factor authentication is set up for {}{}.\n",
        actor.target.name,
        if replacing {
            "; the old enrollment and its recovery codes no longer work"
        } else {
            ""
        }
    ));
    codes_text(&mut text, &codes, &actor.target.name);
    let _ = write!(
        text,
        "\nNext:\n  - Logins ask for a code once an administrator adds this line to the service's\n    file in /etc/pam.d (for example /etc/pam.d/sshd), after the password line:\n        {PAM_LINE}\n  - `pam-totp status` shows the enrollment; `pam-totp verify` checks a code\n    without using it up.\n"
    );
    // Shown (written and flushed) before the helper saves: codes nobody saw must not be
    // the only way in.
    out(&text).map_err(Failure::Output)?;
    store
        .commit()
        .map_err(|e| {
            not_committed(
                e,
                context,
                &store,
                "the new enrollment may not have been saved: `pam-totp status` shows which one is in force",
            )
        })?;
    // Not messages::enrolled: `shown` is an import only to display the helper's secret.
    Ok(format!(
        "{} ({}, {} digits, {} s period, {} recovery codes; through the helper, confirmed with a code)",
        if replacing {
            "replaced the enrollment"
        } else {
            "enrolled"
        },
        params.algorithm.as_str(),
        params.digits,
        params.period,
        codes.len()
    ))
}

pub fn recovery_codes(
    context: &Context,
    count: usize,
    codes_file: Option<&Path>,
    json: bool,
) -> Done {
    let actor = &context.actor;
    if codes_file.is_some() {
        return Err(root_only("--codes-file"));
    }
    if json {
        return Err(root_only("--json"));
    }
    let store = HelperStore::connect()?;
    admin::ready_for_code(actor, &store, now()?)?;
    let codes = ask_code(
        "Current code from the app: ",
        "the recovery codes were left as they were",
        |answer| {
            store
                .new_recovery_codes(answer, count)
                .map_err(|e| failure(e, context, &store))
        },
    )?;
    let mut text = Zeroizing::new(format!(
        "New recovery codes for {}; the old ones no longer work.\n",
        actor.target.name
    ));
    codes_text(&mut text, &codes, &actor.target.name);
    // Shown before the helper commits them: if they cannot be written, the old codes stay.
    out(&text).map_err(Failure::Output)?;
    store.commit().map_err(|e| {
        not_committed(
            e,
            context,
            &store,
            "the codes shown above may not have been saved: `pam-totp status` shows how many recovery codes are left (as many as shown above if they were), and until then keep the old ones too",
        )
    })?;
    Ok(format!(
        "replaced the recovery codes ({} new, through the helper)",
        codes.len()
    ))
}

/// The first uid of a person's account (Debian's and Fedora's UID_MIN).
const FIRST_PERSON_UID: u32 = 1000;
/// `nobody` (65534), and the old NFS `nfsnobody` ((u32)-2).
const NOBODY_UIDS: [u32; 2] = [65534, u32::MAX - 1];

/// People, not system accounts (whose "homes" such as /var/mail are shared and hold no
/// enrollment): root, and every uid from 1000 on but nobody's. Directory users (LDAP,
/// FreeIPA, AD through sssd) often have uids far above 65535; they are people too.
fn is_person(uid: u32) -> bool {
    uid == 0 || (uid >= FIRST_PERSON_UID && !NOBODY_UIDS.contains(&uid))
}

/// `pam-totp --user NAME protect` and `pam-totp protect --all-users` (root).
pub fn protect(context: &Context, all_users: bool) -> Done {
    if !context.actor.caller.uid.is_root() {
        return Err(CliError::Refused(
            "only root can move enrollments into protected storage".into(),
        ));
    }
    if !all_users {
        if !context.actor.for_other() {
            return Err(CliError::Refused(
                "name the user whose enrollment to move: pam-totp --user NAME protect (or pam-totp protect --all-users)".into(),
            ));
        }
        let line = describe(
            &protect_account(&context.options, &context.actor.target)?,
            &context.actor.target.name,
        );
        out(&format!("{line}\n"))?;
        return Ok(line);
    }
    let mut moved = 0;
    let mut failed = 0;
    for name in all_user_names()? {
        // A name that the passwd database cannot look up now is a failure to report, not a
        // user to skip in silence: the admin would believe every enrollment was moved.
        let account = match Account::by_name(&name) {
            Ok(Some(account)) => account,
            // Listed a moment ago, gone now (removed meanwhile): nothing to move.
            Ok(None) => continue,
            Err(e) => {
                failed += 1;
                let line = format!(
                    "{name}: not moved: {}",
                    messages::Says(&Failure::Library(e))
                );
                messages::audit(&context.actor, Priority::Notice, &line);
                note(&format!("pam-totp: {line}\n"))?;
                continue;
            }
        };
        if !is_person(account.uid.as_raw()) {
            continue;
        }
        match protect_account(&context.options, &account) {
            Ok(Protected::NothingInHome { .. }) => {}
            Ok(done) => {
                let line = describe(&done, &name);
                messages::audit(&context.actor, Priority::Info, &line);
                out(&format!("{line}\n"))?;
                moved += usize::from(matches!(done, Protected::Moved { .. }));
            }
            Err(failure) => {
                failed += 1;
                let line = format!("{name}: not moved: {}", messages::Says(&failure));
                messages::audit(&context.actor, Priority::Notice, &line);
                note(&format!("pam-totp: {line}\n"))?;
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Refused(format!(
            "{moved} enrollment(s) moved, {failed} could not be (see above)"
        )));
    }
    out(&format!(
        "{moved} enrollment(s) moved into protected storage.\n"
    ))?;
    Ok(format!("protect --all-users: {moved} moved"))
}

fn describe(done: &Protected, user: &str) -> String {
    match done {
        Protected::Moved { from, to } => format!(
            "{user}: moved {} to {}; the app's codes keep working",
            from.display(),
            to.display()
        ),
        Protected::NothingInHome { home } => {
            format!("{user}: nothing to move (no {})", home.display())
        }
        Protected::AlreadyProtected { at } => format!("{user}: already in {}", at.display()),
    }
}

/// Every user the name service lists (local files, LDAP, …), as `getent passwd` shows them.
fn all_user_names() -> Result<Vec<String>, CliError> {
    let output = std::process::Command::new("/usr/bin/getent")
        .arg("passwd")
        .env_clear()
        .output()?;
    if !output.status.success() {
        return Err(CliError::Refused("getent passwd failed".into()));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::is_person;

    #[test]
    fn protect_all_users_takes_root_and_people_including_directory_uids() {
        for uid in [0, 1000, 1001, 60000, 65533, 65536, 70000, 1_234_400_001] {
            assert!(is_person(uid), "{uid}");
        }
        for uid in [1, 2, 100, 999, 65534, u32::MAX - 1] {
            assert!(!is_person(uid), "{uid}");
        }
    }
}
