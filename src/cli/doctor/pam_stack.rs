//! Reading a PAM service's auth (or password) stack as libpam does: `/etc/pam.d/SERVICE`
//! (else the vendor directory `/usr/lib/pam.d`), `#` comments, `\` line continuations,
//! `[...]` controls and arguments, `@include FILE` (every type), `auth include FILE` (the
//! auth lines only) and `auth substack FILE` (a nested stack whose `done`/`die` end only
//! it), the same for `password`; then running it on paper for a given set of module
//! results.

use super::Root;
use std::path::{Path, PathBuf};

const PAM_DIRS: [&str; 2] = ["/etc/pam.d", "/usr/lib/pam.d"];
/// libpam gives up on deeper include chains; so do we (and on loops).
const MAX_DEPTH: usize = 16;
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// What a module returned, as far as the control field tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ret {
    Success,
    /// PAM_AUTH_ERR and every other failure.
    Fail,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    Jump(usize),
}

/// The control field, always as libpam's `[value=action …]` form (keywords expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    /// As written: `requisite`, `[success=1 default=ignore]`.
    pub text: String,
    actions: Vec<(String, Action)>,
}

impl Control {
    fn parse(text: &str) -> Option<Control> {
        let expanded = match text {
            "required" => "success=ok new_authtok_reqd=ok ignore=ignore default=bad",
            "requisite" => "success=ok new_authtok_reqd=ok ignore=ignore default=die",
            "sufficient" => "success=done new_authtok_reqd=done default=ignore",
            "optional" => "success=ok new_authtok_reqd=ok default=ignore",
            _ => text.strip_prefix('[')?.strip_suffix(']')?,
        };
        let mut actions = Vec::new();
        for pair in expanded.split_ascii_whitespace() {
            let (value, action) = pair.split_once('=')?;
            let action = match action {
                "ignore" => Action::Ignore,
                "ok" => Action::Ok,
                "done" => Action::Done,
                "bad" => Action::Bad,
                "die" => Action::Die,
                "reset" => Action::Reset,
                n => Action::Jump(n.parse().ok().filter(|&n| n > 0)?),
            };
            actions.push((value.to_ascii_lowercase(), action));
        }
        Some(Control {
            text: text.to_owned(),
            actions,
        })
    }

    pub fn action(&self, ret: Ret) -> Action {
        let name = match ret {
            Ret::Success => "success",
            Ret::Fail => "auth_err",
            Ret::Ignore => "ignore",
        };
        let find = |wanted: &str| {
            self.actions
                .iter()
                .find(|(value, _)| value == wanted)
                .map(|(_, action)| *action)
        };
        // libpam: a value with no action and no default counts as "bad".
        find(name)
            .or_else(|| find("default"))
            .unwrap_or(Action::Bad)
    }
}

/// One line of the stack's type (`auth` or `password`).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub file: PathBuf,
    pub line: usize,
    pub control: Control,
    /// The module as written (`pam_unix.so`, `/lib/security/pam_totp.so`).
    pub module: String,
    pub args: Vec<String>,
}

impl Rule {
    /// `pam_unix` for `/usr/lib/x86_64-linux-gnu/security/pam_unix.so`.
    pub fn name(&self) -> &str {
        let base = self.module.rsplit('/').next().unwrap_or(&self.module);
        base.strip_suffix(".so").unwrap_or(base)
    }

    pub fn is_totp(&self) -> bool {
        self.name() == "pam_totp"
    }

    /// Modules that check a password and set PAM_AUTHTOK.
    pub fn is_password(&self) -> bool {
        matches!(
            self.name(),
            "pam_unix"
                | "pam_unix2"
                | "pam_sss"
                | "pam_ldap"
                | "pam_krb5"
                | "pam_winbind"
                | "pam_userdb"
                | "pam_pwdfile"
                | "pam_systemd_home"
        )
    }

    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Module(Rule),
    /// `auth substack FILE`: the rule's `module` is the file.
    Substack(Rule, Vec<Entry>),
}

/// A problem that makes libpam refuse the whole service.
#[derive(Debug, Clone)]
pub(crate) struct StackError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub problem: String,
}

#[derive(Debug)]
pub(crate) struct Stack {
    /// The service file libpam would read.
    pub file: PathBuf,
    pub entries: Vec<Entry>,
    pub errors: Vec<StackError>,
}

