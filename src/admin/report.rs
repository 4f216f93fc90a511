//! `report`: for a rollout, where every user stands (enrolled or not, recovery codes left,
//! last success, throttling, a google-authenticator file still there). Never a secret: it
//! reads what `status` reads ([`Store::enrolled`]) and whether the GA file exists.

use super::import::GA_FILE_NAME;
use crate::config::Options;
use crate::error::Error;
use crate::privileges::Account;
use crate::state::LastSuccess;
use crate::store::Store;
use crate::store::fs::FsStore;
use std::io;
use std::path::PathBuf;

/// One user's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    pub user: String,
    /// Where the state lives (or would).
    pub state_file: Option<PathBuf>,
    /// `None` when the state could not be read (see `problem`).
    pub enrolled: Option<bool>,
    pub recovery_codes_left: Option<usize>,
    pub last_success: Option<LastSuccess>,
    /// Seconds before codes are checked again, when throttled now.
    pub throttled_for: Option<u64>,
    /// Whether `~/.google_authenticator` exists; `None` when the home cannot be looked in.
    pub ga_file: Option<bool>,
    /// Why something could not be read (unreadable home, unsafe state file, unknown user).
    pub problem: Option<String>,
}

impl UserReport {
    fn empty(user: &str) -> UserReport {
        UserReport {
            user: user.to_owned(),
            state_file: None,
            enrolled: None,
            recovery_codes_left: None,
            last_success: None,
            throttled_for: None,
            ga_file: None,
            problem: None,
        }
    }
}

/// The report line of `name`; problems go into the line, never stop the report.
pub fn report_user(name: &str, options: &Options, now: u64) -> UserReport {
    let mut line = UserReport::empty(name);
    let account = match Account::by_name(name) {
        Ok(Some(account)) => account,
        Ok(None) => {
            line.problem = Some(Error::UnknownUser(name.to_owned()).to_string());
            return line;
        }
        Err(e) => {
            line.problem = Some(e.to_string());
            return line;
        }
    };
    line.ga_file = ga_file_present(&account);
    let store = match FsStore::for_account(options, &account) {
        Ok(store) => store,
        Err(e) => {
            line.problem = Some(e.to_string());
            return line;
        }
    };
    line.state_file = Some(store.location().to_owned());
    match store.enrolled() {
        Ok(None) => line.enrolled = Some(false),
        Ok(Some(enrolled)) => {
            line.enrolled = Some(true);
            line.recovery_codes_left = Some(enrolled.recovery_codes_left);
            line.last_success = enrolled.last_success;
            let locked_until = enrolled.throttle.locked_until;
            line.throttled_for = (locked_until > now).then(|| locked_until - now);
        }
        Err(e) => line.problem = Some(e.to_string()),
    }
    if line.ga_file.is_none() && line.problem.is_none() {
        line.problem = Some(format!(
            "cannot look in {} for {GA_FILE_NAME}",
            account.home.display()
        ));
    }
    line
}

/// Looks (as the user, without following a link) whether the GA file is there.
fn ga_file_present(account: &Account) -> Option<bool> {
    let _as_user = account.identity().ok()?.assume().ok()?;
    match std::fs::symlink_metadata(account.home.join(GA_FILE_NAME)) {
        Ok(_) => Some(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}
