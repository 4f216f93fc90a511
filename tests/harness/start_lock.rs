//! The machine-wide lock held while a process starts under pam_wrapper (see the module
//! docs of `harness`: pam_wrapper's racy `/tmp/pam.X` selection).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::thread;
use std::time::{Duration, Instant};

/// The abstract socket name. Every program of this repository that starts processes under
/// pam_wrapper binds this one name, so tests, examples and benchmarks running at the same
/// time on one machine (any user, any checkout) never start two at once.
const START_LOCK_NAME: &[u8] = b"pam-totp-tests/pam_wrapper-start";

/// Machine-wide mutex: a bound abstract-namespace unix socket. Unlike a lock file it is
/// shared by every user and checkout (pam_wrapper's /tmp/pam.X names are shared by all of
/// them too), creates no file, and is released by the kernel if the holder dies. The socket
/// is close-on-exec, so the started programs do not inherit it.
pub struct StartLock {
    _bound: UnixListener,
}

impl StartLock {
    /// Waits for the lock until `deadline`.
    pub fn acquire(deadline: Instant) -> Result<StartLock, String> {
        let addr = SocketAddr::from_abstract_name(START_LOCK_NAME)
            .map_err(|e| format!("abstract socket name: {e}"))?;
        loop {
            match UnixListener::bind_addr(&addr) {
                Ok(listener) => return Ok(StartLock { _bound: listener }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    if Instant::now() >= deadline {
                        return Err("timed out waiting for the pam_wrapper start lock (held \
                                    by another test or benchmark process?)"
                            .into());
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("bind the pam_wrapper start lock: {e}")),
            }
        }
    }
}
