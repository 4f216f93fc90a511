//! The words for what the library reports as types: the failures of the admin operations,
//! the audit lines, and what enrolling did.

use pam_totp::Error;
use pam_totp::admin::{
    Actor, CodesFileProblem, Enrollment, Failure, ImportProblem, NameProblem, SecretFileProblem,
    SecretProblem,
};
use pam_totp::log::{self, Priority};
use pam_totp::otp::Kind;
use pam_totp::otp::hotp::RESYNC_WINDOW;
use pam_totp::policy::{Verdict, WrongReason};
use std::fmt;

/// The line an admin adds to a service in /etc/pam.d.
pub const PAM_LINE: &str = "auth required pam_totp.so";

/// A [`Failure`] in words: one line for the person at the terminal, what went wrong and
/// how to fix it, never a secret or a code.
pub struct Says<'a>(pub &'a Failure);

impl fmt::Display for Says<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Failure::Library(Error::UnknownUser(user)) => write!(
                f,
                "unknown user {user:?}: no such account in the passwd database; check the name given to --user"
            ),
            Failure::Library(error) => write!(f, "{error}"),
            Failure::NotPermitted { caller, target } => write!(
                f,
                "{caller} may not act for {target}: only root can use --user for another user (drop --user to act for yourself, or ask an administrator)"
            ),
            Failure::NoCaller(uid) => write!(
                f,
                "the calling uid {uid} has no entry in the passwd database; ask an administrator to add one"
            ),
            Failure::NotEnrolled { user, path } => write!(
                f,
                "{user} is not enrolled (no {}); run `pam-totp enroll` first",
                path.display()
            ),
            Failure::Refused(Verdict::Throttled { seconds }) => write!(
                f,
                "too many wrong codes; no code is checked for {seconds} more seconds, try again then; nothing was changed"
            ),
            Failure::Refused(Verdict::Wrong { reason, failures }) => {
                write!(
                    f,
                    "{}: not accepted, and counted as a failed attempt ({failures} in a row)",
                    reason_words(*reason)
                )?;
                if *reason == WrongReason::Replayed {
                    f.write_str("; each code works once: wait for the next one")?;
                }
                Ok(())
            }
            Failure::Refused(_) => f.write_str("the code was not accepted; nothing was changed"),
            Failure::NotHotp => f.write_str(
                "resync is for HOTP (counter-based) tokens, and this enrollment is time-based (TOTP): its codes cannot fall out of step; if codes are refused, check the phone's clock; nothing was changed",
            ),
            Failure::HotpNeedsRoot => f.write_str(
                "with protected storage, HOTP tokens are enrolled and resynchronised by an administrator: `pam-totp --user NAME enroll --hotp --secret -` (seed on standard input) or `pam-totp --user NAME resync`; nothing was changed",
            ),
            Failure::TotpRequired => f.write_str(
                "this needs a code from the authenticator app, not a recovery code (lost the app? `pam-totp enroll` accepts a recovery code and sets up a new one)",
            ),
            Failure::BadSecret(problem) => {
                let why = match problem {
                    SecretProblem::NotBase32 => "not a base32 secret: use the letters A-Z and digits 2-7 (case, spaces, dashes and = padding do not matter)",
                    SecretProblem::Invalid(rule) => rule,
                };
                write!(f, "--secret: {why}; nothing was changed")
            }
            Failure::BadName { what, problem } => match problem {
                NameProblem::Length => write!(f, "{what} must be 1 to 100 characters"),
                NameProblem::ColonOrControl => {
                    write!(f, "{what} may not contain a colon or control characters")
                }
            },
            Failure::NoHome { user, home, path } => write!(
                f,
                "refusing {}: cannot create the state file: the home directory {} of {user} does not exist; fix: create it (mkdir -m 700 {1} && chown {user}: {1}) or set secret= in the config file",
                path.display(),
                home.display(),
            ),
            Failure::RootManaged {
                user,
                config,
                command,
                problem,
            } => write!(
                f,
                "the state of {user} is kept in storage managed by root (secret= in {}), which {user} cannot use ({problem}); ask an administrator to run `pam-totp --user {user} {command}`",
                config.display()
            ),
            Failure::SecretFile { path, problem } => {
                write!(f, "--secret-file {}: ", path.display())?;
                match problem {
                    SecretFileProblem::Link => f.write_str("is a symbolic link; name the file itself")?,
                    SecretFileProblem::NotRegular => f.write_str("not a regular file")?,
                    SecretFileProblem::HardLinks(links) => write!(
                        f,
                        "has {links} names (hard links); copy the secret into a new file of your own"
                    )?,
                    SecretFileProblem::Owner(uid) => write!(
                        f,
                        "owned by uid {uid}, not by you; only a file of your own is read"
                    )?,
                    SecretFileProblem::Mode(mode) => write!(
                        f,
                        "readable or writable by group or others (mode {mode:o}); fix: chmod 600 {}",
                        path.display()
                    )?,
                    SecretFileProblem::TooLarge => f.write_str("too large for a secret")?,
                    SecretFileProblem::NotText => f.write_str("not text")?,
                    SecretFileProblem::Os(why) => f.write_str(why)?,
                }
                f.write_str("; nothing was changed")
            }
            Failure::Output(error) => write!(
                f,
                "cannot write to standard output ({error}), so what it would show was not saved; nothing was changed"
            ),
            Failure::UnlockNeedsRoot { caller, target } => write!(
                f,
                "{caller} may not unlock {target}: only root can clear throttling (`pam-totp --user {target} unlock`, run by an administrator); otherwise wait until codes are checked again"
            ),
            Failure::CodesFileExists(path) => write!(
                f,
                "{} already exists; recovery codes are only ever written to a new file: name one that does not exist yet; nothing was changed",
                path.display()
            ),
            Failure::Import { path, problem } => {
                write!(f, "cannot import {}: ", path.display())?;
                match problem {
                    ImportProblem::Missing => f.write_str(
                        "no such file (google-authenticator writes ~/.google_authenticator; name another file as an argument)",
                    )?,
                    ImportProblem::Format(error) => write!(
                        f,
                        "{error}; it is not a file google-authenticator wrote, or it was damaged"
                    )?,
                    ImportProblem::Period(step) => write!(
                        f,
                        "its STEP_SIZE is {step} seconds; pam-totp accepts 10 to 300: enroll this user anew with `pam-totp enroll`"
                    )?,
                    ImportProblem::TooManyScratchCodes(count) => write!(
                        f,
                        "{count} scratch codes, more than pam-totp keeps; remove the used ones from the file"
                    )?,
                    ImportProblem::AlreadyEnrolled => f.write_str(
                        "already enrolled in pam-totp; to replace that enrollment, run import yourself (a current code is asked) or, as root, add --force",
                    )?,
                }
                f.write_str("; nothing was changed")
            }
            Failure::CodesFile { path, problem } => {
                write!(f, "cannot write the recovery codes to {}: ", path.display())?;
                match problem {
                    CodesFileProblem::NotWritable { errno, owner } => write!(
                        f,
                        "{errno}; it is created as {owner}: choose a directory that user can write to"
                    )?,
                    CodesFileProblem::Os(errno) => write!(f, "{errno}")?,
                    CodesFileProblem::Io(error) => write!(f, "{error}")?,
                }
                f.write_str("; nothing was changed")
            }
        }
    }
}

