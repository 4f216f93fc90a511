//! The one harness for running programs under pam_wrapper + nss_wrapper, shared by the
//! integration tests (`tests/common`, `tests/examples.rs`) and the PAM benchmark
//! (`benches/pam_bench`). Everything here works around pam_wrapper, finds what it needs on
//! this machine, or builds the C helper programs; what a test or the benchmark does with
//! them stays with it.
//!
//! Included as a module, not a crate, on purpose: a path crate would be a dev-dependency
//! every `cargo build` must resolve, so the container build (packaging/Containerfile
//! copies src/ and the manifests only) would need it too. Each test binary and the bench
//! compile it as they compiled tests/common before:
//!
//! ```ignore
//! #[path = "../harness/mod.rs"] // from tests/common/mod.rs
//! pub mod harness;
//! ```
//!
//! The pam_wrapper gotchas handled here, once:
//! - pam_wrapper picks its `/tmp/pam.X` copy of the service dir (hard-coded /tmp, not
//!   TMPDIR) in its constructor, with a racy lstat+mkdir among ~62 names shared by the whole
//!   machine; processes started at the same moment fail ("pwrap_init: Failed to create
//!   pam_wrapper config dir") or share a dir and read each other's service files. Every
//!   start is serialised by one machine-wide lock ([`start_lock::StartLock`]) until the
//!   program says READY, and a pwrap_init failure caused by an outside pam_wrapper user is
//!   retried ([`pwrap_process::PwrapProcess::start`]).
//! - pam_wrapper removes its `/tmp/pam.X` at exit, but not after a crash or a kill, nor the
//!   one valgrind's launcher makes; it only reclaims stale dirs for pids <= 65535. The
//!   harness removes every one that names a process it started
//!   ([`pwrap_process::remove_pwrap_dirs`]).
//! - pam_syslog() is swallowed by pam_wrapper unless PAM_WRAPPER_USE_SYSLOG=1
//!   ([`env::pam_wrapper`]).
//! - nss_wrapper only takes over when both NSS_WRAPPER_PASSWD and NSS_WRAPPER_GROUP are set;
//!   then /etc/passwd is not consulted at all ([`env::nss_wrapper`]).
//! - The wrapper libraries live in the multiarch dir on Debian, elsewhere on other systems
//!   ([`locations::wrapper_libs`]).
//!
//! The C helpers (built by [`helpers::build`], sources in `tests/harness/c/`):
//! - `pam_client`: one login, every conversation message printed, parked after pam_start
//!   so that many can be released at once (the tests);
//! - `pam_driver`: a plan of many timed logins in one process (the benchmark);
//! - `syslog_capture.so`, `syslog_no_console.so`: LD_PRELOAD shims;
//! - `libnss_failing.so.2`: an NSS module nss_wrapper loads, whose passwd lookups fail on
//!   demand (the passwd-error tests).
//!
//! pam_client and pam_driver stay two programs: the driver's timed loop must do nothing
//! but pam_start..pam_end (no transcript written per message, no scripted-answer
//! bookkeeping), and it links liboath and valgrind's callgrind macros, which the tests need
//! not install. What they share is the start protocol, written once on each side:
//! `c/handshake.h` and [`pwrap_process`].

// Each test binary and the bench use only part of it.
#![allow(dead_code)]

pub mod env;
pub mod helpers;
pub mod locations;
pub mod pwrap_process;
pub mod start_lock;
