//! The enrollment file read exactly as [`Enrollment::to_toml`](super::Enrollment::to_toml)
//! writes it, line by line, with no general parser: every login reads this file. The
//! generic fast reader (`flat_toml`: a table of values fed to serde) spent about 50 k
//! instructions and 130 allocations a login on its 45 lines; this reader makes one
//! allocation per string it keeps (the id, the secret, each code's id and hash).
//!
//! The lines, in this order, each ending in a newline:
//!
//! ```text
//! version = 2
//! enrollment_id = "…"
//! kind = "hotp"            only for HOTP (TOTP is the default and is not written)
//! secret = "…"
//! algorithm = "SHA1"       or SHA256, SHA512
//! digits = 6
//! period = 30
//! recovery_codes = []      or, for each code, the four lines below
//!
//! [[recovery_codes]]
//! id = "…"
//! hash = "…"
//! ```
//!
//! Strings are basic strings without escapes, integers plain decimals
//! ([`flat_toml::plain_string`], [`flat_toml::decimal`]). Anything else gives `None`, and
//! the caller reads the text with the `toml` crate: a hand-edited file, and every error
//! message, are the general parser's. What this reader accepts, `toml` reads to the same
//! value (tested below on mutations of real files).

use super::{File, KindV2, VERSION};
use crate::secret::SecretString;
use crate::state::flat_toml::{decimal, plain_string, plain_string_contents};
use crate::state::format_v1::{AlgorithmV1, RecoveryCodeV1};

/// The file's fields if `text` is exactly in the written form; `None` otherwise.
pub(super) fn read(text: &str) -> Option<File> {
    let mut lines = Lines(text);
    if decimal(lines.value("version")?)? != i64::from(VERSION) {
        return None;
    }
    let enrollment_id = plain_string(lines.value("enrollment_id")?)?.to_owned();
    // Only `hotp` is ever written; `kind = "totp"` is valid TOML, left to `toml`.
    let kind = match lines.peek_key("kind") {
        true => match plain_string(lines.value("kind")?)? {
            "hotp" => KindV2::Hotp,
            _ => return None,
        },
        false => KindV2::Totp,
    };
    let secret = SecretString::new(plain_string(lines.value("secret")?)?.to_owned());
    let algorithm = match plain_string(lines.value("algorithm")?)? {
        "SHA1" => AlgorithmV1::SHA1,
        "SHA256" => AlgorithmV1::SHA256,
        "SHA512" => AlgorithmV1::SHA512,
        _ => return None,
    };
    let digits = u8::try_from(decimal(lines.value("digits")?)?).ok()?;
    let period = u64::try_from(decimal(lines.value("period")?)?).ok()?;
    let recovery_codes = if lines.peek_key("recovery_codes") {
        (lines.value("recovery_codes")? == "[]").then(Vec::new)?
    } else {
        // Four lines a code: sized once, not grown ten times.
        let mut codes = Vec::with_capacity(lines.count() / 4);
        while !lines.is_empty() {
            let (id, hash) = lines.recovery_code()?;
            codes.push(RecoveryCodeV1::new(id.into(), hash.into()));
        }
        // `toml` writes an empty list as `recovery_codes = []`, never as nothing.
        if codes.is_empty() {
            return None;
        }
        codes
    };
    lines.is_empty().then_some(File {
        version: VERSION,
        enrollment_id,
        kind,
        secret,
        algorithm,
        digits,
        period,
        recovery_codes,
    })
}

/// The text not yet read: whole lines, each ending in a newline.
struct Lines<'a>(&'a str);

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let (line, rest) = self.0.split_once('\n')?;
        self.0 = rest;
        Some(line)
    }

    /// The four lines of one code, `id` and `hash` without their quotes. Read as one
    /// piece of text with two holes rather than line by line: ten of these are most of
    /// the file. A string ends at its first quote, as a basic string without escapes does.
    fn recovery_code(&mut self) -> Option<(&'a str, &'a str)> {
        let rest = self.0.strip_prefix("\n[[recovery_codes]]\nid = \"")?;
        let (id, rest) = rest.split_once('"')?;
        let rest = rest.strip_prefix("\nhash = \"")?;
        let (hash, rest) = rest.split_once('"')?;
        self.0 = rest.strip_prefix('\n')?;
        Some((plain_string_contents(id)?, plain_string_contents(hash)?))
    }

    /// The value of the next line if it is `key = value`.
    fn value(&mut self, key: &str) -> Option<&'a str> {
        self.next()?.strip_prefix(key)?.strip_prefix(" = ")
    }

    fn peek_key(&self, key: &str) -> bool {
        self.0
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(" = "))
    }

    fn count(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'\n').count()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