/// Why a code was refused, in the words the module logs too.
pub fn reason_words(reason: WrongReason) -> &'static str {
    match reason {
        WrongReason::Replayed => "replayed code",
        WrongReason::WrongCode => "wrong code",
        WrongReason::WrongRecoveryCode => "wrong recovery code",
        WrongReason::Malformed => "malformed code",
        WrongReason::Empty => "empty code",
    }
}

/// One syslog line (authpriv): who did what, for whom. `what` never holds a secret.
pub fn audit(actor: &Actor, priority: Priority, what: &str) {
    log::cli_syslog(priority, &audit_line(actor, what));
}

pub fn audit_line(actor: &Actor, what: &str) -> String {
    if actor.caller.uid == actor.target.uid {
        format!("{} (uid {}): {what}", actor.caller.name, actor.caller.uid)
    } else {
        format!(
            "{} (uid {}) for {} (uid {}): {what}",
            actor.caller.name, actor.caller.uid, actor.target.name, actor.target.uid
        )
    }
}

/// The line for syslog: what was enrolled, never the secret.
pub fn enrolled(enrollment: &Enrollment, recovery_count: usize, replaced: bool) -> String {
    let timing = match enrollment.kind() {
        Kind::Totp => format!("{} s period", enrollment.period()),
        Kind::Hotp => format!("HOTP, next counter {}", enrollment.hotp_counter()),
    };
    format!(
        "{} ({}, {} digits, {timing}, {} recovery codes{}{})",
        if replaced {
            "replaced the enrollment"
        } else {
            "enrolled"
        },
        enrollment.algorithm().as_str(),
        enrollment.digits(),
        recovery_count,
        if enrollment.imported() {
            ", imported secret"
        } else {
            ""
        },
        if enrollment.confirmed() {
            ""
        } else {
            ", not confirmed with a code"
        },
    )
}

