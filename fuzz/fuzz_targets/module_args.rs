//! `Options::from_module_args` on arguments split from the input at NUL and space, the way
//! libpam hands them over (it splits pam.d lines at whitespace; none is empty). The first
//! argument is always `config=<an empty temp file>`, and any `config=` the fuzzer writes
//! is pointed at the same file, so a run never reads /etc/security/pam_totp.conf or any
//! other file of the machine. Asserts: never panics; Ok options are within range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::config::{FirstPass, Options};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;

fn config_arg() -> &'static str {
    static ARG: OnceLock<String> = OnceLock::new();
    ARG.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-fuzz-args.")
            .tempdir()
            .expect("temp dir")
            .keep();
        let path = dir.join("pam_totp.conf");
        fs::write(&path, b"").expect("create config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod config");
        format!("config={}", path.display())
    })
}

fuzz_target!(|data: &[u8]| {
    let config = config_arg();
    let mut args = vec![config.to_owned()];
    for arg in data
        .split(|&b| b == 0 || b == b' ')
        .filter(|a| !a.is_empty())
    {
        // libpam passes C strings; the module sees them as text (lossy keeps more inputs).
        let arg = String::from_utf8_lossy(arg);
        if arg.starts_with("config=") {
            args.push(config.to_owned());
        } else {
            args.push(arg.into_owned());
        }
    }
    if let Ok(options) = Options::from_module_args(&args) {
        assert!(options.window <= 10, "window {}", options.window);
        assert!((1..=1000).contains(&options.max_failures));
        assert!((1..=200).contains(&options.prompt.len()));
        assert!(!(options.forward_pass && options.first_pass != FirstPass::Prompt));
    }
});
