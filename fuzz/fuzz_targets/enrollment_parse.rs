//! `Enrollment::parse` on arbitrary bytes: the v2 enrollment file lives in the user's home,
//! so the user controls it, and every login reads it with a fast reader of the exact lines
//! pam-totp writes (src/state/enrollment_v2/as_written.rs) before the general TOML parser.
//! Asserts:
//! - it never panics;
//! - wherever the fast reader reads a text, the `toml` crate reads the same file from it
//!   (compared as the text this build would write for each): the fast path may refuse
//!   more, never read differently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::state::enrollment_v2::{Enrollment, both_readings};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = Enrollment::parse(data, Path::new("/fuzz/state.toml"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let (Some(fast), general) = both_readings(text) {
        assert_eq!(
            Some(&fast),
            general.as_ref(),
            "the fast reader read this differently from toml: {text:?}"
        );
    }
});