// ---------------------------------------------------------------------------------------
// HOTP (counter-based tokens)

/// Enroll: what kind of codes the app or token is to make, under the secret.
pub fn enroll_type(enrollment: &Enrollment, label: &str, issuer: &str) -> String {
    match enrollment.kind() {
        Kind::Totp => format!(
            "Type: time-based (TOTP); account: {label}; issuer: {issuer};\n{}, {} digits, a new code every {} seconds.\n",
            enrollment.algorithm().as_str(),
            enrollment.digits(),
            enrollment.period()
        ),
        Kind::Hotp => format!(
            "Type: counter-based (HOTP); account: {label}; issuer: {issuer};\n{}, {} digits, counter {}: a new code each time the token's button is pressed.\n",
            enrollment.algorithm().as_str(),
            enrollment.digits(),
            enrollment.hotp_counter()
        ),
    }
}

/// Enroll: the note for settings some apps ignore; `None` when the defaults are used.
pub fn unusual_settings(enrollment: &Enrollment) -> Option<&'static str> {
    let unusual_timing = enrollment.kind() == Kind::Totp && enrollment.period() != 30;
    (enrollment.algorithm() != pam_totp::otp::HashAlgorithm::SHA1
        || enrollment.digits() != 6
        || unusual_timing)
        .then_some(match enrollment.kind() {
            Kind::Totp => "Note: some apps (Google Authenticator among them) ignore settings other than SHA1, 6 digits, 30 seconds; check that the app's codes are accepted.\n",
            Kind::Hotp => "Note: many HOTP tokens make only SHA1 codes of 6 digits; check that the token's codes are accepted.\n",
        })
}

/// Enroll: the question for the confirming code.
pub fn confirm_question(enrollment: &Enrollment, label: &str) -> String {
    match enrollment.kind() {
        Kind::Totp => format!(
            "Code shown by the app for {label} ({} digits): ",
            enrollment.digits()
        ),
        Kind::Hotp => format!(
            "Code of the token for {label} (press its button; {} digits): ",
            enrollment.digits()
        ),
    }
}

/// Enroll: no code matched in `tries` tries.
pub fn confirm_failed(enrollment: &Enrollment, label: &str, tries: usize) -> String {
    match enrollment.kind() {
        Kind::Totp => format!(
            "no code matched in {tries} tries; nothing was saved. Check that the phone's clock is right and that the app shows an entry for {label}, then run `pam-totp enroll` again"
        ),
        Kind::Hotp => format!(
            "no code matched in {tries} tries; nothing was saved. Check that the token holds the secret given, and if it has been used before, give its counter with --counter N, then run `pam-totp enroll --hotp` again"
        ),
    }
}

