//! sshd's side: does every way in go through the PAM stack's code prompt? The settings
//! come from `sshd -T` (what the running configuration resolves to) when it can run on
//! the live system, else from sshd_config and its `Include`s (the first value wins, as
//! in sshd; `Match` blocks are not evaluated).

use super::Root;
use super::findings::{Finding, Location, Severity};
use super::pam_checks::StackFacts;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
const KEYS: [&str; 5] = [
    "usepam",
    "kbdinteractiveauthentication",
    "authenticationmethods",
    "passwordauthentication",
    "pubkeyauthentication",
];
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone)]
struct Setting {
    value: String,
    /// `None`: from `sshd -T`, or the built-in default.
    location: Option<Location>,
}

#[derive(Debug, Default)]
pub(crate) struct Settings {
    values: HashMap<&'static str, Setting>,
    /// `Match` blocks that change one of our keys (not evaluated here).
    matched: Vec<Location>,
    source: String,
}

impl Settings {
    fn get(&self, key: &'static str) -> Setting {
        self.values.get(key).cloned().unwrap_or_else(|| Setting {
            value: default(key).to_owned(),
            location: None,
        })
    }
}

/// OpenSSH's built-in defaults (Debian's sshd_config turns UsePAM on explicitly).
fn default(key: &str) -> &'static str {
    match key {
        "usepam" => "no",
        "authenticationmethods" => "any",
        _ => "yes",
    }
}

fn canonical(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let key = if key == "challengeresponseauthentication" {
        "kbdinteractiveauthentication".to_owned()
    } else {
        key
    };
    KEYS.iter().copied().find(|k| *k == key)
}

/// `sshd -T` on the live system; `None` when it cannot run (not root, no host keys).
fn from_sshd_t() -> Option<Settings> {
    let output = ["/usr/sbin/sshd", "sshd"].iter().find_map(|binary| {
        Command::new(binary)
            .arg("-T")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    })?;
    let mut settings = Settings {
        source: "sshd -T".into(),
        ..Settings::default()
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(key) = canonical(key) {
            settings.values.entry(key).or_insert(Setting {
                value: value.trim().to_ascii_lowercase(),
                location: None,
            });
        }
    }
    Some(settings)
}

/// sshd_config and its Includes, under `root`. `None` when there is no sshd_config.
fn from_files(root: &Root) -> Option<Settings> {
    let main = Path::new(SSHD_CONFIG);
    if !root.path(main).is_file() {
        return None;
    }
    let mut settings = Settings {
        source: SSHD_CONFIG.into(),
        ..Settings::default()
    };
    read_file(root, main, &mut settings, &mut false, 0);
    Some(settings)
}

fn read_file(root: &Root, file: &Path, settings: &mut Settings, in_match: &mut bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(text) = std::fs::read_to_string(root.path(file)) else {
        return;
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        // "Key value" or "Key=value".
        let (key, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(at) => (
                &line[..at],
                line[at + 1..].trim_start_matches(['=', ' ', '\t']).trim(),
            ),
            None => (line, ""),
        };
        let location = Location::line(file, index + 1);
        if key.eq_ignore_ascii_case("match") {
            *in_match = !value.eq_ignore_ascii_case("all");
            continue;
        }
        if key.eq_ignore_ascii_case("include") {
            for pattern in value.split_whitespace() {
                for included in expand(root, pattern) {
                    read_file(root, &included, settings, in_match, depth + 1);
                }
            }
            continue;
        }
        let Some(key) = canonical(key) else {
            continue;
        };
        if *in_match {
            settings.matched.push(location);
            continue;
        }
        settings.values.entry(key).or_insert(Setting {
            value: value.to_ascii_lowercase(),
            location: Some(location),
        });
    }
}

