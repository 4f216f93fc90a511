//! The checks over one service's auth stack: where pam_totp sits, what runs before it,
//! and the options it runs with.

use super::config::Effective;
use super::findings::{Finding, Location, Severity};
use super::pam_stack::{self, Ret, Rule, Stack};

/// What the sshd checks need to know about the sshd stack.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StackFacts {
    pub has_totp: bool,
    /// A wrong password ends the stack before the code prompt.
    pub password_first: bool,
}

pub(super) fn at(rule: &Rule) -> Option<Location> {
    Some(Location::line(&rule.file, rule.line))
}

/// One finding per line of `service`'s stack that libpam could not read. The auth and the
/// password checks word it alike, so a broken file shared by both is reported once.
pub(super) fn report_unreadable(service: &str, stack: &Stack, out: &mut Vec<Finding>) {
    for error in &stack.errors {
        out.push(Finding::new(
            Severity::Error,
            "pam.unreadable",
            Some(Location {
                file: error.file.clone(),
                line: error.line,
            }),
            format!("the {service} stack {}", error.problem),
            "libpam refuses a service whose stack it cannot read: every login through it fails",
            "fix or restore the file; `pamtester` can try the service",
        ));
    }
}

/// Checks `stack` of `service`; `named` when the admin asked for this service.
pub(crate) fn check(
    service: &str,
    stack: &Stack,
    named: bool,
    options_of: &dyn Fn(&Rule) -> Effective,
    out: &mut Vec<Finding>,
) -> StackFacts {
    let mut facts = StackFacts::default();
    report_unreadable(service, stack, out);
    let rules = stack.rules();
    let Some(totp) = rules.iter().copied().find(|r| r.is_totp()) else {
        if named {
            out.push(Finding::new(
                Severity::Error,
                "pam.totp-missing",
                Some(Location::file(&stack.file)),
                format!("pam_totp.so is not in the auth stack of {service}"),
                "logins through this service are never asked for a code",
                "add `auth required pam_totp.so` right after a requisite password module (see pam.d-examples/)",
            ));
        }
        return facts;
    };
    facts.has_totp = true;
    let before: Vec<&str> = rules
        .iter()
        .take_while(|r| !r.is_totp())
        .map(|r| r.name())
        .collect();
    out.push(Finding::new(
        Severity::Note,
        "pam.totp-position",
        at(totp),
        format!(
            "{service}: pam_totp.so is auth rule {} of {} (control {}), after: {}",
            before.len() + 1,
            rules.len(),
            totp.control.text,
            if before.is_empty() {
                "nothing".to_owned()
            } else {
                before.join(", ")
            }
        ),
        "where the code is asked decides what an attacker can reach",
        "",
    ));
    let options = options_of(totp);
    check_wrong_password(service, stack, &options, &mut facts, out);
    check_skips(service, stack, out);
    check_options(service, stack, totp, &options, out);
    facts
}

/// The usual results on paper: pam_deny fails, pam_permit succeeds, conditions say nothing.
fn typical(rule: &Rule) -> Ret {
    match rule.name() {
        "pam_deny" => Ret::Fail,
        "pam_permit" => Ret::Success,
        _ => Ret::Ignore,
    }
}

/// Someone who does not know the password must not reach the code prompt: there every
/// wrong code counts towards the user's throttle, so anyone could lock the user out.
fn check_wrong_password(
    service: &str,
    stack: &Stack,
    options: &Effective,
    facts: &mut StackFacts,
    out: &mut Vec<Finding>,
) {
    if options.forward_pass {
        // The code and the password arrive together; pam_totp decides first by design.
        return;
    }
    let run = pam_stack::run(&stack.entries, &|rule| {
        if rule.is_password() || rule.is_totp() {
            Ret::Fail
        } else {
            typical(rule)
        }
    });
    match run.password_before_totp {
        Some(password) if run.reached_totp => out.push(Finding::new(
            Severity::Warning,
            "pam.password-not-requisite",
            at(password),
            format!(
                "{service}: {} is \"{}\" before pam_totp.so: a wrong password still reaches the code prompt",
                password.name(),
                password.control.text
            ),
            "anyone who knows a user name can then type wrong codes until the user is throttled (locked out), and learn whether the user is enrolled",
            format!("make it `auth requisite {}` (or keep Debian's `@include common-auth`, which ends in `requisite pam_deny.so`)", password.module),
        )),
        Some(_) => facts.password_first = true,
        None => {}
    }
}

