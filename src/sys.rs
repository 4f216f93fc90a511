//! Raw FFI that the crates we build on do not cover. Every `unsafe` block of the crate is
//! here, small, with the reason it is sound.

use pam::module::PamHandle;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::ptr::NonNull;

use crate::error::Error;
use argon2::Block;
use zeroize::Zeroize;

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

/// Keeps `value` in the handle under `key` (pam_set_data) until pam_end or the next call
/// for the same key. Only [`pam_get_text`] reads these keys back.
pub fn pam_set_text(pamh: &mut PamHandle, key: &str, value: &str) -> Result<(), c_int> {
    let value = CString::new(value).map_err(|_| libc::EINVAL)?;
    pamh.set_data(key, Box::new(value))
        .map_err(|code| code as c_int)
}

/// What [`pam_set_text`] kept under `key` in this handle, if anything.
pub fn pam_get_text(pamh: &PamHandle, key: &str) -> Option<String> {
    // SAFETY: every key this crate stores data under is set by `pam_set_text` only, always
    // with a `CString`, which is the type read back here; the keys carry our module's name
    // so no other module's data is found under them. The reference lives no longer than
    // the borrow of the handle, and the data is copied out before it ends.
    let data: &CString = unsafe { pamh.get_data::<CString>(key) }.ok()?;
    data.to_str().ok().map(str::to_owned)
}

/// capget(2)'s header and data (linux/capability.h, version 3: two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's effective capability set, as a 64-bit mask (bit N = capability N).
pub fn thread_effective_capabilities() -> io::Result<u64> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget reads the header and writes two CapData (version 3) into live,
    // properly sized and aligned locals; pid 0 is the calling thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
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

/// Clears `bytes`' whole allocation, its length and its spare capacity, with glibc's
/// `explicit_bzero`: memset speed, and never removed by the compiler as a dead store.
pub fn wipe_allocation(bytes: &mut Vec<u8>) {
    // SAFETY: the pointer and the capacity describe `bytes`' own allocation, writable for
    // `capacity` bytes (a dangling but non-null pointer with capacity 0 for an empty Vec,
    // where nothing is written); zero is a valid u8, initialised or not.
    unsafe { libc::explicit_bzero(bytes.as_mut_ptr().cast(), bytes.capacity()) }
}

