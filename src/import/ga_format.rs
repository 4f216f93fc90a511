//! The file `google-authenticator` writes (`~/.google_authenticator`), as
//! pam_google_authenticator reads it:
//!
//! ```text
//! XFRDRLPBJF332Y3AJZVVAVILCQ        line 1: the shared secret, base32
//! " RATE_LIMIT 3 30 1740000000      option lines start with a double quote and a space
//! " WINDOW_SIZE 3
//! " DISALLOW_REUSE 58000000
//! " TOTP_AUTH                       (HOTP files have " HOTP_COUNTER N instead)
//! 23635903                          8-digit scratch codes, one per line, single use
//! ```
//!
//! Pure: bytes in, a [`GaFile`] or a [`GaError`] out. The file is the user's, so it is
//! treated as hostile: anything GA itself would not have written or would not accept is
//! refused (never guessed at), and no error quotes the file, whose first line is the secret.

use crate::otp;
use crate::otp::{MAX_SECRET_BYTES, MIN_SECRET_BYTES};
use crate::secret::SecretString;
use std::fmt;

/// GA's own limit (pam_google_authenticator refuses larger files).
pub const MAX_FILE_SIZE: usize = 64 * 1024;
/// `google-authenticator -e` makes at most 10; a file with many more was not written by it.
pub const MAX_SCRATCH_CODES: usize = 100;
/// GA's default time step, used when the file has no STEP_SIZE line.
pub const DEFAULT_STEP_SIZE: u32 = 30;
/// GA's default window (codes accepted in total: now, one before, one after).
pub const DEFAULT_WINDOW_SIZE: u32 = 3;
/// Option names longer than this are not GA's; they are refused rather than echoed.
const MAX_OPTION_NAME: usize = 32;

/// Time-based or counter-based. GA checks HOTP when a positive HOTP_COUNTER is present,
/// TOTP otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaMode {
    Totp,
    /// The next counter value GA would accept.
    Hotp {
        counter: u64,
    },
}

/// RATE_LIMIT: at most `attempts` logins every `interval` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub attempts: u32,
    pub interval: u32,
}

/// Everything in a GA file. The secret and scratch codes are wiping types; `Debug` never
/// shows them.
#[derive(Debug, Clone)]
pub struct GaFile {
    /// Base32, upper case, without spaces or padding; 80 to 512 bits.
    pub secret: SecretString,
    pub mode: GaMode,
    /// Seconds per code (STEP_SIZE; GA accepts 1 to 60).
    pub step_size: u32,
    /// WINDOW_SIZE: how many codes GA accepts in total around now (1 to 100), if given.
    pub window_size: Option<u32>,
    /// DISALLOW_REUSE: a code works once.
    pub disallow_reuse: bool,
    pub rate_limit: Option<RateLimit>,
    /// TIME_SKEW: the clock offset GA learned, in time steps.
    pub time_skew: Option<i64>,
    /// Names of the option lines with no meaning here (RESETTING_TIME_SKEW, LASTn, …), in
    /// file order, so that an importer can list them instead of dropping them silently.
    pub other_options: Vec<String>,
    /// The unused 8-digit scratch codes, in file order.
    pub scratch_codes: Vec<SecretString>,
}

impl GaFile {
    /// GA's window as time steps on each side of now (GA centres `window_size` codes on
    /// now: 3 → ±1, 17 → ±8).
    pub fn window_steps_each_side(&self) -> u32 {
        self.window_size.unwrap_or(DEFAULT_WINDOW_SIZE) / 2
    }
}

