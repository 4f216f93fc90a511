//! The words for what the library reports as types: the failures of the admin operations,
//! the audit lines, and what enrolling did.

use pam_totp::Error;
use pam_totp::admin::{
    Actor, CodesFileProblem, Enrollment, Failure, ImportProblem, NameProblem, SecretFileProblem,
    SecretProblem,
};
use pam_totp::log::{self, Priority};
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
                    ImportProblem::Hotp => f.write_str(
                        "it is a counter-based (HOTP) file, and pam-totp supports only time-based codes (TOTP) yet; enroll this user anew with `pam-totp enroll`",
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
    format!(
        "{} ({}, {} digits, {} s period, {} recovery codes{}{})",
        if replaced {
            "replaced the enrollment"
        } else {
            "enrolled"
        },
        enrollment.algorithm().as_str(),
        enrollment.digits(),
        enrollment.period(),
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