/// The first `len` bytes of `file` (pread from offset 0), into a buffer that is not zeroed
/// first: every byte is the kernel's, or the buffer is dropped with the error. The counters
/// file is read this way: zeroing its 8 KiB first was a tenth of what reading it cost.
pub fn pread_exact_uninit(file: &std::fs::File, len: usize) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        // SAFETY: the kernel writes at most `len - filled` bytes at `buf`'s end, inside its
        // capacity of `len`; the offset is `filled`, at most `len` (8192): no overflow.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled).cast(),
                len - filled,
                filled as libc::off_t,
            )
        };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n > 0 => {
                // SAFETY: the kernel initialised the `n` bytes after `filled` (n ≤ len - filled).
                unsafe { buf.set_len(filled + n as usize) };
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// The supplementary groups of the calling thread.
pub fn thread_groups() -> io::Result<Vec<libc::gid_t>> {
    // SAFETY: with a size of 0 the kernel only returns the count and writes nothing.
    let count =
        unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<libc::gid_t>()) };
    if count < 0 {
        return Err(io::Error::last_os_error());
    }
    // A thread with none (a service started by systemd: most logins) needs no second call.
    if count == 0 {
        return Ok(Vec::new());
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

/// Makes the process undumpable: no core file, and no ptrace attach or /proc/PID/mem by
/// the (unprivileged) user who started it. The setuid helper calls this first.
pub fn make_undumpable() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the kernel reads one rlimit struct from a live local.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces the whole environment with `vars` (the setuid helper: nothing the caller set
/// may reach the code we run, nor the libraries it loads).
///
/// Must be called before any other thread exists: the environment is process-global and
/// not synchronised in glibc.
pub fn replace_environment(vars: &[(&CStr, &CStr)]) -> io::Result<()> {
    // SAFETY: called at the start of main of a single-threaded program (see above); clearenv
    // only frees glibc's own environment array.
    if unsafe { libc::clearenv() } != 0 {
        return Err(io::Error::other("clearenv failed"));
    }
    for (name, value) in vars {
        // SAFETY: as above, single-threaded; both are NUL-terminated strings that glibc copies.
        if unsafe { libc::setenv(name.as_ptr(), value.as_ptr(), 1) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether file descriptor `fd` is open.
pub fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; any integer is a valid argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Sets the file mode creation mask, returning the old one.
pub fn set_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask takes an integer and cannot fail.
    unsafe { libc::umask(mask) }
}

/// Asks the kernel to end the process with SIGALRM after `seconds` (a helper that is left
/// waiting on its input does not live on).
pub fn alarm(seconds: u32) {
    // SAFETY: alarm takes an integer and cannot fail.
    unsafe { libc::alarm(seconds) };
}

/// Lifts the resource limits a caller could lower before running a setuid program to make
/// one of its writes fail half-way (file size, CPU time, open files): the helper must be
/// able to record a wrong code it has judged. Only limits below what is needed are raised
/// (euid 0 may, given CAP_SYS_RESOURCE); an error means one is too low and stays so.
pub fn reset_resource_limits() -> io::Result<()> {
    const FILES: libc::rlim_t = 256;
    for (resource, needed) in [
        (libc::RLIMIT_FSIZE, libc::RLIM_INFINITY),
        (libc::RLIMIT_CPU, libc::RLIM_INFINITY),
        (libc::RLIMIT_NOFILE, FILES),
    ] {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: the kernel writes one rlimit struct into a live local.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let enough = |limit: libc::rlim_t| limit == libc::RLIM_INFINITY || limit >= needed;
        if enough(current.rlim_cur) {
            continue;
        }
        let raised = libc::rlimit {
            rlim_cur: needed,
            rlim_max: if enough(current.rlim_max) {
                current.rlim_max
            } else {
                needed
            },
        };
        // SAFETY: the kernel reads one rlimit struct from a live local.
        if unsafe { libc::setrlimit(resource, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unblocks every signal. The signal mask is inherited across exec: a caller who blocked
/// SIGALRM would keep the setuid helper's time limit from ever firing.
pub fn unblock_all_signals() -> io::Result<()> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises the live local before
    // sigprocmask reads it, and the old mask is not asked for (null is allowed).
    let rc = unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Closes every descriptor above standard error. The setuid helper uses only 0, 1 and 2; a
/// caller's other open files must not stay open in a root process. Called before the
/// helper opens anything of its own.
pub fn close_descriptors_above_stderr() -> io::Result<()> {
    // SAFETY: close_range(2) only closes descriptors; nothing of ours above 2 is open yet.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::ENOSYS) {
        return Err(error);
    }
    // Kernels before 5.9: close them one by one, up to the descriptor limit.
    // SAFETY: sysconf takes an integer and returns one.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    let max = if max < 0 {
        1024
    } else {
        max.min(1 << 20) as c_int
    };
    for fd in 3..max {
        // SAFETY: closing a descriptor number; EBADF for one that is not open is ignored.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Puts `signal` back to its default action: a caller may have left it ignored, and ignored
/// signals stay ignored across exec (the helper's alarm must end it).
pub fn default_signal_action(signal: c_int) -> io::Result<()> {
    // SAFETY: SIG_DFL installs no handler of ours; signal() only changes the disposition.
    if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The names in the passwd database (NSS: files, nss_wrapper, LDAP if it enumerates), in
/// its order, for the commands that walk every user (`import --all-users`, `report`).
/// getpwent(3) is not thread-safe; only the single-threaded CLI calls this.
pub fn passwd_names() -> Vec<String> {
    let mut names = vec![];
    // SAFETY: setpwent/getpwent/endpwent take no arguments; each entry getpwent returns is
    // valid until the next call, and we copy its NUL-terminated pw_name before that.
    unsafe {
        libc::setpwent();
        loop {
            let entry = libc::getpwent();
            if entry.is_null() {
                break;
            }
            let name = (*entry).pw_name;
            if !name.is_null() {
                names.push(CStr::from_ptr(name).to_string_lossy().into_owned());
            }
        }
        libc::endpwent();
    }
    names
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

/// argon2's working memory in an anonymous mapping, wiped and unmapped when dropped. From
/// the heap, glibc keeps a freed 19 MiB buffer once its dynamic mmap threshold has risen
/// past it, and a long-lived process that checks many codes (a PAM host serving many
/// logins) sees its heap grow and fragment (fuzz/README.md); a mapping goes back to the
/// kernel at once. For [`crate::recovery`].
pub(crate) struct MappedBlocks {
    blocks: NonNull<Block>,
    len: usize,
}

impl MappedBlocks {
    pub(crate) fn new(len: usize) -> crate::error::Result<MappedBlocks> {
        let bytes = len
            .checked_mul(size_of::<Block>())
            .filter(|&bytes| bytes > 0)
            .ok_or_else(|| Error::Internal(format!("argon2: {len} blocks")))?;
        // SAFETY: a new private anonymous mapping where the kernel chooses: it aliases no
        // memory of ours, and `Drop` unmaps it exactly once. Its pages read as zeroes.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                // Populated at once: argon2 writes every page, and one call that fills
                // them costs less than a page fault for each of the 4,864 (a recovery-code
                // check went from 28.5 to 24.5 ms on the benchmark VM, BENCHMARKS.md).
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(Error::Internal(format!(
                "argon2: cannot map {} KiB of memory: {e}",
                bytes / 1024
            )));
        }
        let blocks = NonNull::new(mapped.cast::<Block>())
            .ok_or_else(|| Error::Internal("argon2: mmap returned null".into()))?;
        Ok(MappedBlocks { blocks, len })
    }
}

impl AsMut<[Block]> for MappedBlocks {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: `blocks` points at a live mapping of `len` blocks (readable, writable,
        // page-aligned, so aligned for `Block`), zero-filled or written as blocks since,
        // and all-zero bytes are a valid `Block` (an array of u64). `&mut self` makes the
        // slice the only access to it while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
    }
}

impl Drop for MappedBlocks {
    fn drop(&mut self) {
        // The blocks are derived from the code: wiped before the pages go back.
        for block in self.as_mut() {
            block.zeroize();
        }
        // SAFETY: the mapping made in `new`, of this size, unmapped once; the slices
        // handed out by `as_mut` borrowed `self` and are gone.
        unsafe {
            libc::munmap(self.blocks.as_ptr().cast(), self.len * size_of::<Block>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_allocation_clears_the_length_and_the_spare_capacity() {
        let mut bytes = vec![0xa5u8; 64];
        bytes.truncate(16);
        wipe_allocation(&mut bytes);
        assert_eq!(bytes.len(), 16);
        // SAFETY: the capacity is at least 64 (truncate keeps the allocation), and every
        // byte of it was written, first with 0xa5 and then by the wipe.
        unsafe { bytes.set_len(64) };
        assert!(bytes.iter().all(|&b| b == 0), "{bytes:?}");
    }
}
