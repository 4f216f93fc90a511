//! Turning TOTP off for a user.

use super::{Actor, Failure, Result, failure_of};
use crate::config::Options;
use crate::error::Error;
use crate::policy::Policy;
use crate::secret::SecretString;
use crate::store::{Proof, Store};
use std::path::PathBuf;

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

/// Whether `failure` is a state file that cannot be parsed, which root may replace.
pub fn is_damaged(failure: &Failure) -> bool {
    matches!(failure, Failure::Library(Error::Corrupt { .. }))
}

/// Root acting for another user only: keeps a damaged state file aside
/// (`<state>.damaged-<now>`, same owner and mode) and, with `remove`, removes the state, so
/// that it can be replaced; the path kept, or `None` if the state is not damaged. A user
/// acting for themselves may not: corrupting the file would escape the throttling.
pub fn set_aside_damaged(
    actor: &Actor,
    store: &dyn Store,
    now: u64,
    remove: bool,
) -> Result<Option<PathBuf>> {
    if !actor.for_other() {
        return Ok(None);
    }
    store
        .set_aside_damaged(now, remove)
        .map_err(|e| failure_of(e, actor, store, None))
}
