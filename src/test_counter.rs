//! Per-thread counters of costly operations, in test builds only: what a check (or the
//! login's decoy) costs is asserted by count (HMACs, argon2 runs), because a timed test
//! flakes on a loaded machine.

/// `per_thread_counter!(name)` makes a module `name` with `add_one()` and `take()` (the
/// count since the last `take` on this thread).
macro_rules! per_thread_counter {
    ($name:ident) => {
        pub(crate) mod $name {
            use std::cell::Cell;

            thread_local! {
                static COUNT: Cell<u64> = const { Cell::new(0) };
            }

            pub(crate) fn add_one() {
                COUNT.with(|c| c.set(c.get() + 1));
            }

            /// The count since the last call, on this thread.
            pub(crate) fn take() -> u64 {
                COUNT.with(|c| c.replace(0))
            }
        }
    };
}

pub(crate) use per_thread_counter;
