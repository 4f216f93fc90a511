//! The privileged side of the helper: one [`Session`] per run, answering requests for the
//! one user of the process's real uid, through a [`Store`] and the same `admin` operations
//! (and so the same policy, counters and throttling) as the CLI and the login.
//!
//! The rules that make it no oracle and no way around the second factor:
//! - `status` tells what `pam-totp status` tells: never the secret, never a hash;
//! - a change (new recovery codes, disable, replacing an enrollment) needs a current code,
//!   judged and counted exactly like a login; after [`MAX_WRONG`] wrong answers the run
//!   ends, and the throttle in the state applies across runs;
//! - a new enrollment is made here (the secret never comes from the caller) and saved only
//!   after `confirm` with a code from the app, in the same run; a user who is not enrolled
//!   may start one only when the admin allows it (`self_enroll`).

use super::protocol::{MAX_REQUESTS, Refused, Request, Response, VERSION};
use crate::admin::protect::save_new;
use crate::admin::{self, Actor, Enrollment, Failure, NewCodes};
use crate::config::Options;
use crate::error::Result;
use crate::log::Priority;
use crate::policy::{Policy, Verdict};
use crate::store::{ChangeError, Refusal, Store};

/// Wrong codes (proofs or confirmations) one run accepts before it ends.
pub const MAX_WRONG: u32 = 3;

/// One answer, the log line that goes with it, and whether the run ends here.
#[derive(Debug)]
pub struct Reply {
    pub response: Response,
    /// What happened, for syslog (never a secret or a code); `None` for plain reads.
    pub log: Option<(Priority, String)>,
    pub end: bool,
}

impl Reply {
    fn quiet(response: Response) -> Reply {
        Reply {
            response,
            log: None,
            end: false,
        }
    }

    fn logged(response: Response, priority: Priority, what: String) -> Reply {
        Reply {
            response,
            log: Some((priority, what)),
            end: false,
        }
    }

    fn ending(mut self) -> Reply {
        self.end = true;
        self
    }
}

pub struct Session<'a> {
    actor: &'a Actor,
    store: &'a dyn Store,
    options: &'a Options,
    now: &'a dyn Fn() -> Result<u64>,
    greeted: bool,
    requests: usize,
    wrong: u32,
    /// A current code was proved in this run: an enrollment may be replaced.
    proved: bool,
    pending: Option<Enrollment>,
}

