//! The PAM front end: `pam_sm_authenticate`, `pam_sm_chauthtok` and `pam_sm_setcred`. It translates between
//! libpam and the library (arguments, the user, the conversation, the result code) and
//! decides nothing itself.

use crate::clock;
use crate::config::Options;
use crate::log::Priority;
use crate::login::{self, Conversation, ConversationFailed, Env, Outcome};
use crate::privileges::{Account, PasswdDatabase};
use crate::secret::SecretString;
use crate::store::Store;
use crate::store::fs::FsStore;
use crate::sys;
use pam::constants::{
    PAM_CHANGE_EXPIRED_AUTHTOK, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT,
    PAM_TEXT_INFO, PamFlag, PamResultCode,
};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, Service};
use pam::module::{PamHandle, PamHooks};
use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};
use zeroize::Zeroizing;

/// libpam's chauthtok phases (security/pam_modules.h).
const PAM_PRELIM_CHECK: PamFlag = 0x4000;
const PAM_UPDATE_AUTHTOK: PamFlag = 0x2000;
/// Handle data: the user whose code this handle's pam_authenticate accepted.
const AUTHENTICATED_KEY: &str = "pam_totp/authenticated";
/// Handle data: what this handle's last PRELIM_CHECK decided, `MARK:USER`.
const CHECKED_KEY: &str = "pam_totp/chauthtok-checked";
const MARK_PASSED: &str = "passed";
const MARK_IGNORED: &str = "ignored";

struct PamTotp;
pam::pam_hooks!(PamTotp);

impl PamHooks for PamTotp {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        // pam_hooks! also catches panics, but silently; this one leaves a line in the log.
        match catch_unwind(AssertUnwindSafe(|| authenticate(pamh, &args, flags))) {
            Ok(code) => code,
            Err(_) => {
                log(
                    pamh,
                    Priority::Error,
                    "internal error (panic); login refused",
                );
                PamResultCode::PAM_AUTH_ERR
            }
        }
    }

    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        match catch_unwind(AssertUnwindSafe(|| chauthtok(pamh, &args, flags))) {
            Ok(code) => code,
            Err(_) => {
                log(
                    pamh,
                    Priority::Error,
                    "internal error (panic); password change refused",
                );
                PamResultCode::PAM_AUTHTOK_ERR
            }
        }
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // Nothing to establish: a TOTP code grants no credentials of its own.
        PamResultCode::PAM_SUCCESS
    }
}

fn authenticate(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let (options, user) = match options_and_user(pamh, args) {
        Ok(found) => found,
        Err(code) => return code,
    };
    // Only this attempt's code may spare an expired-password change its own (a handle
    // that `login` retries keeps its data).
    let _ = sys::pam_set_text(pamh, AUTHENTICATED_KEY, "");
    let decision = decide(pamh, &options, &user, flags, login::authenticate);
    log(pamh, decision.priority, &decision.message);
    if let Outcome::Success(_) = decision.outcome {
        // For a password change that follows at once (an expired password): see chauthtok.
        let _ = sys::pam_set_text(pamh, AUTHENTICATED_KEY, &user);
    }
    request_fail_delay(pamh, &options, &decision.outcome);
    if options.debug {
        log(pamh, Priority::Debug, &format!("options: {options:?}"));
    }
    pam_code(decision.outcome)
}

/// Every failed attempt costs the same few seconds, whichever way it failed: that a wrong
/// code for an enrolled user takes a locked write must not tell who is enrolled.
fn request_fail_delay(pamh: &mut PamHandle, options: &Options, outcome: &Outcome) {
    if is_failure(outcome)
        && options.fail_delay_ms > 0
        && let Err(rc) = sys::pam_request_fail_delay(pamh, options.fail_delay_ms * 1000)
    {
        log(
            pamh,
            Priority::Error,
            &format!("cannot request the failure delay: pam_fail_delay returned {rc}"),
        );
    }
}

/// Whether `outcome` is a failed attempt, which costs the failure delay.
fn is_failure(outcome: &Outcome) -> bool {
    !matches!(
        outcome,
        Outcome::Success(_) | Outcome::Remembered | Outcome::Ignore
    )
}

/// The options (module arguments over the config file) and the user, or the PAM code to
/// return, logged.
fn options_and_user(
    pamh: &mut PamHandle,
    args: &[&CStr],
) -> Result<(Options, String), PamResultCode> {
    let args: Option<Vec<&str>> = args.iter().map(|arg| arg.to_str().ok()).collect();
    let options = match args.map(|args| Options::from_module_args(&args)) {
        Some(Ok(options)) => options,
        Some(Err(e)) => {
            log(
                pamh,
                Priority::Error,
                &format!("bad configuration, refusing everyone: {e}"),
            );
            return Err(PamResultCode::PAM_SERVICE_ERR);
        }
        None => {
            log(
                pamh,
                Priority::Error,
                "bad configuration: a module argument is not UTF-8",
            );
            return Err(PamResultCode::PAM_SERVICE_ERR);
        }
    };
    match pamh.get_user(None) {
        Ok(user) => Ok((options, user)),
        Err(code) => {
            log(
                pamh,
                Priority::Error,
                &format!("cannot get the user name: {code:?}"),
            );
            Err(code)
        }
    }
}

