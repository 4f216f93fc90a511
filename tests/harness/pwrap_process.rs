//! A helper program started under pam_wrapper: the start protocol of `c/handshake.h`, under
//! the machine-wide start lock, with retries, timeouts and the `/tmp/pam.X` clean-up.
//!
//! The protocol: the program prints `READY` on stdout once pam_wrapper's start-up is over
//! (pam_client: after pam_start; pam_driver: before its first login). With
//! `PAM_HARNESS_WAIT=1` it then waits for a line (or EOF) on stdin before going on, so that
//! many programs can be started one at a time and released together.

use super::start_lock::StartLock;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The line a helper prints once it has passed pam_wrapper's start-up.
pub const READY: &str = "READY";
/// Set to "1" in a helper's environment: after READY, wait for a line on stdin.
pub const WAIT_VAR: &str = "PAM_HARNESS_WAIT";

/// How often a program is restarted when pam_wrapper's own start-up failed (a /tmp/pam.X
/// clash with a pam_wrapper process outside this harness).
const MAX_START_ATTEMPTS: u32 = 3;

/// A started helper. Killed, and its `/tmp/pam.X` removed, when dropped.
pub struct PwrapProcess {
    child: Option<Child>,
    /// Set once the child has been reaped.
    status: Option<ExitStatus>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far, but READY.
    transcript: Vec<String>,
    ready: bool,
    stderr: Option<JoinHandle<String>>,
    stderr_text: Option<String>,
    deadline: Instant,
    description: String,
}

impl PwrapProcess {
    /// Starts `cmd` (its environment set up for pam_wrapper; stdin, stdout and stderr are
    /// piped here) and returns once it said READY, or exited before that: see
    /// [`PwrapProcess::is_ready`]. The start lock is held until then, so no two programs
    /// run pam_wrapper's racy /tmp/pam.X selection at the same time, nor read their service
    /// files while another is being set up. `timeout` bounds the whole life of the process
    /// (see [`PwrapProcess::set_timeout`]).
    pub fn start(
        cmd: &mut Command,
        description: &str,
        timeout: Duration,
    ) -> Result<PwrapProcess, String> {
        let deadline = Instant::now() + timeout;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut attempt = 1;
        loop {
            let lock = StartLock::acquire(deadline)?;
            let mut process = PwrapProcess::spawn(cmd, description, deadline)?;
            let ready = process.await_ready();
            drop(lock);
            match ready {
                Ok(true) => return Ok(process),
                Ok(false) => {
                    if attempt == MAX_START_ATTEMPTS || !process.pwrap_init_failed() {
                        // The caller reports how it ended.
                        return Ok(process);
                    }
                }
                Err(()) => return Err(process.fail("no READY before the timeout")),
            }
            attempt += 1;
        }
    }

    fn spawn(
        cmd: &mut Command,
        description: &str,
        deadline: Instant,
    ) -> Result<PwrapProcess, String> {
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {description}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        Ok(PwrapProcess {
            stdin: child.stdin.take(),
            child: Some(child),
            status: None,
            lines,
            transcript: Vec::new(),
            ready: false,
            stderr: Some(stderr),
            stderr_text: None,
            deadline,
            description: description.to_string(),
        })
    }

