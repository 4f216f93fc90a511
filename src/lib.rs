//! pam-totp: TOTP (RFC 6238) and single-use recovery codes for Linux logins.
//!
//! One library, two thin front ends: the PAM module entry points (`pam_module`) and the
//! `pam-totp` CLI (`src/main.rs`). The modules form layers, each importing only from
//! those above it in this list (ARCHITECTURE.md has the picture):
//!
//! - [`error`], [`secret`], `sys` (the only FFI, the only `unsafe`), [`clock`] (the only
//!   reader of the system clock), [`log`];
//! - [`otp`] (TOTP maths) and [`recovery`] (recovery codes): pure;
//! - [`input`]: what a person typed;
//! - [`state`]: the model and its on-disk formats;
//! - [`config`]: options and the config file; [`policy`]: judging an answer, throttling;
//! - [`privileges`] and `safe_fs`: acting as the user, opening files without links;
//! - [`store`]: the `Store` trait and the filesystem store;
//! - [`login`]: the login flow; [`admin`]: the operations behind the CLI;
//! - `pam_module`: the PAM front end.

#![deny(unsafe_code)]

pub mod admin;
pub mod clock;
pub mod config;
pub mod error;
pub mod helper;
pub mod import;
pub mod input;
pub mod log;
pub mod login;
pub mod otp;
mod pam_module;
pub mod policy;
pub mod privileges;
pub mod recovery;
mod safe_fs;
pub mod secret;
pub mod state;
pub mod store;
#[allow(unsafe_code)] // the FFI the crates we use do not cover; every block has a SAFETY line
mod sys;
#[cfg(test)]
mod test_counter;

pub use error::Error;
/// The terminal's width, for the CLI (it may not use `unsafe` itself).
pub use sys::terminal_columns;