type Flow = fn(&str, &Options, &Env<'_>, &mut dyn Conversation) -> login::Decision;

/// Runs `flow` (the login, or the check before a password change) with libpam's
/// conversation, the filesystem store, the passwd database and the clock.
fn decide(
    pamh: &mut PamHandle,
    options: &Options,
    user: &str,
    flags: PamFlag,
    flow: Flow,
) -> login::Decision {
    let mut conv = PamConversation {
        pamh,
        silent: flags & PAM_SILENT != 0,
    };
    let store_for = |account: &Account| -> crate::error::Result<Box<dyn Store>> {
        // Deep inside the login (user looked up, before the store is opened): the test
        // sees the panic unwind through the library to the catch at the boundary. Compiled
        // only with the test-only feature.
        #[cfg(feature = "test-panic")]
        if account.name == "pam-totp-test-panic" {
            panic!("test-panic: a deliberate panic inside the login");
        }
        Ok(Box::new(FsStore::for_account(options, account)?))
    };
    let env = Env {
        accounts: &PasswdDatabase,
        store_for: &store_for,
        clock: &clock::now,
    };
    flow(user, options, &env, &mut conv)
}

/// `pam_sm_chauthtok`: a code before a password change. libpam calls every password module
/// twice per change: with PAM_PRELIM_CHECK (here: ask for a code, as a login does), then,
/// if every module agreed, with PAM_UPDATE_AUTHTOK (here: nothing to ask; succeed only if
/// this very handle's PRELIM check passed, for this user).
fn chauthtok(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let (options, user) = match options_and_user(pamh, args) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if flags & PAM_PRELIM_CHECK != 0 {
        // Whatever an earlier change in this handle left is void from here on.
        if sys::pam_set_text(pamh, CHECKED_KEY, "").is_err() {
            log(
                pamh,
                Priority::Error,
                &format!("refused {user}: cannot keep the result of the check in the PAM handle"),
            );
            return PamResultCode::PAM_AUTHTOK_ERR;
        }
        let (mark, code) = prelim_check(pamh, &options, &user, flags);
        if let Some(mark) = mark
            && sys::pam_set_text(pamh, CHECKED_KEY, &format!("{mark}:{user}")).is_err()
        {
            log(
                pamh,
                Priority::Error,
                &format!("refused {user}: cannot keep the result of the check in the PAM handle"),
            );
            return PamResultCode::PAM_AUTHTOK_ERR;
        }
        return code;
    }
    if flags & PAM_UPDATE_AUTHTOK != 0 {
        let checked = sys::pam_get_text(pamh, CHECKED_KEY).unwrap_or_default();
        // Used once: another update in this handle needs another check.
        let _ = sys::pam_set_text(pamh, CHECKED_KEY, "");
        return match update_verdict(&checked, &user) {
            Some(code) => code,
            None => {
                log(
                    pamh,
                    Priority::Error,
                    &format!(
                        "refused {user}: password update without a passed code check of this module in PAM_PRELIM_CHECK"
                    ),
                );
                PamResultCode::PAM_AUTHTOK_ERR
            }
        };
    }
    log(
        pamh,
        Priority::Error,
        &format!(
            "refused {user}: chauthtok called with neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK"
        ),
    );
    PamResultCode::PAM_SERVICE_ERR
}

/// The PRELIM_CHECK: the mark to keep for the update (`None`: none, the update fails) and
/// the code to return now.
fn prelim_check(
    pamh: &mut PamHandle,
    options: &Options,
    user: &str,
    flags: PamFlag,
) -> (Option<&'static str>, PamResultCode) {
    let expired = flags & PAM_CHANGE_EXPIRED_AUTHTOK != 0;
    if !expired && nix::unistd::getuid().is_root() {
        // As pam_unix: root (the real user of `passwd`) is asked for nothing to set a
        // password; root could remove the enrollment anyway. An expired password is
        // changed by a root service (sshd, login) for the user, who is asked.
        log(
            pamh,
            Priority::Info,
            &format!(
                "not asked: root changes the password of {user} (as pam_unix, no current code)"
            ),
        );
        return (Some(MARK_IGNORED), PamResultCode::PAM_IGNORE);
    }
    if expired && sys::pam_get_text(pamh, AUTHENTICATED_KEY).as_deref() == Some(user) {
        // Once: a second change in this handle is asked.
        let _ = sys::pam_set_text(pamh, AUTHENTICATED_KEY, "");
        // The login just accepted (and burned) a code in this handle; asking again would
        // make the person wait for the next one.
        log(
            pamh,
            Priority::Info,
            &format!(
                "not asked again: the password of {user} expired at a login that accepted a code just now"
            ),
        );
        return (Some(MARK_PASSED), PamResultCode::PAM_SUCCESS);
    }
    let decision = decide(pamh, options, user, flags, login::before_password_change);
    log(pamh, decision.priority, &decision.message);
    // libpam waits out pam_fail_delay only at the end of pam_authenticate, never in
    // pam_chauthtok: without a wait of our own, `passwd` would let a guesser try codes at
    // once, faster than a login does. The same option and default as a login (the fixed
    // base, not libpam's jitter around it).
    if is_failure(&decision.outcome) && options.fail_delay_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(u64::from(
            options.fail_delay_ms,
        )));
    }
    let mark = match decision.outcome {
        Outcome::Success(_) => Some(MARK_PASSED),
        Outcome::Ignore => Some(MARK_IGNORED),
        _ => None,
    };
    (mark, pam_code(decision.outcome))
}

