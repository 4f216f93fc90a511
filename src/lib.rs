//! pam-totp: TOTP (RFC 6238) and single-use recovery codes for Linux logins.
//!
//! One library, two thin front ends: the PAM module entry points (`pam_module`) and
//! the `pam-totp` CLI (`src/main.rs`). Everything that decides lives here:
//!
//! - [`options`]: module arguments and the system-wide config file;
//! - [`state`]: the per-user state file format and its validation;
//! - [`codes`]: checking TOTP and recovery codes, making new ones;
//! - [`store`]: where state lives and how it is read, locked and replaced atomically;
//! - [`privileges`]: acting as the user when touching the user's files;
//! - [`auth`]: the login decision, written against a [`auth::Conversation`] trait;
//! - [`log`]: one syslog line per decision, never a secret;
//! - [`manage`]: the operations behind the CLI (enroll, status, recovery codes, disable,
//!   verify), all through [`store`] and [`auth::judge`];
//! - [`secret`]: secrets that are wiped from memory when dropped;
//! - [`sys`]: the raw FFI the crates we use do not cover (every `unsafe` is there).

pub mod auth;
pub mod codes;
pub mod error;
pub mod log;
pub mod manage;
pub mod options;
pub mod pam_module;
pub mod privileges;
pub mod secret;
pub mod state;
pub mod store;
pub mod sys;

// State v2 (issue 9), self-contained until the store refactor wires it in; the files sit
// where the target layout puts them.
#[path = "store/counters_file.rs"]
pub mod counters_file;
#[path = "state/counters_v2.rs"]
pub mod counters_v2;
#[path = "state/enrollment_v2.rs"]
pub mod enrollment_v2;
#[path = "store/migrate_v1.rs"]
pub mod migrate_v1;

pub use error::Error;