/// An Include pattern: relative to /etc/ssh, `*` and `?` in the file name, sorted (glob(3)).
fn expand(root: &Root, pattern: &str) -> Vec<PathBuf> {
    let path = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        Path::new("/etc/ssh").join(pattern)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    let Ok(read) = std::fs::read_dir(root.path(&dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| glob_match(&name, n) && !n.starts_with('.'))
        .map(|n| dir.join(n))
        .collect();
    found.sort();
    found
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match (pattern.chars().next(), name.chars().next()) {
        (None, None) => true,
        (Some('*'), _) => {
            glob_match(&pattern[1..], name)
                || (!name.is_empty()
                    && glob_match(
                        pattern,
                        &name[name.chars().next().map_or(1, char::len_utf8)..],
                    ))
        }
        (Some('?'), Some(c)) => glob_match(&pattern[1..], &name[c.len_utf8()..]),
        (Some(p), Some(c)) if p == c => glob_match(&pattern[p.len_utf8()..], &name[c.len_utf8()..]),
        _ => false,
    }
}

pub(crate) fn read(root: &Root) -> Option<Settings> {
    if root.is_live()
        && let Some(settings) = from_sshd_t()
    {
        return Some(settings);
    }
    from_files(root)
}

fn where_(settings: &Settings, setting: &Setting) -> Option<Location> {
    setting
        .location
        .clone()
        .or_else(|| Some(Location::file(&settings.source)))
}

fn is_kbd(method: &str) -> bool {
    method == "keyboard-interactive" || method.starts_with("keyboard-interactive:")
}

pub(crate) fn check(settings: &Settings, facts: StackFacts, out: &mut Vec<Finding>) {
    let use_pam = settings.get("usepam");
    if use_pam.value != "yes" {
        out.push(Finding::new(
            Severity::Error,
            "sshd.usepam",
            where_(settings, &use_pam),
            format!("sshd has UsePAM {}", use_pam.value),
            "without PAM sshd never runs /etc/pam.d/sshd: no code is ever asked",
            "set `UsePAM yes` in /etc/ssh/sshd_config.d/pam-totp.conf, then `sshd -t && systemctl reload ssh`",
        ));
    }
    let kbd = settings.get("kbdinteractiveauthentication");
    if kbd.value != "yes" {
        out.push(Finding::new(
            Severity::Error,
            "sshd.kbdinteractive",
            where_(settings, &kbd),
            format!("sshd has KbdInteractiveAuthentication {}", kbd.value),
            "the code is asked through keyboard-interactive; without it no login can answer the code prompt",
            "set `KbdInteractiveAuthentication yes`",
        ));
    }
    let methods = settings.get("authenticationmethods");
    let pubkey = settings.get("pubkeyauthentication").value == "yes";
    let password = settings.get("passwordauthentication");
    let password_on = password.value == "yes";
    let lists: Vec<Vec<&str>> = if methods.value == "any" {
        let mut alone = vec![vec!["keyboard-interactive"]];
        if pubkey {
            alone.push(vec!["publickey"]);
        }
        if password_on {
            alone.push(vec!["password"]);
        }
        alone
    } else {
        methods
            .value
            .split_whitespace()
            .map(|list| list.split(',').collect())
            .collect()
    };
    let fix_methods = "either `AuthenticationMethods publickey,keyboard-interactive` (key and code; the PAM stack asks only for the code) or `AuthenticationMethods keyboard-interactive` with a requisite password module before pam_totp.so (password and code); see pam.d-examples/";
    for list in &lists {
        // A list with a method that is turned off can never complete: not a way in.
        let enabled = |m: &&str| match *m {
            "password" => password_on,
            "publickey" => pubkey,
            _ => true,
        };
        if !list.iter().all(enabled) {
            continue;
        }
        let active = list;
        if active.is_empty() || active.iter().any(|m| is_kbd(m)) {
            if active.len() == 1 && facts.has_totp && !facts.password_first {
                out.push(Finding::new(
                    Severity::Error,
                    "sshd.code-alone",
                    where_(settings, &methods),
                    "keyboard-interactive alone is enough for sshd, and the sshd PAM stack asks for no password before the code",
                    "a code alone (six digits) logs in: a code is not a password",
                    fix_methods,
                ));
            }
            continue;
        }
        if active.contains(&"password") {
            // Reported below with PasswordAuthentication.
            continue;
        }
        out.push(Finding::new(
            Severity::Error,
            "sshd.key-skips-code",
            where_(settings, &methods),
            format!(
                "sshd lets a login through with {} alone (AuthenticationMethods {})",
                active.join(","),
                methods.value
            ),
            "that path never runs keyboard-interactive, so the PAM stack and its code prompt are skipped: a user with an authorized key logs in without a code",
            fix_methods,
        ));
    }
    let password_used = lists.iter().any(|list| list.contains(&"password"));
    if password_on && password_used {
        out.push(Finding::new(
            Severity::Warning,
            "sshd.password-auth",
            where_(settings, &password),
            "sshd's password method is enabled",
            "sshd answers every PAM prompt with the password, so pam_totp gets the password as a code: the login fails and counts as a failed code (anyone can throttle the user that way)",
            "set `PasswordAuthentication no`; passwords are still asked through keyboard-interactive by the PAM stack",
        ));
    }
    for location in &settings.matched {
        out.push(Finding::new(
            Severity::Note,
            "sshd.match-block",
            Some(location.clone()),
            "a Match block changes an authentication setting; doctor does not evaluate Match",
            "some users or addresses may get other methods than the ones checked",
            "check with `sshd -T -C user=NAME,host=HOST,addr=ADDR`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn include_globs_match_like_glob() {
        assert!(glob_match("*.conf", "pam-totp.conf"));
        assert!(!glob_match("*.conf", "pam-totp.conf.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", "x"));
    }
}