/// The UPDATE_AUTHTOK answer for what the PRELIM check kept (`"passed:USER"`,
/// `"ignored:USER"`, or nothing): `None` when the update must be refused.
fn update_verdict(checked: &str, user: &str) -> Option<PamResultCode> {
    let (mark, checked_user) = checked.split_once(':')?;
    if checked_user != user {
        return None;
    }
    match mark {
        MARK_PASSED => Some(PamResultCode::PAM_SUCCESS),
        MARK_IGNORED => Some(PamResultCode::PAM_IGNORE),
        _ => None,
    }
}

/// The one place outcomes become PAM result codes.
fn pam_code(outcome: Outcome) -> PamResultCode {
    match outcome {
        Outcome::Success(_) | Outcome::Remembered => PamResultCode::PAM_SUCCESS,
        Outcome::Ignore => PamResultCode::PAM_IGNORE,
        Outcome::Denied => PamResultCode::PAM_AUTH_ERR,
        Outcome::Unavailable => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Outcome::Throttled => PamResultCode::PAM_MAXTRIES,
        Outcome::BadConfig => PamResultCode::PAM_SERVICE_ERR,
        Outcome::ConversationFailed => PamResultCode::PAM_CONV_ERR,
    }
}

fn log(pamh: &PamHandle, priority: Priority, message: &str) {
    sys::pam_log(pamh, priority.as_syslog(), message);
}

/// libpam's conversation, as the library's [`Conversation`].
struct PamConversation<'a> {
    pamh: &'a mut PamHandle,
    /// PAM_SILENT: the application asked for no informational messages.
    silent: bool,
}

impl PamConversation<'_> {
    fn send(&self, style: i32, text: &str) -> Result<Option<SecretString>, ConversationFailed> {
        let conv = match self.pamh.get_item::<Conv>() {
            Ok(Some(conv)) => conv,
            _ => return Err(ConversationFailed),
        };
        let reply = conv.send(style, text).map_err(|_| ConversationFailed)?;
        // A reply that is not UTF-8 is no code; keep it as a (wrong) answer, not an error.
        Ok(reply.map(|bytes| {
            SecretString::from_utf8(bytes.as_bytes())
                .unwrap_or_else(|| SecretString::new("\u{fffd}".into()))
        }))
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt(
        &mut self,
        text: &str,
        echo: bool,
    ) -> Result<Option<SecretString>, ConversationFailed> {
        self.send(
            if echo {
                PAM_PROMPT_ECHO_ON
            } else {
                PAM_PROMPT_ECHO_OFF
            },
            text,
        )
    }

    fn info(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_TEXT_INFO, text);
        }
    }

    fn error(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_ERROR_MSG, text);
        }
    }

    fn authtok(&mut self) -> Option<SecretString> {
        match self.pamh.get_item::<AuthTok>() {
            Ok(Some(token)) => SecretString::from_utf8(token.as_bytes()),
            _ => None,
        }
    }

    fn set_authtok(&mut self, token: &SecretString) -> bool {
        let Ok(token) =
            CString::new(token.expose()).map(|c| Zeroizing::new(c.into_bytes_with_nul()))
        else {
            return false;
        };
        let Ok(token) = CStr::from_bytes_with_nul(&token) else {
            return false;
        };
        sys::pam_set_authtok(self.pamh, token).is_ok()
    }

    fn remote_host(&mut self) -> Option<String> {
        // Not UTF-8: no host to remember (the login is then asked for a code).
        match self.pamh.get_item::<RHost>() {
            Ok(Some(rhost)) => rhost.0.to_str().ok().map(str::to_owned),
            _ => None,
        }
    }

    fn service(&mut self) -> Option<String> {
        // Not UTF-8: no host to remember, as above.
        match self.pamh.get_item::<Service>() {
            Ok(Some(service)) => service.0.to_str().ok().map(str::to_owned),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_succeeds_only_after_this_users_passed_prelim_check() {
        assert_eq!(
            update_verdict("passed:alice", "alice"),
            Some(PamResultCode::PAM_SUCCESS)
        );
        assert_eq!(
            update_verdict("ignored:alice", "alice"),
            Some(PamResultCode::PAM_IGNORE)
        );
        // No check in this handle, a check of someone else, a voided or unknown mark.
        for (checked, user) in [
            ("", "alice"),
            ("passed:bob", "alice"),
            ("passed:alice", "alice2"),
            ("passed", "alice"),
            ("failed:alice", "alice"),
            (":alice", "alice"),
        ] {
            assert_eq!(update_verdict(checked, user), None, "{checked:?} {user}");
        }
    }
}
