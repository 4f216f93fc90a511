//! Replacing every recovery code at once.

use super::codes_file::{Delivery, WriteCodes};
use super::enroll::NewCodes;
use super::{Actor, Result, failure_of};
use crate::config::Options;
use crate::policy::Policy;
use crate::secret::SecretString;
use crate::store::{Proof, Store};

/// Replaces every recovery code in one locked change: the old ones stop working the moment
/// the new state is written. `proof` must be a current TOTP code (burned), unless root acts
/// for another user (`None`). `show` runs after the proof and before the commit: if it
/// fails, the old codes stay.
pub fn replace_recovery_codes(
    actor: &Actor,
    store: &dyn Store,
    proof: Option<&SecretString>,
    new_codes: &NewCodes,
    delivery: Delivery<'_>,
    now: u64,
    options: &Options,
) -> Result<()> {
    let proof = proof.map_or(Proof::NotNeeded, Proof::TotpCode);
    let mut write_codes = WriteCodes::new(delivery, actor, &new_codes.shown, now);
    store
        .replace_recovery_codes(
            proof,
            &new_codes.hashes,
            now,
            Policy::from(options),
            &mut write_codes,
        )
        .map_err(|e| failure_of(e, actor, store, write_codes.failure()))
}
