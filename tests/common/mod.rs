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
//! Gotchas this harness already handles (details in the comments below):
//! - pam_wrapper picks its `/tmp/pam.X` directory (hard-coded /tmp, not
//!   TMPDIR) with a racy lstat+mkdir among ~62 names; clients started at the
//!   same moment fail ("pwrap_init: Failed to create pam_wrapper config dir")
//!   or share a dir and read each other's service files. Client start-up is
//!   serialised machine-wide (abstract unix socket) until pam_start has
//!   returned (pam_client's READY handshake), and a pwrap_init failure caused
//!   by an outside pam_wrapper user is retried.
//! - pam_syslog() is swallowed by pam_wrapper unless PAM_WRAPPER_USE_SYSLOG=1.
//! - nss_wrapper only takes over when both NSS_WRAPPER_PASSWD and
//!   NSS_WRAPPER_GROUP are set; then /etc/passwd is not consulted at all
//!   (root, daemon, ... are unknown unless added).
//! - Linux-PAM refuses PAM_AUTHTOK get/set from an application: see
//!   [`AuthOptions::authtok`].
//! - pam_matrix only checks its passdb service field in the account hook
//!   (exact match, first line of the user wins), so `{matrix}` points at a
//!   passdb generated per service.

// Each tests/*.rs compiles this module separately and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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

/// First uid/gid handed out to fake users when running as root.
const FIRST_FAKE_ID: u32 = 61000;
/// How long one pam_client run may take before it is killed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Locations and support binaries
// ---------------------------------------------------------------------------

/// target/<profile>, derived from this test binary (target/<profile>/deps/<test>).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent dir");
    assert!(
        deps.file_name().is_some_and(|n| n == "deps"),
        "test binary {} is not in target/<profile>/deps; cannot find the build dir",
        exe.display()
    );
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// Absolute path of the PAM module under test.
///
/// `cargo test` compiles the cdylib too, but leaves it in target/<profile>/deps;
/// only `cargo build` copies it up to target/<profile>. The newer of the two
/// is the one matching the sources this test was built from.
pub fn module_path() -> PathBuf {
    let profile = target_profile_dir();
    let candidates = [
        profile.join("deps").join("libpam_totp.so"),
        profile.join("libpam_totp.so"),
    ];
    candidates
        .iter()
        .filter_map(|p| {
            let modified = fs::metadata(p).and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "libpam_totp.so not found in {} or its deps/: build the cdylib first \
                 (`cargo build`; `cargo test` builds it into deps/ too)",
                profile.display()
            )
        })
}

fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let multiarch = PathBuf::from(format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH));
        [
            multiarch,
            PathBuf::from("/usr/lib64"),
            PathBuf::from("/usr/lib"),
        ]
        .into_iter()
        .find(|d| d.join("libpam_wrapper.so").is_file())
        .unwrap_or_else(|| {
            panic!(
                "libpam_wrapper.so not found under /usr/lib: install the Debian package \
                     libpam-wrapper (apt-get install libpam-wrapper)"
            )
        })
    })
}

/// Directory of pam_wrapper's test modules (pam_matrix.so, pam_get_items.so, ...).
pub fn wrapper_modules_dir() -> PathBuf {
    lib_dir().join("pam_wrapper")
}

pub fn pam_matrix_path() -> PathBuf {
    wrapper_modules_dir().join("pam_matrix.so")
}

fn require_file(path: &Path, package: &str) {
    assert!(
        path.exists(),
        "{} is missing: the PAM integration tests need the Debian package {package} \
         (apt-get install {package})",
        path.display()
    );
}

/// The compiled helpers, built once per test binary.
pub struct Support {
    pub pam_client: PathBuf,
    pub syslog_capture: PathBuf,
    pub libpam_wrapper: PathBuf,
    pub libnss_wrapper: PathBuf,
    /// target/<profile>/pam-test-support
    pub dir: PathBuf,
}

pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(build_support)
}

fn build_support() -> Support {
    require_file(
        Path::new("/usr/include/security/pam_appl.h"),
        "libpam0g-dev",
    );
    let libs = lib_dir();
    let libpam_wrapper = libs.join("libpam_wrapper.so");
    let libnss_wrapper = libs.join("libnss_wrapper.so");
    require_file(&libpam_wrapper, "libpam-wrapper");
    require_file(&pam_matrix_path(), "libpam-wrapper");
    require_file(&libnss_wrapper, "libnss-wrapper");

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    let dir = target_profile_dir().join("pam-test-support");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));

    let pam_client = dir.join("pam_client");
    compile(&src.join("pam_client.c"), &pam_client, &["-o"], &["-lpam"]);
    let syslog_capture = dir.join("syslog_capture.so");
    compile(
        &src.join("syslog_capture.c"),
        &syslog_capture,
        &["-shared", "-fPIC", "-pthread", "-o"],
        &[],
    );
    Support {
        pam_client,
        syslog_capture,
        libpam_wrapper,
        libnss_wrapper,
        dir,
    }
}

