//! `State::parse` on arbitrary bytes: a state file is read from a user's home, so its
//! contents are hostile. Asserts:
//! - it never panics (libFuzzer also catches hangs and allocations over -rss_limit_mb);
//! - Ok: `to_toml` succeeds and parses back to an equal state, and serializing that state
//!   gives the same text again;
//! - Err: the message does not quote the file: no 8-byte run of the message that also
//!   occurs in the input may contain anything but fixed message text and digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::state::State;
use std::path::Path;

const PATH: &str = "/fuzz/state.toml";

/// Every fixed piece of text a `State::parse` error may contain (src/state/, src/recovery.rs,
/// src/otp/, src/error.rs). Numbers (line, byte offset, version, code index) are allowed separately.
/// If a message is reworded in src/, add the new words here, or this target reports it.
const FIXED: &[&str] = &[
    "state file ",
    PATH,
    " is invalid: ",
    "not UTF-8 (byte ",
    "not a valid state file",
    " (line ",
    "version ",
    " is not supported (this build reads version ",
    "secret is not valid base32",
    "secret must be ",
    " bits long",
    "digits must be 6, 7 or 8",
    "period must be ",
    " to ",
    " seconds",
    "more than ",
    " recovery codes",
    "recovery code ",
    " has a malformed id",
    " repeats an id",
    ": ",
    "hash is not a PHC string",
    "hash is not argon2id",
    "bad argon2 parameters",
    "argon2 cost above the cap (m ≤ ",
    " KiB, t ≤ ",
    ", p ≤ ",
    "argon2 salt or output length out of range",
    "..",
    ")",
];

const RUN: usize = 8;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Which bytes of `message` are fixed text or digits.
fn fixed_mask(message: &[u8]) -> Vec<bool> {
    let mut mask: Vec<bool> = message.iter().map(u8::is_ascii_digit).collect();
    for fragment in FIXED.iter().map(|f| f.as_bytes()) {
        for start in 0..=message.len().saturating_sub(fragment.len()) {
            if message[start..].starts_with(fragment) {
                mask[start..start + fragment.len()].fill(true);
            }
        }
    }
    mask
}

fn check_error_does_not_quote(input: &[u8], message: &str) {
    let bytes = message.as_bytes();
    let mask = fixed_mask(bytes);
    for (start, run) in bytes.windows(RUN).enumerate() {
        if mask[start..start + RUN].contains(&false) && contains(input, run) {
            panic!(
                "error quotes the input: {:?} in {message:?}",
                String::from_utf8_lossy(run)
            );
        }
    }
    // The brief's minimal form, stated on its own so it survives a change to FIXED: a
    // 16+ byte printable token from the file never appears in the message (unless the token
    // is itself fixed text, such as the path).
    let token = input.len() >= 16 && input.iter().all(|b| b.is_ascii_graphic());
    if token && contains(bytes, input) && !FIXED.iter().any(|f| contains(f.as_bytes(), input)) {
        panic!("error contains the whole input: {message:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new(PATH);
    match State::parse(data, path) {
        Ok(state) => {
            let text = state.to_toml().expect("a parsed state serializes");
            let again = State::parse(text.as_bytes(), path).expect("serialized state parses");
            assert_eq!(again, state, "round trip changed the state");
            let text_again = again.to_toml().expect("a parsed state serializes");
            assert_eq!(*text_again, *text, "serialization is not stable");
        }
        Err(e) => check_error_does_not_quote(data, &e.to_string()),
    }
});
