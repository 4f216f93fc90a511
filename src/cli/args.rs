//! The command line, as clap reads it. Values are checked here so that a bad one is a
//! usage error (exit 2) before anything is read or asked.

use super::messages::Says;
use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use pam_totp::admin::{self, DEFAULT_RECOVERY_CODES};
use pam_totp::otp::HashAlgorithm;
use pam_totp::recovery::MAX_RECOVERY_CODES;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pam-totp",
    version,
    about = "Set up and manage TOTP two-factor authentication for logins (pam_totp.so)",
    after_help = "Exit status: 0 done, 1 refused or failed, 2 usage error. See pam-totp(1)."
)]
pub struct Args {
    /// Act for this user; only root may name another user (then no code is asked)
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// Config file: the same file and keys pam_totp.so reads [default: /etc/security/pam_totp.conf]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up TOTP: show a QR code, confirm a code from the app, make recovery codes
    Enroll(EnrollArgs),
    /// Show whether TOTP is set up, codes left, last success and throttling
    Status {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Replace all recovery codes (asks for a current code from the app)
    RecoveryCodes {
        /// How many new codes to make
        #[arg(long, value_name = "N", default_value_t = DEFAULT_RECOVERY_CODES, value_parser = recovery_count())]
        count: usize,
        /// Also write the new codes to this new file (mode 0600; must not exist)
        #[arg(long, value_name = "PATH")]
        codes_file: Option<PathBuf>,
        /// Print one JSON object (user, recovery_codes) instead of text
        #[arg(long)]
        json: bool,
    },
    /// Turn TOTP off: remove the enrollment (asks for a current code or a recovery code)
    Disable {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check a code without using it up: would a login accept it now?
    Verify {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// HOTP: find a token pressed many times again, from two codes in a row (the counter
    /// is searched up to 1000 presses ahead)
    Resync {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Clear throttling (wrong codes in a row, and the wait): root only, with --user NAME
    Unlock {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Import a google-authenticator file (~/.google_authenticator): the same secret, its
    /// scratch codes as recovery codes
    Import(ImportArgs),
    /// For a rollout (root): one line per user, enrolled or not, recovery codes left, last
    /// success, throttling, a google-authenticator file; never a secret
    Report {
        /// Only these users [default: every user in the passwd database]
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Print one JSON object per user instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check the PAM stacks, sshd, config file, storage and clock for setup mistakes (read-only)
    Doctor(super::doctor::DoctorArgs),
    /// Move a home enrollment into protected storage (root; with --user NAME or --all-users)
    Protect {
        /// Every user with an enrollment in their home
        #[arg(long)]
        all_users: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Issuer shown in the app [default: this host's name]
    #[arg(long, value_name = "TEXT", value_parser = name("--issuer"))]
    pub issuer: Option<String>,

    /// Account name shown in the app [default: USER@HOST]
    #[arg(long, value_name = "TEXT", value_parser = name("--label"))]
    pub label: Option<String>,

    /// Hash algorithm (many apps only support SHA1)
    #[arg(long, value_enum, ignore_case = true, default_value_t = Algorithm::Sha1)]
    pub algorithm: Algorithm,

    /// Digits per code (many apps only support 6)
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: u8,

    /// Seconds per code (many apps only support 30)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..=300))]
    pub period: u64,

    /// How many recovery codes to make
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RECOVERY_CODES, value_parser = recovery_count())]
    pub recovery_codes: usize,

    /// Also write the recovery codes to this new file (mode 0600; must not exist)
    #[arg(long, value_name = "PATH")]
    pub codes_file: Option<PathBuf>,

    /// How to draw the QR code [default: ansi, or utf8 with --invert]
    #[arg(long, value_enum)]
    pub qr: Option<QrStyle>,

    /// Draw the utf8 QR code for a terminal with a light background (implies --qr utf8)
    #[arg(long)]
    pub invert: bool,

    /// Import a base32 secret from standard input instead of making one: only "-" is
    /// accepted, since a secret on the command line is visible to every local user
    #[arg(long, value_name = "-", conflicts_with = "secret_file")]
    pub secret: Option<String>,

    /// Import a base32 secret from this file (yours, mode 0600, not a symlink)
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,

    /// Do not ask for a code from the app before saving (provisioning)
    #[arg(long)]
    pub no_confirm: bool,

    /// Print one JSON object (user, secret, otpauth_uri, recovery_codes) and nothing else
    #[arg(long, requires = "no_confirm")]
    pub json: bool,

    /// Counter-based codes (HOTP, RFC 4226) for a hardware token or an app in counter mode,
    /// instead of time-based ones (--period does not apply)
    #[arg(long, conflicts_with = "period")]
    pub hotp: bool,

    /// HOTP: the token's next counter (for a token that has been used) [default: 0]
    #[arg(long, value_name = "N", requires = "hotp", value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub counter: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The google-authenticator file [default: ~/.google_authenticator of the user]
    #[arg(value_name = "FILE", conflicts_with = "all_users")]
    pub file: Option<PathBuf>,

    /// Remove the google-authenticator file once imported
    #[arg(long)]
    pub remove: bool,

    /// Replace an existing pam-totp enrollment without asking for its code (root only)
    #[arg(long)]
    pub force: bool,

    /// Import every user of the passwd database who has a google-authenticator file (root
    /// only); one line each, going on past failures
    #[arg(long)]
    pub all_users: bool,

    /// Print one JSON object per user instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    #[value(name = "SHA1")]
    Sha1,
    #[value(name = "SHA256")]
    Sha256,
    #[value(name = "SHA512")]
    Sha512,
}

impl From<Algorithm> for HashAlgorithm {
    fn from(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha1 => HashAlgorithm::SHA1,
            Algorithm::Sha256 => HashAlgorithm::SHA256,
            Algorithm::Sha512 => HashAlgorithm::SHA512,
        }
    }
}

impl EnrollArgs {
    /// The QR style asked for: explicit colours by default, so the code scans whatever the
    /// terminal's background; `--invert` alone keeps its meaning (utf8, dark-on-light).
    pub fn qr_style(&self) -> QrStyle {
        match self.qr {
            Some(style) => style,
            None if self.invert => QrStyle::Utf8,
            None => QrStyle::Ansi,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrStyle {
    /// Unicode half blocks in the terminal's own colours (light-on-dark; --invert for dark-on-light)
    Utf8,
    /// Unicode half blocks with explicit black and white (ANSI colours): scans on any background
    Ansi,
    /// No QR code: type the secret by hand
    None,
}

impl Args {
    /// Whether a failure is one JSON object on standard output too (`--json`; doctor's
    /// report is its JSON object, failure or not).
    pub fn json_errors(&self) -> bool {
        match &self.command {
            Command::Enroll(enroll) => enroll.json,
            Command::Status { json }
            | Command::RecoveryCodes { json, .. }
            | Command::Disable { json }
            | Command::Verify { json }
            | Command::Resync { json }
            | Command::Unlock { json } => *json,
            // Per-user lines carry their own errors; the last line sums up.
            Command::Import(import) => import.json && !import.all_users,
            Command::Doctor(_) | Command::Report { .. } | Command::Protect { .. } => false,
        }
    }
}

impl Args {
    /// What clap cannot check without echoing the value: `--secret` takes no literal, since
    /// `/proc/PID/cmdline` is readable by every local user (and clap's own error would
    /// repeat the secret). A usage error (exit 2).
    pub fn check(&self) -> Result<(), String> {
        if let Command::Enroll(enroll) = &self.command
            && enroll.secret.as_deref().is_some_and(|secret| secret != "-")
        {
            return Err(
                "--secret takes only \"-\" (standard input): a secret on the command line is visible to every local user (ps, /proc/PID/cmdline); nothing was changed. Use `printf %s \"$SECRET\" | pam-totp enroll --secret -`, or `pam-totp enroll --secret-file PATH` with a file of yours, mode 0600".into(),
            );
        }
        if let Command::Import(import) = &self.command
            && import.all_users
            && self.user.is_some()
        {
            return Err(
                "import --all-users walks every user; it cannot be combined with --user".into(),
            );
        }
        Ok(())
    }
}

fn recovery_count() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(0..=MAX_RECOVERY_CODES as u64)
}

fn name(what: &'static str) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |value: &str| {
        admin::check_name(what, value)
            .map(|()| value.to_owned())
            .map_err(|e| Says(&e).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }
}