impl<'a> Session<'a> {
    pub fn new(
        actor: &'a Actor,
        store: &'a dyn Store,
        options: &'a Options,
        now: &'a dyn Fn() -> Result<u64>,
    ) -> Session<'a> {
        Session {
            actor,
            store,
            options,
            now,
            greeted: false,
            requests: 0,
            wrong: 0,
            proved: false,
            pending: None,
        }
    }

    /// Answers one request line (without its newline).
    pub fn handle(&mut self, line: &[u8]) -> Reply {
        self.requests += 1;
        if self.requests > MAX_REQUESTS {
            return self.bad("too many requests").ending();
        }
        let request = match Request::parse(line) {
            Ok(request) => request,
            Err(why) => return self.bad(why.0).ending(),
        };
        match (&request, self.greeted) {
            (Request::Hello { version }, false) if *version == VERSION => {
                self.greeted = true;
                return Reply::quiet(Response::Hello {
                    user: self.actor.target.name.clone(),
                    location: self.store.location().to_owned(),
                });
            }
            (Request::Hello { .. }, _) => return self.bad("bad hello").ending(),
            (_, false) => return self.bad("no hello").ending(),
            _ => {}
        }
        if self.wrong >= MAX_WRONG {
            return self.bad("too many wrong codes in one run").ending();
        }
        let name = request.name();
        let reply = match self.answer(request) {
            Ok(reply) => reply,
            Err(failure) => {
                let text = failure_text(&failure);
                Reply::logged(
                    Response::Failed(text.clone()),
                    Priority::Error,
                    format!("{name} failed: {text}"),
                )
            }
        };
        if self.wrong >= MAX_WRONG {
            return reply.ending();
        }
        reply
    }

    fn bad(&self, why: &str) -> Reply {
        Reply::logged(
            Response::Refused(Refused::BadRequest),
            Priority::Notice,
            format!("bad request refused ({why})"),
        )
    }

    fn answer(&mut self, request: Request) -> admin::Result<Reply> {
        let now = (self.now)()?;
        let policy = Policy::from(self.options);
        let (actor, store, options) = (self.actor, self.store, self.options);
        Ok(match request {
            Request::Hello { .. } => unreachable_hello(),
            Request::Status => Reply::quiet(Response::Status(store.enrolled()?)),
            Request::Prepare => Reply::quiet(Response::Prepared(store.prepare(now)?)),
            Request::Prove(code) => match store.prove(&code, now, policy) {
                Ok(verdict) => {
                    self.proved = true;
                    Reply::logged(
                        Response::Verdict { verdict, period: 0 },
                        Priority::Info,
                        format!("proved a current code ({})", accepted_what(verdict)),
                    )
                }
                Err(e) => self.refusal("prove", e)?,
            },
            Request::Verify(code) => match store.verify(&code, now, policy) {
                Ok(verified) => {
                    if let Verdict::Wrong { .. } = verified.verdict {
                        self.wrong += 1;
                    }
                    Reply::logged(
                        Response::Verdict {
                            verdict: verified.verdict,
                            period: verified.period,
                        },
                        Priority::Info,
                        format!("verify: {}", verdict_words(verified.verdict)),
                    )
                }
                Err(e) => self.refusal("verify", e)?,
            },
            Request::Disable(code) => match admin::disable(actor, store, Some(&code), now, options)
            {
                Ok(()) => Reply::logged(
                    Response::Done,
                    Priority::Info,
                    "disabled two-factor authentication (enrollment removed)".into(),
                ),
                Err(failure) => self.failure("disable", failure)?,
            },
            Request::RecoveryCodes { code, count } => {
                let new_codes = NewCodes::make(count)?;
                // The codes are shown by the client after this reply (a follow-up: a second
                // round trip so that they are shown before the commit, as the CLI does).
                let mut shown_by_the_client = || Ok(());
                let delivery = admin::Delivery {
                    codes_file: None,
                    show: &mut shown_by_the_client,
                };
                match admin::replace_recovery_codes(
                    actor,
                    store,
                    Some(&code),
                    &new_codes,
                    delivery,
                    now,
                    options,
                ) {
                    Ok(()) => Reply::logged(
                        Response::Codes(new_codes.shown().to_vec()),
                        Priority::Info,
                        format!("replaced the recovery codes ({count} new)"),
                    ),
                    Err(failure) => self.failure("recovery-codes", failure)?,
                }
            }
            Request::Enroll(params) => {
                let enrolled = store.enrolled()?.is_some();
                if enrolled && !self.proved {
                    return Ok(Reply::logged(
                        Response::Refused(Refused::ProofNeeded),
                        Priority::Notice,
                        "enroll refused: already enrolled and no current code proved".into(),
                    ));
                }
                if !enrolled && !options.self_enroll {
                    return Ok(Reply::logged(
                        Response::Refused(Refused::SelfEnrollOff),
                        Priority::Notice,
                        "enroll refused: self_enroll is off in the config".into(),
                    ));
                }
                let enrollment =
                    Enrollment::new(None, params.algorithm, params.digits, params.period)?;
                let secret = enrollment.secret().clone();
                self.pending = Some(enrollment);
                Reply::logged(
                    Response::Secret(secret),
                    Priority::Info,
                    format!(
                        "began an enrollment ({}, {} digits, {} s); nothing saved until confirmed",
                        params.algorithm.as_str(),
                        params.digits,
                        params.period
                    ),
                )
            }
            Request::Confirm { code, count } => {
                let Some(enrollment) = self.pending.as_mut() else {
                    return Ok(Reply::logged(
                        Response::Refused(Refused::NothingToConfirm),
                        Priority::Notice,
                        "confirm refused: no enrollment begun in this run".into(),
                    ));
                };
                if !enrollment.confirm(&code, now, options)? {
                    self.wrong += 1;
                    return Ok(Reply::logged(
                        Response::Refused(Refused::NoMatch),
                        Priority::Notice,
                        "enroll: the confirmation code did not match; nothing saved".into(),
                    ));
                }
                let enrollment = self.pending.take().expect("checked above");
                let new_codes = NewCodes::make(count)?;
                save_new(enrollment, actor, store, &new_codes, self.proved)?;
                Reply::logged(
                    Response::Codes(new_codes.shown().to_vec()),
                    Priority::Info,
                    format!(
                        "enrolled ({}; {count} recovery codes)",
                        if self.proved {
                            "replacing the old enrollment"
                        } else {
                            "new"
                        }
                    ),
                )
            }
        })
    }

    /// A store's refusal of a proof or a check as the reply (wrong answers counted here).
    fn refusal(&mut self, what: &str, error: ChangeError) -> admin::Result<Reply> {
        let refused = match error {
            ChangeError::Failed(e) => return Err(e.into()),
            ChangeError::Refused(Refusal::NotEnrolled) => Refused::NotEnrolled,
            ChangeError::Refused(Refusal::Proof(verdict)) => Refused::Proof(verdict),
            ChangeError::Refused(Refusal::TotpRequired) => Refused::TotpRequired,
            ChangeError::Refused(Refusal::Aborted) => {
                return Err(Failure::Library(crate::Error::Internal(
                    "a change stopped before its commit".into(),
                )));
            }
            // The helper has no resync request.
            ChangeError::Refused(Refusal::NotHotp) => return Err(Failure::NotHotp),
        };
        Ok(self.refused(what, refused))
    }

    fn failure(&mut self, what: &str, failure: Failure) -> admin::Result<Reply> {
        let refused = match failure {
            Failure::NotEnrolled { .. } => Refused::NotEnrolled,
            Failure::Refused(verdict) => Refused::Proof(verdict),
            Failure::TotpRequired => Refused::TotpRequired,
            other => return Err(other),
        };
        Ok(self.refused(what, refused))
    }

    fn refused(&mut self, what: &str, refused: Refused) -> Reply {
        let words = match refused {
            Refused::Proof(verdict) => {
                if let Verdict::Wrong { .. } = verdict {
                    self.wrong += 1;
                }
                verdict_words(verdict)
            }
            Refused::NotEnrolled => "not enrolled".into(),
            Refused::TotpRequired => "a recovery code where a code from the app is needed".into(),
            _ => format!("{refused:?}"),
        };
        Reply::logged(
            Response::Refused(refused),
            Priority::Notice,
            format!("{what} refused: {words}"),
        )
    }
}