    /// Reads up to READY: true, or false if stdout closed first (the program exited: bad
    /// usage, pam_start failed, pam_wrapper's start-up failed). `Err` on timeout.
    fn await_ready(&mut self) -> Result<bool, ()> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == READY => {
                    self.ready = true;
                    return Ok(true);
                }
                Ok(line) => self.transcript.push(line),
                Err(RecvTimeoutError::Disconnected) => return Ok(false),
                Err(RecvTimeoutError::Timeout) => return Err(()),
            }
        }
    }

    /// After an exit before READY: whether it was pam_wrapper's constructor that failed (it
    /// exits 1 after logging "PWRAP_ERROR ... pwrap_init: ..."), which is worth a retry.
    fn pwrap_init_failed(&mut self) -> bool {
        let Ok(status) = self.reap() else {
            return false;
        };
        status.code() == Some(1) && self.stderr().contains("pwrap_init")
    }

    /// Whether the program said READY (false: it exited before; [`PwrapProcess::reap`]
    /// and [`PwrapProcess::stderr`] tell how).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The process id, until the process is reaped or killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// From now on, waiting for output or exit gives up after `timeout`.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }

    /// Lets a program waiting on stdin go on once, keeping stdin open for the next wait
    /// (pam_client's pause at a prompt). False if it was released for good already.
    pub fn go_on(&mut self) -> bool {
        match self.stdin.as_mut() {
            // EPIPE means it already exited; reap() will tell.
            Some(stdin) => {
                let _ = stdin.write_all(b"\n");
                let _ = stdin.flush();
                true
            }
            None => false,
        }
    }

    /// Lets a program waiting after READY go on (idempotent). Closing stdin releases it too.
    pub fn release(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // EPIPE means it already exited; reap() will tell.
            let _ = stdin.write_all(b"\n");
        }
    }

    /// The next stdout line, `None` once stdout is closed. On timeout the process is killed
    /// and the error tells what it had printed.
    pub fn next_line(&mut self) -> Result<Option<String>, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.transcript.push(line.clone());
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(self.fail("timed out")),
        }
    }

    /// Reads stdout to its end (see [`PwrapProcess::next_line`]).
    pub fn read_to_end(&mut self) -> Result<(), String> {
        while self.next_line()?.is_some() {}
        Ok(())
    }

    /// Every stdout line read so far (READY left out).
    pub fn transcript(&self) -> &[String] {
        &self.transcript
    }

    /// Waits for the exit of a program whose stdout is closed, and removes its /tmp/pam.X.
    pub fn reap(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = loop {
            let Some(child) = self.child.as_mut() else {
                return Err(format!("{} was already killed", self.description));
            };
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => return Err(self.fail("closed stdout but did not exit")),
                Err(e) => return Err(self.fail(&format!("wait failed: {e}"))),
            }
        };
        if let Some(child) = self.child.take() {
            remove_pwrap_dirs(child.id());
        }
        self.status = Some(status);
        Ok(status)
    }

    /// Everything the program wrote to stderr; waits for stderr to close.
    pub fn stderr(&mut self) -> String {
        if self.stderr_text.is_none() {
            let text = self
                .stderr
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default();
            self.stderr_text = Some(text);
        }
        self.stderr_text.clone().unwrap_or_default()
    }

    /// Kills the program and says why, with what it printed.
    pub fn fail(&mut self, why: &str) -> String {
        self.kill();
        let stderr = self.stderr();
        format!(
            "{}: {why}\n--- stdout so far ---\n{}\n--- stderr ---\n{stderr}",
            self.description,
            self.transcript.join("\n"),
        )
    }

    /// Kills the program (if it still runs) and removes its /tmp/pam.X.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status = Some(status);
            }
            remove_pwrap_dirs(child.id());
        }
    }
}

impl Drop for PwrapProcess {
    fn drop(&mut self) {
        // Never leave a parked program (and its /tmp/pam.X) behind.
        self.kill();
    }
}

/// "exited with status 3", "was killed by signal 11": for error messages.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => format!("ended with {status:?}"),
    }
}

/// pam_wrapper's destructor removes its /tmp/pam.X copy, but not if the process crashed or
/// was killed, nor the one valgrind's launcher makes (it runs the constructor too, then
/// execs the tool under the same pid); and pam_wrapper only reclaims stale dirs for pids
/// <= 65535. Removes every such dir that names `pid` (a process of ours, reaped) as its
/// owner.
pub fn remove_pwrap_dirs(pid: u32) {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // pam.X with one character X: pam_wrapper's own names only.
        if !(name.starts_with("pam.") && name.len() == 5) {
            continue;
        }
        let owner = fs::read_to_string(entry.path().join("pid")).unwrap_or_default();
        if owner.trim() == pid.to_string() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
