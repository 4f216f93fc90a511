//! The per-user state file: format, parsing and validation.
//!
//! ```toml
//! version = 1
//! secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"   # base32, RFC 4648
//! algorithm = "SHA1"                            # SHA1 | SHA256 | SHA512
//! digits = 6                                    # 6..=8
//! period = 30                                   # seconds per time step
//! last_step = 58000000                          # last accepted time step (replay guard)
//!
//! [throttle]
//! failures = 0          # consecutive failed codes
//! locked_until = 0      # Unix time before which attempts are refused unchecked
//!
//! [last_success]
//! time = 1740000000
//! method = "totp"       # totp | recovery
//!
//! [[recovery_codes]]
//! id = "K7QF"           # first group of the code, not secret: picks the one hash to check
//! hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! ```
//!
//! Everything read is validated before use: a hostile or damaged file is refused as a
//! whole, and no error message ever quotes the file's contents.

use crate::codes;
use crate::error::{Error, Result};
use crate::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

pub const VERSION: u32 = 1;
pub const MIN_SECRET_BYTES: usize = 10;
pub const MAX_SECRET_BYTES: usize = 64;
pub const MAX_RECOVERY_CODES: usize = 100;
pub const PERIODS: std::ops::RangeInclusive<u64> = 10..=300;
pub const DIGITS: std::ops::RangeInclusive<u8> = 6..=8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(HashAlgorithm::SHA1),
            "SHA256" => Some(HashAlgorithm::SHA256),
            "SHA512" => Some(HashAlgorithm::SHA512),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Totp,
    Recovery,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Recovery => "recovery",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub locked_until: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastSuccess {
    pub time: u64,
    pub method: Method,
}

/// A recovery code as stored: only its argon2id hash, and the non-secret id (the code's
/// first group) that says which hash to check, so a check costs one argon2 verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodeHash {
    pub id: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// The TOTP secret in base32.
    pub secret: SecretString,
    #[serde(default)]
    pub algorithm: HashAlgorithm,
    #[serde(default = "default_digits")]
    pub digits: u8,
    #[serde(default = "default_period")]
    pub period: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    #[serde(default)]
    pub throttle: Throttle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<LastSuccess>,
    #[serde(default)]
    pub recovery_codes: Vec<RecoveryCodeHash>,
}

fn default_digits() -> u8 {
    6
}

fn default_period() -> u64 {
    30
}

impl State {
    /// A fresh enrollment.
    pub fn new(
        secret: SecretString,
        algorithm: HashAlgorithm,
        digits: u8,
        period: u64,
        recovery_codes: Vec<RecoveryCodeHash>,
    ) -> Result<State> {
        let state = State {
            version: VERSION,
            secret,
            algorithm,
            digits,
            period,
            last_step: None,
            throttle: Throttle::default(),
            last_success: None,
            recovery_codes,
        };
        state.validate().map_err(Error::BadOption)?;
        Ok(state)
    }