/// Why a GA file is refused. Lines are 1-based; no variant carries file content except
/// option names that passed [`is_option_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaError {
    Empty,
    TooLarge {
        size: usize,
    },
    /// Not UTF-8, or holds NUL or other control bytes: not a text file GA wrote.
    NotText,
    /// Line 1 is not a base32 secret.
    BadSecret,
    /// The secret decodes to a length outside what pam-totp stores.
    SecretLength {
        bits: usize,
    },
    /// A `" ` line whose name is not a plain option name.
    BadOptionName {
        line: usize,
    },
    /// A known option with a value GA would refuse too.
    BadOptionValue {
        line: usize,
        option: &'static str,
        expected: &'static str,
    },
    DuplicateOption {
        line: usize,
        option: String,
    },
    /// TOTP_AUTH and a positive HOTP_COUNTER in one file: which one the phone uses is unknown.
    BothTotpAndHotp,
    /// Neither an option nor an 8-digit scratch code.
    BadLine {
        line: usize,
    },
    DuplicateScratchCode {
        line: usize,
    },
    TooManyScratchCodes {
        count: usize,
    },
}

impl fmt::Display for GaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaError::Empty => f.write_str("the file is empty"),
            GaError::TooLarge { size } => write!(
                f,
                "the file is {size} bytes, more than the {MAX_FILE_SIZE} google-authenticator allows"
            ),
            GaError::NotText => f.write_str("the file is not text (binary or NUL bytes)"),
            GaError::BadSecret => f.write_str("line 1 is not a base32 secret"),
            GaError::SecretLength { bits } => write!(
                f,
                "the secret on line 1 is {bits} bits; {} to {} are supported",
                MIN_SECRET_BYTES * 8,
                MAX_SECRET_BYTES * 8
            ),
            GaError::BadOptionName { line } => write!(f, "line {line}: not an option name"),
            GaError::BadOptionValue {
                line,
                option,
                expected,
            } => write!(f, "line {line}: {option} needs {expected}"),
            GaError::DuplicateOption { line, option } => {
                write!(f, "line {line}: {option} appears more than once")
            }
            GaError::BothTotpAndHotp => f.write_str(
                "the file has both TOTP_AUTH and HOTP_COUNTER: it is not clear which the app uses",
            ),
            GaError::BadLine { line } => {
                write!(
                    f,
                    "line {line}: neither an option nor an 8-digit scratch code"
                )
            }
            GaError::DuplicateScratchCode { line } => {
                write!(f, "line {line}: the same scratch code appears twice")
            }
            GaError::TooManyScratchCodes { count } => write!(
                f,
                "{count} scratch codes; at most {MAX_SCRATCH_CODES} are accepted"
            ),
        }
    }
}

impl std::error::Error for GaError {}

/// Parses a GA file's bytes.
pub fn parse(bytes: &[u8]) -> Result<GaFile, GaError> {
    if bytes.is_empty() {
        return Err(GaError::Empty);
    }
    if bytes.len() > MAX_FILE_SIZE {
        return Err(GaError::TooLarge { size: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| GaError::NotText)?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(GaError::NotText);
    }
    // GA splits on \n and tolerates \r (files edited on other systems).
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let secret = parse_secret(lines.next().unwrap_or_default())?;

    let mut options = Options::default();
    let mut scratch_codes: Vec<SecretString> = Vec::new();
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(option) = line.strip_prefix("\" ") {
            options.take(number, option)?;
        } else if is_scratch_code(line) {
            if scratch_codes.iter().any(|code| code.expose() == line) {
                return Err(GaError::DuplicateScratchCode { line: number });
            }
            scratch_codes.push(SecretString::new(line.to_owned()));
        } else {
            return Err(GaError::BadLine { line: number });
        }
    }
    if scratch_codes.len() > MAX_SCRATCH_CODES {
        return Err(GaError::TooManyScratchCodes {
            count: scratch_codes.len(),
        });
    }
    let mode = match (options.totp_auth, options.hotp_counter) {
        (true, Some(counter)) if counter > 0 => return Err(GaError::BothTotpAndHotp),
        (_, Some(counter)) if counter > 0 => GaMode::Hotp {
            counter: counter as u64,
        },
        _ => GaMode::Totp,
    };
    Ok(GaFile {
        secret,
        mode,
        step_size: options.step_size.unwrap_or(DEFAULT_STEP_SIZE),
        window_size: options.window_size,
        disallow_reuse: options.disallow_reuse,
        rate_limit: options.rate_limit,
        time_skew: options.time_skew,
        other_options: options.other,
        scratch_codes,
    })
}

