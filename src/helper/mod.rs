//! The setuid helper `pam-totp-helper` (src/bin/pam-totp-helper.rs): self-service for users
//! whose state lives in root-owned storage. [`protocol`] is the bounded line protocol both
//! sides speak; [`server`] is the privileged side (one session per run, for the real uid's
//! user only); the unprivileged side is [`crate::store::helper::HelperStore`].

pub mod process;
pub mod protocol;
pub mod server;

/// Where the packages install the helper (mode 4755, owned by root). The CLI runs it from
/// here (`PAM_TOTP_HELPER` overrides it for tests: the CLI is unprivileged, so that changes
/// nothing the caller could not do anyway).
pub const HELPER_PATH: &str = "/usr/lib/pam-totp/pam-totp-helper";
