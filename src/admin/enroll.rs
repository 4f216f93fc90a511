//! A new enrollment: the secret (made or imported), confirming a code from the app, and
//! saving it with new recovery codes in one locked change.

use super::codes_file::{Delivery, WriteCodes};
use super::{Actor, Failure, Result, failure_of};
use crate::config::Options;
use crate::error::Error;
use crate::input::{self, Entered};
use crate::otp::{self, HashAlgorithm, HotpMatch, Kind, TotpMatch};
use crate::recovery::{self, MAX_RECOVERY_CODES, RecoveryCodeHash};
use crate::secret::SecretString;
use crate::state::State;
use crate::store::{ChangeError, Refusal, Store};
use zeroize::Zeroizing;

/// Why a secret to import is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    NotBase32,
    /// Base32, but refused by the state's rules (the rule, never the secret).
    Invalid(String),
}

/// Recovery codes made but not yet stored: the readable codes (to show once) and their
/// hashes. Made before any lock is taken, since hashing takes a moment.
pub struct NewCodes {
    pub(super) shown: Vec<SecretString>,
    pub(super) hashes: Vec<RecoveryCodeHash>,
}

impl NewCodes {
    pub fn make(count: usize) -> Result<NewCodes> {
        let (shown, hashes) = recovery::new_recovery_codes(count.min(MAX_RECOVERY_CODES))?;
        Ok(NewCodes { shown, hashes })
    }

