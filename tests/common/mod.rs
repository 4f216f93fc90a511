//! Integration-test harness: drives the real libpam through pam_wrapper and
//! nss_wrapper, with fake users whose homes live in a per-test temporary
//! directory. Nothing in /etc is read for users or services, and nothing is
//! written outside the temporary directory and the cargo target dir, except
//! the short-lived `/tmp/pam.X` copy of the service dir that pam_wrapper
//! itself makes for each process (removed when that process exits; the
//! harness removes it if the process crashed).
//!
//! Works as root (distinct uids, homes chowned) and as an ordinary user
//! (every fake user gets the caller's uid/gid).
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! let env = TestEnv::new();
//! let alice = env.add_user_with_password("alice", "secret");
//! env.service("login", "auth required {matrix}\nauth required {module}\n");
//! let out = env.authenticate("login", &alice.name, &["secret", "123456"]);
//! assert_eq!(out.code, PAM_SUCCESS, "{out}");
//! assert_eq!(out.prompts(), ["Password: ", "Verification code: "]);
//! assert!(env.syslog_lines().iter().any(|l| l.contains("alice")));
//!
//! // Concurrent logins: all parked after pam_start, then released together.
//! let mut logins: Vec<_> = (0..16)
//!     .map(|_| env.spawn_authenticate("login", "alice", &["secret", "123456"]))
//!     .collect();
//! release_all(&mut logins);
//! let outcomes = wait_all(logins);
//! ```
//!
//! Each parked client holds one of pam_wrapper's ~62 `/tmp/pam.X` names
//! (shared by the whole machine): keep well under 50 alive at once.
//!
//! The pam_wrapper workarounds (start lock, `/tmp/pam.X` clean-up, library lookup) and
//! the C helpers are in `tests/harness`, shared with the benchmark; its module docs list
//! the gotchas it handles. Those specific to this layer:
//! - Linux-PAM refuses PAM_AUTHTOK get/set from an application: see
//!   [`AuthOptions::authtok`].
//! - pam_matrix only checks its passdb service field in the account hook
//!   (exact match, first line of the user wins), so `{matrix}` points at a
//!   passdb generated per service.

// Each tests/*.rs compiles this module separately and uses only part of it.
#![allow(dead_code)]

#[path = "../harness/mod.rs"]
pub mod harness;

// Re-exported for the tests; not every test binary uses both.
#[allow(unused_imports)]
pub use harness::locations::{module_path, target_profile_dir};

use harness::helpers::{self, Helper};
use harness::pwrap_process::{self, PwrapProcess};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_SERVICE_ERR: i32 = 3;
pub const PAM_SYSTEM_ERR: i32 = 4;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_CRED_ERR: i32 = 8;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_USER_UNKNOWN: i32 = 10;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_ABORT: i32 = 26;

/// Message styles as pam_client prints them.
pub const PROMPT_ECHO_OFF: &str = "PROMPT_ECHO_OFF";
pub const PROMPT_ECHO_ON: &str = "PROMPT_ECHO_ON";
pub const ERROR_MSG: &str = "ERROR_MSG";
pub const TEXT_INFO: &str = "TEXT_INFO";

/// What pam_client prints when it holds an answer back (`AuthOptions::pause_at_prompt`).
const PAUSED: &str = "PAUSED";

/// First uid/gid handed out to fake users when running as root.
const FIRST_FAKE_ID: u32 = 61000;
/// How long one pam_client run may take before it is killed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Support binaries and libraries
// ---------------------------------------------------------------------------

/// Directory of pam_wrapper's test modules (pam_matrix.so, pam_get_items.so, ...).
pub fn wrapper_modules_dir() -> PathBuf {
    support().wrapper_modules.clone()
}

pub fn pam_matrix_path() -> PathBuf {
    wrapper_modules_dir().join("pam_matrix.so")
}

/// The compiled helpers and the wrapper libraries, found or built once per test binary.
pub struct Support {
    pub pam_client: PathBuf,
    pub syslog_capture: PathBuf,
    pub libpam_wrapper: PathBuf,
    pub libnss_wrapper: PathBuf,
    wrapper_modules: PathBuf,
    /// target/<profile>/pam-test-support
    pub dir: PathBuf,
}

pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| build_support().unwrap_or_else(|e| panic!("{e}")))
}

