//! The state of one user, independent of any file format: the enrollment (secret and code
//! parameters), the replay guard, throttling, the last success and the recovery codes.
//! Every rule a state must satisfy is checked here, whatever it was read from.

use super::hosts::{self, RememberedHost, RemoteHost};
use crate::error::{Error, Result};
use crate::otp::{
    self, DIGITS, HashAlgorithm, Kind, MAX_SECRET_BYTES, MIN_SECRET_BYTES, OtpParams, PERIODS,
};
use crate::recovery::{self, MAX_RECOVERY_CODES, RecoveryCodeHash};
use crate::secret::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    Recovery,
    /// A code of an HOTP token.
    Hotp,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Recovery => "recovery",
            Method::Hotp => "hotp",
        }
    }
}

/// Consecutive failed codes, and until when attempts are refused unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    pub failures: u32,
    /// Unix time before which attempts are refused unchecked.
    pub locked_until: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastSuccess {
    pub time: u64,
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The TOTP secret in base32.
    pub secret: SecretString,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub period: u64,
    /// The last accepted time step (the replay guard).
    pub last_step: Option<u64>,
    pub throttle: Throttle,
    pub last_success: Option<LastSuccess>,
    pub recovery_codes: Vec<RecoveryCodeHash>,
    /// TOTP or HOTP; an HOTP enrollment ignores `period` and `last_step`.
    pub kind: Kind,
    /// HOTP: the next counter a code may come from (every code before it is used up).
    /// Always 0 for TOTP.
    pub hotp_counter: u64,
    /// Hosts that passed with a code recently (`grace_period`), at most
    /// [`hosts::MAX_HOSTS`]; empty in a new enrollment.
    pub remembered_hosts: Vec<RememberedHost>,
}

/// What can be told about an enrollment without its secret (status, a store that keeps
/// the secret to itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub params: OtpParams,
    pub recovery_codes_left: usize,
    pub last_success: Option<LastSuccess>,
    pub throttle: Throttle,
    pub kind: Kind,
    /// HOTP: the next counter a code may come from.
    pub hotp_counter: Option<u64>,
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
            secret,
            algorithm,
            digits,
            period,
            last_step: None,
            throttle: Throttle::default(),
            last_success: None,
            recovery_codes,
            kind: Kind::Totp,
            hotp_counter: 0,
            remembered_hosts: Vec::new(),
        };
        state.validate().map_err(Error::BadOption)?;
        Ok(state)
    }

    /// This enrollment as an HOTP one whose next code is that of `counter`.
    pub fn into_hotp(self, counter: u64) -> State {
        State {
            kind: Kind::Hotp,
            hotp_counter: counter,
            last_step: None,
            ..self
        }
    }

    pub fn params(&self) -> OtpParams {
        OtpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }

    /// The enrollment without its secret.
    pub fn enrolled(&self) -> Enrolled {
        Enrolled {
            params: self.params(),
            recovery_codes_left: self.recovery_codes.len(),
            last_success: self.last_success,
            throttle: self.throttle.clone(),
            kind: self.kind,
            hotp_counter: (self.kind == Kind::Hotp).then_some(self.hotp_counter),
        }
    }

    /// Checks every value a hostile or damaged file could get wrong; the message names the
    /// field, never its value.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let secret_len = otp::decode_secret(&self.secret)
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
        if self.kind == Kind::Totp && self.hotp_counter != 0 {
            return Err("a TOTP enrollment has no HOTP counter".into());
        }
        if self.remembered_hosts.len() > hosts::MAX_HOSTS {
            return Err(format!("more than {} remembered hosts", hosts::MAX_HOSTS));
        }
        if self.recovery_codes.len() > MAX_RECOVERY_CODES {
            return Err(format!("more than {MAX_RECOVERY_CODES} recovery codes"));
        }
        // The ids as numbers, for the repeat check: a string comparison per pair (45 for
        // ten codes, every login) cost more than the rest of these checks.
        let mut ids = [0u32; MAX_RECOVERY_CODES];
        for (i, code) in self.recovery_codes.iter().enumerate() {
            let Some(id) = recovery::id_number(&code.id) else {
                return Err(format!("recovery code {} has a malformed id", i + 1));
            };
            ids[i] = id;
            // Imported scratch codes may share an id (MAX_SHARED_ID); more would make a
            // check cost more argon2 runs than a login should.
            let same_id = ids[..i].iter().filter(|&&earlier| earlier == id).count();
            if same_id >= recovery::MAX_SHARED_ID {
                return Err(format!("recovery code {} repeats an id", i + 1));
            }
            recovery::check_recovery_hash(&code.hash)
                .map_err(|problem| format!("recovery code {}: {problem}", i + 1))?;
        }
        Ok(())
    }

    /// Seconds left before attempts are checked again, if throttled now.
    pub fn throttled_for(&self, now: u64) -> Option<u64> {
        (self.throttle.locked_until > now).then(|| self.throttle.locked_until - now)
    }

    /// How many seconds ago `host` passed with a code, if within `grace` seconds of `now`.
    /// Never while throttled: a remembered host does not skip the lockout.
    pub fn remembers(&self, host: &RemoteHost, now: u64, grace: u64) -> Result<Option<u64>> {
        if self.throttled_for(now).is_some() {
            return Ok(None);
        }
        let tag = host.tag(&self.secret)?;
        Ok(hosts::passed_within(
            &self.remembered_hosts,
            &tag,
            now,
            grace,
        ))
    }

    /// Remembers that `host` passed with a code at `now`.
    pub fn remember(&mut self, host: &RemoteHost, now: u64) -> Result<()> {
        let rhost_tag = host.tag(&self.secret)?;
        hosts::remember(
            &mut self.remembered_hosts,
            RememberedHost {
                rhost_tag,
                time: now,
            },
        );
        Ok(())
    }

    /// The code of `time` (tests, the CLI's self-checks).
    pub fn code_at(&self, time: u64) -> Result<SecretString> {
        otp::code_at(&self.secret, self.params(), time)
    }
}
