//! The setuid process around a [`Session`]: everything `pam-totp-helper` does before it
//! trusts anything, in the order unix_chkpwd and passwd taught us. The binary's `main` is
//! only a call to [`main`].
//!
//! 1. The environment is replaced (fixed PATH, `LC_ALL=C`), before anything reads it.
//! 2. No core dump, no ptrace by the caller (PR_SET_DUMPABLE 0, RLIMIT_CORE 0); the limits
//!    a caller could lower to make a write fail half-way are lifted; umask 077.
//! 3. Descriptors 0-2 that the caller closed are filled with /dev/null, so no file we open
//!    later can become "standard error" and receive a message.
//! 4. argv must be exactly the program's own name; nothing else in it is ever read.
//! 5. It must really be setuid root (euid 0) and run by someone else (ruid ≠ 0: root uses
//!    `pam-totp --user NAME`). It acts only for the user of the real uid.
//! 6. The config is read from its fixed path only; storage must be root-owned.
//! 7. Requests are read one bounded line at a time, a bounded number of them, within a
//!    bounded time (alarm); every action is logged to authpriv with the caller and the
//!    outcome, never a secret or a code.

use super::protocol::{MAX_LINE, Refused, Response};
use super::server::Session;
use crate::admin::Actor;
use crate::config::{DEFAULT_CONFIG, Options};
use crate::log::{Priority, helper_syslog};
use crate::privileges::Account;
use crate::store::fs::FsStore;
use crate::sys;
use nix::unistd::{Gid, Uid};
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

const NAME: &str = "pam-totp-helper";
/// A run that waits longer than this for its input is ended by the kernel (SIGALRM).
const MAX_RUN_SECONDS: u32 = 600;

/// Exit status: refused before or while serving (a bad invocation or request).
const EXIT_REFUSED: u8 = 1;
/// Exit status: the run could not start (not setuid, no config, not protected storage).
const EXIT_SETUP: u8 = 2;

pub fn main() -> ExitCode {
    // Nothing the caller put in the environment reaches the code below or the libraries
    // it loads (glibc already drops LD_* for setuid programs; this drops everything).
    if sys::replace_environment(&[
        (c"PATH", c"/usr/sbin:/usr/bin:/sbin:/bin"),
        (c"LC_ALL", c"C"),
    ])
    .is_err()
        || sys::make_undumpable().is_err()
    {
        return ExitCode::from(EXIT_SETUP);
    }
    if sys::reset_resource_limits().is_err() {
        // Fail closed: with a write that can fail on purpose, a wrong code could go uncounted.
        return refuse(
            EXIT_SETUP,
            "resource limits (file size, CPU time or open files) are too low and cannot be raised",
        );
    }
    sys::set_umask(0o077);
    for fd in 0..=2 {
        if !sys::fd_is_open(fd) && fill_with_null().is_err() {
            return ExitCode::from(EXIT_SETUP);
        }
    }
    if sys::close_descriptors_above_stderr().is_err() {
        return ExitCode::from(EXIT_SETUP);
    }
    if sys::default_signal_action(libc::SIGALRM).is_err()
        || sys::default_signal_action(libc::SIGXFSZ).is_err()
        || sys::unblock_all_signals().is_err()
    {
        return ExitCode::from(EXIT_SETUP);
    }
    sys::alarm(MAX_RUN_SECONDS);
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => {
            helper_syslog(
                Priority::Error,
                "internal error (a bug); nothing more was done",
            );
            ExitCode::from(EXIT_SETUP)
        }
    }
}

/// Opens /dev/null onto the lowest free descriptor (the closed one) and leaves it open.
fn fill_with_null() -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let _ = null.into_raw_fd();
    Ok(())
}

fn refuse(code: u8, why: &str) -> ExitCode {
    helper_syslog(Priority::Notice, &format!("refused to run: {why}"));
    let _ = writeln!(io::stderr(), "{NAME}: {why}");
    ExitCode::from(code)
}

