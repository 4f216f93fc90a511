//! A store in memory, for tests and the fuzz target (feature `testing`): the same rules as
//! the filesystem store (it is a [`Backend`]), and a failure on demand at every step.

use super::transaction::{Backend, Create, Locked};
use crate::error::{Error, Result};
use crate::state::State;
use std::cell::{Cell, RefCell};
use std::io;
use std::path::{Path, PathBuf};

/// A step of the store that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The read before prompting.
    Load,
    /// Taking the lock.
    Lock,
    /// The read under the lock.
    Read,
    Write,
    Remove,
}

impl Step {
    fn bit(self) -> u8 {
        1 << self as u8
    }

    fn action(self) -> &'static str {
        match self {
            Step::Load | Step::Read => "read",
            Step::Lock => "lock",
            Step::Write => "replace",
            Step::Remove => "remove",
        }
    }
}

#[derive(Debug)]
pub struct MemoryStore {
    path: PathBuf,
    state: RefCell<Option<State>>,
    failing: Cell<u8>,
    writes: Cell<usize>,
    locked: Cell<bool>,
}

impl MemoryStore {
    pub fn new(state: Option<State>) -> MemoryStore {
        MemoryStore {
            path: PathBuf::from("/memory/state.toml"),
            state: RefCell::new(state),
            failing: Cell::new(0),
            writes: Cell::new(0),
            locked: Cell::new(false),
        }
    }

    /// Makes `step` fail from now on (until [`MemoryStore::heal`]).
    pub fn fail_at(&self, step: Step) {
        self.failing.set(self.failing.get() | step.bit());
    }

    pub fn heal(&self) {
        self.failing.set(0);
    }

    /// The state as last committed.
    pub fn state(&self) -> Option<State> {
        self.state.borrow().clone()
    }

    pub fn set_state(&self, state: Option<State>) {
        *self.state.borrow_mut() = state;
    }

    /// How many writes were committed.
    pub fn writes(&self) -> usize {
        self.writes.get()
    }

    fn check(&self, step: Step) -> Result<()> {
        if self.failing.get() & step.bit() != 0 {
            return Err(Error::io(
                &self.path,
                step.action(),
                io::Error::other("injected failure"),
            ));
        }
        Ok(())
    }
}

impl Backend for MemoryStore {
    fn location(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Option<State>> {
        self.check(Step::Load)?;
        Ok(self.state())
    }

    fn lock(&self, _create: Create) -> Result<Box<dyn Locked + '_>> {
        self.check(Step::Lock)?;
        // One thread, one lock: a second one at the same time is a bug in the caller.
        if self.locked.replace(true) {
            return Err(Error::Internal("the memory store is locked twice".into()));
        }
        Ok(Box::new(MemoryLocked { store: self }))
    }
}

struct MemoryLocked<'a> {
    store: &'a MemoryStore,
}

impl Drop for MemoryLocked<'_> {
    fn drop(&mut self) {
        self.store.locked.set(false);
    }
}

impl Locked for MemoryLocked<'_> {
    fn read(&self) -> Result<Option<State>> {
        self.store.check(Step::Read)?;
        Ok(self.store.state())
    }

    fn write(&self, state: &State) -> Result<()> {
        self.store.check(Step::Write)?;
        self.store.set_state(Some(state.clone()));
        self.store.writes.set(self.store.writes.get() + 1);
        Ok(())
    }

    fn remove(&self) -> Result<bool> {
        self.store.check(Step::Remove)?;
        Ok(self.store.state.borrow_mut().take().is_some())
    }
}
