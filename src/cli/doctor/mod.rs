//! `pam-totp doctor`: read-only checks of a system's pam_totp setup — the PAM stacks that
//! use it, sshd, the config file, the storage, the clock, and one user's state. Every
//! finding says what, where (file and line), why it matters and the fix; text for people,
//! JSON for config management. Exit 0 when there are only notes, 1 otherwise.

mod clock;
mod config;
mod findings;
mod pam_checks;
mod pam_stack;
mod password_checks;
mod sshd;
mod storage;

use super::CliError;
use findings::{Finding, Location, Report, Severity};
use pam_checks::StackFacts;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print one JSON object ({"ok": …, "findings": […]}) instead of text
    #[arg(long)]
    pub json: bool,
    /// Read the files under DIR instead of / (a copy of a system, or a test tree); the
    /// clock and `sshd -T` are then not consulted, and "owned by root" means owned by
    /// DIR's owner
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Check these PAM services (comma-separated), each of which must use pam_totp
    /// [default: every service in /etc/pam.d whose auth stack uses pam_totp]
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub service: Vec<String>,
}

/// The tree being checked: `/`, or the `--root` directory standing in for it.
pub(crate) struct Root {
    dir: Option<PathBuf>,
    owner: u32,
}

impl Root {
    fn new(dir: Option<&Path>) -> Result<Root, CliError> {
        let Some(dir) = dir else {
            return Ok(Root {
                dir: None,
                owner: 0,
            });
        };
        let meta = std::fs::metadata(dir).map_err(|e| {
            CliError::Refused(format!(
                "--root {}: {e}; name an existing directory",
                dir.display()
            ))
        })?;
        Ok(Root {
            dir: Some(dir.to_owned()),
            owner: meta.uid(),
        })
    }

    /// Where a path of the checked system is on this machine.
    pub fn path(&self, path: &Path) -> PathBuf {
        match &self.dir {
            None => path.to_owned(),
            Some(dir) => dir.join(path.strip_prefix("/").unwrap_or(path)),
        }
    }

    /// A path on this machine as the checked system names it.
    pub fn shown(&self, path: &Path) -> PathBuf {
        match &self.dir {
            Some(dir) => path
                .strip_prefix(dir)
                .map_or_else(|_| path.to_owned(), |rest| Path::new("/").join(rest)),
            None => path.to_owned(),
        }
    }

    pub fn is_live(&self) -> bool {
        self.dir.is_none()
    }

    /// Who "root" is: uid 0, or the owner of the `--root` directory.
    pub fn owner(&self) -> u32 {
        self.owner
    }
}

/// Services whose stack of one type (read by `read`: auth, password) uses pam_totp, from
/// /etc/pam.d (and the vendor directory).
fn services_using_totp(
    root: &Root,
    read: fn(&Root, &str) -> Option<pam_stack::Stack>,
) -> Vec<String> {
    let mut names: Vec<String> = ["/etc/pam.d", "/usr/lib/pam.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.path(Path::new(dir))).ok())
        .flatten()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && !name.ends_with(".dpkg-dist"))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| {
            read(root, name).is_some_and(|stack| stack.rules().iter().any(|rule| rule.is_totp()))
        })
        .collect()
}

pub fn run(args: &DoctorArgs, user: Option<&str>, config: Option<&Path>) -> Result<(), CliError> {
    let root = Root::new(args.root.as_deref())?;
    let default_config = config::default_path(config);
    let mut report = Report::default();
    let mut found: Vec<Finding> = Vec::new();

    let named = !args.service.is_empty();
    let services = if named {
        args.service.clone()
    } else {
        services_using_totp(&root, pam_stack::read)
    };
    if services.is_empty() {
        found.push(Finding::new(
            Severity::Error,
            "pam.no-service",
            Some(Location::file("/etc/pam.d")),
            "no PAM service uses pam_totp.so",
            "no login is asked for a code",
            "add pam_totp.so to a stack (see pam.d-examples/), or name the services with --service",
        ));
    }
    let mut sshd_facts = None;
    let mut configs = vec![default_config.clone()];
    for service in &services {
        let Some(stack) = pam_stack::read(&root, service) else {
            found.push(Finding::new(
                Severity::Error,
                "pam.totp-missing",
                Some(Location::file(Path::new("/etc/pam.d").join(service))),
                format!("there is no PAM service file for {service}"),
                "libpam then uses /etc/pam.d/other for it, without pam_totp.so",
                "check the name, or create the service file",
            ));
            continue;
        };
        let options_of = |rule: &pam_stack::Rule| config::effective(&root, rule, &default_config);
        let facts: StackFacts = pam_checks::check(service, &stack, named, &options_of, &mut found);
        for rule in stack.rules().into_iter().filter(|r| r.is_totp()) {
            let path = config::path_for(rule, &default_config);
            if !configs.contains(&path) {
                configs.push(path);
            }
            if let Some(options) = options_of(rule).options {
                storage::check_dir(
                    &root,
                    &options,
                    &config::path_for(rule, &default_config),
                    &mut found,
                );
            }
        }
        if service == "sshd" {
            sshd_facts = Some(facts);
        }
    }
    // The password stacks: the named services, or every one with pam_totp in it (`passwd`
    // may have no auth lines at all).
    let password_services = if named {
        args.service.clone()
    } else {
        services_using_totp(&root, pam_stack::read_password)
    };
    let mut password_findings: Vec<Finding> = Vec::new();
    for service in &password_services {
        if let Some(stack) = pam_stack::read_password(&root, service) {
            password_checks::check(service, &stack, &mut password_findings);
        }
    }
    // One line of an included file (common-password, system-auth, itself a file in
    // /etc/pam.d) is reached from every service that includes it: say it once.
    let mut seen: Vec<(&str, Option<Location>)> = Vec::new();
    for finding in password_findings {
        let key = (finding.id, finding.location.clone());
        if !seen.contains(&key) {
            seen.push(key);
            found.push(finding);
        }
    }
    report.extend(found.drain(..));

    if let Some(facts) = sshd_facts {
        match sshd::read(&root) {
            Some(settings) => sshd::check(&settings, facts, &mut found),
            None => found.push(Finding::new(
                Severity::Note,
                "sshd.no-config",
                Some(Location::file("/etc/ssh/sshd_config")),
                "no sshd configuration to check",
                "the sshd PAM stack uses pam_totp.so, but sshd's side could not be read",
                "",
            )),
        }
    }
    for path in &configs {
        config::check_file(&root, path, &mut found);
    }
    let options = config::read_text(&root, &default_config)
        .and_then(|text| pam_totp::config::Options::from_config_text(&text, &default_config).ok())
        .unwrap_or_default();
    if services.is_empty() {
        storage::check_dir(&root, &options, &default_config, &mut found);
    }
    if root.is_live() {
        clock::check(&mut found);
    }
    if let Some(name) = user {
        let now = pam_totp::clock::now().unwrap_or(0);
        storage::check_user(&root, &options, name, now, &mut found);
    }
    report.extend(found);
    // Storage findings repeat once per pam_totp line; say each once.
    dedup(&mut report);

    let text = if args.json {
        report.to_json()
    } else {
        report.to_text()
    };
    print!("{text}");
    if report.is_clean() {
        Ok(())
    } else {
        // The report ends with its summary already ("pam-totp doctor: problems found: …").
        Err(CliError::AlreadyReported)
    }
}

fn dedup(report: &mut Report) {
    let mut seen: Vec<(String, String, Option<Location>)> = Vec::new();
    report.findings.retain(|f| {
        let key = (f.id.to_owned(), f.what.clone(), f.location.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
}
