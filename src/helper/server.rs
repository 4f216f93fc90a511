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
//!   may start one only when the admin allows it (`self_enroll`);
//! - what must be shown is saved only once shown: `confirm` and `recovery-codes` send the
//!   new codes and save nothing; the client writes them out, then sends `commit`. Anything
//!   else meanwhile ends the run with nothing changed, so the old codes keep working.

use super::protocol::{MAX_REQUESTS, Refused, Request, Response, VERSION};
use crate::admin::protect::save_new;
use crate::admin::{self, Actor, Enrollment, Failure, NewCodes};
use crate::config::Options;
use crate::error::Result;
use crate::input::{self, Entered};
use crate::log::Priority;
use crate::policy::{Policy, Verdict};
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::State;
use crate::store::transaction::Backend;
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

/// A change whose codes were sent and that waits for the client's `commit`.
enum Awaiting {
    RecoveryCodes {
        new_codes: NewCodes,
        made_for: Identity,
    },
    Enrollment {
        enrollment: Box<Enrollment>,
        new_codes: NewCodes,
    },
}

impl Awaiting {
    fn what(&self) -> &'static str {
        match self {
            Awaiting::RecoveryCodes { .. } => "the new recovery codes",
            Awaiting::Enrollment { .. } => "the new enrollment",
        }
    }
}

/// What makes a state the one new recovery codes were made for: the same secret (the same
/// enrollment) and the same recovery codes. Logins in between (a burned step, a counted
/// failure) change neither.
struct Identity {
    secret: SecretString,
    recovery_codes: Vec<RecoveryCodeHash>,
}

impl Identity {
    fn of(state: &State) -> Identity {
        Identity {
            secret: state.secret.clone(),
            recovery_codes: state.recovery_codes.clone(),
        }
    }

    fn same(&self, other: &Identity) -> bool {
        let secret = constant_time_eq::constant_time_eq(
            self.secret.expose().as_bytes(),
            other.secret.expose().as_bytes(),
        );
        secret & (self.recovery_codes == other.recovery_codes)
    }
}

pub struct Session<'a> {
    actor: &'a Actor,
    store: &'a dyn Store,
    /// The same storage, read whole (secret included) to tell whether it changed between
    /// making new codes and their commit; nothing read here leaves the helper.
    backend: &'a dyn Backend,
    options: &'a Options,
    now: &'a dyn Fn() -> Result<u64>,
    greeted: bool,
    requests: usize,
    wrong: u32,
    /// A current code was proved in this run, for the enrollment it identifies: that
    /// enrollment (and no other, e.g. one root made since) may be replaced.
    proved: Option<Identity>,
    pending: Option<Enrollment>,
    awaiting: Option<Awaiting>,
}