/// `cc <pre> <out> <src> <post>`, skipped when `out` is newer than both `src`
/// and this file (which holds the flags).
/// Builds to a temporary name and renames, so test binaries running in
/// parallel (or a running pam_client) never see a half-written file.
fn compile(src: &Path, out: &Path, pre: &[&str], post: &[&str]) {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let src_time = mtime(src).unwrap_or_else(|| panic!("{} is missing", src.display()));
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/mod.rs");
    let newest_input = mtime(&harness).map_or(src_time, |t| t.max(src_time));
    if mtime(out).is_some_and(|t| t > newest_input) {
        return;
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let result = Command::new("cc")
        .args(["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra"])
        .args(pre)
        .arg(&tmp)
        .arg(src)
        .args(post)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run cc ({e}): install a C compiler (apt-get install gcc)")
        });
    if !result.status.success() {
        let _ = fs::remove_file(&tmp);
        let stderr = String::from_utf8_lossy(&result.stderr);
        let hint = if stderr.contains("security/pam_appl.h") || stderr.contains("-lpam") {
            " (install libpam0g-dev)"
        } else {
            ""
        };
        panic!("compiling {} failed{hint}:\n{stderr}", src.display());
    }
    fs::rename(&tmp, out)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), out.display()));
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
// Start-up lock (see module docs: pam_wrapper's /tmp/pam.X race)
// ---------------------------------------------------------------------------

/// Machine-wide mutex: a bound abstract-namespace unix socket. Unlike a lock
/// file it is shared by every user and checkout (pam_wrapper's /tmp/pam.X
/// names are shared by all of them too), creates no file, and is released by
/// the kernel if the holder dies. The socket is close-on-exec, so clients do
/// not inherit it.
struct StartLock(UnixListener);

const START_LOCK_NAME: &[u8] = b"pam-totp-tests/pam_wrapper-start";

impl StartLock {
    fn acquire(deadline: Instant) -> StartLock {
        let addr = SocketAddr::from_abstract_name(START_LOCK_NAME).expect("abstract name");
        loop {
            match UnixListener::bind_addr(&addr) {
                Ok(listener) => return StartLock(listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    assert!(
                        Instant::now() < deadline,
                        "timed out waiting for the pam_wrapper start lock (held by another \
                         test process?)"
                    );
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("bind the pam_wrapper start lock: {e}"),
            }
        }
    }
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
            join_preload(&[&s.libnss_wrapper, &s.syslog_capture]),
        );
        cmd
    }

    fn base_env(&self, cmd: &mut Command) {
        // A clean environment: nothing from the developer's shell leaks in,
        // and LC_ALL=C keeps pam_strerror texts in English.
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LC_ALL", "C")
            .env("HOME", self.root())
            .env("TMPDIR", self.root())
            .env("NSS_WRAPPER_PASSWD", self.passwd_path())
            .env("NSS_WRAPPER_GROUP", self.group_path())
            .env("SYSLOG_CAPTURE_FILE", self.syslog_path());
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
        let mut cmd = Command::new(&s.pam_client);
        self.base_env(&mut cmd);
        cmd.env(
            "LD_PRELOAD",
            join_preload(&[&s.libpam_wrapper, &s.libnss_wrapper, &s.syslog_capture]),
        )
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", self.services_dir())
        // Otherwise pam_wrapper diverts pam_syslog() to its own debug log.
        .env("PAM_WRAPPER_USE_SYSLOG", "1")
        .env("PAM_CLIENT_HANDSHAKE", "1");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        if opts.setcred {
            cmd.arg("--setcred");
        }
        if let Some(tok) = &opts.authtok {
            cmd.arg("--authtok").arg(tok);
        }
        cmd.arg("--").arg(service).arg(user).args(answers);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let description = {
            let mut state = self.lock();
            state.spawn_count += 1;
            format!(
                "pam_client #{} service={service} user={user} answers={answers:?}",
                state.spawn_count
            )
        };
        PendingAuth::start(cmd, description, opts.timeout)
    }
}