/// Fails, naming the package, when something the PAM tests need is not installed.
fn build_support() -> Result<Support, String> {
    use harness::locations::{require_file, wrapper_libs};
    require_file(
        Path::new("/usr/include/security/pam_appl.h"),
        "libpam0g-dev",
    )?;
    let libs = wrapper_libs()?;
    require_file(&libs.modules_dir().join("pam_matrix.so"), "libpam-wrapper")?;
    require_file(&libs.libnss_wrapper, "libnss-wrapper")?;
    Ok(Support {
        pam_client: helpers::build(Helper::PamClient)?,
        syslog_capture: helpers::build(Helper::SyslogCapture)?,
        libpam_wrapper: libs.libpam_wrapper.clone(),
        libnss_wrapper: libs.libnss_wrapper.clone(),
        wrapper_modules: libs.modules_dir(),
        dir: helpers::output_dir(),
    })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn current_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// `<tempdir>/home/<name>`, mode 0755, owned by uid:gid.
    pub home: PathBuf,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    /// name -> password, for pam_matrix passdb files.
    passwords: BTreeMap<String, String>,
    /// Services whose body used `{matrix}`: each has its own passdb.
    matrix_services: Vec<String>,
    next_id: u32,
    spawn_count: u64,
}

// ---------------------------------------------------------------------------
// TestEnv
// ---------------------------------------------------------------------------

