//! Pins for the helper protocol's bounds and for every request and response kind (issue 13,
//! item 18): the helper runs as root on a hostile user's input, so each refusal is pinned
//! with the reason it gives (a line refused for the wrong reason means a check is gone and
//! a later one happened to catch it), and each kind must come back as itself.

use super::*;

/// Why `Line::parse` refuses `bytes`, or `None` if it takes it.
fn refusal(bytes: &[u8]) -> Option<&'static str> {
    Line::parse(bytes).err().map(|BadLine(why)| why)
}

fn request_refusal(line: &str) -> Option<&'static str> {
    Request::parse(line.as_bytes())
        .err()
        .map(|BadLine(why)| why)
}

/// Parses a request's own line; the request must come back as the same kind with the same
/// values (compared by its line, since codes print redacted).
fn assert_round_trip(request: &Request) {
    let line = request.encode();
    let back = Request::parse(line.trim_end_matches('\n').as_bytes())
        .unwrap_or_else(|e| panic!("{line:?} refused: {e:?}"));
    assert_eq!(format!("{back:?}"), format!("{request:?}"), "{line:?}");
    assert_eq!(*back.encode(), *line);
    assert_eq!(back.name(), request.name());
}

#[test]
fn each_line_is_refused_for_its_own_reason() {
    let long_word = "a".repeat(MAX_WORD + 1);
    let long_key = format!("status {}=1", "k".repeat(MAX_WORD + 1));
    let cases: &[(&[u8], &str)] = &[
        (b"STATUS", "bad word"),
        (b"stat!s", "bad word"),
        (long_word.as_bytes(), "bad word"),
        (b"", "bad word"),
        (b"status CODE=1", "bad or repeated key"),
        (long_key.as_bytes(), "bad or repeated key"),
        (b"status x=1 x=2", "bad or repeated key"),
        (b"status x=1 y=2 x=3", "bad or repeated key"),
        (b"status x", "field without ="),
        // Printable, but outside the safe set: must come escaped.
        (b"status x=a!b", "character not allowed"),
        (b"status x=a=b", "character not allowed"),
        (b"status x=%4", "bad escape"),
        (b"status x=%zz", "bad escape"),
        (b"status x=\t", "not printable ASCII"),
    ];
    for (line, why) in cases {
        assert_eq!(
            refusal(line),
            Some(*why),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    // At the bounds: a word of MAX_WORD characters, '-' and '_' in words and keys.
    let word = "a".repeat(MAX_WORD);
    for line in [
        word.as_str(),
        "recovery-codes",
        "x_y a-b=1 c_d=2",
        "status a=1 b=2 c=3",
    ] {
        assert_eq!(refusal(line.as_bytes()), None, "{line:?}");
    }
    let fields: String = (0..MAX_FIELDS).map(|i| format!(" k{i}=1")).collect();
    assert_eq!(refusal(format!("status{fields}").as_bytes()), None);
    assert_eq!(
        refusal(format!("status{fields} one=more").as_bytes()),
        Some("too many fields")
    );
}

#[test]
fn escapes_decode_to_the_bytes_they_name() {
    let line = Line::parse(b"w a=%41b%2C%25 b=x%3Dy%20z c=%C3%A9").unwrap();
    assert_eq!(line.get("a").unwrap(), "Ab,%");
    assert_eq!(line.get("b").unwrap(), "x=y z");
    assert_eq!(line.get("c").unwrap(), "\u{e9}");
    // Every byte outside the safe set is escaped, and only those.
    assert_eq!(escape("aZ09._/:@+-,"), "aZ09._/:@+-,");
    assert_eq!(escape("a b=c%"), "a%20b%3Dc%25");
}

#[test]
fn numbers_are_plain_digits_up_to_twenty_of_them() {
    let number = |text: &str| {
        Line::parse(format!("w n={text}").as_bytes())
            .unwrap()
            .number::<u64>("n")
    };
    assert_eq!(number("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(number("0"), Ok(0));
    // 21 digits: refused unread, even where the value would fit.
    assert_eq!(
        number("000000000000000000001"),
        Err(BadLine("not a number"))
    );
    assert_eq!(number("+1"), Err(BadLine("not a number")));
    assert_eq!(number("1a"), Err(BadLine("not a number")));
    assert_eq!(number(""), Err(BadLine("not a number")));
    assert_eq!(
        number("18446744073709551616"),
        Err(BadLine("number out of range"))
    );
}

#[test]
fn codes_are_one_to_max_code_characters() {
    let at_bound = format!("prove code={}", "1".repeat(MAX_CODE));
    assert!(
        matches!(Request::parse(at_bound.as_bytes()), Ok(Request::Prove(code)) if code.expose().len() == MAX_CODE)
    );
    let over = format!("prove code={}", "1".repeat(MAX_CODE + 1));
    assert_eq!(request_refusal(&over), Some("bad code length"));
    assert_eq!(request_refusal("prove code="), Some("bad code length"));
}

#[test]
fn each_request_kind_comes_back_as_itself() {
    let code = || SecretString::new("123456".into());
    let requests = [
        Request::Hello { version: VERSION },
        Request::Status,
        Request::Prepare,
        Request::Commit,
        Request::Prove(code()),
        Request::Verify(code()),
        Request::Disable(code()),
        Request::Enroll(OtpParams {
            algorithm: HashAlgorithm::SHA512,
            digits: 8,
            period: 300,
        }),
        Request::Enroll(OtpParams {
            algorithm: HashAlgorithm::SHA256,
            digits: 6,
            period: 10,
        }),
        Request::Confirm {
            code: code(),
            count: MAX_RECOVERY_CODES,
        },
        Request::RecoveryCodes {
            code: code(),
            count: 0,
        },
    ];
    let names = [
        "hello",
        "status",
        "prepare",
        "commit",
        "prove",
        "verify",
        "disable",
        "enroll",
        "enroll",
        "confirm",
        "recovery-codes",
    ];
    for (request, name) in requests.iter().zip(names) {
        assert_eq!(request.name(), name);
        assert_round_trip(request);
    }
}

#[test]
fn request_values_out_of_range_are_refused() {
    let too_many = format!("confirm code=1 count={}", MAX_RECOVERY_CODES + 1);
    assert_eq!(request_refusal(&too_many), Some("too many recovery codes"));
    let at_most = format!("recovery-codes code=1 count={MAX_RECOVERY_CODES}");
    assert_eq!(request_refusal(&at_most), None);
    for line in [
        "enroll algorithm=SHA1 digits=5 period=30",
        "enroll algorithm=SHA1 digits=9 period=30",
        "enroll algorithm=SHA1 digits=6 period=9",
        "enroll algorithm=SHA1 digits=6 period=301",
    ] {
        assert_eq!(
            request_refusal(line),
            Some("digits or period out of range"),
            "{line}"
        );
    }
    assert_eq!(
        request_refusal("enroll algorithm=sha1 digits=6 period=30"),
        Some("unknown algorithm")
    );
    assert_eq!(request_refusal("status extra=1"), Some("unexpected fields"));
    assert_eq!(
        request_refusal("prove code=1 extra=2"),
        Some("unexpected fields")
    );
}

fn assert_response_round_trip(response: &Response) {
    let line = response.encode();
    let back = Response::parse(line.trim_end_matches('\n').as_bytes())
        .unwrap_or_else(|e| panic!("{line:?} refused: {e:?}"));
    assert_eq!(format!("{back:?}"), format!("{response:?}"), "{line:?}");
    assert_eq!(*back.encode(), *line);
}

#[test]
fn each_response_kind_comes_back_as_itself() {
    let verdicts = [
        Verdict::Totp { step: 7 },
        Verdict::Hotp { counter: 8 },
        Verdict::Recovery { remaining: 9 },
        Verdict::Throttled { seconds: 10 },
        Verdict::Wrong {
            reason: WrongReason::Replayed,
            failures: 1,
        },
        Verdict::Wrong {
            reason: WrongReason::WrongCode,
            failures: 2,
        },
        Verdict::Wrong {
            reason: WrongReason::WrongRecoveryCode,
            failures: 3,
        },
        Verdict::Wrong {
            reason: WrongReason::Malformed,
            failures: 4,
        },
        Verdict::Wrong {
            reason: WrongReason::Empty,
            failures: 5,
        },
    ];
    let mut responses = vec![
        Response::Prepared(Prepared::NotEnrolled),
        Response::Prepared(Prepared::Throttled { seconds: 3 }),
        Response::Prepared(Prepared::Ready { digits: 8 }),
        Response::Codes(Vec::new()),
        Response::Done,
        Response::Failed("no".into()),
    ];
    for verdict in verdicts {
        responses.push(Response::Verdict {
            verdict,
            period: 60,
        });
        responses.push(Response::Refused(Refused::Proof(verdict)));
    }
    for refused in [
        Refused::NotEnrolled,
        Refused::ProofNeeded,
        Refused::SelfEnrollOff,
        Refused::TotpRequired,
        Refused::NoMatch,
        Refused::NothingToConfirm,
        Refused::BadRequest,
    ] {
        responses.push(Response::Refused(refused));
    }
    for method in [Method::Totp, Method::Recovery, Method::Hotp] {
        responses.push(Response::Status(Some(Enrolled {
            params: OtpParams {
                algorithm: HashAlgorithm::SHA1,
                digits: 6,
                period: 30,
            },
            recovery_codes_left: 1,
            last_success: Some(LastSuccess { time: 5, method }),
            throttle: Throttle::default(),
            kind: Kind::Totp,
            hotp_counter: None,
        })));
    }
    for response in &responses {
        assert_response_round_trip(response);
    }
    let secret = Response::parse(b"ok kind=secret secret=JBSWY3DP").unwrap();
    assert!(matches!(secret, Response::Secret(s) if s.expose() == "JBSWY3DP"));
    let codes = Response::parse(b"ok kind=codes codes=ab,,cd").unwrap();
    assert!(
        matches!(codes, Response::Codes(c) if c.len() == 2 && c[0].expose() == "ab" && c[1].expose() == "cd")
    );
}

#[test]
fn responses_out_of_the_protocol_are_refused() {
    let refused = |line: &str| Response::parse(line.as_bytes()).err().map(|BadLine(w)| w);
    let other = VERSION + 1;
    assert_eq!(
        refused(&format!("ok kind=hello version={other} user=u location=/x")),
        Some("other protocol version")
    );
    assert_eq!(
        refused("ok kind=verdict period=30 verdict=maybe"),
        Some("unknown verdict")
    );
    assert_eq!(
        refused("ok kind=verdict period=30 verdict=wrong reason=odd failures=1"),
        Some("unknown reason")
    );
    assert_eq!(refused("no kind=later"), Some("unknown refusal"));
    assert_eq!(
        refused("ok kind=status enrolled=maybe"),
        Some("bad enrolled")
    );
    assert_eq!(refused("ok kind=prepared state=odd"), Some("bad state"));
    assert_eq!(refused("ok kind=odd"), Some("unknown response"));
    assert_eq!(refused("maybe kind=done"), Some("unknown response"));
}
