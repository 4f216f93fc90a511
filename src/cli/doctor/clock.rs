//! Is the clock NTP-synchronised? A TOTP code is only as right as the server's clock.

use super::findings::{Finding, Severity};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synced {
    Yes,
    No,
    Unknown,
}

/// systemd's answer when systemd runs; else the kernel's (adjtimex: STA_UNSYNC).
fn synced() -> (Synced, &'static str) {
    let output = Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(output) = output
        && output.status.success()
    {
        match String::from_utf8_lossy(&output.stdout).trim() {
            "yes" => return (Synced::Yes, "timedatectl"),
            "no" => return (Synced::No, "timedatectl"),
            _ => {}
        }
    }
    match pam_totp::clock::synchronized() {
        Ok(true) => (Synced::Yes, "adjtimex"),
        Ok(false) => (Synced::No, "adjtimex"),
        Err(_) => (Synced::Unknown, "adjtimex"),
    }
}

pub(crate) fn check(out: &mut Vec<Finding>) {
    let (synced, source) = synced();
    let (severity, what) = match synced {
        Synced::Yes => return,
        Synced::No => (
            Severity::Warning,
            format!("the system clock is not NTP-synchronised ({source})"),
        ),
        Synced::Unknown => (
            Severity::Note,
            "whether the clock is NTP-synchronised could not be found out".to_owned(),
        ),
    };
    out.push(Finding::new(
        severity,
        "clock.unsynchronised",
        None,
        what,
        "a clock that drifts more than the window makes right codes fail, for everyone at once",
        "enable time synchronisation: `timedatectl set-ntp true` (systemd-timesyncd, chrony or ntpsec)",
    ));
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernel_answers_a_read_only_adjtimex() {
        // Whatever the answer, reading it must work without privileges.
        assert!(pam_totp::clock::synchronized().is_ok());
    }
}
