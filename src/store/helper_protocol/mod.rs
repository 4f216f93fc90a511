//! The helper's protocol, version 1: one request line on standard input, one response line
//! on standard output, a few of each per run. Small and fixed on purpose: the helper runs
//! as root on input from a user who may be hostile, so everything here is bounded and
//! anything not exactly as expected is refused.
//!
//! A line is ASCII: a word, then `key=value` fields, separated by single spaces, ended by
//! `\n`, at most [`MAX_LINE`] bytes. Values are escaped ([`escape`]): bytes outside a small
//! safe set are written `%XX`. Requests (client to helper):
//!
//! ```text
//! hello version=1                     first, always
//! status | prepare
//! prove code=C | verify code=C | disable code=C
//! enroll algorithm=SHA1 digits=6 period=30
//! confirm code=C count=N              checks the code, sends the new recovery codes
//! recovery-codes code=C count=N       checks the code, sends the new recovery codes
//! commit                              saves what confirm/recovery-codes sent, once shown
//! ```
//!
//! `confirm` and `recovery-codes` save nothing: the client shows (writes and flushes) the
//! codes, then sends `commit`, and only then does the helper save them, under the lock, if
//! the state is still the one it made them for. Any other request in between, or the end
//! of input, ends the run with nothing changed (the old codes keep working).
//!
//! Responses: `ok KIND fields…`, `no KIND fields…` (refused) or `error text=…` (failed).

#[cfg(test)]
mod pins;
mod request;
mod response;

pub use request::Request;
use request::algorithm;
pub use response::{Refused, Response};

use crate::otp::{HashAlgorithm, Kind, OtpParams};
use crate::policy::{Verdict, WrongReason};
use crate::recovery::MAX_RECOVERY_CODES;
use crate::secret::SecretString;
use crate::state::{Enrolled, LastSuccess, Method, Throttle};
use crate::store::Prepared;
use std::path::PathBuf;
use zeroize::Zeroizing;

pub const VERSION: u32 = 1;
/// The longest line either side sends, newline included.
pub const MAX_LINE: usize = 4096;
/// Requests one helper run answers; then it ends.
pub const MAX_REQUESTS: usize = 16;
const MAX_FIELDS: usize = 16;
const MAX_WORD: usize = 32;
/// No code a person types is anywhere near this.
const MAX_CODE: usize = 128;

/// A line cut into its word and its fields, values unescaped (and wiped when dropped:
/// they may be codes or secrets).
struct Line {
    word: String,
    fields: Vec<(String, Zeroizing<String>)>,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub &'static str);

fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_WORD
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._/:@+-,".contains(&byte)
}

/// Escapes a value: bytes outside a small safe set become `%XX`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if is_plain(byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn unescape(text: &str) -> Result<Zeroizing<String>, BadLine> {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).ok_or(BadLine("bad escape"))?;
                let byte = u8::from_str_radix(hex, 16).map_err(|_| BadLine("bad escape"))?;
                out.push(byte);
                i += 3;
            }
            byte if is_plain(byte) => {
                out.push(byte);
                i += 1;
            }
            _ => return Err(BadLine("character not allowed")),
        }
    }
    let text = String::from_utf8(out.to_vec()).map_err(|_| BadLine("not UTF-8"))?;
    Ok(Zeroizing::new(text))
}