impl Stack {
    /// Every auth rule in order, substacks flattened (for listing, not for running).
    pub fn rules(&self) -> Vec<&Rule> {
        fn walk<'a>(entries: &'a [Entry], out: &mut Vec<&'a Rule>) {
            for entry in entries {
                match entry {
                    Entry::Module(rule) => out.push(rule),
                    Entry::Substack(_, inner) => walk(inner, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.entries, &mut out);
        out
    }
}

/// The service file libpam reads for `service`, as a path on the checked system.
pub(crate) fn service_file(root: &Root, service: &str) -> Option<PathBuf> {
    PAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(service))
        .find(|path| root.path(path).is_file())
}

/// Reads a service's auth stack. `None` when there is no such service file.
pub(crate) fn read(root: &Root, service: &str) -> Option<Stack> {
    read_type(root, service, "auth")
}

/// Reads a service's password stack (what `pam_chauthtok` runs). `None` when there is no
/// such service file.
pub(crate) fn read_password(root: &Root, service: &str) -> Option<Stack> {
    read_type(root, service, "password")
}

/// The lines of one module type (`auth`, `password`) of a service's stack.
fn read_type(root: &Root, service: &str, kind: &str) -> Option<Stack> {
    let file = service_file(root, service)?;
    let mut errors = Vec::new();
    let mut chain = Vec::new();
    let entries = read_file(root, &file, kind, &mut chain, &mut errors);
    Some(Stack {
        file,
        entries,
        errors,
    })
}

fn read_file(
    root: &Root,
    file: &Path,
    kind: &str,
    chain: &mut Vec<PathBuf>,
    errors: &mut Vec<StackError>,
) -> Vec<Entry> {
    let error = |line: Option<usize>, problem: String| StackError {
        file: file.to_owned(),
        line,
        problem,
    };
    if chain.len() >= MAX_DEPTH || chain.iter().any(|f| f == file) {
        errors.push(error(None, "includes itself or nests too deeply".into()));
        return Vec::new();
    }
    let real = root.path(file);
    let text = match std::fs::metadata(&real) {
        Ok(meta) if meta.len() > MAX_FILE_SIZE => {
            errors.push(error(None, "is larger than 1 MiB".into()));
            return Vec::new();
        }
        _ => match std::fs::read(&real) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                errors.push(error(None, format!("cannot be read ({e})")));
                return Vec::new();
            }
        },
    };
    chain.push(file.to_owned());
    let mut entries = Vec::new();
    for (line, words) in logical_lines(&text) {
        let include = |name: &str| -> PathBuf {
            if name.starts_with('/') {
                PathBuf::from(name)
            } else {
                // libpam looks for included files where it found the including one.
                file.parent().unwrap_or(Path::new("/etc/pam.d")).join(name)
            }
        };
        if words[0] == "@include" {
            match words.get(1) {
                Some(name) => {
                    let target = include(name);
                    entries.extend(read_file(root, &target, kind, chain, errors));
                }
                None => errors.push(error(Some(line), "@include without a file".into())),
            }
            continue;
        }
        if words[0].trim_start_matches('-').to_ascii_lowercase() != kind {
            continue;
        }
        let (Some(control), Some(module)) = (words.get(1), words.get(2)) else {
            let article = if kind == "auth" { "an" } else { "a" };
            errors.push(error(
                Some(line),
                format!("{article} {kind} line needs a control and a module"),
            ));
            continue;
        };
        let args = words[3..].to_vec();
        match control.as_str() {
            "include" | "substack" => {
                let target = include(module);
                let inner = read_file(root, &target, kind, chain, errors);
                if control == "include" {
                    entries.extend(inner);
                } else {
                    let rule = Rule {
                        file: file.to_owned(),
                        line,
                        // A substack counts as one module: its result, as `required` would.
                        control: Control {
                            text: control.clone(),
                            actions: vec![
                                ("success".into(), Action::Ok),
                                ("default".into(), Action::Bad),
                            ],
                        },
                        module: module.clone(),
                        args,
                    };
                    entries.push(Entry::Substack(rule, inner));
                }
            }
            text => match Control::parse(text) {
                Some(control) => entries.push(Entry::Module(Rule {
                    file: file.to_owned(),
                    line,
                    control,
                    module: module.clone(),
                    args,
                })),
                None => errors.push(error(Some(line), format!("bad control field {text:?}"))),
            },
        }
    }
    chain.pop();
    entries
}