    pub fn shown(&self) -> &[SecretString] {
        &self.shown
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

/// A new enrollment, not yet saved.
pub struct Enrollment {
    pub(super) state: State,
    imported: bool,
    confirmed: bool,
}

impl Enrollment {
    /// A new 160-bit secret from the OS generator, or `secret` (base32 typed or pasted by a
    /// person: any case, spaces and dashes allowed) imported from another system.
    pub fn new(
        secret: Option<&str>,
        algorithm: HashAlgorithm,
        digits: u8,
        period: u64,
    ) -> Result<Enrollment> {
        let imported = secret.is_some();
        let secret = match secret {
            None => otp::new_secret()?,
            Some(text) => {
                otp::normalize_secret(text).ok_or(Failure::BadSecret(SecretProblem::NotBase32))?
            }
        };
        let state = State::new(secret, algorithm, digits, period, vec![]).map_err(|e| match e {
            Error::BadOption(why) if imported && why.contains("secret") => {
                Failure::BadSecret(SecretProblem::Invalid(why))
            }
            other => other.into(),
        })?;
        Ok(Enrollment {
            state,
            imported,
            confirmed: false,
        })
    }

    /// An HOTP enrollment (a hardware token, or an app in counter mode) whose next code is
    /// that of `counter` (0 for a new token; more for one that has been pressed).
    pub fn into_hotp(self, counter: u64) -> Enrollment {
        Enrollment {
            state: self.state.into_hotp(counter),
            ..self
        }
    }

    pub fn kind(&self) -> Kind {
        self.state.kind
    }

    /// HOTP: the next counter a code may come from (advanced by [`Enrollment::confirm`]).
    pub fn hotp_counter(&self) -> u64 {
        self.state.hotp_counter
    }

    pub fn secret(&self) -> &SecretString {
        &self.state.secret
    }

    pub fn algorithm(&self) -> HashAlgorithm {
        self.state.algorithm
    }

    pub fn digits(&self) -> u8 {
        self.state.digits
    }

    pub fn period(&self) -> u64 {
        self.state.period
    }

    /// Whether the secret came from elsewhere (`--secret`).
    pub fn imported(&self) -> bool {
        self.imported
    }

    /// Whether a code from the app matched before saving.
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// The secret in groups of four, for typing by hand.
    pub fn grouped_secret(&self) -> Zeroizing<String> {
        let secret = self.state.secret.expose().as_bytes();
        let groups: Vec<&str> = secret
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Zeroizing::new(groups.join(" "))
    }

    /// Checks a code typed from the app against the new secret, with the module's window.
    /// A match is remembered as burned, so the same code cannot then be replayed at login
    /// (HOTP: the counter is stored past it).
    pub fn confirm(&mut self, answer: &SecretString, now: u64, options: &Options) -> Result<bool> {
        let Entered::Totp(code) = input::classify(answer.expose(), self.state.digits) else {
            return Ok(false);
        };
        if self.state.kind == Kind::Hotp {
            // As at login: the token's code moves the counter past it.
            let found = otp::find_hotp_counter(
                &self.state.secret,
                self.state.params(),
                self.state.hotp_counter,
                &code,
                options.hotp_window,
            )?;
            return Ok(match found {
                HotpMatch::Fresh(counter) => {
                    self.state.hotp_counter = counter + 1;
                    self.confirmed = true;
                    true
                }
                HotpMatch::Replayed | HotpMatch::NoMatch => false,
            });
        }
        let found = otp::find_totp_step(
            &self.state.secret,
            self.state.params(),
            self.state.last_step,
            &code,
            now,
            options.window,
        )?;
        match found {
            TotpMatch::Fresh(step) => {
                self.state.last_step = Some(step);
                self.confirmed = true;
                Ok(true)
            }
            TotpMatch::Replayed | TotpMatch::NoMatch => Ok(false),
        }
    }

    /// Saves the enrollment with `new_codes` as its recovery codes, replacing any existing
    /// state atomically. With `codes_file`, the codes are first written to that new file;
    /// if the state then cannot be written, the file is removed again and the old state
    /// (if any) is left as it was. `show` (the codes for the person) runs last before the
    /// commit: if it fails, nothing is saved.
    pub fn save(
        mut self,
        actor: &Actor,
        store: &dyn Store,
        new_codes: &NewCodes,
        delivery: Delivery<'_>,
        now: u64,
    ) -> Result<()> {
        self.state.recovery_codes = new_codes.hashes.clone();
        let mut write_codes = WriteCodes::new(delivery, actor, &new_codes.shown, now);
        match store.enroll(&self.state, &mut write_codes) {
            Ok(()) => Ok(()),
            Err(ChangeError::Refused(Refusal::NotEnrolled)) => Err(Failure::NoHome {
                user: actor.target.name.clone(),
                home: actor.target.home.clone(),
                path: store.location().to_owned(),
            }),
            Err(e) => Err(failure_of(e, actor, store, write_codes.failure())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn enrollment() -> Enrollment {
        Enrollment::new(Some("jbsw y3dp-ehpk 3pxp"), HashAlgorithm::SHA256, 8, 60).unwrap()
    }

    #[test]
    fn secret_is_shown_in_groups_of_four() {
        assert_eq!(
            enrollment().grouped_secret().as_str(),
            "JBSW Y3DP EHPK 3PXP"
        );
    }

    #[test]
    fn malformed_and_short_secrets_are_refused() {
        for bad in ["not base32!", "", "JBSWY3DP"] {
            let result = Enrollment::new(Some(bad), HashAlgorithm::SHA1, 6, 30);
            assert!(
                matches!(result, Err(Failure::BadSecret(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn confirming_burns_the_step() {
        let mut enrollment = enrollment();
        let now = 1_700_000_000;
        let code = enrollment.state.code_at(now).unwrap();
        let options = Options::default();
        assert!(enrollment.confirm(&code, now, &options).unwrap());
        assert_eq!(enrollment.state.last_step, Some(now / 60));
        assert!(!enrollment.confirm(&code, now, &options).unwrap());
    }

    #[test]
    fn confirming_an_hotp_code_advances_the_counter_past_it() {
        let mut enrollment = enrollment().into_hotp(7);
        let options = Options::default();
        let params = enrollment.state.params();
        let code = otp::hotp_code(enrollment.secret(), params, 9).unwrap();
        assert!(enrollment.confirm(&code, 0, &options).unwrap());
        assert_eq!(enrollment.hotp_counter(), 10);
        assert!(!enrollment.confirm(&code, 0, &options).unwrap());
        let behind = otp::hotp_code(enrollment.secret(), params, 8).unwrap();
        assert!(!enrollment.confirm(&behind, 0, &options).unwrap());
    }
}