/// One isolated PAM world: service dir, passwd/group for nss_wrapper, pam_matrix
/// passdb files, fake homes and a syslog capture file, all in a tempdir that is
/// removed on drop.
pub struct TestEnv {
    dir: tempfile::TempDir,
    state: Mutex<State>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        // Build the helpers first, so a missing package fails before any setup.
        support();
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-test.")
            .tempdir()
            .expect("create tempdir");
        let env = TestEnv {
            dir,
            state: Mutex::new(State {
                next_id: FIRST_FAKE_ID,
                ..State::default()
            }),
        };
        // Fake users (possibly other uids when root) must be able to reach
        // their homes inside it.
        set_mode(env.root(), 0o755);
        if is_root() {
            check_ancestors_traversable(env.root());
        }
        for d in [env.services_dir(), env.root().join("home")] {
            fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            set_mode(&d, 0o755);
        }
        write_atomic(&env.passwd_path(), "");
        write_atomic(&env.group_path(), "");
        write_atomic(&env.syslog_path(), "");
        // Without "other", libpam logs "no default config other" on every
        // pam_start; a deny-all "other" also mirrors a real system.
        env.service(
            "other",
            "auth required pam_deny.so\naccount required pam_deny.so\n\
             password required pam_deny.so\nsession required pam_deny.so\n",
        );
        env
    }

    /// The temporary directory holding everything.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// Given to PAM_WRAPPER_SERVICE_DIR. Holds service files only: pam_wrapper
    /// copies every file in it at each process start.
    pub fn services_dir(&self) -> PathBuf {
        self.root().join("pam.d")
    }
    pub fn passwd_path(&self) -> PathBuf {
        self.root().join("passwd")
    }
    pub fn group_path(&self) -> PathBuf {
        self.root().join("group")
    }
    pub fn syslog_path(&self) -> PathBuf {
        self.root().join("syslog")
    }
    /// The pam_matrix passdb used by `{matrix}` in service `service`.
    pub fn passdb_path(&self, service: &str) -> PathBuf {
        self.root().join(format!("passdb.{service}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide the original failure behind
        // a PoisonError in another thread.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a user to the fake passwd/group files and create its home.
    /// As root: uid = gid = 61000, 61001, ... (per env); home chowned to them.
    /// Otherwise: every user gets the caller's uid/gid.
    pub fn add_user(&self, name: &str) -> User {
        check_field(name, "user name");
        assert!(!name.is_empty(), "empty user name");
        let mut state = self.lock();
        assert!(
            state.users.iter().all(|u| u.name != name),
            "user {name} added twice"
        );
        let (uid, gid) = if is_root() {
            let id = state.next_id;
            state.next_id += 1;
            (id, id)
        } else {
            current_ids()
        };
        let home = self.root().join("home").join(name);
        fs::create_dir(&home).unwrap_or_else(|e| panic!("mkdir {}: {e}", home.display()));
        set_mode(&home, 0o755);
        if is_root() {
            std::os::unix::fs::chown(&home, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", home.display()));
        }
        let user = User {
            name: name.to_string(),
            uid,
            gid,
            home,
        };
        state.users.push(user.clone());
        self.write_nss_files(&state);
        user
    }

    /// Adds root (uid 0) to the fake passwd file, so programs run as root through
    /// [`TestEnv::command`] can name themselves (nss_wrapper hides /etc/passwd entirely).
    pub fn add_root(&self) -> User {
        let mut state = self.lock();
        let user = User {
            name: "root".to_string(),
            uid: 0,
            gid: 0,
            home: self.root().join("home").join("root"),
        };
        fs::create_dir_all(&user.home).unwrap_or_else(|e| panic!("mkdir root home: {e}"));
        state.users.push(user.clone());
        self.write_nss_files(&state);
        user
    }

    /// `add_user`, plus a pam_matrix password for every `{matrix}` service.
    pub fn add_user_with_password(&self, name: &str, password: &str) -> User {
        check_field(password, "password");
        let user = self.add_user(name);
        let mut state = self.lock();
        state
            .passwords
            .insert(name.to_string(), password.to_string());
        self.write_passdbs(&state);
        user
    }

    /// All users added so far.
    pub fn users(&self) -> Vec<User> {
        self.lock().users.clone()
    }

    fn write_nss_files(&self, state: &State) {
        let mut passwd = String::new();
        let mut group = String::new();
        for u in &state.users {
            passwd.push_str(&format!(
                "{}:x:{}:{}:{}:{}:/bin/sh\n",
                u.name,
                u.uid,
                u.gid,
                u.name,
                u.home.display()
            ));
            group.push_str(&format!("{}:x:{}:\n", u.name, u.gid));
        }
        write_atomic(&self.passwd_path(), &passwd);
        write_atomic(&self.group_path(), &group);
    }

    /// pam_matrix compares the third field with PAM_SERVICE (only in its
    /// account hook, exact match, first line for the user wins), so one
    /// passdb per service keeps every service's account check passing.
    fn write_passdbs(&self, state: &State) {
        for service in &state.matrix_services {
            let mut db = String::new();
            for (name, password) in &state.passwords {
                // Always three fields: pam_matrix dereferences NULL otherwise.
                db.push_str(&format!("{name}:{password}:{service}\n"));
            }
            write_atomic(&self.passdb_path(service), &db);
        }
    }

    /// Write PAM service file `name`. Placeholders in `body`:
    /// - `{module}`: absolute path of libpam_totp.so
    /// - `{matrix}`: absolute path of pam_matrix.so plus ` passdb=<passdb for this service>`
    /// - `{wrapper_modules}`: pam_wrapper's module dir (pam_get_items.so, pam_set_items.so, ...)
    ///
    /// System modules (pam_deny.so, pam_warn.so, ...) can be named bare; anything
    /// else needs an absolute path. pam_wrapper copies the service dir when a
    /// client starts, so later edits only affect later clients.
    pub fn service(&self, name: &str, body: &str) {
        assert!(
            !name.is_empty() && !name.contains('/') && name != "." && name != "..",
            "bad service name {name:?}"
        );
        let mut text = body.to_string();
        if text.contains("{module}") {
            text = text.replace("{module}", &module_path().display().to_string());
        }
        if text.contains("{matrix}") {
            let matrix = format!(
                "{} passdb={}",
                pam_matrix_path().display(),
                self.passdb_path(name).display()
            );
            text = text.replace("{matrix}", &matrix);
            let mut state = self.lock();
            if !state.matrix_services.iter().any(|s| s == name) {
                state.matrix_services.push(name.to_string());
            }
            self.write_passdbs(&state);
        }
        text = text.replace(
            "{wrapper_modules}",
            &wrapper_modules_dir().display().to_string(),
        );
        if !text.ends_with('\n') {
            text.push('\n');
        }
        write_atomic(&self.services_dir().join(name), &text);
    }

    /// Lines captured from syslog()/pam_syslog() by all clients of this env,
    /// as `<PRI> IDENT: MESSAGE`.
    pub fn syslog_lines(&self) -> Vec<String> {
        match fs::read_to_string(self.syslog_path()) {
            Ok(s) => s.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("read {}: {e}", self.syslog_path().display()),
        }
    }

    /// Empty the syslog capture (e.g. between phases of one test).
    pub fn clear_syslog(&self) {
        write_atomic(&self.syslog_path(), "");
    }

    /// A command that sees this env's users (nss_wrapper) and whose syslog is
    /// captured, but without pam_wrapper: for getent, the CLI, etc.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let s = support();
        let mut cmd = Command::new(program);
        self.base_env(&mut cmd);
        cmd.env(
            "LD_PRELOAD",
            harness::env::preload(&[&s.libnss_wrapper, &s.syslog_capture]),
        );
        cmd
    }

    fn base_env(&self, cmd: &mut Command) {
        harness::env::clean(cmd, self.root());
        harness::env::nss_wrapper(cmd, &self.passwd_path(), &self.group_path());
        cmd.env("SYSLOG_CAPTURE_FILE", self.syslog_path());
        // Debugging aids, passed through when the developer sets them.
        for var in [
            "PAM_WRAPPER_DEBUGLEVEL",
            "NSS_WRAPPER_DEBUGLEVEL",
            "RUST_BACKTRACE",
        ] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
    }

    /// Run one login: pam_authenticate for `user` on `service`, answering the
    /// prompts with `answers` in order.
    pub fn authenticate(&self, service: &str, user: &str, answers: &[&str]) -> Outcome {
        self.authenticate_with(service, user, answers, &AuthOptions::new())
    }

    pub fn authenticate_with(
        &self,
        service: &str,
        user: &str,
        answers: &[&str],
        opts: &AuthOptions,
    ) -> Outcome {
        self.spawn_authenticate_with(service, user, answers, opts)
            .wait()
    }

    /// Start a login and return once it has passed pam_start; it then waits
    /// for [`PendingAuth::release`] (or `wait`) before calling
    /// pam_authenticate. Start many, release them all, then wait for each:
    /// their pam_authenticate calls run at the same time.
    pub fn spawn_authenticate(&self, service: &str, user: &str, answers: &[&str]) -> PendingAuth {
        self.spawn_authenticate_with(service, user, answers, &AuthOptions::new())
    }

    pub fn spawn_authenticate_with(
        &self,
        service: &str,
        user: &str,
        answers: &[&str],
        opts: &AuthOptions,
    ) -> PendingAuth {
        let s = support();
        let mut cmd = match opts.wrapper.split_first() {
            None => Command::new(&s.pam_client),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&s.pam_client);
                cmd
            }
        };
        self.base_env(&mut cmd);
        cmd.env(
            "LD_PRELOAD",
            harness::env::preload(&[&s.libpam_wrapper, &s.libnss_wrapper, &s.syslog_capture]),
        );
        harness::env::pam_wrapper(&mut cmd, &self.services_dir());
        // Parked after pam_start until released: see PendingAuth.
        cmd.env(pwrap_process::WAIT_VAR, "1");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        if opts.setcred {
            cmd.arg("--setcred");
        }
        if let Some(tok) = &opts.authtok {
            cmd.arg("--authtok").arg(tok);
        }
        if let Some(rhost) = &opts.rhost {
            cmd.arg("--rhost").arg(rhost);
        }
        if opts.chauthtok {
            cmd.arg("--chauthtok");
        }
        for _ in 0..opts.expired {
            cmd.arg("--expired");
        }
        if let Some(uid) = opts.ruid {
            cmd.arg("--ruid").arg(uid.to_string());
        }
        cmd.arg("--").arg(service).arg(user).args(answers);

        let description = {
            let mut state = self.lock();
            state.spawn_count += 1;
            format!(
                "pam_client #{} service={service} user={user} answers={answers:?}",
                state.spawn_count
            )
        };
        let process = PwrapProcess::start(&mut cmd, &description, opts.timeout)
            .unwrap_or_else(|e| panic!("{e}"));
        PendingAuth { process }
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// Write via rename so a concurrently starting client never reads half a file.
fn write_atomic(path: &Path, contents: &str) {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp{n}"));
    fs::write(&tmp, contents).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    set_mode(&tmp, 0o644);
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

fn check_field(value: &str, what: &str) {
    assert!(
        !value.contains([':', '\n', '\0']),
        "{what} {value:?} may not contain ':', newline or NUL (passwd/passdb field)"
    );
}

/// As root, fake users (other uids) must be able to walk down to their homes.
fn check_ancestors_traversable(dir: &Path) {
    for a in dir.ancestors().skip(1) {
        if let Ok(meta) = fs::metadata(a) {
            assert!(
                meta.permissions().mode() & 0o001 != 0,
                "{} is not searchable by other users, so fake users cannot reach their \
                 homes under {}: point TMPDIR at a world-searchable directory",
                a.display(),
                dir.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AuthOptions {
    setcred: bool,
    authtok: Option<String>,
    rhost: Option<String>,
    chauthtok: bool,
    /// How many times pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK) follows a success.
    expired: u8,
    ruid: Option<u32>,
    env: Vec<(OsString, OsString)>,
    /// A program (and its arguments) that runs pam_client, such as setpriv.
    wrapper: Vec<OsString>,
    timeout: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthOptions {
    pub fn new() -> AuthOptions {
        AuthOptions {
            setcred: false,
            authtok: None,
            rhost: None,
            chauthtok: false,
            expired: 0,
            ruid: None,
            env: Vec::new(),
            wrapper: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Call pam_setcred(PAM_ESTABLISH_CRED) after a successful pam_authenticate.
    pub fn setcred(mut self) -> Self {
        self.setcred = true;
        self
    }

    /// Pre-set PAM_AUTHTOK. Linux-PAM refuses pam_set_item(PAM_AUTHTOK) from an
    /// application, so this only takes effect when the stack starts with
    /// `auth required {wrapper_modules}/pam_set_items.so` (it copies the
    /// PAM_AUTHTOK environment variable pam_client exports into the item).
    /// Likewise, [`Outcome::authtok`] is only filled in when the stack ends with
    /// `auth optional {wrapper_modules}/pam_get_items.so` and the stack gets
    /// that far (a `sufficient` success or `requisite` failure stops earlier).
    pub fn authtok(mut self, value: &str) -> Self {
        self.authtok = Some(value.to_string());
        self
    }

    /// Set PAM_RHOST (as sshd does) before authenticating.
    pub fn rhost(mut self, value: &str) -> Self {
        self.rhost = Some(value.to_string());
        self
    }

    /// Call pam_chauthtok (as passwd does) instead of pam_authenticate; its code is the
    /// outcome's `code`.
    pub fn chauthtok(mut self) -> Self {
        self.chauthtok = true;
        self
    }

    /// After a successful pam_authenticate, pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK) on
    /// the same handle (an expired password); its code is the outcome's `chauthtok`.
    pub fn expired(mut self) -> Self {
        self.expired = 1;
        self
    }

    /// As [`AuthOptions::expired`], twice on the same handle; the outcome's `chauthtok` is
    /// the second change's code.
    pub fn expired_twice(mut self) -> Self {
        self.expired = 2;
        self
    }

    /// As root: run PAM with this real uid (the effective uid stays root), as a setuid
    /// `passwd` run by that user does.
    pub fn ruid(mut self, uid: u32) -> Self {
        self.ruid = Some(uid);
        self
    }

    /// Extra environment variable for pam_client (and so for the modules).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run pam_client through `program args… pam_client …` (a program that execs its
    /// arguments in a changed process, such as `setpriv`).
    pub fn under(mut self, program: &str, args: &[&str]) -> Self {
        self.wrapper = std::iter::once(program)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        self
    }

    /// Hold each answer back at its prompt until the test lets it go on (see
    /// [`PendingAuth::until_prompt`]).
    pub fn pause_at_prompt(self) -> Self {
        self.env("PAM_HARNESS_PAUSE_AT_PROMPT", "1")
    }

    /// Kill the client and fail the test after this long (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

// ---------------------------------------------------------------------------
// Running pam_client
// ---------------------------------------------------------------------------

/// A started pam_client, parked just before pam_authenticate (see
/// `harness::pwrap_process` for how it is started, and cleaned up on drop).
pub struct PendingAuth {
    process: PwrapProcess,
}

impl PendingAuth {
    /// The client's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Let the client go on to pam_authenticate (idempotent).
    pub fn release(&mut self) {
        self.process.release();
    }

    /// For a login started with [`AuthOptions::pause_at_prompt`]: lets it authenticate
    /// and returns once the module has asked for an answer, which the client then holds
    /// back until [`PendingAuth::wait`] (a person typing). Panics if the login ended
    /// without asking.
    pub fn until_prompt(&mut self) {
        let p = &mut self.process;
        assert!(p.go_on(), "{}: released already", p.description());
        loop {
            match p.next_line().unwrap_or_else(|e| panic!("{e}")) {
                Some(line) if line == PAUSED => return,
                Some(_) => {}
                None => panic!(
                    "{} ended without a prompt:\n{}",
                    p.description(),
                    p.transcript().join("\n")
                ),
            }
        }
    }

    /// Release if needed, wait for the client and parse its transcript.
    /// Panics if pam_client failed to run PAM at all (usage, pam_start error,
    /// crash, timeout): those are harness or module-crash failures, not
    /// authentication results.
    pub fn wait(mut self) -> Outcome {
        let p = &mut self.process;
        p.release();
        p.read_to_end().unwrap_or_else(|e| panic!("{e}"));
        let status: ExitStatus = p.reap().unwrap_or_else(|e| panic!("{e}"));
        let stderr = p.stderr();
        let stdout = p.transcript().join("\n");
        if !status.success() {
            panic!(
                "{} {} (setup error or crash, not an authentication result)\n\
                 --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                p.description(),
                pwrap_process::describe_exit(status)
            );
        }
        Outcome::parse(&stdout, stderr)
            .unwrap_or_else(|e| panic!("{}: bad transcript: {e}\n{stdout}", p.description()))
    }
}

/// Release every pending login at (nearly) the same moment.
pub fn release_all(pending: &mut [PendingAuth]) {
    for p in pending.iter_mut() {
        p.release();
    }
}

/// Wait for every pending login, in order.
pub fn wait_all(pending: Vec<PendingAuth>) -> Vec<Outcome> {
    pending.into_iter().map(PendingAuth::wait).collect()
}

// ---------------------------------------------------------------------------
// Outcome
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Outcome {
    /// pam_authenticate's return code.
    pub code: i32,
    /// pam_strerror(code).
    pub code_text: String,
    /// Every conversation message, in order: (style, text).
    pub messages: Vec<(String, String)>,
    /// PAM_AUTHTOK after authentication (see [`AuthOptions::authtok`]).
    pub authtok: Option<String>,
    /// pam_setcred's return code, if it was requested and authentication succeeded.
    pub setcred: Option<i32>,
    /// pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)'s code (see [`AuthOptions::expired`]).
    pub chauthtok: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn parse(stdout: &str, stderr: String) -> Result<Outcome, String> {
        let mut messages = Vec::new();
        let mut authtok = None;
        let mut result = None;
        let mut setcred = None;
        let mut chauthtok = None;
        for line in stdout.lines() {
            let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
            match tag {
                "MSG" => {
                    let (style, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    messages.push((style.to_string(), unescape(text)));
                }
                "AUTHTOK" => {
                    authtok = (rest != "(null)").then(|| unescape(rest));
                }
                "RESULT" => {
                    let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    let code = code.parse::<i32>().map_err(|e| format!("RESULT: {e}"))?;
                    result = Some((code, unescape(text)));
                }
                "SETCRED" => {
                    setcred = Some(rest.parse::<i32>().map_err(|e| format!("SETCRED: {e}"))?);
                }
                // pam_client held the answer back here (AuthOptions::pause_at_prompt).
                PAUSED => {}
                "CHAUTHTOK" => {
                    chauthtok = Some(rest.parse::<i32>().map_err(|e| format!("CHAUTHTOK: {e}"))?);
                }
                // A PAM module must never write to the application's stdout
                // (for sshd it may be the network), so this fails loudly.
                _ => {
                    return Err(format!(
                        "unexpected line {line:?} (module wrote to stdout?)"
                    ));
                }
            }
        }
        let (code, code_text) = result.ok_or("no RESULT line")?;
        Ok(Outcome {
            code,
            code_text,
            messages,
            authtok,
            setcred,
            chauthtok,
            stdout: stdout.to_string(),
            stderr,
        })
    }

    fn texts(&self, styles: &[&str]) -> Vec<String> {
        self.messages
            .iter()
            .filter(|(s, _)| styles.contains(&s.as_str()))
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Texts of PROMPT_ECHO_OFF and PROMPT_ECHO_ON messages, in order.
    pub fn prompts(&self) -> Vec<String> {
        self.texts(&[PROMPT_ECHO_OFF, PROMPT_ECHO_ON])
    }
    /// Texts of TEXT_INFO messages.
    pub fn infos(&self) -> Vec<String> {
        self.texts(&[TEXT_INFO])
    }
    /// Texts of ERROR_MSG messages.
    pub fn errors(&self) -> Vec<String> {
        self.texts(&[ERROR_MSG])
    }
    pub fn succeeded(&self) -> bool {
        self.code == PAM_SUCCESS
    }
}

impl fmt::Display for Outcome {
    /// The whole transcript, for assertion messages: `assert!(.., "{out}")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "code {} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.code_text, self.stdout, self.stderr
        )
    }
}

/// Undo pam_client's escaping ("\\\\", "\\n", "\\r").
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
