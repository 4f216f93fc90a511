//! Version 1 of the state file, in TOML:
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
//! These serde types are the format; the model ([`State`]) can change without changing
//! them, and a change to them is a change of format.

use crate::otp::HashAlgorithm;
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::model::{LastSuccess, Method, State, Throttle};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(super) const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileV1 {
    pub(super) version: u32,
    secret: SecretString,
    #[serde(default)]
    algorithm: AlgorithmV1,
    #[serde(default = "default_digits")]
    digits: u8,
    #[serde(default = "default_period")]
    period: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_step: Option<u64>,
    #[serde(default)]
    throttle: ThrottleV1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_success: Option<LastSuccessV1>,
    #[serde(default)]
    recovery_codes: Vec<RecoveryCodeV1>,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub(super) enum AlgorithmV1 {
    #[default]
    SHA1,
    SHA256,
    SHA512,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleV1 {
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    locked_until: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LastSuccessV1 {
    time: u64,
    method: MethodV1,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MethodV1 {
    Totp,
    Recovery,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecoveryCodeV1 {
    // Shared strings, as in the model ([`RecoveryCodeHash`]): moved there, not copied.
    id: Arc<str>,
    hash: Arc<str>,
}

impl RecoveryCodeV1 {
    pub(super) fn new(id: Arc<str>, hash: Arc<str>) -> RecoveryCodeV1 {
        RecoveryCodeV1 { id, hash }
    }
}

// The enrollment file of version 2 stores these two the same way (`enrollment_v2.rs`).
impl From<HashAlgorithm> for AlgorithmV1 {
    fn from(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::SHA1 => AlgorithmV1::SHA1,
            HashAlgorithm::SHA256 => AlgorithmV1::SHA256,
            HashAlgorithm::SHA512 => AlgorithmV1::SHA512,
        }
    }
}

impl From<AlgorithmV1> for HashAlgorithm {
    fn from(algorithm: AlgorithmV1) -> Self {
        match algorithm {
            AlgorithmV1::SHA1 => HashAlgorithm::SHA1,
            AlgorithmV1::SHA256 => HashAlgorithm::SHA256,
            AlgorithmV1::SHA512 => HashAlgorithm::SHA512,
        }
    }
}

impl From<&RecoveryCodeHash> for RecoveryCodeV1 {
    fn from(code: &RecoveryCodeHash) -> Self {
        RecoveryCodeV1 {
            id: code.id.clone(),
            hash: code.hash.clone(),
        }
    }
}

impl From<RecoveryCodeV1> for RecoveryCodeHash {
    fn from(code: RecoveryCodeV1) -> Self {
        RecoveryCodeHash {
            id: code.id,
            hash: code.hash,
        }
    }
}

fn default_digits() -> u8 {
    6
}

fn default_period() -> u64 {
    30
}

impl FileV1 {
    pub(super) fn from_state(state: &State) -> FileV1 {
        FileV1 {
            version: VERSION,
            secret: state.secret.clone(),
            algorithm: match state.algorithm {
                HashAlgorithm::SHA1 => AlgorithmV1::SHA1,
                HashAlgorithm::SHA256 => AlgorithmV1::SHA256,
                HashAlgorithm::SHA512 => AlgorithmV1::SHA512,
            },
            digits: state.digits,
            period: state.period,
            last_step: state.last_step,
            throttle: ThrottleV1 {
                failures: state.throttle.failures,
                locked_until: state.throttle.locked_until,
            },
            last_success: state.last_success.map(|s| LastSuccessV1 {
                time: s.time,
                method: match s.method {
                    // v1 files are TOTP only (an HOTP state is never written as v1).
                    Method::Totp | Method::Hotp => MethodV1::Totp,
                    Method::Recovery => MethodV1::Recovery,
                },
            }),
            recovery_codes: state
                .recovery_codes
                .iter()
                .map(|c| RecoveryCodeV1 {
                    id: c.id.clone(),
                    hash: c.hash.clone(),
                })
                .collect(),
        }
    }

    /// The model, not yet validated.
    pub(super) fn into_state(self) -> State {
        State {
            secret: self.secret,
            algorithm: match self.algorithm {
                AlgorithmV1::SHA1 => HashAlgorithm::SHA1,
                AlgorithmV1::SHA256 => HashAlgorithm::SHA256,
                AlgorithmV1::SHA512 => HashAlgorithm::SHA512,
            },
            digits: self.digits,
            period: self.period,
            last_step: self.last_step,
            throttle: Throttle {
                failures: self.throttle.failures,
                locked_until: self.throttle.locked_until,
            },
            last_success: self.last_success.map(|s| LastSuccess {
                time: s.time,
                method: match s.method {
                    MethodV1::Totp => Method::Totp,
                    MethodV1::Recovery => Method::Recovery,
                },
            }),
            recovery_codes: self
                .recovery_codes
                .into_iter()
                .map(|c| RecoveryCodeHash {
                    id: c.id,
                    hash: c.hash,
                })
                .collect(),
            kind: crate::otp::Kind::Totp,
            hotp_counter: 0,
            // Version 1 has no remembered hosts: a converted state starts with none.
            remembered_hosts: Vec::new(),
        }
    }
}
