//! Responses, helper to client: what was done, refused or failed.

use super::*;

/// Why the helper refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotEnrolled,
    /// Already enrolled: a current code must be proved first in the same run.
    ProofNeeded,
    /// The admin turned self-enrollment off (`self_enroll = false`).
    SelfEnrollOff,
    /// The proof was wrong (counted) or throttled.
    Proof(Verdict),
    TotpRequired,
    /// `confirm`: the code does not match the new secret (nothing is counted or saved).
    NoMatch,
    /// `confirm` without an `enroll` before it.
    NothingToConfirm,
    /// A malformed or unknown request, or one too many: the run ends.
    BadRequest,
}

/// What the helper answers.
#[derive(Debug)]
pub enum Response {
    Hello {
        user: String,
        location: PathBuf,
    },
    Status(Option<Enrolled>),
    Prepared(Prepared),
    Verdict {
        verdict: Verdict,
        period: u64,
    },
    /// `enroll`: the new secret, shown once (and kept by the helper until `confirm`).
    Secret(SecretString),
    /// New recovery codes, shown once.
    Codes(Vec<SecretString>),
    Done,
    Refused(Refused),
    /// Could not be done (files, config): a sentence without secrets.
    Failed(String),
}

pub(super) fn verdict_fields(line: Line, verdict: Verdict) -> Line {
    match verdict {
        Verdict::Totp { step } => line.with("verdict", "totp").with("step", step),
        Verdict::Hotp { counter } => line.with("verdict", "hotp").with("counter", counter),
        Verdict::Recovery { remaining } => line
            .with("verdict", "recovery")
            .with("remaining", remaining),
        Verdict::Wrong { reason, failures } => line
            .with("verdict", "wrong")
            .with("reason", reason.as_str())
            .with("failures", failures),
        Verdict::Throttled { seconds } => {
            line.with("verdict", "throttled").with("seconds", seconds)
        }
    }
}

pub(super) fn parse_verdict(line: &Line) -> Result<Verdict, BadLine> {
    Ok(match line.get("verdict")? {
        "totp" => Verdict::Totp {
            step: line.number("step")?,
        },
        "hotp" => Verdict::Hotp {
            counter: line.number("counter")?,
        },
        "recovery" => Verdict::Recovery {
            remaining: line.number("remaining")?,
        },
        "wrong" => {
            let reason = line.get("reason")?;
            let reason = [
                WrongReason::Replayed,
                WrongReason::WrongCode,
                WrongReason::WrongRecoveryCode,
                WrongReason::Malformed,
                WrongReason::Empty,
            ]
            .into_iter()
            .find(|r| r.as_str() == reason)
            .ok_or(BadLine("unknown reason"))?;
            Verdict::Wrong {
                reason,
                failures: line.number("failures")?,
            }
        }
        "throttled" => Verdict::Throttled {
            seconds: line.number("seconds")?,
        },
        _ => return Err(BadLine("unknown verdict")),
    })
}

impl Response {
    pub fn encode(&self) -> Zeroizing<String> {
        let line = match self {
            Response::Hello { user, location } => Line::new("ok")
                .with("kind", "hello")
                .with("version", VERSION)
                .with("user", user)
                .with("location", location.display()),
            Response::Status(None) => Line::new("ok")
                .with("kind", "status")
                .with("enrolled", "no"),
            Response::Status(Some(e)) => {
                let mut line = Line::new("ok")
                    .with("kind", "status")
                    .with("enrolled", "yes")
                    .with("algorithm", e.params.algorithm.as_str())
                    .with("digits", e.params.digits)
                    .with("period", e.params.period)
                    .with("codes_left", e.recovery_codes_left)
                    .with("failures", e.throttle.failures)
                    .with("locked_until", e.throttle.locked_until);
                if let Some(last) = e.last_success {
                    line = line
                        .with("last_time", last.time)
                        .with("last_method", last.method.as_str());
                }
                if let Some(counter) = e.hotp_counter {
                    line = line.with("hotp_counter", counter);
                }
                line
            }
            Response::Prepared(Prepared::NotEnrolled) => Line::new("ok")
                .with("kind", "prepared")
                .with("state", "not-enrolled"),
            Response::Prepared(Prepared::Throttled { seconds }) => Line::new("ok")
                .with("kind", "prepared")
                .with("state", "throttled")
                .with("seconds", seconds),
            Response::Prepared(Prepared::Ready { digits }) => Line::new("ok")
                .with("kind", "prepared")
                .with("state", "ready")
                .with("digits", digits),
            Response::Verdict { verdict, period } => verdict_fields(
                Line::new("ok")
                    .with("kind", "verdict")
                    .with("period", period),
                *verdict,
            ),
            Response::Secret(secret) => Line::new("ok")
                .with("kind", "secret")
                .with("secret", secret.expose()),
            Response::Codes(codes) => {
                let joined: Vec<&str> = codes.iter().map(SecretString::expose).collect();
                Line::new("ok")
                    .with("kind", "codes")
                    .with("codes", Zeroizing::new(joined.join(",")).as_str())
            }
            Response::Done => Line::new("ok").with("kind", "done"),
            Response::Refused(refused) => {
                let line = Line::new("no");
                match refused {
                    Refused::NotEnrolled => line.with("kind", "not-enrolled"),
                    Refused::ProofNeeded => line.with("kind", "proof-needed"),
                    Refused::SelfEnrollOff => line.with("kind", "self-enroll-off"),
                    Refused::Proof(verdict) => verdict_fields(line.with("kind", "proof"), *verdict),
                    Refused::TotpRequired => line.with("kind", "totp-required"),
                    Refused::NoMatch => line.with("kind", "no-match"),
                    Refused::NothingToConfirm => line.with("kind", "nothing-to-confirm"),
                    Refused::BadRequest => line.with("kind", "bad-request"),
                }
            }
            Response::Failed(text) => Line::new("error").with("text", text),
        };
        line.encode()
    }