fn unreachable_hello() -> Reply {
    // Handled before `answer`; a second hello ends the run there.
    Reply::quiet(Response::Refused(Refused::BadRequest)).ending()
}

fn accepted_what(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Recovery { .. } => "a recovery code, now used up",
        _ => "a code from the app",
    }
}

fn verdict_words(verdict: Verdict) -> String {
    match verdict {
        Verdict::Totp { .. } => "accepted a code from the app (not used up)".into(),
        Verdict::Hotp { counter } => {
            format!("accepted the token's code of counter {counter} (used up)")
        }
        Verdict::Recovery { .. } => "accepted a recovery code (not used up)".into(),
        Verdict::Wrong { reason, failures } => {
            format!("{} ({failures} in a row)", reason.as_str())
        }
        Verdict::Throttled { seconds } => format!("throttled for {seconds} more seconds"),
    }
}

/// A failure as one line for the caller and the log: the library's words (what, where,
/// fix), which never hold a secret or a code.
fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Library(error) => error.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;
    use crate::privileges::Account;
    use crate::secret::SecretString;
    use crate::state::State;
    use crate::store::memory::MemoryStore;
    use nix::unistd::{Gid, Uid};
    use std::path::PathBuf;

    const NOW: u64 = 1_700_000_000;
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn actor() -> Actor {
        let bob = Account {
            name: "bob".into(),
            uid: Uid::from_raw(1001),
            gid: Gid::from_raw(1001),
            home: PathBuf::from("/home/bob"),
        };
        Actor {
            caller: bob.clone(),
            target: bob,
        }
    }

    fn enrolled() -> (State, Vec<SecretString>) {
        let (shown, hashes) = crate::recovery::new_recovery_codes(2).unwrap();
        let state = State::new(
            SecretString::new(SECRET.into()),
            HashAlgorithm::SHA1,
            6,
            30,
            hashes,
        )
        .unwrap();
        (state, shown)
    }

    fn code(state: &State, at: u64) -> String {
        state.code_at(at).unwrap().expose().to_owned()
    }

    /// Runs `lines` through one session; the replies, as the lines sent back.
    fn run(store: &MemoryStore, options: &Options, lines: &[String]) -> Vec<(String, bool)> {
        let actor = actor();
        let now = || Ok(NOW);
        let mut session = Session::new(&actor, store, options, &now);
        let mut replies = Vec::new();
        for line in std::iter::once("hello version=1".to_string()).chain(lines.iter().cloned()) {
            let reply = session.handle(line.as_bytes());
            if let Some((_, what)) = &reply.log {
                // No log line ever holds the secret or a code.
                let code = line.split("code=").nth(1).and_then(|c| c.split(' ').next());
                assert!(!what.contains(SECRET), "{what}");
                assert!(code.is_none_or(|c| !what.contains(c)), "{what}");
            }
            let end = reply.end;
            replies.push((reply.response.encode().trim_end().to_string(), end));
            if end {
                break;
            }
        }
        replies.remove(0);
        replies
    }

    fn line(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn nothing_is_answered_before_hello_and_hostile_lines_end_the_run() {
        let store = MemoryStore::new(Some(enrolled().0));
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        let mut session = Session::new(&actor, &store, &options, &now);
        let reply = session.handle(b"status");
        assert!(reply.end && matches!(reply.response, Response::Refused(Refused::BadRequest)));
        let mut session = Session::new(&actor, &store, &options, &now);
        assert!(!session.handle(b"hello version=1").end);
        let reply = session.handle(b"hello version=1");
        assert!(reply.end, "a second hello is refused");
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        assert!(session.handle(&[b'x'; 100_000]).end);
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        let ends: Vec<bool> = (0..MAX_REQUESTS)
            .map(|_| session.handle(b"status").end)
            .collect();
        assert_eq!(
            ends.iter().filter(|e| **e).count(),
            1,
            "the 17th request ends it"
        );
        assert_eq!(store.writes(), 0);
    }

    #[test]
    fn status_never_tells_the_secret_or_hashes() {
        let store = MemoryStore::new(Some(enrolled().0));
        let replies = run(
            &store,
            &Options::default(),
            &[line("status"), line("prepare")],
        );
        assert!(replies[0].0.starts_with("ok kind=status enrolled=yes"));
        assert!(!replies[0].0.contains(SECRET) && !replies[0].0.contains("argon2"));
        assert_eq!(replies[1].0, "ok kind=prepared state=ready digits=6");
    }

    #[test]
    fn disable_needs_a_right_fresh_code_and_wrong_ones_count() {
        let (state, _) = enrolled();
        let store = MemoryStore::new(Some(state.clone()));
        let right = code(&state, NOW);
        let replies = run(
            &store,
            &Options::default(),
            &[
                format!("disable code={}", code(&state, NOW - 3600)),
                line("disable code=abc"),
            ],
        );
        assert!(
            replies
                .iter()
                .all(|(r, _)| r.starts_with("no kind=proof verdict=wrong"))
        );
        assert_eq!(
            store.state().unwrap().throttle.failures,
            2,
            "counted like a login"
        );
        // A code once accepted (burned by a login) is refused as replayed.
        let mut burned = state.clone();
        burned.last_step = Some(NOW / 30);
        store.set_state(Some(burned));
        let replies = run(
            &store,
            &Options::default(),
            &[format!("disable code={right}")],
        );
        assert!(replies[0].0.contains("reason=replayed"), "{replies:?}");
        assert!(store.state().is_some());
        store.set_state(Some(state));
        let replies = run(
            &store,
            &Options::default(),
            &[format!("disable code={right}")],
        );
        assert_eq!(replies[0].0, "ok kind=done");
        assert!(store.state().is_none());
    }

    #[test]
    fn a_wrong_code_that_cannot_be_counted_is_an_error_not_a_verdict() {
        let store = MemoryStore::new(Some(enrolled().0));
        store.fail_at(crate::store::memory::Step::Write);
        for request in [
            "disable code=000000",
            "prove code=000000",
            "recovery-codes code=000000 count=1",
        ] {
            let replies = run(&store, &Options::default(), &[line(request)]);
            assert!(
                replies[0].0.starts_with("error text="),
                "{request}: {replies:?}"
            );
        }
        store.heal();
        assert_eq!(store.state().unwrap().throttle.failures, 0);
    }

    #[test]
    fn three_wrong_codes_end_the_run() {
        let store = MemoryStore::new(Some(enrolled().0));
        let wrong = vec![line("verify code=000000"); 5];
        let replies = run(&store, &Options::default(), &wrong);
        assert_eq!(replies.len(), 3);
        assert!(replies[2].1);
        assert_eq!(store.state().unwrap().throttle.failures, 3);
    }

    #[test]
    fn recovery_codes_are_made_by_the_helper_after_a_code_from_the_app() {
        let (state, recovery) = enrolled();
        let store = MemoryStore::new(Some(state.clone()));
        let replies = run(
            &store,
            &Options::default(),
            &[
                format!("recovery-codes code={} count=4", recovery[0].expose()),
                format!("recovery-codes code={} count=4", code(&state, NOW)),
            ],
        );
        assert_eq!(replies[0].0, "no kind=totp-required");
        assert!(
            replies[1].0.starts_with("ok kind=codes codes="),
            "{replies:?}"
        );
        let codes = replies[1].0.rsplit('=').next().unwrap().split(',').count();
        assert_eq!(codes, 4);
        assert_eq!(store.state().unwrap().recovery_codes.len(), 4);
    }

    #[test]
    fn enrollment_is_saved_only_after_a_matching_code() {
        let store = MemoryStore::new(None);
        let replies = run(
            &store,
            &Options::default(),
            &[
                line("enroll algorithm=SHA1 digits=6 period=30"),
                line("confirm code=000000 count=3"),
            ],
        );
        let secret = replies[0]
            .0
            .strip_prefix("ok kind=secret secret=")
            .unwrap()
            .to_string();
        assert_eq!(replies[1].0, "no kind=no-match");
        assert!(store.state().is_none(), "nothing saved");
        assert_eq!(secret.len(), 32, "160 bits in base32");
        let replies = run(
            &store,
            &Options::default(),
            &[line("confirm code=123456 count=1")],
        );
        assert_eq!(
            replies[0].0, "no kind=nothing-to-confirm",
            "not across runs"
        );
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        let Response::Secret(secret) = session
            .handle(b"enroll algorithm=SHA1 digits=6 period=30")
            .response
        else {
            panic!("no secret");
        };
        let made_now = State::new(secret.clone(), HashAlgorithm::SHA1, 6, 30, vec![]).unwrap();
        let confirm = format!("confirm code={} count=3", code(&made_now, NOW));
        let reply = session.handle(confirm.as_bytes());
        assert!(matches!(reply.response, Response::Codes(ref c) if c.len() == 3));
        let saved = store.state().unwrap();
        assert_eq!(saved.secret, secret);
        assert_eq!(
            saved.last_step,
            Some(NOW / 30),
            "the confirming code is burned"
        );
    }

    #[test]
    fn enrolled_users_prove_a_code_before_replacing_and_self_enroll_can_be_off() {
        let (state, _) = enrolled();
        let store = MemoryStore::new(Some(state.clone()));
        let replies = run(
            &store,
            &Options::default(),
            &[
                line("enroll algorithm=SHA1 digits=6 period=30"),
                format!("prove code={}", code(&state, NOW)),
                line("enroll algorithm=SHA1 digits=6 period=30"),
            ],
        );
        assert_eq!(replies[0].0, "no kind=proof-needed");
        assert!(replies[1].0.starts_with("ok kind=verdict"));
        assert!(replies[2].0.starts_with("ok kind=secret"));
        let off = Options {
            self_enroll: false,
            ..Options::default()
        };
        let empty = MemoryStore::new(None);
        let replies = run(
            &empty,
            &off,
            &[line("enroll algorithm=SHA1 digits=6 period=30")],
        );
        assert_eq!(replies[0].0, "no kind=self-enroll-off");
    }

    #[test]
    fn an_enrollment_that_appears_meanwhile_is_not_replaced_without_a_proof() {
        let store = MemoryStore::new(None);
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        let Response::Secret(secret) = session
            .handle(b"enroll algorithm=SHA1 digits=6 period=30")
            .response
        else {
            panic!("no secret");
        };
        let (other, _) = enrolled();
        store.set_state(Some(other.clone()));
        let made = State::new(secret, HashAlgorithm::SHA1, 6, 30, vec![]).unwrap();
        let confirm = format!("confirm code={} count=3", code(&made, NOW));
        let reply = session.handle(confirm.as_bytes());
        assert!(
            matches!(reply.response, Response::Failed(_)),
            "{:?}",
            reply.response
        );
        assert_eq!(store.state().unwrap().secret, other.secret);
    }
}