fn join_preload(libs: &[&PathBuf]) -> OsString {
    let parts: Vec<String> = libs.iter().map(|p| p.display().to_string()).collect();
    OsString::from(parts.join(":"))
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
    env: Vec<(OsString, OsString)>,
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
            env: Vec::new(),
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

    /// Extra environment variable for pam_client (and so for the modules).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
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

/// How often a client is restarted when pam_wrapper's own start-up failed
/// (a /tmp/pam.X clash with a pam_wrapper process outside this harness).
const MAX_START_ATTEMPTS: u32 = 3;

/// A started pam_client, parked just before pam_authenticate.
pub struct PendingAuth {
    child: Option<Child>,
    /// Set once the child has been reaped early (it exited before READY).
    status: Option<ExitStatus>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    transcript: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    stderr_text: Option<String>,
    pwrap_dir: Option<PathBuf>,
    deadline: Instant,
    description: String,
}

impl PendingAuth {
    fn start(mut cmd: Command, description: String, timeout: Duration) -> PendingAuth {
        let deadline = Instant::now() + timeout;
        let mut attempt = 1;
        loop {
            // Held until this client has passed pam_start, so no two clients
            // run pam_wrapper's racy /tmp/pam.X selection at the same time,
            // nor read their service files while another is being set up.
            let lock = StartLock::acquire(deadline);
            let mut pending = PendingAuth::spawn(&mut cmd, &description, deadline);
            let ready = pending.await_ready();
            drop(lock);
            if ready || attempt == MAX_START_ATTEMPTS || !pending.pwrap_init_failed() {
                // Anything but READY is reported by wait().
                return pending;
            }
            attempt += 1;
        }
    }

    fn spawn(cmd: &mut Command, description: &str, deadline: Instant) -> PendingAuth {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
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
        PendingAuth {
            stdin: child.stdin.take(),
            child: Some(child),
            status: None,
            lines: rx,
            transcript: Vec::new(),
            stderr: Some(stderr),
            stderr_text: None,
            pwrap_dir: None,
            deadline,
            description: description.to_string(),
        }
    }

    /// Read up to READY. False if the client exited first (pam_start failed,
    /// bad usage, pam_wrapper start-up failure).
    fn await_ready(&mut self) -> bool {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == "READY" => return true,
                Ok(line) => match line.strip_prefix("PWRAP_DIR ") {
                    Some("(null)") => {}
                    Some(dir) => self.pwrap_dir = Some(PathBuf::from(unescape(dir))),
                    None => self.transcript.push(line),
                },
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => {
                    self.fail("no READY from pam_client before the timeout")
                }
            }
        }
    }

    /// After an exit before READY: reap the client and tell whether it was
    /// pam_wrapper's constructor that failed (it exits 1 after logging
    /// "PWRAP_ERROR ... pwrap_init: ..."), which is worth a retry.
    fn pwrap_init_failed(&mut self) -> bool {
        let status = self.reap();
        let stderr = self.take_stderr();
        let failed = status.code() == Some(1) && stderr.contains("pwrap_init");
        self.stderr_text = Some(stderr);
        failed
    }

    /// Wait for the exit of a client whose stdout is closed.
    fn reap(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = loop {
            let child = self.child.as_mut().expect("child present until reaped");
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => self.fail("pam_client closed stdout but did not exit"),
                Err(e) => panic!("wait for {}: {e}", self.description),
            }
        };
        let pid = self.child.take().map(|c| c.id());
        self.cleanup_pwrap_dir(pid);
        self.status = Some(status);
        status
    }

    /// Let the client go on to pam_authenticate (idempotent).
    pub fn release(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // EPIPE means it already exited; wait() will tell.
            let _ = stdin.write_all(b"\n");
        }
    }

    /// Release if needed, wait for the client and parse its transcript.
    /// Panics if pam_client failed to run PAM at all (usage, pam_start error,
    /// crash, timeout): those are harness or module-crash failures, not
    /// authentication results.
    pub fn wait(mut self) -> Outcome {
        self.release();
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.transcript.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("pam_client timed out"),
            }
        }
        let status = self.reap();
        let stderr = self.take_stderr();
        let stdout = self.transcript.join("\n");
        if !status.success() {
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                _ => format!("ended with {status:?}"),
            };
            panic!(
                "{} {how} (setup error or crash, not an authentication result)\n\
                 --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                self.description
            );
        }
        Outcome::parse(&stdout, stderr)
            .unwrap_or_else(|e| panic!("{}: bad transcript: {e}\n{stdout}", self.description))
    }

    fn take_stderr(&mut self) -> String {
        if let Some(text) = self.stderr_text.take() {
            return text;
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn fail(&mut self, why: &str) -> ! {
        let pid = self.kill();
        self.cleanup_pwrap_dir(pid);
        let stderr = self.take_stderr();
        panic!(
            "{}: {why}\n--- stdout so far ---\n{}\n--- stderr ---\n{stderr}",
            self.description,
            self.transcript.join("\n")
        );
    }

    fn kill(&mut self) -> Option<u32> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        let _ = child.wait();
        Some(child.id())
    }

    /// pam_wrapper's destructor removes its /tmp/pam.X copy, but not if the
    /// process crashed or was killed; and pam_wrapper only reclaims stale
    /// dirs for pids <= 65535. Remove it if it is still this pid's.
    fn cleanup_pwrap_dir(&mut self, pid: Option<u32>) {
        let (Some(dir), Some(pid)) = (self.pwrap_dir.take(), pid) else {
            return;
        };
        if !dir.to_string_lossy().starts_with("/tmp/pam.") {
            return;
        }
        let owner = fs::read_to_string(dir.join("pid")).unwrap_or_default();
        if owner.trim() == pid.to_string() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

impl Drop for PendingAuth {
    fn drop(&mut self) {
        // Never leave a parked client (and its /tmp/pam.X) behind.
        let pid = self.kill();
        self.cleanup_pwrap_dir(pid);
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
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn parse(stdout: &str, stderr: String) -> Result<Outcome, String> {
        let mut messages = Vec::new();
        let mut authtok = None;
        let mut result = None;
        let mut setcred = None;
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
