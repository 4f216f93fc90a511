//! State v2, the part that changes only on enroll, new recovery codes and disable: the
//! enrollment file. TOML like v1, without the counters (they live in the counters file,
//! `state/counters_v2.rs`), plus the enrollment id that ties the two files together.
//!
//! ```toml
//! version = 2
//! enrollment_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"   # 16 random bytes, hex
//! secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
//! algorithm = "SHA1"
//! digits = 6
//! period = 30
//!
//! [[recovery_codes]]
//! id = "K7QF"
//! hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! ```
//!
//! An HOTP enrollment (a hardware token) says `kind = "hotp"` after the id; its counter is
//! in the counters file, which every login rewrites anyway. Without `kind` it is TOTP (so
//! TOTP files are as they were), and a build that does not know `kind` refuses the file.
//!
//! A recovery code used since the file was written stays in `recovery_codes`: its id is in
//! the counters' burned list, so using it costs one write of the counters, not a rewrite of
//! this file. Making new codes gives a new enrollment id, which starts a new burned list.

mod as_written;

use super::counters_v2::EnrollmentId;
use super::flat_toml;
use super::format_v1::{AlgorithmV1, RecoveryCodeV1};
use crate::error::{Error, Result, line_of};
use crate::otp::{HashAlgorithm, Kind};
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::model::{State, Throttle};
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub id: EnrollmentId,
    /// The TOTP secret in base32.
    pub secret: SecretString,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub period: u64,
    pub recovery_codes: Vec<RecoveryCodeHash>,
    pub kind: Kind,
}

/// `kind` as the file writes it.
#[derive(Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KindV2 {
    #[default]
    Totp,
    Hotp,
}

impl KindV2 {
    fn is_totp(&self) -> bool {
        *self == KindV2::Totp
    }
}

impl From<KindV2> for Kind {
    fn from(kind: KindV2) -> Kind {
        match kind {
            KindV2::Totp => Kind::Totp,
            KindV2::Hotp => Kind::Hotp,
        }
    }
}

impl From<Kind> for KindV2 {
    fn from(kind: Kind) -> KindV2 {
        match kind {
            Kind::Totp => KindV2::Totp,
            Kind::Hotp => KindV2::Hotp,
        }
    }
}

/// The file as TOML sees it; every field required, nothing unknown.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    enrollment_id: String,
    #[serde(default, skip_serializing_if = "KindV2::is_totp")]
    kind: KindV2,
    secret: SecretString,
    algorithm: AlgorithmV1,
    digits: u8,
    period: u64,
    #[serde(default)]
    recovery_codes: Vec<RecoveryCodeV1>,
}

/// Only the version, to tell a v1 file from a v2 one before parsing either.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// The `version` of a state or enrollment file; `None` if it is not TOML with an integer
/// `version` (the version's own parser then says what is wrong).
pub fn file_version(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    flat_toml::from_str::<VersionOnly>(text)
        .or_else(|| toml::from_str::<VersionOnly>(text).ok())
        .map(|v| v.version)
}

/// For the `enrollment_parse` fuzz target (feature `testing`): what the fast reader and the
/// `toml` crate each read from `text`, as the text this build would write for it; `None`
/// where one refuses it. Wherever the fast reader reads a file, the two must be equal.
#[cfg(feature = "testing")]
pub fn both_readings(text: &str) -> (Option<String>, Option<String>) {
    let written = |file: File| toml::to_string(&file).ok();
    (
        as_written::read(text).and_then(written),
        toml::from_str::<File>(text).ok().and_then(written),
    )
}

impl Enrollment {
    /// The enrollment part of a v1 state, under a new id: what converting it keeps.
    pub fn from_v1(state: &State, id: EnrollmentId) -> Enrollment {
        Enrollment {
            id,
            secret: state.secret.clone(),
            algorithm: state.algorithm,
            digits: state.digits,
            period: state.period,
            recovery_codes: state.recovery_codes.clone(),
            kind: state.kind,
        }
    }

