//! Protected storage (`secret=` outside the homes, root-owned): moving a home enrollment
//! into it (`pam-totp --user NAME protect`, root only), and the one step of a helper
//! enrollment that the ordinary save does not have (refusing to replace an enrollment that
//! appeared since the run began without a proof).

use super::enroll::{Enrollment, NewCodes};
use super::{Actor, Failure, Result, failure_of};
use crate::config::{DEFAULT_STATE_PATH, Options, SecretPath};
use crate::error::Error;
use crate::policy::{self, Policy};
use crate::privileges::Account;
use crate::state::State;
use crate::store::fs::FsStore;
use crate::store::transaction::{Backend, Create, Locked};
use crate::store::{Aborted, BeforeCommit, ChangeError, NothingBefore, Refusal, Store};
use std::path::PathBuf;

/// Saves a new enrollment made by the helper with `new_codes`. Without `may_replace` it is
/// refused if the user is enrolled by the time the store is locked; with it (a current code
/// was proved in the same run), only if `may_replace` says under the lock that the
/// enrollment there may be replaced (the one the code was proved for). Checked under the
/// store's lock, so two runs cannot race.
pub fn save_new<'a>(
    enrollment: Enrollment,
    actor: &Actor,
    store: &'a dyn Store,
    new_codes: &NewCodes,
    may_replace: Option<&'a mut dyn FnMut() -> bool>,
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

/// Under the lock, before the new enrollment is written: no enrollment is there, or (when
/// replacing) `may_replace` says the one there may be replaced.
struct StillAbsent<'a> {
    store: &'a dyn Store,
    may_replace: Option<&'a mut dyn FnMut() -> bool>,
    found: bool,
}

