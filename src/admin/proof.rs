//! Before a change: is there an enrollment to ask a code for, and proving a current code.

use super::{Actor, Failure, Result, failure_of, not_enrolled};
use crate::config::Options;
use crate::policy::{Policy, Verdict};
use crate::secret::SecretString;
use crate::store::{Prepared, Store};

/// What the CLI needs before it asks for a code: the state exists and is not throttled.
/// Returns the number of digits a TOTP code has. Reads without the lock, like the module.
pub fn ready_for_code(actor: &Actor, store: &dyn Store, now: u64) -> Result<u8> {
    match store.prepare(now)? {
        Prepared::Ready { digits } => Ok(digits),
        Prepared::Throttled { seconds } => Err(Failure::Refused(Verdict::Throttled { seconds })),
        Prepared::NotEnrolled => Err(not_enrolled(actor, store)),
    }
}

/// Proves a current code (TOTP or recovery) of an existing enrollment and burns it. Used
/// before an enrolled user replaces their enrollment.
pub fn prove(
    actor: &Actor,
    store: &dyn Store,
    answer: &SecretString,
    now: u64,
    options: &Options,
) -> Result<Verdict> {
    store
        .prove(answer, now, Policy::from(options))
        .map_err(|e| failure_of(e, actor, store, None))
}
