//! What `status` shows: the enrollment without its secret.

use super::{Actor, Result};
use crate::config::Options;
use crate::state::LastSuccess;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Status {
    pub user: String,
    pub enrolled: bool,
    pub state_file: String,
    pub algorithm: Option<&'static str>,
    pub digits: Option<u8>,
    pub period: Option<u64>,
    pub recovery_codes_left: Option<usize>,
    pub last_success: Option<LastSuccess>,
    pub throttle: Option<ThrottleStatus>,
    /// "totp" or "hotp", when enrolled.
    pub kind: Option<&'static str>,
    /// HOTP: the next counter a code may come from.
    pub hotp_counter: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ThrottleStatus {
    /// Consecutive wrong codes since the last success.
    pub failures: u32,
    /// Unix time before which no code is checked (0: not throttled).
    pub locked_until: u64,
    /// Seconds from now until codes are checked again (0: not throttled).
    pub seconds_left: u64,
    /// Wrong codes in a row after which codes stop being checked for a while.
    pub max_failures: u32,
}

pub fn status(actor: &Actor, store: &dyn Store, now: u64, options: &Options) -> Result<Status> {
    let enrolled = store.enrolled()?;
    let mut status = Status {
        user: actor.target.name.clone(),
        enrolled: enrolled.is_some(),
        state_file: store.location().display().to_string(),
        algorithm: None,
        digits: None,
        period: None,
        recovery_codes_left: None,
        last_success: None,
        throttle: None,
        kind: None,
        hotp_counter: None,
    };
    if let Some(enrolled) = enrolled {
        status.algorithm = Some(enrolled.params.algorithm.as_str());
        status.digits = Some(enrolled.params.digits);
        // An HOTP enrollment has no time step.
        status.period = enrolled
            .hotp_counter
            .is_none()
            .then_some(enrolled.params.period);
        status.recovery_codes_left = Some(enrolled.recovery_codes_left);
        status.last_success = enrolled.last_success;
        status.kind = Some(enrolled.kind.as_str());
        status.hotp_counter = enrolled.hotp_counter;
        let locked_until = enrolled.throttle.locked_until;
        status.throttle = Some(ThrottleStatus {
            failures: enrolled.throttle.failures,
            locked_until,
            seconds_left: locked_until.saturating_sub(now),
            max_failures: options.max_failures,
        });
    }
    Ok(status)
}
