//! The setuid helper `pam-totp-helper` (src/bin/pam-totp-helper.rs): self-service for users
//! whose state lives in root-owned storage. [`protocol`] is the bounded line protocol both
//! sides speak; [`server`] is the privileged side (one session per run, for the real uid's
//! user only); the unprivileged side is [`crate::store::helper::HelperStore`].

pub mod process;
pub mod server;

// The protocol sits in the store layer, beside its client (`store::helper`), so that the
// store never imports from this module, which is above it.
pub use crate::store::helper::HELPER_PATH;
pub use crate::store::helper_protocol as protocol;
