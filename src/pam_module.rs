//! The PAM front end: `pam_sm_authenticate` and `pam_sm_setcred`. It translates between
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
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag,
    PamResultCode,
};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost};
use pam::module::{PamHandle, PamHooks};
use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};
use zeroize::Zeroizing;

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

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // Nothing to establish: a TOTP code grants no credentials of its own.
        PamResultCode::PAM_SUCCESS
    }
}

fn authenticate(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let args: Option<Vec<&str>> = args.iter().map(|arg| arg.to_str().ok()).collect();
    let options = match args.map(|args| Options::from_module_args(&args)) {
        Some(Ok(options)) => options,
        Some(Err(e)) => {
            log(
                pamh,
                Priority::Error,
                &format!("bad configuration, refusing everyone: {e}"),
            );
            return PamResultCode::PAM_SERVICE_ERR;
        }
        None => {
            log(
                pamh,
                Priority::Error,
                "bad configuration: a module argument is not UTF-8",
            );
            return PamResultCode::PAM_SERVICE_ERR;
        }
    };
    let user = match pamh.get_user(None) {
        Ok(user) => user,
        Err(code) => {
            log(
                pamh,
                Priority::Error,
                &format!("cannot get the user name: {code:?}"),
            );
            return code;
        }
    };
    let decision = {
        let mut conv = PamConversation {
            pamh,
            silent: flags & PAM_SILENT != 0,
        };
        let store_for = |account: &Account| -> crate::error::Result<Box<dyn Store>> {
            Ok(Box::new(FsStore::for_account(&options, account)?))
        };
        let env = Env {
            accounts: &PasswdDatabase,
            store_for: &store_for,
            clock: &clock::now,
        };
        login::authenticate(&user, &options, &env, &mut conv)
    };
    log(pamh, decision.priority, &decision.message);
    // Every failed attempt costs the same few seconds, whichever way it failed: that a
    // wrong code for an enrolled user takes a locked write must not tell who is enrolled.
    if !matches!(
        decision.outcome,
        Outcome::Success(_) | Outcome::Remembered | Outcome::Ignore
    ) && options.fail_delay_ms > 0
        && let Err(rc) = sys::pam_request_fail_delay(pamh, options.fail_delay_ms * 1000)
    {
        log(
            pamh,
            Priority::Error,
            &format!("cannot request the failure delay: pam_fail_delay returned {rc}"),
        );
    }
    if options.debug {
        log(pamh, Priority::Debug, &format!("options: {options:?}"));
    }
    pam_code(decision.outcome)
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
}
