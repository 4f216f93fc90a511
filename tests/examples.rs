//! The example PAM stacks in `pam.d-examples/` are parsed and loaded by the real libpam,
//! and say what the documentation promises about them.
//!
//! Each stack runs under pam_wrapper (which points libpam at a service directory of our own)
//! through `pamtester`, with `pam_totp.so` replaced by the freshly built module and the files
//! it `@include`s copied from the system's /etc/pam.d. libpam loads every module of a service
//! in pam_start, and logs through pam_syslog if a line does not parse or a module does not
//! load; pam_wrapper writes those lines to stderr. So a stack is good when pam_start succeeds
//! and logs nothing. The authentication itself does not matter; it is for an unknown user
//! with no answers on stdin, so that it never touches anyone's state file.
//!
//! Skipped, with a message, when pamtester or libpam-wrapper is not installed.

mod harness;

use harness::locations::{module_path, wrapper_libs};
use harness::pwrap_process::remove_pwrap_dirs;
use harness::start_lock::StartLock;
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const EXAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pam.d-examples");
/// No passwd entry has this name: pam_unix and pam_totp refuse it without reading state.
const NO_SUCH_USER: &str = "pamtotp-examples-nosuchuser";
/// libpam reads "other" too, and says so when it is missing; harmless here.
const NO_OTHER_SERVICE: &str = "_pam_init_handlers: no default config other";
const SYSTEM_MODULE_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/usr/lib64/security",
    "/lib/security",
    "/usr/lib/security",
];
/// Modules the RHEL-family examples use that Debian does not install by default. Where they
/// are missing, the test loads pam_permit.so in their place (and says so): the line is still
/// parsed, only that one module is not loaded.
const OTHER_DISTRIBUTIONS_MODULES: &[&str] = &["pam_pwquality.so", "pam_sss.so"];
/// Modules that check a password: in front of pam_totp they must be `requisite`.
const PASSWORD_MODULES: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_userdb.so",
];

// ------------------------------------------------------------------------------------------
// Reading the examples
// ------------------------------------------------------------------------------------------

/// One non-comment line of a PAM service file.
#[derive(Debug)]
struct PamLine {
    number: usize,
    /// `auth`, `-session`, ... or `@include`.
    kind: String,
    /// `required`, `[success=1 default=ignore]`, `include`, ... (empty for `@include`).
    control: String,
    /// The module path or the included file name.
    target: String,
}

impl PamLine {
    fn module_name(&self) -> &str {
        self.target.rsplit('/').next().unwrap_or(&self.target)
    }

    fn includes(&self) -> bool {
        self.kind == "@include" || matches!(self.control.as_str(), "include" | "substack")
    }

    fn is_auth(&self) -> bool {
        self.kind.trim_start_matches('-') == "auth"
    }

    fn is_password(&self) -> bool {
        self.kind.trim_start_matches('-') == "password"
    }
}

/// The lines of a service file, the way libpam splits them: `#` starts a comment anywhere,
/// a control in brackets may contain spaces.
fn parse_pam(text: &str) -> Vec<PamLine> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = split_word(line);
        let (control, rest) = if kind == "@include" {
            (String::new(), rest)
        } else if rest.starts_with('[') {
            let end = rest.find(']').map_or(rest.len(), |i| i + 1);
            (rest[..end].to_owned(), rest[end..].trim_start())
        } else {
            let (control, rest) = split_word(rest);
            (control.to_owned(), rest)
        };
        let (target, _args) = split_word(rest);
        lines.push(PamLine {
            number: index + 1,
            kind: kind.to_owned(),
            control,
            target: target.to_owned(),
        });
    }
    lines
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// A PAM stack, as opposed to sshd_config snippets and READMEs: every line is a PAM line.
fn is_pam_stack(text: &str) -> bool {
    let lines = parse_pam(text);
    !lines.is_empty()
        && lines.iter().all(|line| {
            line.kind == "@include"
                || matches!(
                    line.kind.trim_start_matches('-'),
                    "auth" | "account" | "session" | "password"
                )
        })
}

fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(EXAMPLES_DIR), &mut files);
    files.sort();
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(EXAMPLES_DIR)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn stacks() -> Vec<(PathBuf, String)> {
    let stacks: Vec<_> = example_files()
        .into_iter()
        .map(|path| {
            let text = read(&path);
            (path, text)
        })
        .filter(|(_, text)| is_pam_stack(text))
        .collect();
    assert!(
        stacks.len() >= 8,
        "expected the Debian and RHEL example stacks in {EXAMPLES_DIR}, found {}",
        stacks.len()
    );
    stacks
}

fn sshd_config_examples() -> Vec<(PathBuf, String)> {
    example_files()
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sshd_config"))
        })
        .map(|path| {
            let text = read(&path);
            (path, text)
        })
        .collect()
}

/// `Key value` lines of an sshd_config snippet, keys lowercased.
fn sshd_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = split_word(line);
            (key.to_ascii_lowercase(), value.to_owned())
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// What the examples promise
// ------------------------------------------------------------------------------------------

#[test]
fn every_example_stack_asks_for_a_code() {
    for (path, text) in stacks() {
        let lines = parse_pam(&text);
        // A login stack asks in auth; a password-change stack (common-password) in password.
        assert!(
            lines
                .iter()
                .any(|l| (l.is_auth() || l.is_password()) && l.module_name() == "pam_totp.so"),
            "{}: no auth or password line with pam_totp.so",
            relative(&path)
        );
        assert!(
            text.starts_with('#'),
            "{}: must open with a comment that explains it",
            relative(&path)
        );
    }
}

/// A wrong password must end the stack before the code prompt, so that someone without
/// the password cannot burn the user's failed-code count.
#[test]
fn password_module_in_front_of_pam_totp_is_requisite() {
    for (path, text) in stacks() {
        for line in parse_pam(&text)
            .iter()
            .filter(|l| l.is_auth())
            .take_while(|l| l.module_name() != "pam_totp.so")
        {
            if PASSWORD_MODULES.contains(&line.module_name()) {
                assert_eq!(
                    line.control,
                    "requisite",
                    "{} line {}: {} in front of pam_totp must be requisite",
                    relative(&path),
                    line.number,
                    line.module_name()
                );
            }
        }
    }
}

/// In a password stack pam_totp comes first and is `requisite`: a wrong code must end the
/// change before any module asks for or sets a password.
#[test]
fn pam_totp_in_a_password_stack_is_requisite_and_first() {
    let mut seen = Vec::new();
    for (path, text) in stacks() {
        let password: Vec<_> = parse_pam(&text)
            .into_iter()
            .filter(PamLine::is_password)
            .collect();
        let Some(at) = password
            .iter()
            .position(|l| l.module_name() == "pam_totp.so")
        else {
            continue;
        };
        seen.push(relative(&path));
        assert_eq!(
            password[at].control,
            "requisite",
            "{} line {}: pam_totp in a password stack must be requisite",
            relative(&path),
            password[at].number
        );
        assert_eq!(
            at,
            0,
            "{}: pam_totp must be the first password line",
            relative(&path)
        );
    }
    for expected in ["debian/common-password", "rhel/system-auth"] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected}: no password line with pam_totp"
        );
    }
}

