//! Running pam_driver (tests/harness/c/pam_driver.c): one process for a whole plan of
//! logins, under pam_wrapper + nss_wrapper, alone, four at once, or under callgrind.
//!
//! Starting it is the harness's job (tests/harness, shared with the integration tests): the
//! machine-wide start lock around pam_wrapper's racy `/tmp/pam.X` selection, so a benchmark
//! and a test run on one machine do not trip each other, the retry of a start that failed
//! in pwrap_init, and the clean-up of the dirs a killed or valgrind-run driver leaves.

use crate::harness::helpers::{self, Helper};
use crate::harness::locations::{require_file, wrapper_libs};
use crate::harness::pwrap_process::{self, PwrapProcess};
use crate::harness::{env, pwrap_process::WAIT_VAR};
use crate::world::World;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// No single driver process may take longer than this; a hung module must not hang the
/// benchmark.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// One login of a plan (see the header of tests/harness/c/pam_driver.c).
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
    /// The world's temporary directory: HOME and TMPDIR of the driver, and where plans go.
    root: PathBuf,
    /// Numbers the plan files of successive runs.
    runs: std::cell::Cell<u32>,
}

/// A driver process that has passed pam_wrapper's start-up.
struct Started {
    process: PwrapProcess,
    /// The plan's EXPECT column, in order.
    expects: Vec<Option<i32>>,
}

impl Driver {
    /// Builds pam_driver and its syslog shim (tests/harness/c/syslog_no_console.c: see its
    /// header for why) and finds the wrapper libraries.
    pub fn new(world: &World) -> Result<Driver> {
        let libs = wrapper_libs()?;
        require_file(&libs.libnss_wrapper, "libnss-wrapper")?;
        let shim = helpers::build(Helper::SyslogNoConsole)?;
        Ok(Driver {
            exe: helpers::build(Helper::PamDriver)?,
            preload: format!(
                "{}:{}:{}",
                libs.libpam_wrapper.display(),
                libs.libnss_wrapper.display(),
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
            // The drivers wait for this after READY.
            s.process.release();
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
                    // Symbol names as the linker knows them: benches/order-functions.sh
                    // reads the profiles to list what a login runs.
                    .arg("--demangle=no")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(&self.exe);
                cmd
            }
            None => Command::new(&self.exe),
        };
        cmd.arg(plan_path);
        // A clean environment: nothing from the caller's shell changes what is measured.
        env::clean(&mut cmd, &self.root);
        cmd.env("LD_PRELOAD", &self.preload);
        // pam_totp logs with pam_syslog(), which pam_wrapper would otherwise divert to its
        // own debug log; GA calls syslog() itself. Both now reach libc's syslog.
        env::pam_wrapper(&mut cmd, &self.services);
        env::nss_wrapper(&mut cmd, &self.passwd, &self.group);
        cmd.env("PAM_DRIVER_SKIP", skip.to_string());
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
        let what = format!(
            "pam_driver run {n} ({} logins, first {})",
            plan.len(),
            plan.first().map_or("-", |l| l.label.as_str())
        );
        let mut cmd = self.command(&plan_path, skip, callgrind);
        if handshake {
            cmd.env(WAIT_VAR, "1");
        }
        // READY comes once pam_wrapper has made its dir; with a handshake the driver then
        // waits, so that the start lock covers every start before any login runs.
        let mut process = PwrapProcess::start(&mut cmd, &what, RUN_TIMEOUT)
            .map_err(|e| format!("{what} did not start: {e}"))?;
        if !process.is_ready() {
            let how = process
                .reap()
                .map(pwrap_process::describe_exit)
                .unwrap_or_else(|e| e);
            return Err(format!(
                "{what} did not start: exited before it was ready ({how})\n{}",
                process.stderr()
            )
            .into());
        }
        Ok(Started {
            process,
            expects: plan.iter().map(|l| l.expect).collect(),
        })
    }

    fn finish(&self, s: Started) -> Result<Run> {
        let Started {
            mut process,
            expects,
        } = s;
        process.set_timeout(RUN_TIMEOUT);
        // EOF releases a driver still waiting after READY.
        process.release();
        process.read_to_end()?;
        let status = process.reap()?;
        // 3: some login had an unexpected result; the caller reports which.
        if !status.success() && status.code() != Some(3) {
            let stderr = process.stderr();
            return Err(format!("{} failed ({status}):\n{stderr}", process.description()).into());
        }
        let mut run = Run::default();
        for line in process.transcript() {
            parse_line(line, &mut run, &expects)?;
        }
        Ok(run)
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
