//! `pam-totp`: the command users and admins run to set up and manage TOTP for logins.
//!
//! A thin front end: `cli` parses arguments and talks to the terminal; every decision is
//! made by the library (`pam_totp::admin`), the same code the PAM module runs.

#![deny(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's convention); --help and --version exit 0.
    let args = cli::Args::parse_checked();
    // A bug must never show a backtrace: one line, exit 1. Guards (such as the one that
    // restores the terminal) still run while the panic unwinds.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("pam-totp: internal error ({what}); this is a bug, please report it");
    }));
    match std::panic::catch_unwind(|| cli::run(args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(cli::CliError::AlreadyReported)) => ExitCode::from(cli::EXIT_FAILED),
        Ok(Err(error)) => {
            eprintln!("pam-totp: {error}");
            ExitCode::from(cli::EXIT_FAILED)
        }
        Err(_) => ExitCode::from(cli::EXIT_FAILED),
    }
}
