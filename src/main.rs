//! `pam-totp`: the command users and admins run to set up and manage TOTP for logins.
//!
//! A thin front end: `cli` parses arguments and talks to the terminal; every decision is
//! made by the library (`pam_totp::admin`), the same code the PAM module runs.

#![deny(unsafe_code)]

mod cli;

use clap::Parser;
use std::io::{self, Write};
use std::process::ExitCode;

/// clap's exit status for a usage error.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // A bug must never show a backtrace: one line, exit 1. Guards (such as the one that
    // restores the terminal) still run while the panic unwinds. Set before anything can
    // panic; it writes without `eprintln!`, which would panic again (and abort) when
    // standard error cannot be written.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        say(&format!(
            "pam-totp: internal error ({what}); this is a bug, please report it\n"
        ));
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => ExitCode::from(cli::EXIT_FAILED),
    }
}

fn run() -> ExitCode {
    // Usage errors exit 2 (clap's convention); --help and --version exit 0, or 1 when they
    // cannot be written (clap's own `exit` would report success for a help nobody saw).
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let printed = error.print().is_ok();
            return match error.exit_code() {
                0 if printed => ExitCode::SUCCESS,
                0 => ExitCode::from(cli::EXIT_FAILED),
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    if let Err(why) = args.check() {
        say(&format!("pam-totp: {why}\n"));
        return ExitCode::from(EXIT_USAGE);
    }
    let json = args.json_errors();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The command's own output said why (doctor's summary line): said once.
        Err(cli::CliError::AlreadyReported) => ExitCode::from(cli::EXIT_FAILED),
        Err(error) => {
            if json {
                cli::json_error(&error);
            }
            say(&format!("pam-totp: {error}\n"));
            ExitCode::from(cli::EXIT_FAILED)
        }
    }
}

/// Writes to standard error, ignoring a failure: when even the error cannot be shown,
/// the exit status is all that is left to tell it.
fn say(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
