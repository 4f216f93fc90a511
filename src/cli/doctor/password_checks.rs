//! The checks over one service's password stack (what `passwd` runs through
//! `pam_chauthtok`), where pam_totp is: before the module that changes the password, with a
//! control that ends the change on a wrong code.

use super::findings::{Finding, Severity};
use super::pam_checks::{at, report_unreadable};
use super::pam_stack::{self, Action, Ret, Rule, Stack};

/// Where the examples show the password lines.
const EXAMPLES: &str = "see pam.d-examples/debian/common-password, pam.d-examples/rhel/system-auth";

/// Checks the password stack of `service`, if pam_totp is in it (a code before a password
/// change is optional: no pam_totp there is no finding).
pub(crate) fn check(service: &str, stack: &Stack, out: &mut Vec<Finding>) {
    let rules = stack.rules();
    let Some(index) = rules.iter().position(|r| r.is_totp()) else {
        return;
    };
    report_unreadable(service, stack, out);
    let totp = rules[index];
    let control_ok = check_control(service, totp, out);
    if let Some(password) = rules[..index].iter().find(|r| r.is_password()) {
        out.push(Finding::new(
            Severity::Warning,
            "pam.password-totp-after-password",
            at(totp),
            format!(
                "{service}: pam_totp.so comes after {} ({}:{}) in the password stack",
                password.name(),
                password.file.display(),
                password.line
            ),
            format!(
                "{} asks for the current password before the code is asked, and a jump in its control (Debian's `[success=1 default=ignore] pam_unix.so`) passes over the lines after it",
                password.name()
            ),
            format!(
                "make `password requisite pam_totp.so` the first password line, before {} ({EXAMPLES})",
                password.module
            ),
        ));
    }
    if control_ok {
        check_enforced(service, stack, totp, out);
    }
}

/// `requisite` (or `required`): a wrong code must fail the change, and a right one must let
/// the stack go on to the module that changes the password. Whether the control is right.
fn check_control(service: &str, totp: &Rule, out: &mut Vec<Finding>) -> bool {
    let on_failure = totp.control.action(Ret::Fail);
    let on_success = totp.control.action(Ret::Success);
    let why = if !matches!(on_failure, Action::Bad | Action::Die) {
        "a wrong code does not stop the password change"
    } else if !matches!(on_success, Action::Ok | Action::Ignore) {
        "a right code ends the password stack, or jumps, before the module that changes the password: the password is not changed as the stack intends"
    } else {
        check_ignore(service, totp, out);
        return true;
    };
    out.push(Finding::new(
        Severity::Warning,
        "pam.password-totp-control",
        at(totp),
        format!(
            "{service}: pam_totp.so is \"{}\" in the password stack",
            totp.control.text
        ),
        why,
        format!("make it `password requisite pam_totp.so` ({EXAMPLES})"),
    ));
    false
}

/// pam_totp answers PAM_IGNORE when it has nothing to ask (root setting another user's
/// password, a user not enrolled under `nullok`): a bracketed control that does not say
/// `ignore=ignore` (`requisite` and `required` do) turns that into a failure, or a jump.
/// Not a way around the code, but those password changes then fail or skip lines.
fn check_ignore(service: &str, totp: &Rule, out: &mut Vec<Finding>) {
    if totp.control.action(Ret::Ignore) == Action::Ignore {
        return;
    }
    out.push(Finding::new(
        Severity::Warning,
        "pam.password-totp-ignore",
        at(totp),
        format!(
            "{service}: pam_totp.so is \"{}\" in the password stack, which does not ignore PAM_IGNORE",
            totp.control.text
        ),
        "pam_totp answers PAM_IGNORE when it asks nothing (root setting another user's password, a user not enrolled under nullok): with this control those password changes fail, or jump past lines",
        format!("add `ignore=ignore` to the control, or make it `password requisite pam_totp.so` ({EXAMPLES})"),
    ));
}

/// With a wrong code the change must fail, whatever succeeds before pam_totp.
fn check_enforced(service: &str, stack: &Stack, totp: &Rule, out: &mut Vec<Finding>) {
    let run = pam_stack::run(&stack.entries, &|rule| {
        if rule.is_totp() {
            Ret::Fail
        } else if rule.is_password() {
            Ret::Success
        } else {
            // Any other module may succeed (pam_tcb, pam_exec, a vendor's): assume it does,
            // or a `sufficient` one before pam_totp would pass unreported.
            match rule.name() {
                "pam_deny" => Ret::Fail,
                _ => Ret::Success,
            }
        }
    });
    if !run.success {
        return;
    }
    let (location, what) = match run.skipped_by.filter(|_| !run.reached_totp) {
        Some(rule) => (
            at(rule),
            format!(
                "{service}: when {} succeeds (\"{}\"), the password stack ends or jumps past pam_totp.so",
                rule.name(),
                rule.control.text
            ),
        ),
        None => (
            at(totp),
            format!("{service}: a wrong code does not stop a password change"),
        ),
    };
    out.push(Finding::new(
        Severity::Error,
        "pam.password-totp-not-enforced",
        location,
        what,
        "the password can be changed without a code",
        format!("make `password requisite pam_totp.so` the first password line ({EXAMPLES})"),
    ));
}
