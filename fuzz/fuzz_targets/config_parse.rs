//! The config file parser (`Options::from_config_text`: what `from_config_file` runs on a
//! file's text once the file passed its owner and mode checks). Asserts: never panics; Ok
//! options are within the documented ranges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::config::Options;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/pam_totp.conf");
    if let Ok(options) = Options::from_config_text(text, path) {
        assert!(options.window <= 10, "window {}", options.window);
        assert!((1..=1000).contains(&options.max_failures));
        assert!((1..=200).contains(&options.prompt.len()));
        assert_eq!(&options.config, path);
    }
});
