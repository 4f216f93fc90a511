//! The store under its lock: taking the lock with a bounded wait, and every read, write
//! and removal, which happen only there.

use super::*;

/// An OFD lock held on the lock file. Dropped, it is released with F_UNLCK, not only by
/// the last close: a child the application forks without exec during the conversation
/// shares the open file description, and would otherwise keep the lock while it runs.
pub(super) struct HeldLock(Option<OwnedFd>);

impl HeldLock {
    /// Takes the OFD write lock on `lock`, waiting until `deadline` at most.
    pub(super) fn take(lock: OwnedFd, path: &Path, deadline: Instant) -> Result<HeldLock> {
        take_lock(&lock, path, deadline)?;
        Ok(HeldLock(Some(lock)))
    }

    /// Released, the file left open for the next cycle; `None` if releasing failed (the
    /// file is then closed).
    pub(super) fn release(mut self) -> Option<OwnedFd> {
        let lock = self.0.take()?;
        release_lock(&lock).ok()?;
        Some(lock)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            let _ = release_lock(&lock);
        }
    }
}

/// Takes the OFD write lock on `lock`, polling with a growing pause until `deadline` at
/// most (one deadline for every attempt of a cycle: [`LOCK_WAIT`] in all).
fn take_lock(lock: &OwnedFd, path: &Path, deadline: Instant) -> Result<()> {
    let whole_file = whole_file(libc::F_WRLCK);
    let mut pause = Duration::from_micros(200);
    loop {
        match fcntl(lock, FcntlArg::F_OFD_SETLK(&whole_file)) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {}
            Err(e) => return Err(Error::io(path, "lock", e)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::io(
                path,
                "lock (another process has held it for 10 s; a stopped login?)",
                Errno::ETIMEDOUT,
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Releases the OFD lock `take_lock` took, keeping the file open.
fn release_lock(lock: &OwnedFd) -> nix::Result<()> {
    fcntl(lock, FcntlArg::F_OFD_SETLK(&whole_file(libc::F_UNLCK))).map(drop)
}

/// A lock request of `l_type` over the whole file (OFD locks need `l_pid` 0).
fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// The store under its lock. Reading, writing and removing happen here only; the lock and
/// the user identity are released when this is dropped.
pub(super) struct FsLocked<'a> {
    pub(super) store: &'a FsStore,
    pub(super) dir: OwnedFd,
    /// What the last `read` found: a write that only changes counters goes through it.
    pub(super) read: RefCell<Option<OnDisk>>,
    /// The files the read before prompting kept open: the first `read` goes through them.
    pub(super) kept: RefCell<Option<KeptReads>>,
    /// The kept state file, once a `read` went through it.
    pub(super) kept_state: RefCell<Option<KeptState>>,
    pub(super) _lock: HeldLock,
    /// Which file `_lock` is, when it was kept from before the prompt.
    pub(super) kept_lock: Option<FileId>,
    // Last: fields drop in order, so the identity is restored after the files are closed.
    pub(super) as_user: AsUser,
}

/// The user's file identity under the lock. A login that reads and writes through the
/// files kept from before the prompt never needs it; anything that opens, makes, renames
/// or removes a name in the user's directory takes it first ([`FsLocked::by_name`]).
#[derive(Default)]
pub(super) struct AsUser {
    guard: RefCell<Option<IdentityGuard>>,
    assumed: std::cell::Cell<bool>,
}

impl AsUser {
    /// Already taken, by the caller that walked the directory as the user.
    pub(super) fn assumed(guard: Option<IdentityGuard>) -> AsUser {
        AsUser {
            guard: RefCell::new(guard),
            assumed: std::cell::Cell::new(true),
        }
    }
}

impl FsLocked<'_> {
    /// Runs `access`, which touches the directory by name, as the user (switching now if
    /// that was not done yet), with the user's supplementary groups if refused without.
    fn by_name<T>(&self, access: impl Fn() -> Result<T>) -> Result<T> {
        self.become_user()?;
        with_groups_if_refused(&mut self.as_user.guard.borrow_mut(), access)
    }

    /// Switches to the user's file identity for the rest of the cycle, if not done yet.
    fn become_user(&self) -> Result<()> {
        let as_user = &self.as_user;
        if !as_user.assumed.get() {
            *as_user.guard.borrow_mut() = self.store.assume_identity()?;
            as_user.assumed.set(true);
        }
        Ok(())
    }
}

impl Locked for FsLocked<'_> {
    fn read(&self) -> Result<Option<State>> {
        let kept = self.kept.borrow_mut().take();
        let on_disk = match kept {
            Some(kept) => match self.store.reread_kept(&self.dir, kept)? {
                Some((on_disk, state)) => {
                    *self.kept_state.borrow_mut() = Some(state);
                    Some(on_disk)
                }
                // Replaced or removed since the prompt (a new enrollment, disable): read
                // what is there now, by name.
                None => self.by_name(|| self.store.read_in(&self.dir, Access::Write))?,
            },
            None => self.by_name(|| self.store.read_in(&self.dir, Access::Write))?,
        };
        let state = on_disk.as_ref().map(OnDisk::state);
        *self.read.borrow_mut() = on_disk;
        Ok(state)
    }

    /// Records `state`. The counters of the enrollment just read: one pwrite + fdatasync.
    /// Anything else (v1, a new enrollment, new recovery codes): a new enrollment, crash-safe.
    /// On error the old state is intact.
    fn write(&self, state: &State) -> Result<()> {
        let store = self.store;
        if self.read.borrow().is_none() {
            // Enroll writes without reading: look at what is there, damaged or not, to
            // know where the new counters may go without breaking the old ones.
            let _ = self.read();
        }
        let mut read = self.read.borrow_mut();
        if let Some(OnDisk::V2(v2)) = &mut *read
            && let Some(counters) = v2.counters_for(state)
        {
            let path = &store.names.counters_path;
            // A recovery code burned only in the newest record would come back if that
            // block were damaged later (the reader would take the older one), and unlike a
            // TOTP step no rule can tell which code that was: a new burn goes into both
            // blocks, one write + fdatasync each (rare, and argon2 costs far more).
            let old = &v2.current.record.counters;
            let burns = counters.burned().len() > old.burned().len();
            // The same for an HOTP counter moved by more than one (a token that was ahead,
            // a resync): a lost single write then moved it by one at most, which is what
            // a fallback covers (`policy::cover_lost_write`).
            let jumps = counters
                .hotp_counter
                .zip(old.hotp_counter)
                .is_some_and(|(new, old)| new > old.saturating_add(1));
            let burns = burns || jumps;
            v2.current = counters_file::update(&v2.counters, &v2.current, counters)
                .map_err(|e| e.into_error(path))?;
            // The block just written was the damaged one, if any: both are valid again.
            v2.other_damaged = None;
            if burns {
                let again = v2.current.record.counters.clone();
                v2.current = counters_file::update(&v2.counters, &v2.current, again)
                    .map_err(|e| e.into_error(path))?;
            }
            return Ok(());
        }
        let target = match &*read {
            Some(OnDisk::V2(v2)) => CountersTarget::InPlace {
                file: &v2.counters,
                keep: v2.current.slot,
            },
            _ => CountersTarget::New,
        };
        let written = self.become_user().and_then(|()| {
            migrate_v1::replace_enrollment(&self.dir, &store.names, state, target, Step::Done)
        });
        // Whatever happened, the next write reads again.
        *read = None;
        written
    }

    fn fell_back(&self) -> Option<String> {
        let read = self.read.borrow();
        let Some(OnDisk::V2(v2)) = &*read else {
            return None;
        };
        let why = v2.other_damaged?;
        let path = &self.store.names.counters_path;
        Some(format!(
            "{}: counters block {:?} is damaged ({why:?}) and block {:?} was used; the newest \
             write may be lost, so the replay guard was raised over the current window, one \
             failure counted and both blocks written again",
            path.display(),
            v2.current.slot.other(),
            v2.current.slot,
        ))
    }

    /// After a read through the kept files only (no switch to the user, nothing written
    /// by name): the lock released, the files go back to the store for the login's next
    /// locked cycle, which checks their names again.
    fn release_after_reading(self: Box<Self>) {
        // `as_user` first: bindings drop in reverse, so the identity is restored last.
        let FsLocked {
            as_user,
            store,
            dir,
            read,
            kept: _,
            kept_state,
            _lock: lock,
            kept_lock,
        } = *self;
        if as_user.assumed.get() {
            return;
        }
        let (Some(lock_id), Some(state), Some(OnDisk::V2(v2))) =
            (kept_lock, kept_state.into_inner(), read.into_inner())
        else {
            return;
        };
        if !v2.writable {
            return;
        }
        let Some(lock) = lock.release() else {
            return;
        };
        let reads = KeptReads::from_parts(state, v2.counters, v2.counters_id);
        store.keep_again(dir, lock, lock_id, reads);
    }

    /// A second hard link to the state file (the same file: owner and mode kept), made new;
    /// the state itself is then replaced or removed as usual.
    fn keep_aside(&self, suffix: &str) -> Result<PathBuf> {
        self.become_user()?;
        // Never over an earlier copy (two in the same second): `-1`, `-2`, ... after it.
        for attempt in 0..100 {
            let suffix = match attempt {
                0 => suffix.to_owned(),
                n => format!("{suffix}-{n}"),
            };
            let name = self.store.sibling(&suffix);
            let path = self.store.path_of(&name);
            match linkat(
                &self.dir,
                self.store.file.as_os_str(),
                &self.dir,
                name.as_os_str(),
                nix::fcntl::AtFlags::empty(),
            ) {
                Ok(()) => {
                    fsync(&self.dir).map_err(|e| Error::io(&path, "sync directory of", e))?;
                    return Ok(path);
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(Error::io(&path, "create", e)),
            }
        }
        Err(Error::Internal("too many damaged copies kept aside".into()))
    }

    /// Removes the state: the enrollment file (the commit point), then its counters (the
    /// lock file stays: removing it would race other lockers).
    fn remove(&self) -> Result<bool> {
        *self.read.borrow_mut() = None;
        self.become_user()?;
        let store = self.store;
        match unlinkat(
            &self.dir,
            store.file.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::io(&store.path, "remove", e)),
        }
        fsync(&self.dir).map_err(|e| Error::io(&store.path, "sync directory of", e))?;
        // Left behind, it would be ignored (no enrollment names its id); remove it anyway.
        let _ = unlinkat(
            &self.dir,
            store.names.counters.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        Ok(true)
    }
}
