//! `pam-totp status`.

use super::{Done, for_whom, out};
use crate::cli::{CliError, Context, messages, now, store};
use pam_totp::admin::{self, Status};
use pam_totp::state::Method;
use serde::Serialize;
use std::fmt::Write as _;

/// What `status --json` prints, in this order (the shape scripts rely on).
#[derive(Serialize)]
struct StatusJson<'a> {
    user: &'a str,
    enrolled: bool,
    state_file: &'a str,
    algorithm: Option<&'a str>,
    digits: Option<u8>,
    period: Option<u64>,
    recovery_codes_left: Option<usize>,
    last_success: Option<LastSuccessJson>,
    throttle: Option<ThrottleJson>,
    /// "totp" or "hotp"; added after the fields scripts already read.
    kind: Option<&'a str>,
    hotp_counter: Option<u64>,
}

#[derive(Serialize)]
struct LastSuccessJson {
    time: u64,
    /// "totp", "hotp" or "recovery"
    method: &'static str,
}

#[derive(Serialize)]
struct ThrottleJson {
    failures: u32,
    locked_until: u64,
    seconds_left: u64,
    max_failures: u32,
}

impl<'a> From<&'a Status> for StatusJson<'a> {
    fn from(status: &'a Status) -> Self {
        StatusJson {
            user: &status.user,
            enrolled: status.enrolled,
            state_file: &status.state_file,
            algorithm: status.algorithm,
            digits: status.digits,
            period: status.period,
            recovery_codes_left: status.recovery_codes_left,
            last_success: status.last_success.map(|success| LastSuccessJson {
                time: success.time,
                method: success.method.as_str(),
            }),
            throttle: status.throttle.as_ref().map(|throttle| ThrottleJson {
                failures: throttle.failures,
                locked_until: throttle.locked_until,
                seconds_left: throttle.seconds_left,
                max_failures: throttle.max_failures,
            }),
            kind: status.kind,
            hotp_counter: status.hotp_counter,
        }
    }
}

pub fn status(context: &Context, json: bool) -> Done {
    let store = store(context)?;
    let status = admin::status(&context.actor, &store, now()?, &context.options)?;
    if json {
        let text = serde_json::to_string(&StatusJson::from(&status))
            .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?;
        out(&format!("{text}\n"))?;
    } else {
        out(&describe_status(&status, context))?;
    }
    Ok("viewed the status".into())
}

fn describe_status(status: &Status, context: &Context) -> String {
    if !status.enrolled {
        return format!(
            "{} is not enrolled (no {}).\nRun `pam-totp enroll{}` to set up two-factor authentication.\n",
            status.user,
            status.state_file,
            for_whom(context)
        );
    }
    let mut text = format!("{} is enrolled.\n", status.user);
    let _ = writeln!(text, "  state file      {}", status.state_file);
    match status.hotp_counter {
        Some(counter) => {
            let _ = writeln!(
                text,
                "{}",
                messages::hotp_status_codes(
                    status.algorithm.unwrap_or_default(),
                    status.digits.unwrap_or_default(),
                    counter
                )
            );
        }
        None => {
            let _ = writeln!(
                text,
                "  codes           {}, {} digits, a new one every {} seconds",
                status.algorithm.unwrap_or_default(),
                status.digits.unwrap_or_default(),
                status.period.unwrap_or_default()
            );
        }
    }
    let left = status.recovery_codes_left.unwrap_or_default();
    let _ = writeln!(
        text,
        "  recovery codes  {left} left{}",
        if left == 0 {
            " (run `pam-totp recovery-codes` to make new ones)"
        } else {
            ""
        }
    );
    let last = match status.last_success {
        Some(success) => format!(
            "{}, with {}",
            utc(success.time),
            match success.method {
                Method::Totp => "a code from the app",
                Method::Recovery => "a recovery code",
                Method::Hotp => "a code from the token",
            }
        ),
        None => "never".into(),
    };
    let _ = writeln!(text, "  last success    {last}");
    if let Some(throttle) = &status.throttle {
        let state = if throttle.seconds_left > 0 {
            format!(
                "no code is checked for {} more seconds ({} wrong codes in a row)",
                throttle.seconds_left, throttle.failures
            )
        } else {
            format!(
                "not throttled ({} wrong codes in a row; codes stop being checked for a while after {})",
                throttle.failures, throttle.max_failures
            )
        };
        let _ = writeln!(text, "  throttling      {state}");
    }
    text
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (proleptic Gregorian calendar).
pub(super) fn utc(time: u64) -> String {
    let days = (time / 86_400) as i64;
    let seconds = time % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
