//! Running benches/pam_driver.c: one process for a whole plan of logins, under
//! pam_wrapper + nss_wrapper, alone, four at once, or under callgrind.
//!
//! pam_wrapper picks its `/tmp/pam.X` copy of the service dir in its constructor, with a
//! racy lstat+mkdir: two processes starting at the same moment may collide. Starts are
//! therefore serialised with the same machine-wide lock the integration tests use (an
//! abstract unix socket, see tests/common/mod.rs), so a benchmark and a test run on one
//! machine do not trip each other, and a start that failed in pwrap_init is retried.

use crate::world::World;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The name tests/common/mod.rs binds while a pam_wrapper client starts.
const START_LOCK_NAME: &[u8] = b"pam-totp-tests/pam_wrapper-start";
/// No single driver process may take longer than this; a hung module must not hang the
/// benchmark.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
const START_ATTEMPTS: u32 = 3;

/// One login of a plan (see the header of benches/pam_driver.c).
#[derive(Debug, Clone)]
pub struct Login {
    pub label: String,
    pub service: &'static str,
    pub user: String,
    pub secret_hex: String,
    pub answer: String,
    /// The pam_authenticate result the login must have; `None`: any (races).
    pub expect: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct LoginResult {
    pub label: String,
    pub user: String,
    pub ns: u64,
    pub rc: i32,
    pub expect: Option<i32>,
}

/// What one driver process did.
#[derive(Debug, Default)]
pub struct Run {
    pub logins: Vec<LoginResult>,
    /// CLOCK_MONOTONIC (shared by all processes) at the start and end of the loop.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Run {
    /// Logins whose result was not the one the plan expects.
    pub fn unexpected(&self) -> impl Iterator<Item = &LoginResult> {
        self.logins
            .iter()
            .filter(|l| l.expect.is_some_and(|e| e != l.rc))
    }
}

pub struct Driver {
    exe: PathBuf,
    preload: String,
    services: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    /// The world's temporary directory: HOME and TMPDIR of the driver, and where plans
    /// and stderr files go.
    root: PathBuf,
    /// Numbers the plan and stderr files of successive runs.
    runs: std::cell::Cell<u32>,
}

/// A driver process that has passed pam_wrapper's start-up.
struct Started {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr_path: PathBuf,
    what: String,
    /// The plan's EXPECT column, in order.
    expects: Vec<Option<i32>>,
}

impl Driver {
    /// `shim`: benches/syslog_no_console.c, built (see its header for why).
    pub fn new(exe: &Path, shim: &Path, world: &World) -> Result<Driver> {
        let libs = wrapper_lib_dir()?;
        Ok(Driver {
            exe: exe.to_owned(),
            preload: format!(
                "{}:{}:{}",
                libs.join("libpam_wrapper.so").display(),
                libs.join("libnss_wrapper.so").display(),
                shim.display()
            ),
            services: world.services_dir(),
            passwd: world.passwd_path(),
            group: world.group_path(),
            root: world.root().to_owned(),
            runs: std::cell::Cell::new(0),
        })
    }

    /// Runs a plan in one process.
    pub fn run(&self, plan: &[Login]) -> Result<Run> {
        let started = self.start(plan, 0, false, None)?;
        self.finish(started)
    }

    /// Runs each plan in its own process, all released at the same moment.
    pub fn run_together(&self, plans: &[Vec<Login>]) -> Result<Vec<Run>> {
        let mut started = Vec::new();
        for plan in plans {
            started.push(self.start(plan, 0, true, None)?);
        }
        for s in &mut started {
            // The driver waits for this line (or EOF) after READY.
            if let Some(mut stdin) = s.stdin.take() {
                stdin.write_all(b"go\n")?;
            }
        }
        started.into_iter().map(|s| self.finish(s)).collect()
    }