/// A login must fail when pam_totp fails, whatever else succeeds before it.
fn check_skips(service: &str, stack: &Stack, out: &mut Vec<Finding>) {
    let rules = stack.rules();
    let conditions: Vec<&Rule> = rules
        .iter()
        .copied()
        .take_while(|r| !r.is_totp())
        .filter(|r| !r.is_password() && !matches!(r.name(), "pam_deny" | "pam_permit"))
        .collect();
    // One run with only the password right, then one per other module that might say yes.
    let mut candidates: Vec<Option<&Rule>> = vec![None];
    candidates.extend(conditions.iter().map(|r| Some(*r)));
    let mut reported: Vec<(std::path::PathBuf, usize)> = Vec::new();
    for yes in candidates {
        let run = pam_stack::run(&stack.entries, &|rule| {
            if rule.is_totp() {
                Ret::Fail
            } else if rule.is_password() || yes.is_some_and(|y| std::ptr::eq(y, rule)) {
                Ret::Success
            } else {
                typical(rule)
            }
        });
        if !run.success {
            continue;
        }
        let culprit = run.skipped_by.or(yes);
        let key = culprit
            .map(|r| (r.file.clone(), r.line))
            .unwrap_or_default();
        if reported.contains(&key) {
            continue;
        }
        reported.push(key);
        let finding = match culprit {
            Some(rule) if !run.reached_totp => {
                // pam_succeed_if is how admins exempt a group on purpose; say so, quietly.
                let deliberate = rule.name() == "pam_succeed_if";
                Finding::new(
                    if deliberate {
                        Severity::Note
                    } else {
                        Severity::Warning
                    },
                    "pam.totp-skipped",
                    at(rule),
                    format!(
                        "{service}: when {} succeeds (\"{}\"), the stack ends or jumps past pam_totp.so and the login needs no code",
                        rule.name(),
                        rule.control.text
                    ),
                    if rule.is_password() {
                        "the password alone logs in"
                    } else if deliberate {
                        "users matching this condition are exempt from the code (intended for an exemption group)"
                    } else {
                        "whoever passes this module never gives a code"
                    },
                    format!(
                        "make {} `requisite` (a password module) or move it after pam_totp.so; keep a `sufficient`/jump only for a deliberate exemption",
                        rule.name()
                    ),
                )
            }
            _ => Finding::new(
                Severity::Error,
                "pam.totp-not-enforced",
                stack.rules().into_iter().find(|r| r.is_totp()).and_then(at),
                format!("{service}: a failed code does not fail the login"),
                "pam_totp.so's control lets the stack succeed after a wrong code",
                "use `auth required pam_totp.so` (or `[success=done ignore=ignore default=die]` with nullok)",
            ),
        };
        out.push(finding);
    }
}

fn check_options(
    service: &str,
    stack: &Stack,
    totp: &Rule,
    options: &Effective,
    out: &mut Vec<Finding>,
) {
    let rules = stack.rules();
    if let Some(why) = &options.refused {
        out.push(Finding::new(
            Severity::Error,
            "pam.bad-arguments",
            at(totp),
            format!("{service}: pam_totp.so refuses its arguments: {why}"),
            "the module fails closed on a bad option (PAM_SERVICE_ERR): every login through this stack fails",
            "correct the argument (see man pam_totp)",
        ));
    }
    if let Some(source) = &options.nullok {
        out.push(Finding::new(
            Severity::Warning,
            "pam.nullok",
            Some(source.clone()),
            format!("{service}: nullok is in force for pam_totp.so"),
            "a user who has not enrolled logs in without any code",
            "remove nullok once every user has enrolled (`pam-totp --user NAME status` shows who has)",
        ));
    }
    if let Some(until) = options
        .options
        .as_ref()
        .and_then(|o| o.nullok_until.as_ref())
    {
        // The date is today's even with --root: a deadline is about now, not the tree.
        let now = pam_totp::clock::now().unwrap_or(0);
        out.push(if until.in_force(now) {
            Finding::new(
                Severity::Warning,
                "pam.nullok-until",
                at(totp),
                format!(
                    "{service}: nullok_until={} is in force ({} day(s) left)",
                    until.date,
                    (until.ends_at - now).div_ceil(86_400)
                ),
                "until the end of that day (UTC) a user who has not enrolled logs in without any code",
                "`pam-totp report` shows who has not enrolled yet",
            )
        } else {
            Finding::new(
                Severity::Note,
                "pam.nullok-until-expired",
                at(totp),
                format!("{service}: nullok_until={} has passed", until.date),
                "users who have not enrolled are refused, as without it",
                "remove the nullok_until argument or key when convenient",
            )
        });
    }
    let after: Vec<&Rule> = rules
        .iter()
        .copied()
        .skip_while(|r| !r.is_totp())
        .skip(1)
        .collect();
    if options.forward_pass {
        out.push(Finding::new(
            Severity::Note,
            "pam.forward-pass-lockout",
            at(totp),
            format!("{service}: forward_pass decides on the code before any password is checked"),
            "anyone who knows a user name can keep that user throttled by sending wrong codes; there is no password check in front to stop them",
            "prefer a requisite password module followed by pam_totp.so, unless a single prompt is required",
        ));
        match after.iter().find(|r| r.is_password()) {
            None => out.push(Finding::new(
                Severity::Error,
                "pam.forward-pass-no-password",
                at(totp),
                format!(
                    "{service}: pam_totp.so has forward_pass but no password module follows it"
                ),
                "the password typed before the code is never checked: the code alone logs in",
                "add `auth requisite pam_unix.so use_first_pass` right after pam_totp.so",
            )),
            Some(password)
                if !password.has_arg("use_first_pass") && !password.has_arg("try_first_pass") =>
            {
                out.push(Finding::new(
                    Severity::Warning,
                    "pam.forward-pass-no-use-first-pass",
                    at(password),
                    format!(
                        "{service}: {} after pam_totp.so forward_pass has no use_first_pass",
                        password.name()
                    ),
                    "it ignores the password pam_totp handed on and asks for it again",
                    format!(
                        "add use_first_pass: `auth requisite {} use_first_pass`",
                        password.module
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if options.use_first_pass
        && !rules
            .iter()
            .take_while(|r| !r.is_totp())
            .any(|r| r.is_password())
    {
        out.push(Finding::new(
            Severity::Error,
            "pam.use-first-pass-no-password",
            at(totp),
            format!("{service}: pam_totp.so has use_first_pass but no module before it asks for anything"),
            "with use_first_pass pam_totp never prompts: with no token from an earlier module every login fails",
            "drop use_first_pass (or use try_first_pass), or put the prompting module before pam_totp.so",
        ));
    }
}