#[test]
fn publickey_example_requires_the_key_first() {
    let text = read(&Path::new(EXAMPLES_DIR).join("debian/sshd_config.publickey-totp"));
    let settings = sshd_settings(&text);
    for (key, value) in [
        ("authenticationmethods", "publickey,keyboard-interactive"),
        ("kbdinteractiveauthentication", "yes"),
        ("usepam", "yes"),
        ("passwordauthentication", "no"),
    ] {
        assert!(
            settings.iter().any(|(k, v)| k == key && v == value),
            "sshd_config.publickey-totp lacks `{key} {value}`"
        );
    }
    let stack = read(&Path::new(EXAMPLES_DIR).join("debian/sshd.publickey-totp"));
    assert!(
        parse_pam(&stack)
            .iter()
            .filter(|l| l.is_auth())
            .all(|l| !PASSWORD_MODULES.contains(&l.module_name())),
        "sshd.publickey-totp must not ask for a password"
    );
}

#[test]
fn exempt_group_jump_skips_exactly_pam_totp() {
    let text = read(&Path::new(EXAMPLES_DIR).join("debian/sshd.exempt-group"));
    let auth: Vec<_> = parse_pam(&text)
        .into_iter()
        .filter(|l| l.is_auth())
        .collect();
    let exempt = auth
        .iter()
        .position(|l| l.module_name() == "pam_succeed_if.so")
        .expect("pam_succeed_if.so line");
    assert_eq!(auth[exempt].control, "[success=1 default=ignore]");
    assert_eq!(
        auth.get(exempt + 1).map(PamLine::module_name),
        Some("pam_totp.so"),
        "success=1 must skip pam_totp and nothing else"
    );
}

#[test]
fn nullok_rollout_example_uses_nullok() {
    let text = read(&Path::new(EXAMPLES_DIR).join("debian/sshd.nullok-rollout"));
    assert!(
        text.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("pam_totp.so nullok")),
        "sshd.nullok-rollout: pam_totp.so without nullok"
    );
}

// ------------------------------------------------------------------------------------------
// Loading them with the real libpam
// ------------------------------------------------------------------------------------------

struct Tools {
    pamtester: PathBuf,
    pam_wrapper: PathBuf,
    module_dir: PathBuf,
    module: PathBuf,
}

/// What is needed to load the stacks, or why the test cannot run here.
fn tools() -> Result<Tools, String> {
    let pamtester = ["/usr/bin/pamtester", "/usr/local/bin/pamtester"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("pamtester is not installed (apt-get install pamtester)")?;
    let pam_wrapper = wrapper_libs()?.libpam_wrapper.clone();
    let module_dir = SYSTEM_MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("pam_unix.so").is_file())
        .ok_or("no system PAM module directory with pam_unix.so found")?;
    Ok(Tools {
        pamtester,
        pam_wrapper,
        module_dir,
        module: module_path(),
    })
}

