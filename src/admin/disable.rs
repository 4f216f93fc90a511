//! Turning TOTP off for a user.

use super::{Actor, Result, failure_of};
use crate::config::Options;
use crate::policy::Policy;
use crate::secret::SecretString;
use crate::store::{Proof, Store};

/// Removes the enrollment atomically, after a current code (TOTP or recovery) unless root
/// acts for another user (`None`).
pub fn disable(
    actor: &Actor,
    store: &dyn Store,
    proof: Option<&SecretString>,
    now: u64,
    options: &Options,
) -> Result<()> {
    let proof = proof.map_or(Proof::NotNeeded, Proof::Code);
    store
        .remove(proof, now, Policy::from(options))
        .map_err(|e| failure_of(e, actor, store, None))
}
