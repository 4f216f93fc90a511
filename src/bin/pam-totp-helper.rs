//! `pam-totp-helper`: installed setuid root, it lets an ordinary user manage their own
//! enrollment in root-owned storage without ever reading it. Everything is in the library
//! (`pam_totp::helper`); see its `process` module for the order of the checks.

#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    pam_totp::helper::process::main()
}
