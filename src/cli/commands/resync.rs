//! `pam-totp resync`: two consecutive codes of an HOTP token put its counter in step again.

use super::{Done, note, out};
use crate::cli::messages;
use crate::cli::prompt::{self, Input};
use crate::cli::{CliError, Context, now, store, through_helper};
use pam_totp::admin::{self, Failure};
use pam_totp::policy::Verdict;

pub fn resync(context: &Context, json: bool) -> Done {
    let actor = &context.actor;
    if through_helper(context) {
        return Err(Failure::HotpNeedsRoot.into());
    }
    let store = store(context)?;
    admin::ready_for_code(actor, &store, now()?)?;
    note(messages::RESYNC_INTRO)?;
    let ask = |question| match prompt::ask(question)? {
        Input::Answer(answer) => Ok(answer),
        Input::Interrupted | Input::Closed => Err(CliError::Cancelled(messages::RESYNC_CANCELLED)),
    };
    let first = ask(messages::RESYNC_FIRST)?;
    let second = ask(messages::RESYNC_SECOND)?;
    let counter = match admin::resync(actor, &store, &first, &second, now()?, &context.options) {
        Ok(counter) => counter,
        Err(Failure::Refused(Verdict::Wrong { failures, .. })) => {
            return Err(CliError::Refused(messages::resync_failed(failures)));
        }
        Err(failure) => return Err(failure.into()),
    };
    if json {
        let object = serde_json::json!({
            "user": actor.target.name,
            "resynchronised": true,
            "hotp_counter": counter,
        });
        out(&format!("{object}\n"))?;
    } else {
        out(&messages::resynced(&actor.target.name, counter))?;
    }
    Ok(messages::resynced_log(counter))
}
