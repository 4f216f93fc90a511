//! Raw FFI that the crates we build on do not cover. Every `unsafe` block of the crate is
//! here, small, with the reason it is sound.

use pam::module::PamHandle;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;

const PAM_AUTHTOK: c_int = 6;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_fail_delay(pamh: *mut PamHandle, usec: std::ffi::c_uint) -> c_int;
}

/// Asks libpam to wait at least `usec` microseconds before a failed pam_authenticate
/// returns, as pam_unix does (libpam takes the largest request of the stack, adds some
/// randomness, and waits only when the stack fails).
pub fn pam_request_fail_delay(pamh: &mut PamHandle, usec: u32) -> Result<(), c_int> {
    // SAFETY: pamh is a live handle borrowed from libpam for this call; pam_fail_delay
    // only records the number in the handle.
    let rc = unsafe { pam_fail_delay(pamh, usec) };
    if rc == 0 { Ok(()) } else { Err(rc) }
}

/// Logs `message` through libpam, which prefixes `module(service:type)` and writes to
/// syslog; where no syslog daemon listens the line is dropped and nothing blocks.
pub fn pam_log(pamh: &PamHandle, priority: c_int, message: &str) {
    // Interior NULs cannot come from our messages; strip them rather than lose the line.
    let Ok(message) = CString::new(message.replace('\0', "")) else {
        return;
    };
    // SAFETY: pamh is a live handle borrowed from libpam for this call; the format is a
    // constant "%s" and the single argument a NUL-terminated string that outlives the call.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), message.as_ptr()) }
}

/// Sets PAM_AUTHTOK, for `forward_pass`: libpam copies the string, so ours may be wiped.
pub fn pam_set_authtok(pamh: &mut PamHandle, token: &CStr) -> Result<(), c_int> {
    // SAFETY: pamh is a live handle; libpam strdup()s the item, so the pointer only has to
    // be valid for the duration of the call, which `token` guarantees.
    let rc = unsafe { pam_set_item(pamh, PAM_AUTHTOK, token.as_ptr().cast()) };
    if rc == 0 { Ok(()) } else { Err(rc) }
}

/// Sets the supplementary groups of the calling thread only.
///
/// glibc's setgroups() changes every thread of the process (it broadcasts the change); the
/// module runs inside sshd or sudo and must change nothing but the thread doing the file
/// access, like setfsuid(), so this calls the system call directly.
pub fn set_thread_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the kernel reads `groups.len()` gid_t values from a pointer into a live slice.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The supplementary groups of the calling thread.
pub fn thread_groups() -> io::Result<Vec<libc::gid_t>> {
    // SAFETY: with a size of 0 the kernel only returns the count and writes nothing.
    let count =
        unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<libc::gid_t>()) };
    if count < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut groups = vec![0 as libc::gid_t; count as usize];
    // SAFETY: the buffer holds exactly `count` gid_t values, the size we pass.
    let got = unsafe { libc::syscall(libc::SYS_getgroups, groups.len(), groups.as_mut_ptr()) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    groups.truncate(got as usize);
    Ok(groups)
}

/// Logs one line through libc's syslog, opening the log with `ident` the first time.
pub fn syslog(ident: &'static CStr, priority: c_int, message: &str) {
    static OPEN: std::sync::Once = std::sync::Once::new();
    OPEN.call_once(|| {
        // SAFETY: the ident is a 'static C string, as openlog requires (it keeps the pointer).
        unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV) };
    });
    let Ok(message) = CString::new(message.replace('\0', "")) else {
        return;
    };
    // SAFETY: a constant "%s" format and one NUL-terminated string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), message.as_ptr()) };
}

/// Whether the kernel's clock discipline says the clock is synchronised: adjtimex(2) in
/// read-only mode (`modes` 0), STA_UNSYNC clear and no TIME_ERROR. Used where systemd's
/// `timedatectl` is not there to ask.
pub fn clock_synchronized() -> io::Result<bool> {
    // SAFETY: `timex` is a plain C struct of integers, for which all zero bytes are a valid
    // value; `modes` 0 asks the kernel only to read, and it writes into our live struct.
    let (state, status) = unsafe {
        let mut timex: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut timex);
        (state, timex.status)
    };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(state != libc::TIME_ERROR && status & libc::STA_UNSYNC == 0)
}

/// The width in columns of the terminal on `fd` (TIOCGWINSZ); `None` when `fd` is not a
/// terminal or its size is not set (0).
pub fn terminal_columns(fd: std::os::fd::BorrowedFd<'_>) -> Option<u16> {
    use std::os::fd::AsRawFd;
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a
    // live, writable winsize of ours; the descriptor is borrowed, so open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(size.ws_col)
}
