//! The rules of every change, written once over a [`Backend`] that can read, lock and
//! write a [`State`]: read under the lock, decide, write, in that order, and what happens
//! when a write fails. [`FsStore`](super::fs::FsStore) and
//! `MemoryStore` are backends; any backend is a [`Store`].

use super::{
    BeforeCommit, Change, ChangeError, Prepared, Proof, Recorded, Refusal, Store, Verified,
};
use crate::error::{Error, Result};
use crate::input::{self, Entered};
use crate::otp::{self, Kind};
use crate::policy::{self, CountFailure, Policy, Verdict, WrongReason};
use crate::recovery::RecoveryCodeHash;
use crate::secret::SecretString;
use crate::state::{Enrolled, LastSuccess, Method, RemoteHost, State, Throttle};
use std::path::{Path, PathBuf};

/// Whether taking the lock may create what is missing (enrollment) or finds it absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Yes,
    No,
}

/// Storage that can be read, and locked for a read-decide-write cycle.
pub trait Backend {
    fn location(&self) -> &Path;
    /// Reads without the lock; `None` if not enrolled.
    fn load(&self) -> Result<Option<State>>;
    /// [`Backend::load`] before a change that follows (a login's prompt, then its locked
    /// cycle): a backend may keep what it opened for that cycle.
    fn load_for_change(&self) -> Result<Option<State>> {
        self.load()
    }
    /// Takes the lock. `Error::NotEnrolled` when there is nowhere to keep a state, unless
    /// `create`.
    fn lock(&self, create: Create) -> Result<Box<dyn Locked + '_>>;
    /// A change (not a login: its note goes in the decision's log line) repaired a read
    /// that fell back ([`cover_fallback`]); `note` says what and where, for whoever runs
    /// the change to report (the CLI, the helper). Default: nobody is told.
    fn note_repair(&self, _note: &str) {}
}

/// A backend under its lock; the lock is released when this is dropped.
pub trait Locked {
    fn read(&self) -> Result<Option<State>>;
    /// Replaces the state atomically: on error the old one is intact.
    fn write(&self, state: &State) -> Result<()>;
    /// Removes the state; `false` if there was none.
    fn remove(&self) -> Result<bool>;
    /// After `read`: whether it fell back to the older of two copies because the newer
    /// one is torn or damaged, so that the newest acknowledged write may be lost; if so,
    /// what and where, for the log. Backends keeping one copy never fall back.
    fn fell_back(&self) -> Option<String> {
        None
    }
    /// Keeps the state file as it is under a second name (its name plus `suffix`), to
    /// look at later; the path of the copy. Backends without files keep nothing aside.
    fn keep_aside(&self, _suffix: &str) -> Result<PathBuf> {
        Err(Error::Internal(
            "this store keeps no damaged state aside".into(),
        ))
    }
    /// Releases the lock after a cycle that only read (a login asking, before its prompt,
    /// whether the host is remembered), leaving what the cycle opened to the backend's
    /// next one. Default: as dropped.
    fn release_after_reading(self: Box<Self>) {}
}

/// A borrowed backend is one too (a test keeps its store and lends it to the login).
impl<B: Backend + ?Sized> Backend for &B {
    fn location(&self) -> &Path {
        (**self).location()
    }
    fn load(&self) -> Result<Option<State>> {
        (**self).load()
    }
    fn load_for_change(&self) -> Result<Option<State>> {
        (**self).load_for_change()
    }
    fn lock(&self, create: Create) -> Result<Box<dyn Locked + '_>> {
        (**self).lock(create)
    }
    fn note_repair(&self, note: &str) {
        (**self).note_repair(note)
    }
}

impl<B: Backend> Store for B {
    fn location(&self) -> &Path {
        Backend::location(self)
    }

    fn prepare(&self, now: u64) -> Result<Prepared> {
        Ok(match self.load_for_change()? {
            None => Prepared::NotEnrolled,
            Some(state) => match state.throttled_for(now) {
                Some(seconds) => Prepared::Throttled { seconds },
                None => Prepared::Ready {
                    digits: state.digits,
                },
            },
        })
    }