/// The example as libpam will read it: pam_totp.so is the built module, and a module of
/// another distribution that is not installed here is replaced by pam_permit.so.
fn service_text(text: &str, tools: &Tools, notes: &mut Vec<String>) -> String {
    let module = tools.module.display().to_string();
    let mut out = String::new();
    for raw in text.lines() {
        let mut line = raw.to_owned();
        let code = raw.split('#').next().unwrap_or("");
        if code.contains("pam_totp.so") {
            line = line.replacen("pam_totp.so", &module, 1);
        }
        for name in OTHER_DISTRIBUTIONS_MODULES {
            if code.split_whitespace().any(|w| w == *name) && !tools.module_dir.join(name).is_file()
            {
                notes.push(format!(
                    "{name} is not installed here; loading pam_permit.so in its place"
                ));
                line = line.replacen(name, "pam_permit.so", 1);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Copies the files `text` includes (and theirs) from /etc/pam.d: pam_wrapper's service
/// directory replaces /etc/pam.d for includes too. A file this system lacks gets a stand-in
/// that denies everything, with a note.
fn copy_includes(text: &str, dir: &Path, notes: &mut Vec<String>) {
    let mut todo: Vec<String> = parse_pam(text)
        .iter()
        .filter(|l| l.includes())
        .map(|l| l.target.clone())
        .collect();
    let mut done = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        assert!(
            !name.contains('/'),
            "include of a path ({name}); examples include by name"
        );
        let system = Path::new("/etc/pam.d").join(&name);
        let body = match fs::read_to_string(&system) {
            Ok(body) => body,
            Err(_) => {
                notes.push(format!(
                    "{} is not on this system; a deny-all stand-in is used",
                    system.display()
                ));
                "auth required pam_deny.so\naccount required pam_deny.so\n\
                 session required pam_deny.so\npassword required pam_deny.so\n"
                    .to_owned()
            }
        };
        todo.extend(
            parse_pam(&body)
                .iter()
                .filter(|l| l.includes())
                .map(|l| l.target.clone()),
        );
        fs::write(dir.join(&name), body).unwrap();
    }
}

/// The start lock every pam_wrapper user of this repository takes (tests/harness), held
/// until pamtester's pam_start has returned.
fn start_lock() -> StartLock {
    StartLock::acquire(Instant::now() + Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e}"))
}

/// A pamtester run under pam_wrapper, its stderr read by a thread.
struct Run {
    name: String,
    notes: Vec<String>,
    child: Child,
    started: mpsc::Receiver<()>,
    output: thread::JoinHandle<String>,
    _dir: tempfile::TempDir,
}

fn start(path: &Path, text: &str, tools: &Tools) -> Run {
    let name = relative(path);
    let mut notes = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let service = "pamtotp-example";
    fs::write(
        dir.path().join(service),
        service_text(text, tools, &mut notes),
    )
    .unwrap();
    copy_includes(text, dir.path(), &mut notes);
    let mut child = Command::new(&tools.pamtester)
        .args(["-v", service, NO_SUCH_USER, "authenticate"])
        .env("LD_PRELOAD", &tools.pam_wrapper)
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", dir.path())
        // Trace level: pam_syslog lines, and "pam_start rc=N" to know when loading is over.
        .env("PAM_WRAPPER_DEBUGLEVEL", "4")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", tools.pamtester.display()));
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (started_tx, started) = mpsc::channel();
    let output = thread::spawn(move || {
        let out = thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("pam_start rc=") {
                let _ = started_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(&out.join().unwrap_or_default());
        text
    });
    Run {
        name,
        notes,
        child,
        started,
        output,
        _dir: dir,
    }
}

/// What went wrong loading the stack, from pamtester's and pam_wrapper's output.
fn load_problems(output: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !output.contains("Successfully initialized pam_wrapper") {
        problems.push("pam_wrapper did not take over (the system's /etc/pam.d was used?)".into());
    }
    let mut loading = true;
    for line in output.lines() {
        if let Some(rc) = line.split("pam_start rc=").nth(1) {
            loading = false;
            if rc.trim() != "0" {
                problems.push(format!("pam_start failed with PAM code {}", rc.trim()));
            }
        }
        // Nothing runs a module during pam_start; whatever is logged then is libpam
        // complaining about the stack ("unable to dlopen", "pam_parse: ...", ...).
        if loading && line.contains("SYSLOG(") && !line.contains(NO_OTHER_SERVICE) {
            problems.push(line.split("SYSLOG").nth(1).unwrap_or(line).to_owned());
        }
        // A module whose load failed is reported again when the stack runs.
        if line.starts_with("pamtester:") && line.contains("Module is unknown") {
            problems.push(line.to_owned());
        }
    }
    if loading {
        problems.push("pamtester never got past pam_start".into());
    }
    problems
}

#[test]
fn example_stacks_are_loaded_by_libpam() {
    let tools = match tools() {
        Ok(tools) => tools,
        Err(why) => {
            eprintln!("SKIPPED example_stacks_are_loaded_by_libpam: {why}");
            return;
        }
    };
    // Started one at a time (each holds the lock until its pam_start is over), then waited
    // for together: the failed logins each sleep libpam's failure delay.
    let mut runs = Vec::new();
    for (path, text) in stacks() {
        let _lock = start_lock();
        let mut run = start(&path, &text, &tools);
        if run.started.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = run.child.kill();
        }
        runs.push(run);
    }
    let mut failures = Vec::new();
    for mut run in runs {
        let finished = wait_with_timeout(&mut run.child, Duration::from_secs(60));
        let output = run.output.join().unwrap_or_default();
        for note in &run.notes {
            eprintln!("note: {}: {note}", run.name);
        }
        let mut problems = load_problems(&output);
        if !finished {
            problems.push("pamtester did not finish within 60 seconds".into());
        }
        if problems.is_empty() {
            eprintln!("ok: {} loads", run.name);
        } else {
            failures.push(format!(
                "{}:\n  {}\n--- output ---\n{}",
                run.name,
                problems.join("\n  "),
                output
                    .lines()
                    .filter(|l| l.contains("SYSLOG") || l.starts_with("pamtester"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "libpam did not load these examples:\n\n{}",
        failures.join("\n\n")
    );
}

/// Whether the child exited in time; killed (by its PID, through `Child`) if not. Either
/// way its /tmp/pam.X is gone afterwards.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            remove_pwrap_dirs(child.id());
            return true;
        }
        if waited >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            remove_pwrap_dirs(child.id());
            return false;
        }
        thread::sleep(step);
        waited += step;
    }
}

/// The detector itself: a stack with a typo must fail the test above.
#[test]
fn a_broken_stack_is_reported() {
    let tools = match tools() {
        Ok(tools) => tools,
        Err(why) => {
            eprintln!("SKIPPED a_broken_stack_is_reported: {why}");
            return;
        }
    };
    for (broken, expected) in [
        (
            "# typo in a module name\nauth requisite pam_unx.so\nauth required pam_totp.so\n",
            "unable to dlopen",
        ),
        (
            "# typo in a control\nauth requisite pam_unix.so\nauth [succes=1 default=ignore] pam_totp.so\n",
            "pam_parse",
        ),
        (
            "# typo in a module type\nauht requisite pam_unix.so\nauth required pam_totp.so\n",
            "illegal module type",
        ),
    ] {
        let path = Path::new(EXAMPLES_DIR).join("broken");
        let mut run = {
            let _lock = start_lock();
            let run = start(&path, broken, &tools);
            let _ = run.started.recv_timeout(Duration::from_secs(30));
            run
        };
        wait_with_timeout(&mut run.child, Duration::from_secs(60));
        let output = run.output.join().unwrap_or_default();
        let problems = load_problems(&output).join("\n");
        assert!(
            problems.contains(expected),
            "{broken}: expected a problem mentioning {expected:?}, got:\n{problems}\n{output}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// The sshd_config snippets, checked by the real sshd
// ------------------------------------------------------------------------------------------

/// `sshd -t` needs root and its privilege-separation directory; it runs in a private mount
/// namespace with a tmpfs on /run, so nothing on the system changes.
#[test]
fn sshd_config_examples_are_accepted_by_sshd() {
    let sshd = Path::new("/usr/sbin/sshd");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !root || !sshd.is_file() || !have("unshare") || !have("ssh-keygen") {
        eprintln!(
            "SKIPPED sshd_config_examples_are_accepted_by_sshd: needs root, /usr/sbin/sshd \
             (openssh-server), unshare and ssh-keygen"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(keygen.success(), "ssh-keygen failed");
    let private_run = "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd";
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", private_run])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIPPED sshd_config_examples_are_accepted_by_sshd: cannot make a private mount \
             namespace here (unshare -m)"
        );
        return;
    }
    let configs = sshd_config_examples();
    assert!(!configs.is_empty(), "no sshd_config examples");
    for (path, _) in configs {
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "{private_run} && exec {} -t -f \"$0\" -h \"$1\"",
                sshd.display()
            ))
            .arg(&path)
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sshd -t refuses {}:\n{}",
            relative(&path),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