impl BeforeCommit for StillAbsent<'_> {
    fn run(&mut self) -> std::result::Result<(), Aborted> {
        if let Some(may_replace) = self.may_replace.as_mut() {
            return if may_replace() { Ok(()) } else { Err(Aborted) };
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
    let now = crate::clock::now()?;
    let policy = Policy::from(options);
    move_home_copy(&home, &protected, state, account, (now, policy), || {})?;
    Ok(Protected::Moved {
        from: home.path().to_owned(),
        to: protected.path().to_owned(),
    })
}

/// Copies `state` (read from `home`) into `protected`, then removes the home copy if it is
/// still what was copied. A service whose module arguments still name the home may burn a
/// code there while the copy is made: the home copy is read again under its lock before it
/// goes, and a changed one is copied again, so nothing burned in the home comes back. (The
/// lock cannot be held across the copy: it holds the user's identity on this thread, and
/// the protected storage is written as root.) `after_copy` runs between the copy and the
/// re-read: nothing in production; in the tests, a login that burns a code in the home.
fn move_home_copy(
    home: &FsStore,
    protected: &FsStore,
    state: State,
    account: &Account,
    (now, policy): (u64, Policy),
    mut after_copy: impl FnMut(),
) -> Result<()> {
    // The copy starts from a read under the lock, which tells whether it fell back to the
    // older counters record; the protected copy is written with two valid records, so a
    // fallback not covered here could never be seen again.
    let mut state = {
        let locked = home.lock(Create::No)?;
        covered_read(&*locked, now, policy)?.unwrap_or(state)
    };
    for _ in 0..3 {
        match Store::enroll(protected, &state, &mut NothingBefore) {
            Ok(()) => {}
            Err(ChangeError::Failed(e)) => return Err(e.into()),
            Err(ChangeError::Refused(_)) => {
                return Err(Failure::Library(Error::Internal(
                    "the protected storage refused the enrollment".into(),
                )));
            }
        }
        after_copy();
        // Written and synced: now the home copy goes (under its lock, as the user), if it
        // is still what was copied.
        let locked = home.lock(Create::No)?;
        match covered_read(&*locked, now, policy)? {
            Some(now) if now != state => {
                drop(locked);
                state = now;
                continue;
            }
            _ => {}
        }
        locked.remove()?;
        return Ok(());
    }
    Err(Failure::Library(Error::Internal(format!(
        "the home enrollment of {} kept changing while it was being moved; try again",
        account.name
    ))))
}

/// The home state under its lock; when the read fell back to the older counters record
/// (the newer one torn or damaged), made to cover the write that may be lost, as a login
/// would ([`policy::cover_lost_write`]). The same `now` gives the same result each time, so
/// an unchanged home compares equal.
fn covered_read(locked: &dyn Locked, now: u64, policy: Policy) -> Result<Option<State>> {
    let mut state = locked.read()?;
    if let Some(state) = state.as_mut()
        && locked.fell_back().is_some()
    {
        policy::cover_lost_write(state, now, policy);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;
    use crate::secret::SecretString;
    use nix::unistd::geteuid;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn private_dir(path: &Path) {
        fs::create_dir(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
    }

    /// The home store and a root-owned protected store for whoever runs the tests, and a
    /// home enrollment (as read back, which is what `protect` compares against).
    fn setup(dir: &Path) -> (FsStore, FsStore, Account, State) {
        let me = Account::by_uid(geteuid()).unwrap().expect("the test user");
        let account = Account {
            home: dir.join("home"),
            ..me
        };
        private_dir(&account.home);
        private_dir(&dir.join("store"));
        let at = |secret: &str| Options {
            secret: SecretPath::parse(secret).unwrap(),
            ..Options::default()
        };
        let home = FsStore::for_account(&at(DEFAULT_STATE_PATH), &account).unwrap();
        let store = format!("{}/store/%u.toml", dir.display());
        let protected = FsStore::for_account(&at(&store), &account).unwrap();
        let fresh = State::new(
            SecretString::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
            HashAlgorithm::SHA1,
            6,
            30,
            Vec::new(),
        )
        .unwrap();
        home.lock(Create::Yes).unwrap().write(&fresh).unwrap();
        let state = Backend::load(&home).unwrap().unwrap();
        (home, protected, account, state)
    }

    /// The time and the policy a `protect` run uses.
    const AT: (u64, Policy) = (
        1_700_000_000,
        Policy {
            window: 1,
            max_failures: 5,
            hotp_window: 10,
        },
    );

    fn burned(state: &State, step: u64) -> State {
        State {
            last_step: Some(step),
            ..state.clone()
        }
    }

    #[test]
    fn a_code_burned_in_the_home_during_the_move_is_carried_over() {
        if !geteuid().is_root() {
            eprintln!("skipped: protected storage must belong to root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (home, protected, account, state) = setup(dir.path());
        let mut logins = 0;
        move_home_copy(&home, &protected, state.clone(), &account, AT, || {
            // A login through a service that still names the home, once, mid-move.
            if logins == 0 {
                let locked = home.lock(Create::No).unwrap();
                locked.write(&burned(&state, 56_666_666)).unwrap();
            }
            logins += 1;
        })
        .unwrap();
        assert_eq!(logins, 2, "copied again after the home changed");
        let moved = Backend::load(&protected).unwrap().unwrap();
        assert_eq!(
            moved.last_step,
            Some(56_666_666),
            "the burned step moved too"
        );
        assert_eq!(Backend::load(&home).unwrap(), None, "the home copy is gone");
    }

    #[test]
    fn a_home_copy_that_keeps_changing_is_left_in_place() {
        if !geteuid().is_root() {
            eprintln!("skipped: protected storage must belong to root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (home, protected, account, state) = setup(dir.path());
        let mut step = 56_000_000;
        let err = move_home_copy(&home, &protected, state.clone(), &account, AT, || {
            step += 1;
            let locked = home.lock(Create::No).unwrap();
            locked.write(&burned(&state, step)).unwrap();
        })
        .unwrap_err();
        assert!(format!("{err:?}").contains("kept changing"), "{err:?}");
        // The home keeps the newest state; the module reads only the protected copy, which
        // `protect` run again replaces.
        let left = Backend::load(&home).unwrap().unwrap();
        assert_eq!(left.last_step, Some(step));
    }

    #[test]
    fn a_home_whose_newest_counters_record_is_damaged_moves_covered() {
        if !geteuid().is_root() {
            eprintln!("skipped: protected storage must belong to root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (home, protected, account, state) = setup(dir.path());
        // A login burned a step (the newest record), and that record was then damaged.
        let lost = AT.0 / 30 + 1;
        home.lock(Create::No)
            .unwrap()
            .write(&burned(&state, lost))
            .unwrap();
        let counters = dir.path().join("home/.config/pam-totp/state.toml.counters");
        let mut bytes = fs::read(&counters).unwrap();
        let generation = |block: usize| {
            let at = block * 4096 + 16;
            u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
        };
        let newest = usize::from(generation(1) > generation(0));
        bytes[newest * 4096 + 100] ^= 0x55;
        fs::write(&counters, bytes).unwrap();
        let older = Backend::load(&home).unwrap().unwrap();
        assert!(older.last_step < Some(lost), "the damage is not a fallback");
        move_home_copy(&home, &protected, older, &account, AT, || {}).unwrap();
        // The protected copy covers the lost write: every step of the widest window of
        // now is burned, and the lost write is counted as a failure.
        let moved = Backend::load(&protected).unwrap().unwrap();
        assert_eq!(
            moved.last_step,
            Some(AT.0 / 30 + u64::from(crate::otp::MAX_WINDOW))
        );
        assert_eq!(moved.throttle.failures, 1);
        assert_eq!(Backend::load(&home).unwrap(), None, "the home copy is gone");
    }
}
