//! Moving users over from other TOTP modules without a new QR code on every phone.
//!
//! - [`ga_format`]: the `~/.google_authenticator` file format, parsed into a typed value
//!   (pure: bytes in, [`ga_format::GaFile`] or a typed refusal out; no files, no state).

pub mod ga_format;