impl<'a> Session<'a> {
    pub fn new<B: Backend>(
        actor: &'a Actor,
        store: &'a B,
        options: &'a Options,
        now: &'a dyn Fn() -> Result<u64>,
    ) -> Session<'a> {
        Session {
            actor,
            store,
            backend: store,
            options,
            now,
            greeted: false,
            requests: 0,
            wrong: 0,
            proved: None,
            pending: None,
            awaiting: None,
        }
    }

    /// At the end of the run: the log line for a change that was sent but never
    /// committed (the client could not show it, or stopped); nothing was saved.
    pub fn abandoned(&self) -> Option<String> {
        self.awaiting.as_ref().map(|awaiting| {
            format!(
                "{} were sent but the caller ended the run without committing them (not shown?); nothing was changed",
                awaiting.what()
            )
        })
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
        // Strict order: after codes are sent, only their commit; a commit only then.
        match (&request, &self.awaiting) {
            (Request::Commit, None) => return self.bad("commit with nothing to commit").ending(),
            (Request::Commit, Some(_)) => {}
            (_, Some(awaiting)) => {
                let why = format!(
                    "{} instead of the commit of {}; nothing was changed",
                    request.name(),
                    awaiting.what()
                );
                self.awaiting = None;
                return self.bad_owned(why).ending();
            }
            (_, None) => {}
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
        self.bad_owned(why.to_owned())
    }

    fn bad_owned(&self, why: String) -> Reply {
        Reply::logged(
            Response::Refused(Refused::BadRequest),
            Priority::Notice,
            format!("bad request refused ({why})"),
        )
    }

    /// The whole state, to tell whether it changed; `None` if not enrolled.
    fn identity(&self) -> Result<Option<Identity>> {
        Ok(self.backend.load()?.as_ref().map(Identity::of))
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
                    // Counters changed by this very proof are not part of the identity.
                    self.proved = self.identity()?;
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
                let Some(state) = self.backend.load()? else {
                    return Ok(self.refused("recovery-codes", Refused::NotEnrolled));
                };
                let (made_for, digits) = (Identity::of(&state), state.digits);
                drop(state);
                // As the CLI's own path: only a code from the app, and a recovery code is
                // refused unchecked (it would be used up for codes that replace it).
                if let Entered::Recovery { .. } | Entered::LegacyScratch(_) =
                    input::classify(code.expose(), digits)
                {
                    return Ok(self.refused("recovery-codes", Refused::TotpRequired));
                }
                if let Err(e) = store.prove(&code, now, policy) {
                    return self.refusal("recovery-codes", e);
                }
                // The code was judged against the state read above, or one made since with
                // the same secret and codes; otherwise the user asks again.
                if !self.identity()?.is_some_and(|now| now.same(&made_for)) {
                    return Err(changed_meanwhile(actor));
                }
                let new_codes = NewCodes::make(count)?;
                let shown = new_codes.shown().to_vec();
                self.awaiting = Some(Awaiting::RecoveryCodes {
                    new_codes,
                    made_for,
                });
                Reply::logged(
                    Response::Codes(shown),
                    Priority::Info,
                    format!(
                        "proved a code from the app and sent {count} new recovery codes; the old ones stay until the commit"
                    ),
                )
            }
            Request::Commit => match self.awaiting.take() {
                None => unreachable_commit(),
                Some(Awaiting::RecoveryCodes {
                    new_codes,
                    made_for,
                }) => {
                    let backend = self.backend;
                    let mut changed = false;
                    // Under the store's lock, just before the write: the unlocked read
                    // sees every committed change (writers lock).
                    let mut still_the_same = || {
                        let same = backend
                            .load()
                            .map_err(|e| std::io::Error::other(e.to_string()))?
                            .is_some_and(|state| Identity::of(&state).same(&made_for));
                        if !same {
                            changed = true;
                            return Err(std::io::Error::other("changed"));
                        }
                        Ok(())
                    };
                    let delivery = admin::Delivery {
                        codes_file: None,
                        show: &mut still_the_same,
                    };
                    let count = new_codes.len();
                    match admin::replace_recovery_codes(
                        actor, store, None, &new_codes, delivery, now, options,
                    ) {
                        Ok(()) => Reply::logged(
                            Response::Done,
                            Priority::Info,
                            format!(
                                "replaced the recovery codes ({count} new, shown by the caller)"
                            ),
                        ),
                        Err(_) if changed => return Err(changed_meanwhile(actor)),
                        Err(failure) => self.failure("commit", failure)?,
                    }
                }
                Some(Awaiting::Enrollment {
                    enrollment,
                    new_codes,
                }) => {
                    let (backend, self_enroll) = (self.backend, options.self_enroll);
                    let proved = self.proved.as_ref();
                    let mut changed = false;
                    // Under the store's lock: the enrollment the code was proved for (or, if
                    // self-enrollment is on, none at all) is still the one there.
                    let mut still_proved = || {
                        let same = match backend.load() {
                            Ok(None) => self_enroll,
                            Ok(Some(state)) => proved.is_some_and(|p| Identity::of(&state).same(p)),
                            Err(_) => false,
                        };
                        changed |= !same;
                        same
                    };
                    let replace: Option<&mut dyn FnMut() -> bool> = match proved {
                        Some(_) => Some(&mut still_proved),
                        None => None,
                    };
                    let replacing = replace.is_some();
                    match save_new(*enrollment, actor, store, &new_codes, replace) {
                        Ok(()) => {}
                        Err(_) if changed => return Err(changed_meanwhile(actor)),
                        Err(failure) => return Err(failure),
                    }
                    Reply::logged(
                        Response::Done,
                        Priority::Info,
                        format!(
                            "enrolled ({}; {} recovery codes, shown by the caller)",
                            if replacing {
                                "replacing the old enrollment"
                            } else {
                                "new"
                            },
                            new_codes.len()
                        ),
                    )
                }
            },
            Request::Enroll(params) => {
                let enrolled = store.enrolled()?.is_some();
                if enrolled && self.proved.is_none() {
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
                let Some(enrollment) = self.pending.take() else {
                    return Ok(unreachable_commit());
                };
                let new_codes = NewCodes::make(count)?;
                let shown = new_codes.shown().to_vec();
                self.awaiting = Some(Awaiting::Enrollment {
                    enrollment: Box::new(enrollment),
                    new_codes,
                });
                Reply::logged(
                    Response::Codes(shown),
                    Priority::Info,
                    format!(
                        "enroll: the confirmation code matched; sent {count} recovery codes; nothing saved until the commit"
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

/// The state changed between making new codes and their commit (or their proof).
fn changed_meanwhile(actor: &Actor) -> Failure {
    Failure::Library(crate::Error::Helper(format!(
        "the enrollment of {} changed meanwhile (a new enrollment or new recovery codes); nothing was changed: run the command again",
        actor.target.name
    )))
}

fn unreachable_commit() -> Reply {
    // `handle` refuses a commit with nothing awaiting before `answer`.
    Reply::quiet(Response::Refused(Refused::BadRequest)).ending()
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
                line("commit"),
            ],
        );
        assert_eq!(replies[0].0, "no kind=totp-required");
        assert_eq!(replies[2].0, "ok kind=done");
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
        assert!(store.state().is_none(), "nothing saved before the commit");
        assert!(matches!(session.handle(b"commit").response, Response::Done));
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
        session.handle(confirm.as_bytes());
        let reply = session.handle(b"commit");
        assert!(
            matches!(reply.response, Response::Failed(_)),
            "{:?}",
            reply.response
        );
        assert_eq!(store.state().unwrap().secret, other.secret);
    }

    /// Found by review: a proof is for the enrollment it was proved against. Someone with
    /// one stolen code who proves it, waits while root enrolls the user anew, then enrolls
    /// must not overwrite root's enrollment; replacing the proved one still works.
    #[test]
    fn a_proof_replaces_only_the_enrollment_it_was_proved_for() {
        let (state, _) = enrolled();
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        let enroll_after_proof = |store: &MemoryStore, root_enrolls: Option<&State>| {
            let mut session = Session::new(&actor, store, &options, &now);
            session.handle(b"hello version=1");
            let prove = format!("prove code={}", code(&state, NOW));
            assert!(matches!(
                session.handle(prove.as_bytes()).response,
                Response::Verdict { .. }
            ));
            if let Some(new) = root_enrolls {
                store.set_state(Some(new.clone()));
            }
            let Response::Secret(secret) = session
                .handle(b"enroll algorithm=SHA1 digits=6 period=30")
                .response
            else {
                panic!("no secret");
            };
            let made = State::new(secret.clone(), HashAlgorithm::SHA1, 6, 30, vec![]).unwrap();
            let confirm = format!("confirm code={} count=3", code(&made, NOW + 30));
            let _ = session.handle(confirm.as_bytes());
            (session.handle(b"commit").response, secret)
        };
        let (roots, _) = enrolled();
        let roots = State {
            secret: SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            ..roots
        };
        let store = MemoryStore::new(Some(state.clone()));
        let (reply, _) = enroll_after_proof(&store, Some(&roots));
        assert!(
            matches!(reply, Response::Failed(ref t) if t.contains("changed meanwhile")),
            "{reply:?}"
        );
        assert_eq!(store.state().unwrap().secret, roots.secret, "root's kept");
        // Nothing changed in between: the proved enrollment is replaced.
        let store = MemoryStore::new(Some(state.clone()));
        let (reply, secret) = enroll_after_proof(&store, None);
        assert!(matches!(reply, Response::Done), "{reply:?}");
        assert_eq!(store.state().unwrap().secret, secret);
    }

    /// Issue 13 item 9 through the helper: codes are sent, and saved only at the commit.
    #[test]
    fn new_recovery_codes_are_saved_only_at_the_commit_after_them() {
        let (state, old_codes) = enrolled();
        let right = format!("recovery-codes code={} count=3", code(&state, NOW));
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        // The client stops after the codes (it could not show them): nothing changes.
        let store = MemoryStore::new(Some(state.clone()));
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        let reply = session.handle(right.as_bytes());
        assert!(matches!(reply.response, Response::Codes(ref c) if c.len() == 3));
        let kept = store.state().unwrap();
        assert_eq!(kept.recovery_codes, state.recovery_codes, "old codes kept");
        assert_eq!(kept.last_step, Some(NOW / 30), "the proof is used up");
        assert!(
            session
                .abandoned()
                .is_some_and(|l| l.contains("nothing was changed"))
        );
        // Any other request instead of the commit ends the run, with nothing changed.
        store.set_state(Some(state.clone()));
        let replies = run(&store, &options, &[right.clone(), line("status")]);
        assert_eq!(replies[1], ("no kind=bad-request".to_string(), true));
        assert_eq!(store.state().unwrap().recovery_codes, state.recovery_codes);
        // A commit with nothing before it is refused, and so is a second one.
        let replies = run(&store, &options, &[line("commit")]);
        assert_eq!(replies[0], ("no kind=bad-request".to_string(), true));
        store.set_state(Some(state.clone()));
        let replies = run(
            &store,
            &options,
            &[right.clone(), line("commit"), line("commit")],
        );
        assert_eq!(replies[1].0, "ok kind=done");
        assert_eq!(replies[2], ("no kind=bad-request".to_string(), true));
        let saved = store.state().unwrap();
        assert_eq!(saved.recovery_codes.len(), 3);
        assert_ne!(saved.recovery_codes, state.recovery_codes);
        drop(old_codes);
    }

    #[test]
    fn new_recovery_codes_are_not_saved_over_a_state_that_changed_meanwhile() {
        let (state, _) = enrolled();
        let actor = actor();
        let options = Options::default();
        let now = || Ok(NOW);
        let store = MemoryStore::new(Some(state.clone()));
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        let right = format!("recovery-codes code={} count=3", code(&state, NOW));
        assert!(matches!(
            session.handle(right.as_bytes()).response,
            Response::Codes(_)
        ));
        // Root replaced the codes meanwhile (a login in between would change neither).
        let (other, _) = enrolled();
        let mut replaced = store.state().unwrap();
        replaced.recovery_codes = other.recovery_codes.clone();
        store.set_state(Some(replaced.clone()));
        let reply = session.handle(b"commit");
        assert!(
            matches!(reply.response, Response::Failed(ref t) if t.contains("changed meanwhile")),
            "{:?}",
            reply.response
        );
        assert_eq!(
            store.state().unwrap().recovery_codes,
            replaced.recovery_codes
        );
        // A login between the codes and the commit does not stop the commit.
        store.set_state(Some(state.clone()));
        let mut session = Session::new(&actor, &store, &options, &now);
        session.handle(b"hello version=1");
        session.handle(right.as_bytes());
        let mut logged_in = store.state().unwrap();
        logged_in.throttle.failures = 1;
        store.set_state(Some(logged_in));
        assert!(matches!(session.handle(b"commit").response, Response::Done));
        assert_eq!(store.state().unwrap().recovery_codes.len(), 3);
    }

    #[test]
    fn an_enrollment_is_saved_only_at_the_commit_after_its_codes() {
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
        let made = State::new(secret, HashAlgorithm::SHA1, 6, 30, vec![]).unwrap();
        let confirm = format!("confirm code={} count=2", code(&made, NOW));
        assert!(matches!(
            session.handle(confirm.as_bytes()).response,
            Response::Codes(ref c) if c.len() == 2
        ));
        assert!(store.state().is_none());
        assert!(session.abandoned().is_some());
        let reply = session.handle(b"prove code=000000");
        assert!(reply.end && matches!(reply.response, Response::Refused(Refused::BadRequest)));
        assert!(store.state().is_none(), "nothing saved without the commit");
        assert_eq!(store.writes(), 0);
    }
}
