//! The config file (/etc/security/pam_totp.conf): who owns it, who may write it, and
//! whether the library's own option parser accepts it; and the options a pam_totp line
//! runs with (the config file, then its arguments on top, as the module reads them).

use super::Root;
use super::findings::{Finding, Location, Severity};
use super::pam_stack::Rule;
use pam_totp::config::{DEFAULT_CONFIG, FirstPass, Options};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MAX_CONFIG_SIZE: u64 = 64 * 1024;

/// The options in force for one pam_totp line, and where the ones doctor cares about
/// come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Effective {
    /// Where nullok was turned on, if it is.
    pub nullok: Option<Location>,
    pub forward_pass: bool,
    pub use_first_pass: bool,
    /// The parsed options; `None` when the arguments or the config file are refused.
    pub options: Option<Options>,
    /// Why the module arguments are refused (a bad config file is reported on its own).
    pub refused: Option<String>,
}

/// The config file's text, if it exists and can be read (problems are reported by
/// [`check_file`]).
pub(crate) fn read_text(root: &Root, path: &Path) -> Option<String> {
    let real = root.path(path);
    let meta = std::fs::metadata(&real).ok()?;
    if !meta.is_file() || meta.len() > MAX_CONFIG_SIZE {
        return None;
    }
    std::fs::read_to_string(real).ok()
}

/// The config file a pam_totp line reads: its `config=` argument, else the default.
pub(crate) fn path_for(rule: &Rule, default: &Path) -> PathBuf {
    rule.args
        .iter()
        .find_map(|arg| arg.strip_prefix("config="))
        .map(PathBuf::from)
        .unwrap_or_else(|| default.to_owned())
}

pub(crate) fn default_path(explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG), Path::to_owned)
}

/// The options of `rule`: the config file's keys, then the arguments on top (arguments
/// win), parsed by the library's Options parser so that doctor and the module agree.
pub(crate) fn effective(root: &Root, rule: &Rule, default: &Path) -> Effective {
    let path = path_for(rule, default);
    let text = read_text(root, &path).unwrap_or_default();
    let mut table: toml::Table = text.parse().unwrap_or_default();
    let mut nullok = None;
    if table.get("nullok") == Some(&toml::Value::Boolean(true)) {
        nullok = Some(Location::line(&path, line_of_key(&text, "nullok")));
    }
    for arg in &rule.args {
        match arg.split_once('=') {
            Some(("config", _)) => {}
            Some((key, value)) => {
                table.insert(key.to_owned(), toml::Value::String(value.to_owned()));
            }
            None => {
                table.insert(arg.clone(), toml::Value::Boolean(true));
                if arg == "nullok" {
                    nullok = Some(Location::line(&rule.file, rule.line));
                }
            }
        }
    }
    // Numbers written as arguments are text; the parser accepts both forms.
    let parsed = Options::from_config_text(&table.to_string(), &path);
    let config_ok = Options::from_config_text(&text, &path).is_ok();
    let refused = match &parsed {
        Err(error) if config_ok => Some(error.to_string()),
        _ => None,
    };
    let options = parsed.ok();
    let (forward_pass, use_first_pass) = match &options {
        Some(options) => (options.forward_pass, options.first_pass == FirstPass::Use),
        None => (
            table.get("forward_pass") == Some(&toml::Value::Boolean(true)),
            table.get("use_first_pass") == Some(&toml::Value::Boolean(true)),
        ),
    };
    Effective {
        nullok,
        forward_pass,
        use_first_pass,
        options,
        refused,
    }
}

fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |index| index + 1)
}

/// Owner, mode and keys of the config file at `path`.
pub(crate) fn check_file(root: &Root, path: &Path, out: &mut Vec<Finding>) {
    let location = Some(Location::file(path));
    let meta = match std::fs::symlink_metadata(root.path(path)) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.push(Finding::new(
                Severity::Note,
                "config.absent",
                location,
                "no config file: the defaults and the module arguments are in force",
                "the module and the CLI both read this file when it exists",
                "",
            ));
            return;
        }
        Err(e) => {
            out.push(Finding::new(
                Severity::Error,
                "config.unreadable",
                location,
                format!("the config file cannot be read ({e})"),
                "the module refuses every login when it cannot read its config file",
                format!("chown root:root {0} && chmod 644 {0}", path.display()),
            ));
            return;
        }
    };
    if !meta.is_file() || meta.uid() != root.owner() || meta.mode() & 0o022 != 0 {
        out.push(Finding::new(
            Severity::Error,
            "config.unsafe",
            location.clone(),
            format!(
                "the config file is {} owned by uid {} with mode {:04o}",
                if meta.file_type().is_symlink() { "a symlink" } else if meta.is_file() { "a file" } else { "not a regular file" },
                meta.uid(),
                meta.mode() & 0o7777
            ),
            "it decides where secrets are read from: anyone who can write it can point logins at a secret they know; the module refuses it and fails every login",
            format!("chown root:root {0} && chmod 644 {0}", path.display()),
        ));
    }
    let Some(text) = read_text(root, path) else {
        return;
    };
    if let Err(error) = Options::from_config_text(&text, path) {
        // The library's message names the line, never its text.
        out.push(Finding::new(
            Severity::Error,
            "config.invalid",
            location,
            format!("the config file is refused: {error}"),
            "the module fails closed on an unknown key or a bad value: every login is refused",
            "correct the key (see man pam_totp for the keys) and run `pam-totp doctor` again",
        ));
    }
}