    /// Runs a plan under callgrind, counting only the logins after the first `skip`;
    /// returns the instructions counted and keeps the profile at `out` for
    /// callgrind_annotate.
    pub fn callgrind(&self, plan: &[Login], skip: usize, out: &Path) -> Result<u64> {
        let started = self.start(plan, skip, false, Some(out))?;
        let run = self.finish(started)?;
        if run.logins.len() != plan.len() {
            return Err(format!("callgrind run of {} logins stopped early", plan.len()).into());
        }
        if let Some(l) = run.unexpected().next() {
            return Err(format!(
                "under callgrind, {} {} had result {} instead of {:?}: the count would be wrong",
                l.label, l.user, l.rc, l.expect
            )
            .into());
        }
        instructions(out)
    }

    fn command(&self, plan_path: &Path, skip: usize, callgrind: Option<&Path>) -> Command {
        let mut cmd = match callgrind {
            Some(out) => {
                let mut cmd = Command::new("valgrind");
                cmd.arg("--tool=callgrind")
                    .arg("--collect-atstart=no")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(&self.exe);
                cmd
            }
            None => Command::new(&self.exe),
        };
        cmd.arg(plan_path);
        // A clean environment: nothing from the caller's shell changes what is measured.
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LC_ALL", "C")
            .env("HOME", &self.root)
            .env("TMPDIR", &self.root)
            .env("LD_PRELOAD", &self.preload)
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.services)
            // pam_totp logs with pam_syslog(), which pam_wrapper would otherwise divert to
            // its own debug log; GA calls syslog() itself. Both now reach libc's syslog.
            .env("PAM_WRAPPER_USE_SYSLOG", "1")
            .env("NSS_WRAPPER_PASSWD", &self.passwd)
            .env("NSS_WRAPPER_GROUP", &self.group)
            .env("PAM_DRIVER_SKIP", skip.to_string());
        cmd
    }

    fn start(
        &self,
        plan: &[Login],
        skip: usize,
        handshake: bool,
        callgrind: Option<&Path>,
    ) -> Result<Started> {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let plan_path = self.root.join(format!("plan-{n}.tsv"));
        write_plan(&plan_path, plan)?;
        let stderr_path = self.root.join(format!("driver-{n}.stderr"));
        let what = format!(
            "pam_driver run {n} ({} logins, first {})",
            plan.len(),
            plan.first().map_or("-", |l| l.label.as_str())
        );
        let deadline = Instant::now() + RUN_TIMEOUT;
        for attempt in 1..=START_ATTEMPTS {
            let _lock = StartLock::acquire(deadline)?;
            let mut cmd = self.command(&plan_path, skip, callgrind);
            if handshake {
                cmd.env("PAM_DRIVER_HANDSHAKE", "1");
            }
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(fs::File::create(&stderr_path)?);
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
            let stdout = child.stdout.take().ok_or("no stdout pipe")?;
            let (tx, lines) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut started = Started {
                stdin: child.stdin.take(),
                child,
                lines,
                stderr_path: stderr_path.clone(),
                what: what.clone(),
                expects: plan.iter().map(|l| l.expect).collect(),
            };
            // pam_wrapper has made its dir once main() prints; with a handshake, wait
            // for READY so that the start lock covers the whole start.
            let wanted = if handshake { "READY" } else { "PWRAP_DIR" };
            match started.wait_for(wanted, deadline) {
                Ok(()) => return Ok(started),
                Err(e) => {
                    let _ = started.child.kill();
                    let _ = started.child.wait();
                    remove_pwrap_dirs(started.child.id());
                    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
                    if attempt == START_ATTEMPTS || !stderr.contains("pwrap_init") {
                        return Err(format!("{what} did not start: {e}\n{stderr}").into());
                    }
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn finish(&self, mut s: Started) -> Result<Run> {
        drop(s.stdin.take());
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut run = Run::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.lines.recv_timeout(left) {
                Ok(line) => parse_line(&line, &mut run, &s.expects)?,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = s.child.kill();
                    let _ = s.child.wait();
                    remove_pwrap_dirs(s.child.id());
                    return Err(format!("{} timed out", s.what).into());
                }
            }
        }
        let status = s.child.wait()?;
        remove_pwrap_dirs(s.child.id());
        // 3: some login had an unexpected result; the caller reports which.
        if !status.success() && status.code() != Some(3) {
            let stderr = fs::read_to_string(&s.stderr_path).unwrap_or_default();
            return Err(format!("{} failed ({status}):\n{stderr}", s.what).into());
        }
        Ok(run)
    }
}

impl Started {
    /// Reads lines until one starts with `wanted`.
    fn wait_for(&mut self, wanted: &str, deadline: Instant) -> Result<()> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(wanted) => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("exited before it was ready".into());
                }
                Err(RecvTimeoutError::Timeout) => return Err("timed out starting".into()),
            }
        }
    }
}