fn parse_secret(line: &str) -> Result<SecretString, GaError> {
    // Only base32 letters, and the separators a person may have typed; anything else
    // (an option line, a code, garbage) means line 1 is not a secret.
    let plausible = !line.is_empty()
        && line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '\t' | '-' | '='));
    let secret = plausible
        .then(|| otp::normalize_secret(line))
        .flatten()
        .ok_or(GaError::BadSecret)?;
    // The decoded bytes wipe themselves (totp-rs's zeroize feature).
    let length = otp::decode_secret(&secret)
        .ok_or(GaError::BadSecret)?
        .as_bytes()
        .len();
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&length) {
        return Err(GaError::SecretLength { bits: length * 8 });
    }
    Ok(secret)
}

fn is_scratch_code(line: &str) -> bool {
    // GA: exactly eight digits, the first not 0 (10000000 to 99999999).
    line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) && !line.starts_with('0')
}

/// A plain option name as GA writes them: capitals, digits and underscores.
fn is_option_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_OPTION_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(Default)]
struct Options {
    seen: Vec<String>,
    totp_auth: bool,
    hotp_counter: Option<i64>,
    step_size: Option<u32>,
    window_size: Option<u32>,
    disallow_reuse: bool,
    rate_limit: Option<RateLimit>,
    time_skew: Option<i64>,
    other: Vec<String>,
}

impl Options {
    fn take(&mut self, line: usize, option: &str) -> Result<(), GaError> {
        let (name, value) = match option.split_once([' ', '\t']) {
            Some((name, value)) => (name, value.trim()),
            None => (option.trim_end(), ""),
        };
        if !is_option_name(name) {
            return Err(GaError::BadOptionName { line });
        }
        if self.seen.iter().any(|seen| seen == name) {
            return Err(GaError::DuplicateOption {
                line,
                option: name.to_owned(),
            });
        }
        self.seen.push(name.to_owned());
        let mut words = value.split_ascii_whitespace();
        let bad = |option: &'static str, expected: &'static str| GaError::BadOptionValue {
            line,
            option,
            expected,
        };
        match name {
            "TOTP_AUTH" => {
                none_left(words).ok_or(bad("TOTP_AUTH", "no value"))?;
                self.totp_auth = true;
            }
            "HOTP_COUNTER" => {
                let counter = one_number(&mut words, 0, i64::MAX)
                    .ok_or(bad("HOTP_COUNTER", "one whole number, 0 or more"))?;
                self.hotp_counter = Some(counter);
            }
            "STEP_SIZE" => {
                let step = one_number(&mut words, 1, 60)
                    .ok_or(bad("STEP_SIZE", "one whole number from 1 to 60"))?;
                self.step_size = Some(step as u32);
            }
            "WINDOW_SIZE" => {
                let window = one_number(&mut words, 1, 100)
                    .ok_or(bad("WINDOW_SIZE", "one whole number from 1 to 100"))?;
                self.window_size = Some(window as u32);
            }
            "TIME_SKEW" => {
                // GA learns at most 25 minutes of skew; allow a day of steps, refuse nonsense.
                let skew = one_number(&mut words, -86_400, 86_400)
                    .ok_or(bad("TIME_SKEW", "one whole number of time steps"))?;
                self.time_skew = Some(skew);
            }
            "DISALLOW_REUSE" => {
                // Followed by the time steps already used: state, not configuration.
                words
                    .all(|word| word.parse::<u64>().is_ok())
                    .then_some(())
                    .ok_or(bad("DISALLOW_REUSE", "only the list of used time steps"))?;
                self.disallow_reuse = true;
            }
            "RATE_LIMIT" => {
                let expected = "attempts (1-100), seconds (1-3600), then login times";
                let attempts = number(words.next(), 1, 100).ok_or(bad("RATE_LIMIT", expected))?;
                let interval = number(words.next(), 1, 3600).ok_or(bad("RATE_LIMIT", expected))?;
                words
                    .all(|word| word.parse::<u64>().is_ok())
                    .then_some(())
                    .ok_or(bad("RATE_LIMIT", expected))?;
                self.rate_limit = Some(RateLimit {
                    attempts: attempts as u32,
                    interval: interval as u32,
                });
            }
            other => self.other.push(other.to_owned()),
        }
        Ok(())
    }
}

