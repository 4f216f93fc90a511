//! The google-authenticator file parser against files written by the real
//! `google-authenticator` program (Debian's libpam-google-authenticator), with codes
//! checked by oathtool: programs we did not write.

use pam_totp::import::ga_format::{self, GaMode, RateLimit};
use pam_totp::otp::{self, HashAlgorithm, OtpParams};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs google-authenticator non-interactively with `flags`, returns the file's bytes.
fn written_by_google_authenticator(dir: &Path, flags: &[&str]) -> Vec<u8> {
    let file = dir.join("google_authenticator");
    let status = Command::new("google-authenticator")
        .args(flags)
        .args(["--force", "--quiet", "--qr-mode=NONE", "--secret"])
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("google-authenticator is installed (apt-get install libpam-google-authenticator)");
    assert!(status.success(), "google-authenticator {flags:?} failed");
    fs::read(&file).unwrap()
}

fn oathtool_totp(secret_line: &str, step: u32, time: u64) -> String {
    let output = Command::new("oathtool")
        .args(["--totp", "--base32", &format!("--time-step-size={step}s")])
        .arg(format!("--now=@{time}"))
        .arg(secret_line)
        .output()
        .expect("oathtool is installed");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The code pam-totp computes from the parsed secret.
fn our_code(ga: &ga_format::GaFile, time: u64) -> String {
    let params = OtpParams {
        algorithm: HashAlgorithm::SHA1,
        digits: 6,
        period: u64::from(ga.step_size),
    };
    otp::totp::code_at(&ga.secret, params, time)
        .unwrap()
        .expose()
        .to_owned()
}

#[test]
fn a_totp_file_from_google_authenticator_is_read_with_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = written_by_google_authenticator(
        dir.path(),
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "7"],
    );
    let ga = ga_format::parse(&bytes).unwrap();
    assert_eq!(ga.mode, GaMode::Totp);
    assert_eq!(ga.step_size, 30);
    assert_eq!(ga.window_size, Some(3));
    assert!(ga.disallow_reuse);
    assert_eq!(
        ga.rate_limit,
        Some(RateLimit {
            attempts: 3,
            interval: 30
        })
    );
    assert!(ga.other_options.is_empty(), "{:?}", ga.other_options);
    // The scratch codes are the file's digit lines, in order.
    let text = String::from_utf8(bytes).unwrap();
    let digit_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(digit_lines.len(), 7);
    let parsed: Vec<&str> = ga.scratch_codes.iter().map(|c| c.expose()).collect();
    assert_eq!(parsed, digit_lines);
    // The secret gives the codes the app shows (oathtool reads line 1 as it is).
    let secret_line = text.lines().next().unwrap();
    for time in [0, 1_740_000_000, 4_000_000_000] {
        assert_eq!(our_code(&ga, time), oathtool_totp(secret_line, 30, time));
    }
}

#[test]
fn step_size_and_reuse_from_google_authenticator_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = written_by_google_authenticator(
        dir.path(),
        &["-t", "-D", "-u", "-S", "60", "-w", "17", "-e", "0"],
    );
    let ga = ga_format::parse(&bytes).unwrap();
    assert_eq!(ga.step_size, 60);
    assert_eq!(ga.window_size, Some(17));
    assert_eq!(ga.window_steps_each_side(), 8);
    assert!(!ga.disallow_reuse);
    assert_eq!(ga.rate_limit, None);
    assert!(ga.scratch_codes.is_empty());
    let secret_line = String::from_utf8(bytes).unwrap();
    let secret_line = secret_line.lines().next().unwrap();
    assert_eq!(
        our_code(&ga, 1_740_000_000),
        oathtool_totp(secret_line, 60, 1_740_000_000)
    );
}

#[test]
fn an_hotp_file_from_google_authenticator_is_read_as_hotp() {
    let dir = tempfile::tempdir().unwrap();
    let bytes =
        written_by_google_authenticator(dir.path(), &["-c", "-w", "5", "-r", "3", "-R", "30"]);
    let ga = ga_format::parse(&bytes).unwrap();
    assert_eq!(ga.mode, GaMode::Hotp { counter: 1 });
    assert_eq!(ga.window_size, Some(5));
    assert_eq!(ga.scratch_codes.len(), 5);
}

#[test]
fn a_real_file_damaged_after_the_fact_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = written_by_google_authenticator(dir.path(), &["-t", "-d", "-w", "3", "-u"]);
    bytes.extend_from_slice(b"\" STEP_SIZE 0\n");
    let error = ga_format::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ga_format::GaError::BadOptionValue {
                option: "STEP_SIZE",
                ..
            }
        ),
        "{error}"
    );
    let secret_line = String::from_utf8(bytes).unwrap();
    let secret_line = secret_line.lines().next().unwrap().to_owned();
    assert!(!error.to_string().contains(&secret_line));
}
