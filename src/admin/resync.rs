//! `resync`: an HOTP token pressed more often than the login's window allows is found
//! again from two consecutive codes, searched in a wider window.

use super::{Actor, Result, failure_of};
use crate::config::Options;
use crate::policy::Policy;
use crate::secret::SecretString;
use crate::store::Store;

/// Stores the counter after `second` when `first` and `second` are the token's codes of
/// two consecutive counters within [`RESYNC_WINDOW`](crate::otp::hotp::RESYNC_WINDOW) of
/// the stored one; returns the new stored counter. A miss counts as a failed attempt.
pub fn resync(
    actor: &Actor,
    store: &dyn Store,
    first: &SecretString,
    second: &SecretString,
    now: u64,
    options: &Options,
) -> Result<u64> {
    store
        .resync(first, second, now, Policy::from(options))
        .map_err(|e| failure_of(e, actor, store, None))
}
