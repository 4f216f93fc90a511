//! Who runs a command, and for whom.

use super::{Failure, Result};
use crate::error::Error;
use crate::privileges::{Account, Accounts, Identity};
use nix::unistd::Uid;

#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Account,
    pub target: Account,
}

impl Actor {
    /// The caller `uid` (from getuid(), never `$HOME` or `$USER`) as found in `accounts`.
    /// Only root may name another user with `requested`.
    pub fn resolve(uid: Uid, requested: Option<&str>, accounts: &dyn Accounts) -> Result<Actor> {
        let caller = accounts.by_uid(uid)?.ok_or(Failure::NoCaller(uid))?;
        let target = match requested {
            None => caller.clone(),
            Some(name) => {
                let target = accounts.by_name(name)?;
                if !uid.is_root() && target.as_ref().is_none_or(|t| t.uid != uid) {
                    // Refused before saying whether the user exists.
                    return Err(Failure::NotPermitted {
                        caller: caller.name,
                        target: name.to_owned(),
                    });
                }
                target.ok_or_else(|| Error::UnknownUser(name.to_owned()))?
            }
        };
        Ok(Actor { caller, target })
    }

    /// Root acting for another user: the support path, where no code is asked.
    pub fn for_other(&self) -> bool {
        self.caller.uid.is_root() && self.target.uid != self.caller.uid
    }

    /// Whether the target must prove a current code before a change.
    pub fn needs_proof(&self) -> bool {
        !self.for_other()
    }

    /// Who new files of the target are made as: the target when root acts for them, the
    /// caller otherwise.
    pub fn file_owner(&self) -> &Account {
        if self.for_other() {
            &self.target
        } else {
            &self.caller
        }
    }

    /// The identity new files of the target are made with (see [`Actor::file_owner`]).
    pub fn file_identity(&self) -> Result<Identity> {
        Ok(self.file_owner().identity()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Gid;
    use std::path::PathBuf;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(uid),
            home: PathBuf::from("/home").join(name),
        }
    }

    struct Fixed(Vec<Account>);

    impl Accounts for Fixed {
        fn by_name(&self, name: &str) -> crate::error::Result<Option<Account>> {
            Ok(self.0.iter().find(|a| a.name == name).cloned())
        }
        fn by_uid(&self, uid: Uid) -> crate::error::Result<Option<Account>> {
            Ok(self.0.iter().find(|a| a.uid == uid).cloned())
        }
    }

    #[test]
    fn root_acts_for_others_without_proof() {
        let admin = Actor {
            caller: account("root", 0),
            target: account("bob", 1001),
        };
        assert!(admin.for_other() && !admin.needs_proof());
        assert_eq!(admin.file_owner().name, "bob");
        let own = Actor {
            caller: account("bob", 1001),
            target: account("bob", 1001),
        };
        assert!(own.needs_proof());
    }

    #[test]
    fn only_root_may_name_another_user_and_is_not_told_who_exists() {
        let accounts = Fixed(vec![
            account("root", 0),
            account("bob", 1001),
            account("eve", 1002),
        ]);
        let eve = Uid::from_raw(1002);
        for target in ["bob", "nobody-at-all"] {
            assert!(matches!(
                Actor::resolve(eve, Some(target), &accounts),
                Err(Failure::NotPermitted { .. })
            ));
        }
        assert!(Actor::resolve(eve, Some("eve"), &accounts).is_ok());
        let actor = Actor::resolve(Uid::from_raw(0), Some("bob"), &accounts).unwrap();
        assert_eq!(actor.target.name, "bob");
        assert!(matches!(
            Actor::resolve(Uid::from_raw(0), Some("nobody-at-all"), &accounts),
            Err(Failure::Library(Error::UnknownUser(_)))
        ));
        assert!(matches!(
            Actor::resolve(Uid::from_raw(4242), None, &accounts),
            Err(Failure::NoCaller(_))
        ));
    }
}