fn write_plan(path: &Path, plan: &[Login]) -> Result<()> {
    let mut text = String::new();
    for l in plan {
        let expect = l.expect.map_or("-".to_owned(), |e| e.to_string());
        writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{expect}",
            l.label, l.service, l.user, l.secret_hex, l.answer
        )?;
    }
    fs::write(path, text)?;
    // It holds the users' secrets and recovery codes.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn parse_line(line: &str, run: &mut Run, expects: &[Option<i32>]) -> Result<()> {
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["LOGIN", label, user, ns, rc] => {
            let expect = expects.get(run.logins.len()).copied().flatten();
            run.logins.push(LoginResult {
                label: (*label).to_owned(),
                user: (*user).to_owned(),
                ns: ns.parse()?,
                rc: rc.parse()?,
                expect,
            });
        }
        ["SPAN", start, end] => {
            run.start_ns = start.parse()?;
            run.end_ns = end.parse()?;
        }
        ["PWRAP_DIR", ..] | ["READY"] => {}
        _ => return Err(format!("unexpected driver output {line:?}").into()),
    }
    Ok(())
}

/// The instructions callgrind counted (its `totals:` line).
fn instructions(out: &Path) -> Result<u64> {
    let text = fs::read_to_string(out)
        .map_err(|e| format!("reading callgrind output {}: {e}", out.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no totals in {}", out.display()).into())
}

/// pam_wrapper removes its /tmp/pam.X at exit, but not after a crash, nor the one made
/// by valgrind's launcher (which runs the constructor too, then execs the tool under the
/// same pid). Removes every such dir that names this pid as its owner.
fn remove_pwrap_dirs(pid: u32) {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("pam.") && name.len() == 5) {
            continue;
        }
        let owner = fs::read_to_string(entry.path().join("pid")).unwrap_or_default();
        if owner.trim() == pid.to_string() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn wrapper_lib_dir() -> Result<PathBuf> {
    let multiarch = PathBuf::from(format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH));
    [multiarch, "/usr/lib64".into(), "/usr/lib".into()]
        .into_iter()
        .find(|d| d.join("libpam_wrapper.so").is_file() && d.join("libnss_wrapper.so").is_file())
        .ok_or_else(|| {
            "libpam_wrapper.so / libnss_wrapper.so not found: apt-get install libpam-wrapper \
             libnss-wrapper"
                .into()
        })
}

/// Machine-wide mutex shared with the test harness: a bound abstract unix socket,
/// released by the kernel if we die.
struct StartLock {
    _bound: UnixListener,
}

impl StartLock {
    fn acquire(deadline: Instant) -> Result<StartLock> {
        let addr = SocketAddr::from_abstract_name(START_LOCK_NAME)?;
        loop {
            match UnixListener::bind_addr(&addr) {
                Ok(listener) => return Ok(StartLock { _bound: listener }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    if Instant::now() > deadline {
                        return Err("timed out waiting for the pam_wrapper start lock".into());
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("bind the pam_wrapper start lock: {e}").into()),
            }
        }
    }
}