fn run() -> ExitCode {
    let mut args = std::env::args_os();
    let own_name = args
        .next()
        .map(|arg0| std::path::Path::new(&arg0).file_name() == Some(NAME.as_ref()))
        .unwrap_or(false);
    if !own_name || args.next().is_some() {
        return refuse(
            EXIT_REFUSED,
            "takes no arguments; it is run by pam-totp, not by hand",
        );
    }
    let (ruid, euid) = (Uid::current(), Uid::effective());
    if !euid.is_root() {
        return refuse(
            EXIT_SETUP,
            "not installed setuid root (chown root: and chmod 4755 the helper)",
        );
    }
    if ruid.is_root() {
        return refuse(
            EXIT_REFUSED,
            "root does not need the helper: use pam-totp --user NAME",
        );
    }
    // Files are made as root:root, and the caller's groups give no access on our behalf.
    if nix::unistd::setgroups(&[]).is_err() || nix::unistd::setegid(Gid::from_raw(0)).is_err() {
        return refuse(EXIT_SETUP, "cannot drop the caller's groups");
    }
    let account = match Account::by_uid(ruid) {
        Ok(Some(account)) => account,
        Ok(None) => {
            return refuse(
                EXIT_REFUSED,
                &format!("uid {ruid} is not in the passwd database"),
            );
        }
        Err(e) => return refuse(EXIT_SETUP, &e.to_string()),
    };
    let caller = format!("user={} uid={}", account.name, ruid);
    let options = match Options::from_config_file(None) {
        Ok(options) => options,
        Err(e) => return refuse(EXIT_SETUP, &format!("{caller}: {e}")),
    };
    if options.secret.in_home() {
        return refuse(
            EXIT_SETUP,
            &format!(
                "{caller}: {DEFAULT_CONFIG} keeps state in the homes (secret=); the helper serves only root-owned storage"
            ),
        );
    }
    let store = match FsStore::for_account(&options, &account) {
        Ok(store) => {
            // A repair made on the way is said, as the module's log line says it.
            let who = caller.clone();
            store.report_repairs(move |note| {
                helper_syslog(Priority::Notice, &format!("{who}: repaired {note}"))
            })
        }
        Err(e) => return refuse(EXIT_SETUP, &format!("{caller}: {e}")),
    };
    let actor = Actor {
        caller: account.clone(),
        target: account,
    };
    let now = || crate::clock::now();
    let mut session = Session::new(&actor, &store, &options, &now);
    serve(&mut session, &caller)
}

/// Reads one line of at most [`MAX_LINE`] bytes; `Ok(None)` at the end of input.
fn read_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, ()> {
    let mut line = Vec::new();
    loop {
        let buffer = input.fill_buf().map_err(|_| ())?;
        if buffer.is_empty() {
            // End of input: a partial last line is not a request.
            return if line.is_empty() { Ok(None) } else { Err(()) };
        }
        let (chunk, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (&buffer[..at], at + 1),
            None => (buffer, buffer.len()),
        };
        if line.len() + chunk.len() >= MAX_LINE {
            return Err(());
        }
        line.extend_from_slice(chunk);
        let ended = done > chunk.len();
        input.consume(done);
        if ended {
            return Ok(Some(line));
        }
    }
}

fn serve(session: &mut Session<'_>, caller: &str) -> ExitCode {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut output = io::stdout().lock();
    loop {
        let line = match read_line(&mut input) {
            Ok(Some(line)) => zeroize::Zeroizing::new(line),
            Ok(None) => {
                if let Some(what) = session.abandoned() {
                    helper_syslog(Priority::Notice, &format!("{caller}: {what}"));
                    return ExitCode::from(EXIT_REFUSED);
                }
                return ExitCode::SUCCESS;
            }
            Err(()) => {
                helper_syslog(
                    Priority::Notice,
                    &format!(
                        "{caller}: bad request refused (a line too long, unended or unreadable)"
                    ),
                );
                let _ =
                    output.write_all(Response::Refused(Refused::BadRequest).encode().as_bytes());
                return ExitCode::from(EXIT_REFUSED);
            }
        };
        let reply = session.handle(&line);
        if let Some((priority, what)) = &reply.log {
            helper_syslog(*priority, &format!("{caller}: {what}"));
        }
        let sent = output
            .write_all(reply.response.encode().as_bytes())
            .and_then(|()| output.flush());
        if sent.is_err() {
            return ExitCode::from(EXIT_REFUSED);
        }
        if reply.end {
            return ExitCode::from(EXIT_REFUSED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let mut ok = io::Cursor::new(b"status\nprepare\n".to_vec());
        assert_eq!(read_line(&mut ok).unwrap().unwrap(), b"status");
        assert_eq!(read_line(&mut ok).unwrap().unwrap(), b"prepare");
        assert_eq!(read_line(&mut ok).unwrap(), None);
        let mut unended = io::Cursor::new(b"status".to_vec());
        assert!(read_line(&mut unended).is_err());
        let mut huge = io::BufReader::with_capacity(64, io::Cursor::new(vec![b'a'; 1 << 20]));
        assert!(read_line(&mut huge).is_err());
        let mut just_under = io::Cursor::new([vec![b'a'; MAX_LINE - 1], vec![b'\n']].concat());
        assert!(read_line(&mut just_under).unwrap().is_some());
    }
}