impl Line {
    fn parse(bytes: &[u8]) -> Result<Line, BadLine> {
        if bytes.len() >= MAX_LINE {
            return Err(BadLine("line too long"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| BadLine("not ASCII"))?;
        if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(BadLine("not printable ASCII"));
        }
        let mut parts = text.split(' ');
        let word = parts.next().unwrap_or_default();
        if !is_word(word) {
            return Err(BadLine("bad word"));
        }
        let mut fields: Vec<(String, Zeroizing<String>)> = Vec::new();
        for part in parts {
            if fields.len() == MAX_FIELDS {
                return Err(BadLine("too many fields"));
            }
            let (key, value) = part.split_once('=').ok_or(BadLine("field without ="))?;
            if !is_word(key) || fields.iter().any(|(k, _)| k == key) {
                return Err(BadLine("bad or repeated key"));
            }
            fields.push((key.to_owned(), unescape(value)?));
        }
        Ok(Line {
            word: word.to_owned(),
            fields,
        })
    }

    fn new(word: &str) -> Line {
        Line {
            word: word.to_owned(),
            fields: Vec::new(),
        }
    }

    fn with(mut self, key: &str, value: impl ToString) -> Line {
        self.fields
            .push((key.to_owned(), Zeroizing::new(value.to_string())));
        self
    }

    /// The line to send, newline included (wiped when dropped).
    fn encode(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(self.word.clone());
        for (key, value) in &self.fields {
            out.push(' ');
            out.push_str(key);
            out.push('=');
            out.push_str(&escape(value));
        }
        out.push('\n');
        out
    }

    fn get(&self, key: &str) -> Result<&str, BadLine> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or(BadLine("missing field"))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, BadLine> {
        let text = self.get(key)?;
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadLine("not a number"));
        }
        text.parse().map_err(|_| BadLine("number out of range"))
    }

    /// Exactly these keys, no others.
    fn expect(&self, keys: &[&str]) -> Result<(), BadLine> {
        if self.fields.len() != keys.len() || keys.iter().any(|k| self.get(k).is_err()) {
            return Err(BadLine("unexpected fields"));
        }
        Ok(())
    }

    fn code(&self) -> Result<SecretString, BadLine> {
        let code = self.get("code")?;
        if code.is_empty() || code.len() > MAX_CODE {
            return Err(BadLine("bad code length"));
        }
        Ok(SecretString::new(code.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(request: Request) -> Request {
        let line = request.encode();
        assert!(line.ends_with('\n') && line.len() < MAX_LINE);
        Request::parse(line.trim_end_matches('\n').as_bytes()).unwrap()
    }

    #[test]
    fn requests_survive_encoding_even_with_odd_codes() {
        let code = SecretString::new("12 34%56=\u{e9}".into());
        match roundtrip(Request::Prove(code.clone())) {
            Request::Prove(back) => assert_eq!(back, code),
            other => panic!("{other:?}"),
        }
        match roundtrip(Request::Confirm {
            code: code.clone(),
            count: 10,
        }) {
            Request::Confirm { code: back, count } => assert!(back == code && count == 10),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            roundtrip(Request::Hello { version: 1 }),
            Request::Hello { version: 1 }
        ));
    }

    #[test]
    fn hostile_requests_are_refused() {
        let long = format!("prove code={}", "1".repeat(MAX_LINE));
        let many = format!("status{}", " a=1".repeat(40));
        let bad: &[&[u8]] = &[
            b"",
            b" ",
            b"STATUS",
            b"status ",
            b"status  x=1",
            b"status x=1",
            b"launch-rockets",
            b"prove",
            b"prove code=",
            b"prove code=1 code=2",
            b"prove code=1 extra=2",
            b"prove code=%",
            b"prove code=%G1",
            b"prove code=%FF",
            b"prove code=\xff\xfe",
            b"prove code=12\t34",
            b"prove code=12\x0034",
            b"hello version=-1",
            b"hello version=99999999999999999999999",
            b"enroll algorithm=MD5 digits=6 period=30",
            b"enroll algorithm=SHA1 digits=9 period=30",
            b"enroll algorithm=SHA1 digits=6 period=0",
            b"confirm code=123456 count=100000",
            b"recovery-codes code=123456 count=+1",
            long.as_bytes(),
            many.as_bytes(),
            &[b'a'; 10_000],
        ];
        for line in bad {
            assert!(
                Request::parse(line).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long_code = format!("prove code={}", "1".repeat(MAX_CODE + 1));
        assert!(Request::parse(long_code.as_bytes()).is_err());
    }

    #[test]
    fn responses_survive_encoding() {
        let responses = [
            Response::Hello {
                user: "bob".into(),
                location: PathBuf::from("/var/lib/pam totp/bob.toml"),
            },
            Response::Status(None),
            Response::Status(Some(Enrolled {
                params: OtpParams {
                    algorithm: HashAlgorithm::SHA256,
                    digits: 8,
                    period: 60,
                },
                recovery_codes_left: 3,
                last_success: Some(LastSuccess {
                    time: 17,
                    method: Method::Recovery,
                }),
                throttle: Throttle {
                    failures: 2,
                    locked_until: 99,
                },
                kind: Kind::Totp,
                hotp_counter: None,
            })),
            Response::Status(Some(Enrolled {
                params: OtpParams {
                    algorithm: HashAlgorithm::SHA1,
                    digits: 6,
                    period: 30,
                },
                recovery_codes_left: 0,
                last_success: Some(LastSuccess {
                    time: 18,
                    method: Method::Hotp,
                }),
                throttle: Throttle::default(),
                kind: Kind::Hotp,
                hotp_counter: Some(41),
            })),
            Response::Verdict {
                verdict: Verdict::Hotp { counter: 41 },
                period: 30,
            },
            Response::Prepared(Prepared::Throttled { seconds: 30 }),
            Response::Prepared(Prepared::Ready { digits: 6 }),
            Response::Verdict {
                verdict: Verdict::Totp { step: 5 },
                period: 30,
            },
            Response::Secret(SecretString::new("JBSWY3DPEHPK3PXP".into())),
            Response::Codes(vec![SecretString::new("abcd-efgh".into()); 2]),
            Response::Done,
            Response::Refused(Refused::Proof(Verdict::Wrong {
                reason: WrongReason::Replayed,
                failures: 2,
            })),
            Response::Refused(Refused::NoMatch),
            Response::Failed("cannot read /x: no\nnewline".into()),
        ];
        for response in responses {
            let line = response.encode();
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            let back = Response::parse(line.trim_end_matches('\n').as_bytes()).unwrap();
            assert_eq!(
                format!("{back:?}"),
                format!("{response:?}"),
                "line {line:?}"
            );
        }
    }
}
