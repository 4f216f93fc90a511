//! One-time-password maths: parameters and secrets, no files and no policy. TOTP (RFC 6238)
//! is in [`totp`]; HOTP (RFC 4226) beside it in [`hotp`].

pub mod hotp;
pub mod totp;

use crate::error::{Error, Result};
use crate::secret::{SecretString, random_bytes};
use totp_rs::Secret;

pub use hotp::{HotpMatch, find_hotp_counter, hotp_code};
pub use totp::{TotpMatch, code_at, find_totp_step, time_step};

pub const MIN_SECRET_BYTES: usize = 10;
pub const MAX_SECRET_BYTES: usize = 64;
pub const PERIODS: std::ops::RangeInclusive<u64> = 10..=300;
pub const DIGITS: std::ops::RangeInclusive<u8> = 6..=8;
/// The most time steps either side of now a code may come from.
pub const MAX_WINDOW: u32 = 10;

// Test builds count the one-time-password HMACs each thread computes, so that what a
// check (or the login's decoy) costs is asserted by count.
#[cfg(test)]
crate::test_counter::per_thread_counter!(hmac_count);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    #[default]
    SHA1,
    SHA256,
    SHA512,
}

impl HashAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::SHA1 => "SHA1",
            HashAlgorithm::SHA256 => "SHA256",
            HashAlgorithm::SHA512 => "SHA512",
        }
    }
}

/// Which codes an enrollment takes: time-based, or counter-based (a hardware token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Totp,
    Hotp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Hotp => "hotp",
        }
    }
}

/// What a code generator needs besides the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpParams {
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    /// Seconds per time step.
    pub period: u64,
}

/// Normalizes a base32 secret typed or pasted by a person: any case, spaces, dashes and
/// padding allowed. `None` if it is not base32.
pub(crate) fn normalize_secret(input: &str) -> Option<SecretString> {
    let normalized: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = SecretString::new(normalized);
    decode_secret(&secret)?;
    Some(secret)
}

pub fn decode_secret(base32: &SecretString) -> Option<Secret> {
    if base32.is_empty() {
        return None;
    }
    Secret::try_from_base32(base32.expose()).ok()
}

/// A new 160-bit TOTP secret from the OS generator, in base32.
pub fn new_secret() -> Result<SecretString> {
    let bytes = random_bytes::<20>().map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(SecretString::new(Secret::new_stack(*bytes).to_base32()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_normalized() {
        let secret = normalize_secret("jbsw y3dp-ehpk 3pxp").unwrap();
        assert_eq!(secret.expose(), "JBSWY3DPEHPK3PXP");
        assert!(normalize_secret("not base32!").is_none());
        assert!(normalize_secret("").is_none());
    }
}
