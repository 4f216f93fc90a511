//! Requests, client to helper: parsed with every bound checked, since the helper runs as
//! root on a hostile user's input.

use super::*;

/// What the client asks.
#[derive(Debug)]
pub enum Request {
    Hello {
        version: u32,
    },
    Status,
    Prepare,
    Prove(SecretString),
    Verify(SecretString),
    Disable(SecretString),
    Enroll(OtpParams),
    Confirm {
        code: SecretString,
        count: usize,
    },
    RecoveryCodes {
        code: SecretString,
        count: usize,
    },
    /// The client has shown (written and flushed) what `confirm` or `recovery-codes` sent:
    /// only now is it saved.
    Commit,
}

impl Request {
    /// The request's name, for log lines (never its values).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Status => "status",
            Request::Prepare => "prepare",
            Request::Prove(_) => "prove",
            Request::Verify(_) => "verify",
            Request::Disable(_) => "disable",
            Request::Enroll(_) => "enroll",
            Request::Confirm { .. } => "confirm",
            Request::RecoveryCodes { .. } => "recovery-codes",
            Request::Commit => "commit",
        }
    }

    /// Parses one request line (without its newline).
    pub fn parse(bytes: &[u8]) -> Result<Request, BadLine> {
        let line = Line::parse(bytes)?;
        let count = |line: &Line| -> Result<usize, BadLine> {
            let count: usize = line.number("count")?;
            if count > MAX_RECOVERY_CODES {
                return Err(BadLine("too many recovery codes"));
            }
            Ok(count)
        };
        let request = match line.word.as_str() {
            "hello" => {
                line.expect(&["version"])?;
                Request::Hello {
                    version: line.number("version")?,
                }
            }
            "status" => {
                line.expect(&[])?;
                Request::Status
            }
            "prepare" => {
                line.expect(&[])?;
                Request::Prepare
            }
            "commit" => {
                line.expect(&[])?;
                Request::Commit
            }
            "prove" | "verify" | "disable" => {
                line.expect(&["code"])?;
                let code = line.code()?;
                match line.word.as_str() {
                    "prove" => Request::Prove(code),
                    "verify" => Request::Verify(code),
                    _ => Request::Disable(code),
                }
            }
            "enroll" => {
                line.expect(&["algorithm", "digits", "period"])?;
                let algorithm = algorithm(line.get("algorithm")?)?;
                let digits: u8 = line.number("digits")?;
                let period: u64 = line.number("period")?;
                if !crate::otp::DIGITS.contains(&digits) || !(10..=300).contains(&period) {
                    return Err(BadLine("digits or period out of range"));
                }
                Request::Enroll(OtpParams {
                    algorithm,
                    digits,
                    period,
                })
            }
            "confirm" | "recovery-codes" => {
                line.expect(&["code", "count"])?;
                let code = line.code()?;
                let count = count(&line)?;
                if line.word == "confirm" {
                    Request::Confirm { code, count }
                } else {
                    Request::RecoveryCodes { code, count }
                }
            }
            _ => return Err(BadLine("unknown request")),
        };
        Ok(request)
    }

    /// The line to send (wiped when dropped: it may hold a code).
    pub fn encode(&self) -> Zeroizing<String> {
        let line = match self {
            Request::Hello { version } => Line::new("hello").with("version", version),
            Request::Status => Line::new("status"),
            Request::Prepare => Line::new("prepare"),
            Request::Commit => Line::new("commit"),
            Request::Prove(code) => Line::new("prove").with("code", code.expose()),
            Request::Verify(code) => Line::new("verify").with("code", code.expose()),
            Request::Disable(code) => Line::new("disable").with("code", code.expose()),
            Request::Enroll(params) => Line::new("enroll")
                .with("algorithm", params.algorithm.as_str())
                .with("digits", params.digits)
                .with("period", params.period),
            Request::Confirm { code, count } => Line::new("confirm")
                .with("code", code.expose())
                .with("count", count),
            Request::RecoveryCodes { code, count } => Line::new("recovery-codes")
                .with("code", code.expose())
                .with("count", count),
        };
        line.encode()
    }
}

pub(super) fn algorithm(text: &str) -> Result<HashAlgorithm, BadLine> {
    [
        HashAlgorithm::SHA1,
        HashAlgorithm::SHA256,
        HashAlgorithm::SHA512,
    ]
    .into_iter()
    .find(|a| a.as_str() == text)
    .ok_or(BadLine("unknown algorithm"))
}