    /// Parses and validates a state file's bytes; `path` is only for messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<State> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::corrupt(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        let state: State = toml::from_str(text).map_err(|e| {
            Error::corrupt(
                path,
                format!(
                    "not a valid state file{}",
                    crate::options::line_of(text, e.span())
                ),
            )
        })?;
        state
            .validate()
            .map_err(|problem| Error::corrupt(path, problem))?;
        Ok(state)
    }

    /// The file's text. Zeroizing: it holds the secret.
    pub fn to_toml(&self) -> Result<Zeroizing<String>> {
        toml::to_string(self)
            .map(Zeroizing::new)
            .map_err(|e| Error::Internal(format!("serializing state: {e}")))
    }

    /// Checks every value a hostile or damaged file could get wrong; the message names the
    /// field, never its value.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "version {} is not supported (this build reads version {VERSION})",
                self.version
            ));
        }
        let secret_len = codes::decode_secret(&self.secret)
            .ok_or_else(|| "secret is not valid base32".to_string())?
            .as_bytes()
            .len();
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret_len) {
            return Err(format!(
                "secret must be {}..{} bits long",
                MIN_SECRET_BYTES * 8,
                MAX_SECRET_BYTES * 8
            ));
        }
        if !DIGITS.contains(&self.digits) {
            return Err("digits must be 6, 7 or 8".into());
        }
        if !PERIODS.contains(&self.period) {
            return Err(format!(
                "period must be {} to {} seconds",
                PERIODS.start(),
                PERIODS.end()
            ));
        }
        if self.recovery_codes.len() > MAX_RECOVERY_CODES {
            return Err(format!("more than {MAX_RECOVERY_CODES} recovery codes"));
        }
        for (i, code) in self.recovery_codes.iter().enumerate() {
            if !codes::is_recovery_id(&code.id) {
                return Err(format!("recovery code {} has a malformed id", i + 1));
            }
            if self.recovery_codes[..i].iter().any(|c| c.id == code.id) {
                return Err(format!("recovery code {} repeats an id", i + 1));
            }
            codes::check_recovery_hash(&code.hash)
                .map_err(|problem| format!("recovery code {}: {problem}", i + 1))?;
        }
        Ok(())
    }

    /// Seconds left before attempts are checked again, if throttled now.
    pub fn throttled_for(&self, now: u64) -> Option<u64> {
        (self.throttle.locked_until > now).then(|| self.throttle.locked_until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version = 1
secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
algorithm = "SHA256"
digits = 8
period = 60
last_step = 123

[throttle]
failures = 2
locked_until = 0
"#;

    fn parse(text: &str) -> Result<State> {
        State::parse(
            text.as_bytes(),
            Path::new("/home/u/.config/pam-totp/state.toml"),
        )
    }

    #[test]
    fn parses_a_good_file() {
        let state = parse(GOOD).unwrap();
        assert_eq!(state.algorithm, HashAlgorithm::SHA256);
        assert_eq!(state.digits, 8);
        assert_eq!(state.period, 60);
        assert_eq!(state.last_step, Some(123));
        assert_eq!(state.throttle.failures, 2);
    }

    #[test]
    fn round_trips_through_toml() {
        let mut state = parse(GOOD).unwrap();
        let (_, hashes) = codes::new_recovery_codes(2).unwrap();
        state.recovery_codes = hashes;
        state.last_success = Some(LastSuccess {
            time: 5,
            method: Method::Recovery,
        });
        let text = state.to_toml().unwrap();
        assert_eq!(parse(&text).unwrap(), state);
    }

    #[test]
    fn errors_never_quote_the_file() {
        for text in [
            "version = 1\nsecret = \"TOPSECRETVALUE\"\ndigits = \"TOPSECRETVALUE\"\n",
            "version = 1\nsecret = \"TOPSECRETVALUE\n",
            "version = 1\nsecret = \"TOPSECRETVALUE\"\n",
            "TOPSECRETVALUE",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(!err.contains("TOPSECRET"), "{err}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        let cases = [
            ("version = 2", "version"),
            ("digits = 9", "digits"),
            ("digits = 5", "digits"),
            ("period = 0", "period"),
            ("period = -5", "valid"),
            ("bogus = 1", "valid"),
        ];
        for (line, expected) in cases {
            let text = GOOD
                .replace("version = 1\n", "")
                .replace("digits = 8\n", "")
                .replace("period = 60\n", "");
            let text = format!(
                "{line}\n{}",
                text.replace("[throttle]", "")
                    .replace("failures = 2\nlocked_until = 0\n", "")
            );
            let text = if line.starts_with("version") {
                text
            } else {
                format!("version = 1\n{text}")
            };
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn rejects_short_secret() {
        let err = parse("version = 1\nsecret = \"GEZDGNBV\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bits"), "{err}");
    }

    #[test]
    fn rejects_non_utf8_and_empty() {
        assert!(State::parse(b"\xff\xfe", Path::new("x")).is_err());
        assert!(State::parse(b"", Path::new("x")).is_err());
    }
}
