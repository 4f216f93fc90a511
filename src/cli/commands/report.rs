//! `pam-totp report`: one line per user for a rollout, never a secret.

use super::status::utc;
use super::{Done, out};
use crate::cli::{CliError, Context, now};
use pam_totp::admin::{UserReport, report_user};
use pam_totp::privileges::PasswdDatabase;
use serde::Serialize;

/// What `report --json` prints per user, in this order.
#[derive(Serialize)]
struct ReportJson<'a> {
    user: &'a str,
    enrolled: Option<bool>,
    state_file: Option<String>,
    recovery_codes_left: Option<usize>,
    last_success: Option<LastSuccessJson>,
    throttled: Option<bool>,
    throttled_seconds_left: Option<u64>,
    google_authenticator_file: Option<bool>,
    problem: Option<&'a str>,
}

#[derive(Serialize)]
struct LastSuccessJson {
    time: u64,
    method: &'static str,
}

impl<'a> From<&'a UserReport> for ReportJson<'a> {
    fn from(line: &'a UserReport) -> Self {
        let enrolled = line.enrolled == Some(true);
        ReportJson {
            user: &line.user,
            enrolled: line.enrolled,
            state_file: line.state_file.as_ref().map(|p| p.display().to_string()),
            recovery_codes_left: line.recovery_codes_left,
            last_success: line.last_success.map(|s| LastSuccessJson {
                time: s.time,
                method: s.method.as_str(),
            }),
            throttled: enrolled.then_some(line.throttled_for.is_some()),
            throttled_seconds_left: line.throttled_for,
            google_authenticator_file: line.ga_file,
            problem: line.problem.as_deref(),
        }
    }
}

pub fn report(context: &Context, names: &[String], json: bool) -> Done {
    if !context.actor.caller.uid.is_root() {
        return Err(CliError::Refused(
            "report is for root: it reads every user's state (use `pam-totp status` for your own)"
                .into(),
        ));
    }
    let names = if names.is_empty() {
        PasswdDatabase.all_names()
    } else {
        names.to_vec()
    };
    let now = now()?;
    let (mut enrolled, mut not_enrolled, mut unreadable) = (0, 0, 0);
    for name in &names {
        let line = report_user(name, &context.options, now);
        match (line.enrolled, &line.problem) {
            (_, Some(_)) | (None, _) => unreadable += 1,
            (Some(true), None) => enrolled += 1,
            (Some(false), None) => not_enrolled += 1,
        }
        let text = if json {
            serde_json::to_string(&ReportJson::from(&line))
                .map_err(|e| CliError::Refused(format!("cannot write JSON: {e}")))?
        } else {
            described(&line)
        };
        out(&format!("{text}\n"))?;
    }
    let summary = format!(
        "report: {enrolled} enrolled, {not_enrolled} not enrolled, {unreadable} could not be read"
    );
    if unreadable > 0 {
        return Err(CliError::Refused(summary));
    }
    Ok(summary)
}

fn described(line: &UserReport) -> String {
    let mut parts = vec![];
    match line.enrolled {
        Some(true) => parts.push("enrolled".to_owned()),
        Some(false) => parts.push("NOT enrolled".to_owned()),
        None => parts.push("unknown".to_owned()),
    }
    if let Some(path) = &line.state_file {
        parts.push(format!("state {}", path.display()));
    }
    if let Some(left) = line.recovery_codes_left {
        parts.push(format!("{left} recovery code(s) left"));
    }
    if line.enrolled == Some(true) {
        parts.push(match line.last_success {
            Some(s) => format!("last success {} ({})", utc(s.time), s.method.as_str()),
            None => "never logged in with a code".into(),
        });
        parts.push(match line.throttled_for {
            Some(seconds) => format!("throttled ({seconds} s left)"),
            None => "not throttled".into(),
        });
    }
    match line.ga_file {
        Some(true) if line.enrolled == Some(false) => parts.push(format!(
            "google-authenticator file present: `pam-totp --user {} import`",
            line.user
        )),
        Some(true) => parts.push("google-authenticator file present".into()),
        Some(false) => {}
        None => parts.push("google-authenticator file: unknown".into()),
    }
    if let Some(problem) = &line.problem {
        parts.push(format!("cannot read: {problem}"));
    }
    format!("{}: {}", line.user, parts.join("; "))
}
