//! What doctor found, and its two renderings: text for people, JSON for config management.

use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// A way around the code, or logins that cannot work: exit 1.
    Error,
    /// A risk an attacker can use (lockout, a weaker path): exit 1.
    Warning,
    /// Information (where pam_totp sits, a known trade-off the admin chose): exit 0.
    Note,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A file and, where one is to blame, a line of it (as named on the checked system, i.e.
/// without the `--root` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Location {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Location {
    pub fn file(file: impl Into<PathBuf>) -> Location {
        Location {
            file: file.into(),
            line: None,
        }
    }

    pub fn line(file: impl AsRef<Path>, line: usize) -> Location {
        Location {
            file: file.as_ref().to_owned(),
            line: Some(line),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub severity: Severity,
    /// Stable name for scripts, e.g. `pam.password-not-requisite`.
    pub id: &'static str,
    pub what: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub why: String,
    pub fix: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        id: &'static str,
        location: Option<Location>,
        what: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            id,
            what: what.into(),
            location,
            why: why.into(),
            fix: fix.into(),
        }
    }
}

/// Everything found, in the order the checks ran.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }

    /// Nothing is wrong when there are only notes.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.severity == Severity::Note)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} error(s), {} warning(s), {} note(s)",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Note)
        )
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            let _ = write!(out, "{}: ", finding.severity.label());
            if let Some(location) = &finding.location {
                let _ = write!(out, "{}", location.file.display());
                if let Some(line) = location.line {
                    let _ = write!(out, ":{line}");
                }
                out.push_str(": ");
            }
            let _ = writeln!(out, "{}", finding.what);
            let _ = writeln!(out, "  why: {}", finding.why);
            if !finding.fix.is_empty() {
                let _ = writeln!(out, "  fix: {}", finding.fix);
            }
        }
        let verdict = if self.is_clean() {
            "nothing wrong found"
        } else {
            "problems found"
        };
        let _ = writeln!(out, "pam-totp doctor: {verdict}: {}", self.summary());
        out
    }

    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "ok": self.is_clean(),
            "findings": self.findings,
        });
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}