    /// Parses and validates an enrollment file's bytes; `path` is only for messages, which
    /// never quote the file.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Enrollment> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::corrupt(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        // The file as this build writes it takes the fast path; anything else (and every
        // error, with its message) is the general TOML parser's.
        let file: File = match as_written::read(text) {
            Some(file) => file,
            None => toml::from_str(text).map_err(|e| {
                Error::corrupt(
                    path,
                    format!("not a valid enrollment file{}", line_of(text, e.span())),
                )
            })?,
        };
        if file.version != VERSION {
            return Err(Error::corrupt(
                path,
                format!(
                    "version {} is not an enrollment file (version {VERSION})",
                    file.version
                ),
            ));
        }
        let id = EnrollmentId::from_hex(&file.enrollment_id)
            .ok_or_else(|| Error::corrupt(path, "enrollment_id is not 32 lowercase hex digits"))?;
        let mut enrollment = Enrollment {
            id,
            secret: file.secret,
            algorithm: file.algorithm.into(),
            digits: file.digits,
            period: file.period,
            recovery_codes: file.recovery_codes.into_iter().map(Into::into).collect(),
            kind: file.kind.into(),
        };
        // Validated as `validate` does, but with the secret and the hashes moved into the
        // v1 fields and back rather than copied: a login parses this file every time.
        let secret = std::mem::take(&mut enrollment.secret);
        let codes = std::mem::take(&mut enrollment.recovery_codes);
        let mut fields = enrollment.as_v1_fields();
        fields.secret = secret;
        fields.recovery_codes = codes;
        let checked = fields.validate();
        enrollment.secret = std::mem::take(&mut fields.secret);
        enrollment.recovery_codes = std::mem::take(&mut fields.recovery_codes);
        checked.map_err(|problem| Error::corrupt(path, problem))?;
        Ok(enrollment)
    }

    /// The file's text. Zeroizing: it holds the secret.
    pub fn to_toml(&self) -> Result<Zeroizing<String>> {
        let file = File {
            version: VERSION,
            enrollment_id: self.id.to_hex(),
            kind: self.kind.into(),
            secret: self.secret.clone(),
            algorithm: self.algorithm.into(),
            digits: self.digits,
            period: self.period,
            recovery_codes: self.recovery_codes.iter().map(Into::into).collect(),
        };
        toml::to_string(&file)
            .map(Zeroizing::new)
            .map_err(|e| Error::Internal(format!("serializing enrollment: {e}")))
    }

    /// The same checks as a v1 file's, by running v1's validation on these fields: the
    /// rules for secret, digits, period and recovery hashes cannot drift apart.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.as_v1_fields().validate()
    }

    fn as_v1_fields(&self) -> State {
        State {
            secret: self.secret.clone(),
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            last_step: None,
            throttle: Throttle::default(),
            last_success: None,
            recovery_codes: self.recovery_codes.clone(),
            kind: self.kind,
            hotp_counter: 0,
            remembered_hosts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery as codes;

    const PATH: &str = "/home/u/.config/pam-totp/state.toml";

    fn sample() -> Enrollment {
        let (_, hashes) = codes::new_recovery_codes(2).unwrap();
        Enrollment {
            id: EnrollmentId([0x3c; 16]),
            secret: SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            algorithm: HashAlgorithm::SHA256,
            digits: 8,
            period: 60,
            recovery_codes: hashes,
            kind: Kind::Totp,
        }
    }

    fn parse(text: &str) -> Result<Enrollment> {
        Enrollment::parse(text.as_bytes(), Path::new(PATH))
    }

    #[test]
    fn round_trips_through_toml() {
        let enrollment = sample();
        let text = enrollment.to_toml().unwrap();
        assert!(text.starts_with("version = 2\n"), "{}", *text);
        assert_eq!(parse(&text).unwrap(), enrollment);
        assert_eq!(file_version(text.as_bytes()), Some(2));
    }

    #[test]
    fn the_file_as_written_takes_the_fast_path_and_reads_as_toml_does() {
        let no_codes = Enrollment {
            recovery_codes: Vec::new(),
            ..sample()
        };
        let hotp = Enrollment {
            kind: Kind::Hotp,
            ..sample()
        };
        // Every algorithm this build writes (the mutation run found SHA1 and SHA512 sent to
        // the general parser unnoticed: slower, not wrong).
        let sha1 = Enrollment {
            algorithm: HashAlgorithm::SHA1,
            ..sample()
        };
        let sha512 = Enrollment {
            algorithm: HashAlgorithm::SHA512,
            ..sample()
        };
        for enrollment in [sample(), no_codes, hotp, sha1, sha512] {
            let text = enrollment.to_toml().unwrap();
            assert!(as_written::read(&text).is_some(), "{}", *text);
            flat_toml::tests::assert_reader_agrees_with_toml(&text, as_written::read);
        }
    }

    #[test]
    fn the_fast_path_leaves_other_valid_toml_to_the_general_parser() {
        let text = sample().to_toml().unwrap();
        let others = [
            text.replace("digits = 8\n", "digits = 8 # comment\n"),
            text.replace(
                "version = 2\nenrollment_id",
                "version = 2\nkind = \"totp\"\nenrollment_id",
            ),
            text.replace("digits = 8\nperiod = 60\n", "period = 60\ndigits = 8\n"),
            text.replace("\n\n[[recovery_codes]]", "\n[[recovery_codes]]"),
        ];
        for other in others {
            assert_ne!(other, *text);
            assert!(as_written::read(&other).is_none(), "{other}");
            assert_eq!(
                parse(&other).unwrap(),
                sample_with_hashes_of(&text),
                "{other}"
            );
        }
    }

    /// `sample()` makes new hashes each time; the one `text` holds.
    fn sample_with_hashes_of(text: &str) -> Enrollment {
        parse(text).unwrap()
    }

    #[test]
    fn a_totp_file_has_no_kind_and_an_hotp_file_says_so() {
        let totp = sample().to_toml().unwrap();
        assert!(!totp.contains("kind"), "{}", *totp);
        let hotp = Enrollment {
            kind: Kind::Hotp,
            ..sample()
        };
        let text = hotp.to_toml().unwrap();
        assert!(text.contains("\nkind = \"hotp\"\n"), "{}", *text);
        assert_eq!(parse(&text).unwrap(), hotp);
        let err = parse(&text.replace("\"hotp\"", "\"motp\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid enrollment file"), "{err}");
    }

    #[test]
    fn a_v1_file_is_not_an_enrollment_file() {
        let v1 = "version = 1\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n";
        assert_eq!(file_version(v1.as_bytes()), Some(1));
        let err = parse(v1).unwrap_err().to_string();
        assert!(err.contains("not a valid enrollment file"), "{err}");
    }

    #[test]
    fn counters_and_unknown_fields_are_refused() {
        let text = sample().to_toml().unwrap();
        for extra in ["last_step = 5", "bogus = 1"] {
            let err = parse(&format!("{extra}\n{}", *text))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not a valid enrollment file"),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused_by_the_v1_rules_without_quoting_the_file() {
        let text = sample().to_toml().unwrap();
        let cases = [
            ("digits = 8", "digits = 9", "digits"),
            ("period = 60", "period = 0", "period"),
            (
                "secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"",
                "secret = \"TOPSECRETVALUE!!\"",
                "base32",
            ),
            (
                "enrollment_id = \"3c3c",
                "enrollment_id = \"XX3c",
                "enrollment_id",
            ),
            ("version = 2", "version = 3", "version 3"),
        ];
        for (from, to, expected) in cases {
            assert!(text.contains(from), "{from}");
            let err = parse(&text.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(expected), "{to}: {err}");
            assert!(!err.contains("TOPSECRET"), "{err}");
        }
    }

    #[test]
    fn conversion_from_v1_keeps_the_enrollment_fields() {
        let (_, hashes) = codes::new_recovery_codes(1).unwrap();
        let mut v1 = State::new(
            SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            HashAlgorithm::SHA512,
            7,
            45,
            hashes,
        )
        .unwrap();
        v1.last_step = Some(9);
        let id = EnrollmentId([1; 16]);
        let enrollment = Enrollment::from_v1(&v1, id);
        assert_eq!(enrollment.id, id);
        assert_eq!(enrollment.secret, v1.secret);
        assert_eq!(
            (enrollment.algorithm, enrollment.digits, enrollment.period),
            (HashAlgorithm::SHA512, 7, 45)
        );
        assert_eq!(enrollment.recovery_codes, v1.recovery_codes);
    }

    #[test]
    fn non_utf8_and_empty_are_refused() {
        assert!(Enrollment::parse(b"\xff", Path::new(PATH)).is_err());
        assert!(Enrollment::parse(b"", Path::new(PATH)).is_err());
        assert_eq!(file_version(b"\xff"), None);
        assert_eq!(file_version(b"version = \"2\""), None);
    }
}