/// Enroll: a code that did not match; the person tries again.
pub fn confirm_retry(enrollment: &Enrollment) -> &'static str {
    match enrollment.kind() {
        Kind::Totp => {
            "That code does not match. Check that the app shows the entry just added, and type the code it shows now.\n"
        }
        Kind::Hotp => {
            "That code does not match. Press the token's button again and type the new code.\n"
        }
    }
}

/// Status: the line about the codes of an HOTP enrollment.
pub fn hotp_status_codes(algorithm: &str, digits: u8, counter: u64) -> String {
    format!(
        "  codes           HOTP (counter-based), {algorithm}, {digits} digits; the next code expected is that of counter {counter}"
    )
}

/// Verify: an accepted HOTP code, which (unlike a TOTP code) is used up.
pub fn hotp_verified(counter: u64) -> String {
    format!(
        "Accepted: this is the token's code of counter {counter}, and a login would take it now. It was used up (the token has moved past it); the next login needs the token's next code.\n"
    )
}

/// Verify's line for the log.
pub const HOTP_VERIFIED_LOG: &str = "verified an HOTP code (accepted, used up)";

pub const RESYNC_INTRO: &str =
    "Press the token's button twice and type the two codes it shows, in order.\n";
pub const RESYNC_FIRST: &str = "First code: ";
pub const RESYNC_SECOND: &str = "Next code: ";
pub const RESYNC_CANCELLED: &str = "the counter was left as it was";

/// Resync: the two codes were found.
pub fn resynced(user: &str, counter: u64) -> String {
    format!(
        "The token of {user} is in step again: the next code expected is that of counter {counter}.\n"
    )
}

/// Import: what an HOTP google-authenticator file became.
pub fn imported_hotp(counter: u64) -> String {
    format!(
        "Same secret, SHA1, 6 digits, counter-based (HOTP) from counter {counter}: the token or app keeps working."
    )
}

/// Resync's line for the log.
pub fn resynced_log(counter: u64) -> String {
    format!("resynchronised the HOTP token (next counter {counter})")
}

/// Resync: the two codes were not found.
pub fn resync_failed(failures: u32) -> String {
    format!(
        "the two codes are not the token's codes of two counters in a row within {RESYNC_WINDOW} presses of the stored counter ({failures} failed attempts in a row); nothing was changed. Press the button twice more and try again, or enroll the token anew with `pam-totp enroll --hotp --counter N`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pam_totp::privileges::Account;
    use std::path::PathBuf;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid: nix::unistd::Uid::from_raw(uid),
            gid: nix::unistd::Gid::from_raw(uid),
            home: PathBuf::from("/home").join(name),
        }
    }

    #[test]
    fn audit_lines_say_who_for_whom() {
        let admin = Actor {
            caller: account("root", 0),
            target: account("bob", 1001),
        };
        assert_eq!(
            audit_line(&admin, "disabled"),
            "root (uid 0) for bob (uid 1001): disabled"
        );
        let own = Actor {
            caller: account("bob", 1001),
            target: account("bob", 1001),
        };
        assert_eq!(audit_line(&own, "enrolled"), "bob (uid 1001): enrolled");
    }

    #[test]
    fn reasons_read_as_the_module_logs_them() {
        for reason in [
            WrongReason::Replayed,
            WrongReason::WrongCode,
            WrongReason::WrongRecoveryCode,
            WrongReason::Malformed,
            WrongReason::Empty,
        ] {
            assert_eq!(reason_words(reason), reason.as_str());
        }
    }

    #[test]
    fn a_replayed_code_says_to_wait_for_the_next() {
        let text = Says(&Failure::Refused(Verdict::Wrong {
            reason: WrongReason::Replayed,
            failures: 2,
        }))
        .to_string();
        assert_eq!(
            text,
            "replayed code: not accepted, and counted as a failed attempt (2 in a row); each code works once: wait for the next one"
        );
    }
}
