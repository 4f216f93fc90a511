//! The config file parser (`Options::from_config_file`). There is no string-level entry
//! point (reading, the owner/mode check and parsing are one function), so each input is
//! written to the same temp file, mode 0644, owned by whoever runs the fuzzer (the parser
//! accepts root or the effective uid). Asserts: never panics; Ok options are within the
//! documented ranges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::options::Options;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The file lives as long as the process; the TempDir is never dropped (a static), so
/// the directory is left behind in $TMPDIR, one per fuzzer process.
fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-fuzz-config.")
            .tempdir()
            .expect("temp dir")
            .keep();
        let path = dir.join("pam_totp.conf");
        fs::write(&path, b"").expect("create config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod config");
        path
    })
}

fuzz_target!(|data: &[u8]| {
    let path = config_path();
    // Truncates and rewrites in place: the mode stays 0644.
    fs::write(path, data).expect("write config");
    if let Ok(options) = Options::from_config_file(Some(path)) {
        assert!(options.window <= 10, "window {}", options.window);
        assert!((1..=1000).contains(&options.max_failures));
        assert!((1..=200).contains(&options.prompt.len()));
        assert_eq!(&options.config, path);
    }
});
