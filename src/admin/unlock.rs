//! Clearing a user's throttling: root's, without a code.

use super::{Actor, Failure, Result, failure_of};
use crate::state::Throttle;
use crate::store::Store;

/// Clears the wrong codes in a row and the wait; returns the throttling as it was. Only
/// root may: a user who could clear their own would undo what throttling is for.
pub fn unlock(actor: &Actor, store: &dyn Store) -> Result<Throttle> {
    if !actor.caller.uid.is_root() {
        return Err(Failure::UnlockNeedsRoot {
            caller: actor.caller.name.clone(),
            target: actor.target.name.clone(),
        });
    }
    store
        .clear_throttle()
        .map_err(|e| failure_of(e, actor, store, None))
}
