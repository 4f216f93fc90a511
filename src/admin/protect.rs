//! Protected storage (`secret=` outside the homes, root-owned): moving a home enrollment
//! into it (`pam-totp --user NAME protect`, root only), and the one step of a helper
//! enrollment that the ordinary save does not have (refusing to replace an enrollment that
//! appeared since the run began without a proof).

use super::enroll::{Enrollment, NewCodes};
use super::{Actor, Failure, Result, failure_of};
use crate::config::{DEFAULT_STATE_PATH, Options, SecretPath};
use crate::error::Error;
use crate::privileges::Account;
use crate::store::fs::FsStore;
use crate::store::transaction::{Backend, Create};
use crate::store::{Aborted, BeforeCommit, ChangeError, NothingBefore, Refusal, Store};
use std::path::PathBuf;

/// Saves a new enrollment made by the helper with `new_codes`. Unless `may_replace` (a
/// current code was proved in the same run), it is refused if the user is enrolled by
/// the time the store is locked: checked under the store's lock, so two runs cannot race.
pub fn save_new(
    enrollment: Enrollment,
    actor: &Actor,
    store: &dyn Store,
    new_codes: &NewCodes,
    may_replace: bool,
) -> Result<()> {
    let mut state = enrollment.state;
    state.recovery_codes = new_codes.hashes.clone();
    let mut guard = StillAbsent {
        store,
        may_replace,
        found: false,
    };
    match store.enroll(&state, &mut guard) {
        Ok(()) => Ok(()),
        Err(ChangeError::Refused(Refusal::Aborted)) if guard.found => {
            Err(Failure::Library(Error::BadOption(format!(
                "{} was enrolled meanwhile; prove a current code to replace the enrollment",
                actor.target.name
            ))))
        }
        Err(e) => Err(failure_of(e, actor, store, None)),
    }
}

struct StillAbsent<'a> {
    store: &'a dyn Store,
    may_replace: bool,
    found: bool,
}

impl BeforeCommit for StillAbsent<'_> {
    fn run(&mut self) -> std::result::Result<(), Aborted> {
        if self.may_replace {
            return Ok(());
        }
        // Under the lock: the unlocked read sees every committed change (writers lock).
        match self.store.enrolled() {
            Ok(None) => Ok(()),
            Ok(Some(_)) => {
                self.found = true;
                Err(Aborted)
            }
            Err(_) => Err(Aborted),
        }
    }
    fn undo(&mut self) {}
}

/// What `protect` did for one user.
#[derive(Debug)]
pub enum Protected {
    /// Moved from `from` to `to`.
    Moved { from: PathBuf, to: PathBuf },
    /// No enrollment in the home: nothing to move.
    NothingInHome { home: PathBuf },
    /// Already in protected storage, and none in the home.
    AlreadyProtected { at: PathBuf },
}

/// Moves `account`'s home enrollment (at the default `~/.config/pam-totp/state.toml`) into
/// the protected storage the options name: the protected copy is written and synced
/// first, then the home copy is removed, so a crash in between leaves two copies (the
/// module reads only the protected one), never none. The secret, the replay guard, the
/// throttle and the recovery codes move unchanged: the phone keeps working.
pub fn protect(options: &Options, account: &Account) -> Result<Protected> {
    if options.secret.in_home() {
        return Err(Failure::Library(Error::BadOption(format!(
            "{}: secret= keeps state in the homes; set it to root-owned storage (for example secret = \"/var/lib/pam-totp/%u.toml\") first",
            options.config.display()
        ))));
    }
    let home_options = Options {
        secret: SecretPath::parse(DEFAULT_STATE_PATH)?,
        ..options.clone()
    };
    let home = FsStore::for_account(&home_options, account)?;
    let protected = FsStore::for_account(options, account)?;
    let Some(state) = Backend::load(&home)? else {
        if Store::enrolled(&protected)?.is_some() {
            return Ok(Protected::AlreadyProtected {
                at: protected.path().to_owned(),
            });
        }
        return Ok(Protected::NothingInHome {
            home: home.path().to_owned(),
        });
    };
    if Store::enrolled(&protected)?.is_some() {
        return Err(Failure::Library(Error::BadOption(format!(
            "{} has an enrollment in both {} and {}; remove the one that is not in use",
            account.name,
            home.path().display(),
            protected.path().display()
        ))));
    }
    // A service whose module arguments still name the home may burn a code there while
    // the copy is made: the home copy is read again under its lock before it goes, and a
    // changed one is copied again, so nothing burned in the home comes back. (The lock
    // cannot be held across the copy: it holds the user's identity on this thread, and the
    // protected storage is written as root.)
    let mut state = state;
    for _ in 0..3 {
        match Store::enroll(&protected, &state, &mut NothingBefore) {
            Ok(()) => {}
            Err(ChangeError::Failed(e)) => return Err(e.into()),
            Err(ChangeError::Refused(_)) => {
                return Err(Failure::Library(Error::Internal(
                    "the protected storage refused the enrollment".into(),
                )));
            }
        }
        // Written and synced: now the home copy goes (under its lock, as the user), if it
        // is still what was copied.
        let locked = home.lock(Create::No)?;
        match locked.read()? {
            Some(now) if now != state => {
                drop(locked);
                state = now;
                continue;
            }
            _ => {}
        }
        locked.remove()?;
        return Ok(Protected::Moved {
            from: home.path().to_owned(),
            to: protected.path().to_owned(),
        });
    }
    Err(Failure::Library(Error::Internal(format!(
        "the home enrollment of {} kept changing while it was being moved; try again",
        account.name
    ))))
}