    /// Parses one response line (without its newline), as the client reads it.
    pub fn parse(bytes: &[u8]) -> Result<Response, BadLine> {
        let line = Line::parse(bytes)?;
        let kind = line.get("kind").unwrap_or_default().to_owned();
        let response = match (line.word.as_str(), kind.as_str()) {
            ("ok", "hello") => {
                if line.number::<u32>("version")? != VERSION {
                    return Err(BadLine("other protocol version"));
                }
                Response::Hello {
                    user: line.get("user")?.to_owned(),
                    location: PathBuf::from(line.get("location")?),
                }
            }
            ("ok", "status") => match line.get("enrolled")? {
                "no" => Response::Status(None),
                "yes" => {
                    let last_success = match line.get("last_time") {
                        Ok(_) => Some(LastSuccess {
                            time: line.number("last_time")?,
                            method: match line.get("last_method")? {
                                "totp" => Method::Totp,
                                "recovery" => Method::Recovery,
                                "hotp" => Method::Hotp,
                                _ => return Err(BadLine("unknown method")),
                            },
                        }),
                        Err(_) => None,
                    };
                    // Only an HOTP enrollment has a counter.
                    let hotp_counter = match line.get("hotp_counter") {
                        Ok(_) => Some(line.number("hotp_counter")?),
                        Err(_) => None,
                    };
                    Response::Status(Some(Enrolled {
                        params: OtpParams {
                            algorithm: algorithm(line.get("algorithm")?)?,
                            digits: line.number("digits")?,
                            period: line.number("period")?,
                        },
                        recovery_codes_left: line.number("codes_left")?,
                        last_success,
                        throttle: Throttle {
                            failures: line.number("failures")?,
                            locked_until: line.number("locked_until")?,
                        },
                        kind: if hotp_counter.is_some() {
                            Kind::Hotp
                        } else {
                            Kind::Totp
                        },
                        hotp_counter,
                    }))
                }
                _ => return Err(BadLine("bad enrolled")),
            },
            ("ok", "prepared") => Response::Prepared(match line.get("state")? {
                "not-enrolled" => Prepared::NotEnrolled,
                "throttled" => Prepared::Throttled {
                    seconds: line.number("seconds")?,
                },
                "ready" => Prepared::Ready {
                    digits: line.number("digits")?,
                },
                _ => return Err(BadLine("bad state")),
            }),
            ("ok", "verdict") => Response::Verdict {
                verdict: parse_verdict(&line)?,
                period: line.number("period")?,
            },
            ("ok", "secret") => Response::Secret(SecretString::new(line.get("secret")?.to_owned())),
            ("ok", "codes") => {
                let codes = line.get("codes")?;
                Response::Codes(
                    codes
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(|c| SecretString::new(c.to_owned()))
                        .collect(),
                )
            }
            ("ok", "done") => Response::Done,
            ("no", kind) => Response::Refused(match kind {
                "not-enrolled" => Refused::NotEnrolled,
                "proof-needed" => Refused::ProofNeeded,
                "self-enroll-off" => Refused::SelfEnrollOff,
                "proof" => Refused::Proof(parse_verdict(&line)?),
                "totp-required" => Refused::TotpRequired,
                "no-match" => Refused::NoMatch,
                "nothing-to-confirm" => Refused::NothingToConfirm,
                "bad-request" => Refused::BadRequest,
                _ => return Err(BadLine("unknown refusal")),
            }),
            ("error", _) => Response::Failed(line.get("text")?.to_owned()),
            _ => return Err(BadLine("unknown response")),
        };
        Ok(response)
    }
}