/// (first line number, words) of each non-empty logical line: comments removed,
/// continuations joined, `[...]` kept as one word.
fn logical_lines(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = index + 1;
        }
        let raw = raw.split('#').next().unwrap_or_default();
        if let Some(continued) = raw.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let words = words(&pending);
        if !words.is_empty() {
            out.push((start, words));
        }
        pending.clear();
    }
    out
}

fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '[' {
            // Up to the closing bracket; `\]` is a literal bracket inside.
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&']') {
                    word.push(']');
                    chars.next();
                    continue;
                }
                word.push(c);
                if c == ']' {
                    break;
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    out
}

/// The outcome of running a stack on paper.
#[derive(Debug, Default)]
pub(crate) struct Run<'a> {
    pub success: bool,
    pub reached_totp: bool,
    /// The password module that ran first before pam_totp, if any.
    pub password_before_totp: Option<&'a Rule>,
    /// The last rule that ended the stack (`done`) or jumped, if pam_totp was not reached.
    pub skipped_by: Option<&'a Rule>,
}

/// Runs the stack with each module returning `ret(rule)`, as libpam's dispatcher would.
pub(crate) fn run<'a>(entries: &'a [Entry], ret: &dyn Fn(&Rule) -> Ret) -> Run<'a> {
    let mut run = Run::default();
    run.success = run_level(entries, ret, &mut run);
    run
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impression {
    Undecided,
    Good,
    Bad,
}

fn run_level<'a>(entries: &'a [Entry], ret: &dyn Fn(&Rule) -> Ret, run: &mut Run<'a>) -> bool {
    let mut impression = Impression::Undecided;
    let mut skip = 0;
    for entry in entries {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let (rule, result) = match entry {
            Entry::Module(rule) => {
                if rule.is_totp() {
                    run.reached_totp = true;
                } else if rule.is_password() && !run.reached_totp {
                    run.password_before_totp.get_or_insert(rule);
                }
                (rule, ret(rule))
            }
            Entry::Substack(rule, inner) => {
                let ok = run_level(inner, ret, run);
                (rule, if ok { Ret::Success } else { Ret::Fail })
            }
        };
        match rule.control.action(result) {
            Action::Ignore => {}
            Action::Ok => {
                if impression != Impression::Bad {
                    impression = Impression::Good;
                }
            }
            Action::Done => {
                if impression != Impression::Bad {
                    impression = Impression::Good;
                }
                if !run.reached_totp {
                    run.skipped_by = Some(rule);
                }
                return impression == Impression::Good;
            }
            Action::Bad => impression = Impression::Bad,
            Action::Die => return false,
            Action::Reset => impression = Impression::Undecided,
            Action::Jump(n) => {
                if !run.reached_totp {
                    run.skipped_by = Some(rule);
                }
                skip = n;
            }
        }
    }
    // libpam fails a stack in which no module said yes.
    impression == Impression::Good
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_continuations_and_comments_are_read_as_libpam_does() {
        let lines = logical_lines(
            "# comment\nauth [success=1 default=ignore] pam_unix.so nullok # trailing\nauth required \\\n  pam_totp.so [prompt=Code: ]\n",
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, 2);
        assert_eq!(
            lines[0].1,
            [
                "auth",
                "[success=1 default=ignore]",
                "pam_unix.so",
                "nullok"
            ]
        );
        assert_eq!(lines[1].0, 3);
        assert_eq!(
            lines[1].1,
            ["auth", "required", "pam_totp.so", "[prompt=Code: ]"]
        );
    }

    #[test]
    fn keyword_controls_expand_to_libpam_actions() {
        let requisite = Control::parse("requisite").unwrap();
        assert_eq!(requisite.action(Ret::Fail), Action::Die);
        assert_eq!(requisite.action(Ret::Success), Action::Ok);
        let sufficient = Control::parse("sufficient").unwrap();
        assert_eq!(sufficient.action(Ret::Success), Action::Done);
        assert_eq!(sufficient.action(Ret::Fail), Action::Ignore);
        let jump = Control::parse("[success=2 default=ignore]").unwrap();
        assert_eq!(jump.action(Ret::Success), Action::Jump(2));
        assert_eq!(jump.action(Ret::Fail), Action::Ignore);
        assert!(Control::parse("[success=banana]").is_none());
        assert!(Control::parse("mandatory").is_none());
    }
}
