//! The environment of a program run under the wrappers.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// A clean environment: nothing from the caller's shell changes what a test sees or a
/// benchmark measures, and LC_ALL=C keeps pam_strerror texts in English. `root` (the
/// world's temporary directory) is HOME and TMPDIR.
pub fn clean(cmd: &mut Command, root: &Path) {
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LC_ALL", "C")
        .env("HOME", root)
        .env("TMPDIR", root);
}

/// libpam reads its services from `services_dir` instead of /etc/pam.d (pam_wrapper must be
/// in LD_PRELOAD too).
pub fn pam_wrapper(cmd: &mut Command, services_dir: &Path) {
    cmd.env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", services_dir)
        // Otherwise pam_wrapper diverts pam_syslog() to its own debug log.
        .env("PAM_WRAPPER_USE_SYSLOG", "1");
}

/// Users and groups come from these files only (nss_wrapper must be in LD_PRELOAD too). It
/// takes over only when both are set, and then /etc/passwd is not consulted at all.
pub fn nss_wrapper(cmd: &mut Command, passwd: &Path, group: &Path) {
    cmd.env("NSS_WRAPPER_PASSWD", passwd)
        .env("NSS_WRAPPER_GROUP", group);
}

/// An LD_PRELOAD value: the libraries, in order.
pub fn preload(libs: &[&Path]) -> OsString {
    let parts: Vec<String> = libs.iter().map(|p| p.display().to_string()).collect();
    OsString::from(parts.join(":"))
}
