//! The one place that reads the system clock. Everything else takes the time as a
//! parameter, so that tests and the fuzz target can fix it (clippy's `disallowed-methods`
//! keeps it that way).

use crate::error::{Error, Result};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one reader of the clock
pub fn now() -> Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Clock)
}

/// Whether the kernel says the clock is synchronised to a time source (adjtimex's
/// STA_UNSYNC is clear): for `doctor`, where no systemd can be asked.
pub fn synchronized() -> std::io::Result<bool> {
    crate::sys::clock_synchronized()
}