fn number(word: Option<&str>, min: i64, max: i64) -> Option<i64> {
    let word = word?;
    // No sign, no leading '+', no spaces: as GA writes numbers (a leading '-' only for skew).
    if word.is_empty() || word.starts_with('+') {
        return None;
    }
    word.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}

fn one_number<'a>(words: &mut impl Iterator<Item = &'a str>, min: i64, max: i64) -> Option<i64> {
    let n = number(words.next(), min, max)?;
    none_left(words).map(|()| n)
}

fn none_left<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<()> {
    words.next().is_none().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "XFRDRLPBJF332Y3AJZVVAVILCQ";

    fn file(body: &str) -> String {
        format!("{SECRET}\n{body}")
    }

    #[test]
    fn a_totp_file_as_google_authenticator_writes_it_is_read_whole() {
        let ga = parse(
            file("\" RATE_LIMIT 3 30 1740000000 1740000010\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE 58000000\n\" TOTP_AUTH\n23635903\n32117899\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ga.secret.expose(), SECRET);
        assert_eq!(ga.mode, GaMode::Totp);
        assert_eq!(ga.step_size, 30);
        assert_eq!(ga.window_size, Some(3));
        assert_eq!(ga.window_steps_each_side(), 1);
        assert!(ga.disallow_reuse);
        assert_eq!(
            ga.rate_limit,
            Some(RateLimit {
                attempts: 3,
                interval: 30
            })
        );
        let codes: Vec<&str> = ga.scratch_codes.iter().map(|c| c.expose()).collect();
        assert_eq!(codes, ["23635903", "32117899"]);
        assert!(ga.other_options.is_empty());
    }

    #[test]
    fn a_positive_hotp_counter_makes_an_hotp_file() {
        let ga = parse(file("\" HOTP_COUNTER 7\n").as_bytes()).unwrap();
        assert_eq!(ga.mode, GaMode::Hotp { counter: 7 });
    }

    #[test]
    fn options_without_an_equivalent_are_listed_not_dropped() {
        let ga = parse(
            file("\" TOTP_AUTH\n\" RESETTING_TIME_SKEW 1740000000+1\n\" LAST0 10.0.0.1 1740000000\n\" TIME_SKEW -2\n").as_bytes(),
        )
        .unwrap();
        assert_eq!(ga.other_options, ["RESETTING_TIME_SKEW", "LAST0"]);
        assert_eq!(ga.time_skew, Some(-2));
    }

    #[test]
    fn crlf_line_ends_and_blank_lines_are_accepted() {
        let ga = parse(format!("{SECRET}\r\n\" TOTP_AUTH\r\n\r\n12345678\r\n").as_bytes()).unwrap();
        assert_eq!(ga.scratch_codes.len(), 1);
    }

    #[test]
    fn a_lower_case_grouped_secret_is_normalised() {
        let ga = parse(b"xfrd rlpb jf33 2y3a jzvv avil cq\n\" TOTP_AUTH\n").unwrap();
        assert_eq!(ga.secret.expose(), SECRET);
    }

    #[test]
    fn damaged_and_hostile_files_are_refused_with_a_typed_reason() {
        let cases: Vec<(Vec<u8>, GaError)> = vec![
            (b"".to_vec(), GaError::Empty),
            (
                vec![b'A'; MAX_FILE_SIZE + 1],
                GaError::TooLarge {
                    size: MAX_FILE_SIZE + 1,
                },
            ),
            (b"\xff\xfe\x00binary".to_vec(), GaError::NotText),
            (file("\" TOTP_AUTH\0\n").into_bytes(), GaError::NotText),
            (b"NOT!BASE32\n".to_vec(), GaError::BadSecret),
            (b"ABCDEFGH1\n".to_vec(), GaError::BadSecret),
            (b"\" TOTP_AUTH\n".to_vec(), GaError::BadSecret),
            (b"JBSWY3DP\n".to_vec(), GaError::SecretLength { bits: 40 }),
            (
                file("\" STEP_SIZE 0\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "STEP_SIZE",
                    expected: "one whole number from 1 to 60",
                },
            ),
            (
                file("\" STEP_SIZE 61\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "STEP_SIZE",
                    expected: "one whole number from 1 to 60",
                },
            ),
            (
                file("\" STEP_SIZE 30 30\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "STEP_SIZE",
                    expected: "one whole number from 1 to 60",
                },
            ),
            (
                file("\" WINDOW_SIZE 1000\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "WINDOW_SIZE",
                    expected: "one whole number from 1 to 100",
                },
            ),
            (
                file("\" HOTP_COUNTER -1\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "HOTP_COUNTER",
                    expected: "one whole number, 0 or more",
                },
            ),
            (
                file("\" HOTP_COUNTER 99999999999999999999\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "HOTP_COUNTER",
                    expected: "one whole number, 0 or more",
                },
            ),
            (
                file("\" RATE_LIMIT 3\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "RATE_LIMIT",
                    expected: "attempts (1-100), seconds (1-3600), then login times",
                },
            ),
            (
                file("\" TOTP_AUTH yes\n").into_bytes(),
                GaError::BadOptionValue {
                    line: 2,
                    option: "TOTP_AUTH",
                    expected: "no value",
                },
            ),
            (
                file("\" lower_case\n").into_bytes(),
                GaError::BadOptionName { line: 2 },
            ),
            (
                file("\" \n").into_bytes(),
                GaError::BadOptionName { line: 2 },
            ),
            (
                file("\" TOTP_AUTH\n\" TOTP_AUTH\n").into_bytes(),
                GaError::DuplicateOption {
                    line: 3,
                    option: "TOTP_AUTH".into(),
                },
            ),
            (
                file("\" TOTP_AUTH\n\" HOTP_COUNTER 1\n").into_bytes(),
                GaError::BothTotpAndHotp,
            ),
            (file("1234567\n").into_bytes(), GaError::BadLine { line: 2 }),
            (
                file("01234567\n").into_bytes(),
                GaError::BadLine { line: 2 },
            ),
            (
                file("123456789\n").into_bytes(),
                GaError::BadLine { line: 2 },
            ),
            (file("hello\n").into_bytes(), GaError::BadLine { line: 2 }),
            (
                file("12345678\n12345678\n").into_bytes(),
                GaError::DuplicateScratchCode { line: 3 },
            ),
        ];
        for (bytes, expected) in cases {
            let got = parse(&bytes).map(|_| ()).unwrap_err();
            assert_eq!(
                got,
                expected,
                "for {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            );
        }
    }

    #[test]
    fn too_many_scratch_codes_are_refused_and_counted() {
        let codes: String = (0..150).map(|i| format!("{}\n", 10_000_000 + i)).collect();
        assert_eq!(
            parse(file(&codes).as_bytes()).unwrap_err(),
            GaError::TooManyScratchCodes { count: 150 }
        );
    }

    #[test]
    fn no_refusal_quotes_the_secret_or_a_scratch_code() {
        for body in ["\" STEP_SIZE x\n", "12345678 extra\n", "\" BAD-NAME 1\n"] {
            let error = parse(file(body).as_bytes()).unwrap_err().to_string();
            assert!(
                !error.contains(SECRET) && !error.contains("12345678"),
                "{error}"
            );
        }
        let secretish = "ZZZZZZZZZZZZZZZZ!\n";
        let error = parse(secretish.as_bytes()).unwrap_err().to_string();
        assert!(!error.contains("ZZZZ"), "{error}");
        // Debug of a parsed file shows no secret either.
        let ga = parse(file("\" TOTP_AUTH\n23635903\n").as_bytes()).unwrap();
        let debug = format!("{ga:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains("23635903"),
            "{debug}"
        );
    }
}
