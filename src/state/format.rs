//! Reading and writing a state file: the version dispatch. Every file is validated as a
//! whole before use, and no error message ever quotes the file's contents.
//!
//! Version 1 is the only one today. A version 2 gets its own `format_v2.rs` and an arm
//! here, chosen by the file's `version` key; writing stays in the newest version.

use super::format_v1::{self, FileV1};
use super::model::State;
use crate::error::{Error, Result, line_of};
use std::path::Path;
use zeroize::Zeroizing;

/// The version this build writes.
pub const VERSION: u32 = format_v1::VERSION;

impl State {
    /// Parses and validates a state file's bytes; `path` is only for messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<State> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::corrupt(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        // Version 1's types read the `version` key with the rest, so that a file that is
        // not even a valid version 1 gets the same message whatever version it claims.
        let file: FileV1 = toml::from_str(text).map_err(|e| {
            Error::corrupt(
                path,
                format!("not a valid state file{}", line_of(text, e.span())),
            )
        })?;
        let state = match file.version {
            format_v1::VERSION => file.into_state(),
            other => {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "version {other} is not supported (this build reads version {VERSION})"
                    ),
                ));
            }
        };
        state
            .validate()
            .map_err(|problem| Error::corrupt(path, problem))?;
        Ok(state)
    }

    /// The file's text. Zeroizing: it holds the secret.
    pub fn to_toml(&self) -> Result<Zeroizing<String>> {
        // Version 1 knows only TOTP; an HOTP enrollment exists only in version 2.
        if self.kind != crate::otp::Kind::Totp {
            return Err(Error::Internal(
                "an HOTP enrollment cannot be written as a version 1 state".into(),
            ));
        }
        toml::to_string(&FileV1::from_state(self))
            .map(Zeroizing::new)
            .map_err(|e| Error::Internal(format!("serializing state: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;
    use crate::recovery;
    use crate::state::{LastSuccess, Method};

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
        let (_, hashes) = recovery::new_recovery_codes(2).unwrap();
        state.recovery_codes = hashes;
        state.last_success = Some(LastSuccess {
            time: 5,
            method: Method::Recovery,
        });
        let text = state.to_toml().unwrap();
        assert_eq!(parse(&text).unwrap(), state);
    }

    #[test]
    fn writes_version_1_byte_for_byte() {
        let text = parse(GOOD).unwrap().to_toml().unwrap();
        assert_eq!(
            text.as_str(),
            "version = 1\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA256\"\n\
             digits = 8\nperiod = 60\nlast_step = 123\nrecovery_codes = []\n\n\
             [throttle]\nfailures = 2\nlocked_until = 0\n"
        );
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
