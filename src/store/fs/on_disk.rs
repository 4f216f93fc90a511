//! What a read found on disk, and the parse cache that spares the second read of a login
//! from parsing and validating again.

use super::*;
use crate::otp::Kind;
use crate::secret::SecretBytes;
use std::sync::Arc;

/// A state file's contents, parsed: a whole v1 state, or a v2 enrollment.
#[derive(Clone)]
pub(super) enum Parsed {
    V1(State),
    /// Shared with the cache: a cache hit hands it out without copying the hashes.
    V2(Arc<Enrollment>),
}

/// What was read: the state, and for v2 the counters file open and its current record.
pub(super) enum OnDisk {
    V1(State),
    V2(V2),
}

pub(super) struct V2 {
    pub(super) enrollment: Arc<Enrollment>,
    pub(super) counters: File,
    pub(super) counters_id: FileId,
    /// Opened for writing (a read before a change may have had to settle for reading).
    pub(super) writable: bool,
    pub(super) current: Picked,
    /// The other block was torn or damaged when this was read: the newest write may be
    /// lost (see [`Found`]), and the transaction covers for it before judging.
    pub(super) other_damaged: Option<Invalid>,
}

impl V2 {
    /// The model: the enrollment with the counters applied (burned codes left out).
    pub(super) fn state(&self) -> State {
        let counters = &self.current.record.counters;
        State {
            secret: self.enrollment.secret.clone(),
            algorithm: self.enrollment.algorithm,
            digits: self.enrollment.digits,
            period: self.enrollment.period,
            last_step: counters.last_step,
            throttle: counters.throttle.clone(),
            last_success: counters.last_success,
            recovery_codes: self
                .enrollment
                .recovery_codes
                .iter()
                .filter(|code| !counters.burned().iter().any(|b| b.as_str() == &*code.id))
                .cloned()
                .collect(),
            kind: self.enrollment.kind,
            // Present exactly for an HOTP enrollment (`FsStore::read_in` checks).
            hotp_counter: counters.hotp_counter.unwrap_or(0),
            remembered_hosts: counters.hosts().to_vec(),
        }
    }

    /// The counters that make `state` out of this enrollment, or `None` when `state` is
    /// another enrollment (new secret, parameters or recovery codes): that is a new
    /// enrollment file. Codes missing from `state` are burned; none can come back.
    pub(super) fn counters_for(&self, state: &State) -> Option<Counters> {
        let e = &self.enrollment;
        // `state`'s codes are the enrollment's with the used ones left out, in the same
        // order ([`V2::state`]; a login removes one, keeping the order): one walk checks
        // that, instead of a search of the list per code. Any other list is taken for a
        // new enrollment (`None`), which is always safe.
        let mut enrolled = e.recovery_codes.iter();
        if state.secret != e.secret
            || state.algorithm != e.algorithm
            || state.digits != e.digits
            || state.period != e.period
            || state.kind != e.kind
            || !state
                .recovery_codes
                .iter()
                .all(|code| enrolled.any(|c| c == code))
        {
            return None;
        }
        let mut counters = self.current.record.counters.clone();
        counters.last_step = state.last_step;
        counters.throttle = state.throttle.clone();
        counters.last_success = state.last_success;
        counters.hotp_counter = (state.kind == Kind::Hotp).then_some(state.hotp_counter);
        counters.replace_hosts(&state.remembered_hosts);
        let mut kept = state.recovery_codes.iter().peekable();
        for code in &e.recovery_codes {
            if kept.next_if(|&k| k == code).is_some() {
                continue;
            }
            // Gone from `state`: used up. The counters burn by id, and two imported scratch
            // codes may share one: burning the id would kill the other as well, and not
            // burning it would let this one in again. Such a code is taken out of the
            // enrollment file itself instead (a new enrollment file, `None`).
            if state.recovery_codes.iter().any(|c| c.id == code.id) {
                return None;
            }
            // The enrollment holds at most as many codes as the list has room for.
            counters.burn(RecoveryId::parse(&code.id)?).ok()?;
        }
        Some(counters)
    }
}

/// The last bytes read and what they parsed to. A login reads the state twice (before
/// prompting, then under the lock); when nothing changed in between, the second read
/// skips parsing and validating it again (the enrollment's TOML, the counters' checksums).
#[derive(Default)]
pub(super) struct ParseCache {
    pub(super) state: RefCell<Option<(SecretBytes, Parsed)>>,
    pub(super) counters: RefCell<Option<(Vec<u8>, EnrollmentId, Found)>>,
}

impl ParseCache {
    pub(super) fn parse(&self, bytes: SecretBytes, path: &Path) -> Result<Parsed> {
        if let Some((cached, parsed)) = &*self.state.borrow()
            && **cached == *bytes
        {
            return Ok(parsed.clone());
        }
        // Everything this build writes starts with its version line: no second parse to
        // tell the versions apart.
        let parsed = if bytes.starts_with(b"version = 2\n") {
            Parsed::V2(Arc::new(Enrollment::parse(&bytes, path)?))
        } else {
            match State::parse(&bytes, path) {
                Ok(state) => Parsed::V1(state),
                Err(e) => match enrollment_v2::file_version(&bytes) {
                    Some(enrollment_v2::VERSION) => {
                        Parsed::V2(Arc::new(Enrollment::parse(&bytes, path)?))
                    }
                    _ => return Err(e),
                },
            }
        };
        *self.state.borrow_mut() = Some((bytes, parsed.clone()));
        Ok(parsed)
    }

    pub(super) fn pick(
        &self,
        bytes: Vec<u8>,
        expected: &EnrollmentId,
    ) -> std::result::Result<Found, CountersError> {
        if let Some((cached, id, found)) = &*self.counters.borrow()
            && *cached == bytes
            && id == expected
        {
            return Ok(found.clone());
        }
        let (a, b) = bytes.split_at(RECORD_SIZE);
        let found = find(a, b, expected).map_err(CountersError::NoRecord)?;
        *self.counters.borrow_mut() = Some((bytes, *expected, found.clone()));
        Ok(found)
    }
}

impl Clone for ParseCache {
    fn clone(&self) -> Self {
        ParseCache::default()
    }
}

/// Never prints the cached bytes: they hold the secret.
impl std::fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParseCache")
    }
}

impl OnDisk {
    pub(super) fn state(&self) -> State {
        match self {
            OnDisk::V1(state) => state.clone(),
            OnDisk::V2(v2) => v2.state(),
        }
    }
}
