//! Logging: one line per decision to syslog's authpriv facility, never a secret or a code.
//!
//! The module logs through libpam's `pam_syslog` (see `pam_module`), which adds the
//! `pam_totp(service:auth)` prefix; the CLI logs here, through libc's syslog with a `%s`
//! format. Where no syslog daemon listens (containers), the lines are dropped and nothing
//! blocks or fails.

use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Error,
    Notice,
    Info,
    Debug,
}

impl Priority {
    pub fn as_syslog(self) -> libc::c_int {
        match self {
            Priority::Error => libc::LOG_ERR,
            Priority::Notice => libc::LOG_NOTICE,
            Priority::Info => libc::LOG_INFO,
            Priority::Debug => libc::LOG_DEBUG,
        }
    }
}

/// Logs one line as the `pam-totp` CLI, facility authpriv.
pub fn cli_syslog(priority: Priority, message: &str) {
    sys::syslog(
        c"pam-totp",
        libc::LOG_AUTHPRIV | priority.as_syslog(),
        message,
    );
}

/// Logs one line as the setuid helper (`pam-totp-helper`), facility authpriv.
pub fn helper_syslog(priority: Priority, message: &str) {
    sys::syslog(
        c"pam-totp-helper",
        libc::LOG_AUTHPRIV | priority.as_syslog(),
        message,
    );
}