    fn check_and_record(
        &self,
        answer: &SecretString,
        now: u64,
        policy: Policy,
        count: CountFailure,
        remember: Option<&RemoteHost>,
    ) -> Result<Recorded> {
        let locked = self.lock(Create::No)?;
        let mut state = locked
            .read()?
            .ok_or_else(|| Error::NotEnrolled(Backend::location(self).to_owned()))?;
        let note = cover_fallback(&*locked, &mut state, now, policy)?;
        let verdict = policy::judge(&mut state, answer, now, policy, count)?;
        if verdict.accepted()
            && let Some(host) = remember
        {
            // Only a login that presented a right code remembers (or refreshes) a host.
            state.remember(host, now)?;
        }
        if verdict.changes_state(count) {
            // A success that cannot be burned is no success; a failure that cannot be
            // counted is the same error, with the same message: were it a plain "wrong
            // code", a full or read-only disk would tell right codes from wrong ones,
            // unthrottled.
            locked.write(&state)?;
        }
        Ok(Recorded { verdict, note })
    }

    fn remembers_host(&self, host: &RemoteHost, now: u64, grace: u64) -> Result<Option<u64>> {
        // Under the lock, because only a locked read tells whether it fell back to the older
        // counters record: that record may lack the newest write (a lockout, say), and a
        // login that skips the code writes nothing, so it would never be repaired. A
        // fallback asks for the code, whose locked cycle covers and repairs it.
        let locked = match self.lock(Create::No) {
            Ok(locked) => locked,
            Err(Error::NotEnrolled(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let remembered = match locked.read()? {
            Some(_) if locked.fell_back().is_some() => None,
            Some(state) => state.remembers(host, now, grace)?,
            None => None,
        };
        // Read only: the login's locked cycle after the prompt goes on from what this opened.
        locked.release_after_reading();
        Ok(remembered)
    }

    fn enrolled(&self) -> Result<Option<Enrolled>> {
        Ok(self.load()?.map(|state| state.enrolled()))
    }

    fn prove(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verdict> {
        let (locked, mut state) = lock_existing(self, now, policy)?;
        let verdict = judge_proof(&*locked, &mut state, answer, now, policy)?;
        // A success that cannot be burned is no success.
        locked.write(&state)?;
        Ok(verdict)
    }

    fn verify(&self, answer: &SecretString, now: u64, policy: Policy) -> Change<Verified> {
        let (locked, state) = lock_existing(self, now, policy)?;
        if let Some(seconds) = state.throttled_for(now) {
            return Ok(Verified {
                verdict: Verdict::Throttled { seconds },
                period: state.period,
            });
        }
        // Counted first, as for a change (see `judge_proof`): a right code then takes the
        // count back, a wrong one keeps it. An accepted code is not used up.
        locked.write(&policy::counted_as_failure(&state, now, policy))?;
        let mut trial = state.clone();
        let verdict = policy::judge(&mut trial, answer, now, policy, CountFailure::Yes)?;
        if let Verdict::Hotp { .. } = verdict {
            // An HOTP token has moved past the code it showed: checked is used, as at a
            // login, or the counter would fall behind the token by one per check.
            locked.write(&trial)?;
        } else if verdict.accepted() {
            locked.write(&state)?;
        }
        Ok(Verified {
            verdict,
            period: state.period,
        })
    }

    fn enroll(&self, state: &State, before_commit: &mut dyn BeforeCommit) -> Change<()> {
        let locked = match self.lock(Create::Yes) {
            Ok(locked) => locked,
            Err(Error::NotEnrolled(_)) => return Err(ChangeError::Refused(Refusal::NotEnrolled)),
            Err(e) => return Err(e.into()),
        };
        if before_commit.run().is_err() {
            return Err(ChangeError::Refused(Refusal::Aborted));
        }
        // A new enrollment remembers no host, whatever the caller's state held.
        let mut state = state.clone();
        state.remembered_hosts.clear();
        if let Err(e) = locked.write(&state) {
            before_commit.undo();
            return Err(e.into());
        }
        Ok(())
    }

    fn replace_recovery_codes(
        &self,
        proof: Proof<'_>,
        codes: &[RecoveryCodeHash],
        now: u64,
        policy: Policy,
        before_commit: &mut dyn BeforeCommit,
    ) -> Change<()> {
        let (locked, mut state) = lock_existing(self, now, policy)?;
        let proved = check_proof(&*locked, &mut state, proof, now, policy)?;
        let burned = state.clone();
        state.recovery_codes = codes.to_vec();
        // New recovery codes are made after a lost or exposed device: hosts that passed
        // before must give a code again.
        state.remembered_hosts.clear();
        if before_commit.run().is_err() {
            // The accepted code stays used up; the old recovery codes stay valid.
            if proved {
                locked.write(&burned)?;
            }
            return Err(ChangeError::Refused(Refusal::Aborted));
        }
        if let Err(e) = locked.write(&state) {
            before_commit.undo();
            return Err(e.into());
        }
        Ok(())
    }

    fn remove(&self, proof: Proof<'_>, now: u64, policy: Policy) -> Change<()> {
        let (locked, mut state) = lock_existing(self, now, policy)?;
        check_proof(&*locked, &mut state, proof, now, policy)?;
        if !locked.remove()? {
            return Err(ChangeError::Refused(Refusal::NotEnrolled));
        }
        Ok(())
    }

    fn set_aside_damaged(&self, now: u64, remove: bool) -> Change<Option<PathBuf>> {
        let locked = match self.lock(Create::No) {
            Ok(locked) => locked,
            Err(Error::NotEnrolled(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match locked.read() {
            Err(Error::Corrupt { .. }) => {
                let kept = locked.keep_aside(&format!(".damaged-{now}"))?;
                if remove {
                    locked.remove()?;
                }
                Ok(Some(kept))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn clear_throttle(&self) -> Change<Throttle> {
        // Root's unlock has no login's time or options; a fallback is covered as for the
        // widest window (the throttle is cleared anyway).
        let now = crate::clock::now()?;
        let widest = Policy {
            window: crate::otp::MAX_WINDOW,
            max_failures: u32::MAX,
            hotp_window: crate::otp::hotp::MAX_HOTP_WINDOW,
        };
        let (locked, mut state) = lock_existing(self, now, widest)?;
        let was = std::mem::take(&mut state.throttle);
        if was != Throttle::default() {
            locked.write(&state)?;
        }
        Ok(was)
    }

    fn resync(
        &self,
        first: &SecretString,
        second: &SecretString,
        now: u64,
        policy: Policy,
    ) -> Change<u64> {
        let (locked, mut state) = lock_existing(self, now, policy)?;
        if state.kind != Kind::Hotp {
            return Err(ChangeError::Refused(Refusal::NotHotp));
        }
        if let Some(seconds) = state.throttled_for(now) {
            return Err(ChangeError::Refused(Refusal::Proof(Verdict::Throttled {
                seconds,
            })));
        }
        // Counted first, as every proof (see `judge_proof`): two codes searched in a wide
        // window are a guess like any other until they match.
        let counted = policy::counted_as_failure(&state, now, policy);
        locked.write(&counted)?;
        let codes = |answer: &SecretString| match input::classify(answer.expose(), state.digits) {
            Entered::Totp(code) => Some(code),
            _ => None,
        };
        let found = match (codes(first), codes(second)) {
            (Some(first), Some(second)) => otp::hotp::find_resync(
                &state.secret,
                state.params(),
                state.hotp_counter,
                &first,
                &second,
            )?,
            _ => None,
        };
        let Some(counter) = found else {
            return Err(ChangeError::Refused(Refusal::Proof(Verdict::Wrong {
                reason: WrongReason::WrongCode,
                failures: counted.throttle.failures,
            })));
        };
        // find_resync never returns u64::MAX: + 1 cannot overflow.
        state.hotp_counter = counter + 1;
        state.throttle = Throttle::default();
        state.last_success = Some(LastSuccess {
            time: now,
            method: Method::Hotp,
        });
        locked.write(&state)?;
        Ok(state.hotp_counter)
    }
}

/// Locks an existing enrollment; a missing state (or nowhere to keep one) is not enrolled.
/// A read that fell back is covered (see [`cover_fallback`]) as of `now` under `policy`.
fn lock_existing<B: Backend + ?Sized>(
    backend: &B,
    now: u64,
    policy: Policy,
) -> Change<(Box<dyn Locked + '_>, State)> {
    let locked = match backend.lock(Create::No) {
        Ok(locked) => locked,
        Err(Error::NotEnrolled(_)) => return Err(ChangeError::Refused(Refusal::NotEnrolled)),
        Err(e) => return Err(e.into()),
    };
    let mut state = locked
        .read()?
        .ok_or(ChangeError::Refused(Refusal::NotEnrolled))?;
    if let Some(note) = cover_fallback(&*locked, &mut state, now, policy)? {
        backend.note_repair(&note);
    }
    Ok((locked, state))
}

/// When the read under the lock fell back to an older copy, `state` may be one write
/// behind: it is made to cover whatever that write did ([`policy::cover_lost_write`]) and
/// written back before anything is judged, which also repairs the damaged copy (the next
/// read finds two valid ones and does not count again). The note says what happened.
fn cover_fallback(
    locked: &dyn Locked,
    state: &mut State,
    now: u64,
    policy: Policy,
) -> Result<Option<String>> {
    let Some(note) = locked.fell_back() else {
        return Ok(None);
    };
    policy::cover_lost_write(state, now, policy);
    locked.write(state)?;
    Ok(Some(note))
}

/// Checks the proof a change asks for; `true` if a code was accepted (and must be burned).
fn check_proof(
    locked: &dyn Locked,
    state: &mut State,
    proof: Proof<'_>,
    now: u64,
    policy: Policy,
) -> Change<bool> {
    let answer = match proof {
        Proof::NotNeeded => return Ok(false),
        Proof::Code(answer) => answer,
        Proof::TotpCode(answer) => {
            if let Entered::Recovery { .. } | Entered::LegacyScratch(_) =
                input::classify(answer.expose(), state.digits)
            {
                return Err(ChangeError::Refused(Refusal::TotpRequired));
            }
            answer
        }
    };
    judge_proof(locked, state, answer, now, policy)?;
    Ok(true)
}

/// Judges a proof as a login would, having written it down as a failure first: `Ok` only
/// when accepted, and then the caller writes the success (or removes the state).
fn judge_proof(
    locked: &dyn Locked,
    state: &mut State,
    answer: &SecretString,
    now: u64,
    policy: Policy,
) -> Change<Verdict> {
    if let Some(seconds) = state.throttled_for(now) {
        return Err(ChangeError::Refused(Refusal::Proof(Verdict::Throttled {
            seconds,
        })));
    }
    // Counted first: the attempt is written down as a failure, durably, before it is judged.
    // Whoever can stop a write half-way (a full disk, a caller's resource limits or signals
    // on the setuid helper, a kill between the verdict and the write) then learns nothing:
    // no verdict exists until the failure is on disk, and only a right code takes it back
    // (its caller writes the success, or removes the state). Otherwise a wrong code whose
    // write failed would go uncounted while a right one still disabled or verified.
    locked.write(&policy::counted_as_failure(state, now, policy))?;
    let verdict = policy::judge(state, answer, now, policy, CountFailure::Yes)?;
    match verdict {
        Verdict::Throttled { .. } | Verdict::Wrong { .. } => {
            // `state` now holds exactly what was written above.
            Err(ChangeError::Refused(Refusal::Proof(verdict)))
        }
        Verdict::Totp { .. } | Verdict::Hotp { .. } | Verdict::Recovery { .. } => Ok(verdict),
    }
}
