//! Checking a code without using it up.

use super::{Actor, Result, failure_of};
use crate::config::Options;
use crate::otp::time_step;
use crate::policy::{Policy, Verdict};
use crate::secret::SecretString;
use crate::store::Store;

/// What `verify` found.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub verdict: Verdict,
    /// For an accepted TOTP code: how many time steps the app is ahead (+) or behind (-).
    pub offset_steps: Option<i64>,
    pub period: u64,
}

/// Says whether the module would accept `answer` now, without using it up: an accepted
/// code is not burned (nothing is written), a wrong one counts toward throttling exactly
/// as a failed login does.
pub fn verify(
    actor: &Actor,
    store: &dyn Store,
    answer: &SecretString,
    now: u64,
    options: &Options,
) -> Result<Checked> {
    let verified = store
        .verify(answer, now, Policy::from(options))
        .map_err(|e| failure_of(e, actor, store, None))?;
    let offset_steps = match verified.verdict {
        Verdict::Totp { step } => Some(step as i64 - time_step(now, verified.period) as i64),
        _ => None,
    };
    Ok(Checked {
        verdict: verified.verdict,
        offset_steps,
        period: verified.period,
    })
}
