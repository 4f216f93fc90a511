//! The `pam-totp` binary driven as people drive it: in a pseudo-terminal or through a pipe,
//! with codes computed by oathtool (an implementation we did not write) and the QR code
//! read back by rqrr (a decoder we did not write).
//!
//! Each test has its own config file (`--config`) naming its own storage directory, so
//! nothing depends on `$HOME` or on /etc. Tests that need root (acting for another user)
//! create a real user with useradd and remove it afterwards; without root they print a
//! note and pass.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

use nix::pty::openpty;
use nix::unistd::{Uid, getuid};
use pam_totp::privileges::Account;
use pam_totp::state::State;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_pam-totp");
const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Set-up

/// A config file and a storage directory of our own.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    /// Root-owned-style storage: `secret = "<tmp>/state/%u.toml"`, owned by whoever runs
    /// the tests (the store accepts its own uid).
    fn new() -> Env {
        Env::with_config(|dir| format!("secret = \"{}/state/%u.toml\"\n", dir.display()))
    }

    fn with_config(config: impl FnOnce(&Path) -> String) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("pam_totp.conf");
        fs::write(&path, config(dir.path())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Env { dir, config: path }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.arg("--config").arg(&self.config).args(args);
        // Whatever the locale or terminal of the person running the tests.
        command
            .env("LC_ALL", "C.UTF-8")
            .env_remove("RUST_BACKTRACE");
        command
    }

    /// Runs with `input` on a pipe as standard input.
    fn run(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The command may stop reading early (a refusal); a broken pipe is fine.
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The state file of the user running the tests.
    fn state_file(&self) -> PathBuf {
        self.path().join("state").join(format!("{}.toml", me()))
    }

    fn state(&self) -> Option<State> {
        pam_totp::store::fs::read_state_file(&self.state_file()).unwrap()
    }

    /// `enroll --no-confirm --json`, as config management would run it.
    fn provision(&self, extra: &[&str]) -> Provisioned {
        let mut args = vec!["enroll", "--no-confirm", "--json"];
        args.extend(extra);
        let run = self.run(&args, "");
        assert_eq!(run.code, Some(0), "{run}");
        Provisioned::parse(&run.stdout)
    }

    fn status(&self) -> serde_json::Value {
        let run = self.run(&["status", "--json"], "");
        assert_eq!(run.code, Some(0), "{run}");
        serde_json::from_str(&run.stdout).unwrap()
    }
}

fn me() -> String {
    Account::by_uid(getuid()).unwrap().unwrap().name
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Provisioned {
    user: String,
    secret: String,
    uri: String,
    codes: Vec<String>,
}

impl Provisioned {
    /// The whole output must be exactly one JSON object with exactly these keys.
    fn parse(stdout: &str) -> Provisioned {
        let value: serde_json::Value = serde_json::from_str(stdout).expect(stdout);
        let object = value.as_object().expect("a JSON object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["otpauth_uri", "recovery_codes", "secret", "user"]);
        Provisioned {
            user: object["user"].as_str().unwrap().into(),
            secret: object["secret"].as_str().unwrap().into(),
            uri: object["otpauth_uri"].as_str().unwrap().into(),
            codes: object["recovery_codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect(),
        }
    }
}

/// With `--json`, a failure is exactly one object on standard output, `{"error": "..."}`,
/// saying what standard error says.
fn assert_json_error(run: &Run) {
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let object = value.as_object().expect("a JSON object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["error"], "{run}");
    let error = object["error"].as_str().unwrap();
    assert!(run.stderr.contains(&format!("pam-totp: {error}")), "{run}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code oathtool computes for `secret` at now + `offset` seconds; `extra` may
/// name the algorithm (`--totp=sha256`), digits and time step.
fn oathtool(secret: &str, offset: i64, extra: &[&str]) -> String {
    let time = format!("@{}", unix_now() as i64 + offset);
    let mode = if extra.iter().any(|a| a.starts_with("--totp")) {
        None
    } else {
        Some("--totp")
    };
    let output = Command::new("oathtool")
        .args(mode)
        .args(["-b", "-N", &time])
        .args(extra)
        .arg(secret)
        .output()
        .expect("oathtool (Debian package oathtool) must be installed");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A six-digit code that is none of the codes the window would accept now.
fn wrong_code(secret: &str) -> String {
    let taken: Vec<String> = (-2..=2).map(|k| oathtool(secret, k * 30, &[])).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|code| !taken.contains(code))
        .unwrap()
}

/// The key printed for typing by hand: the indented line after "by hand:".
fn printed_secret(screen: &str) -> String {
    let mut lines = screen
        .lines()
        .skip_while(|l| !l.to_lowercase().contains("add this key"));
    lines.next().expect("the key's heading");
    let line = lines.find(|l| !l.trim().is_empty()).expect("the key");
    let groups: Vec<&str> = line.split_whitespace().collect();
    assert!(groups.iter().all(|g| g.len() <= 4), "not in groups: {line}");
    groups.concat()
}

fn printed_uri(screen: &str) -> String {
    screen
        .lines()
        .find_map(|l| l.strip_prefix("otpauth URI: "))
        .expect("the otpauth URI")
        .trim()
        .to_owned()
}

fn recovery_codes_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            l.len() == 24
                && l.split('-').count() == 5
                && l.split('-').all(|g| {
                    g.len() == 4
                        && g.bytes()
                            .all(|b| b"23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(&b))
                })
        })
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reading the QR code back

/// Decodes the QR code drawn in `screen` (half blocks, two modules per character) with
/// rqrr, from a greyscale image rendered the way a phone camera would see the terminal:
/// in the default style a block is a light module, with `inverted` a dark one.
fn decode_qr(screen: &str, inverted: bool) -> String {
    let is_qr_line = |line: &&str| {
        line.chars().count() >= 21
            && line.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
            && line.chars().any(|c| c != ' ')
    };
    let rows: Vec<Vec<char>> = screen
        .lines()
        .skip_while(|l| !is_qr_line(l))
        .take_while(is_qr_line)
        .map(|l| l.chars().collect())
        .collect();
    assert!(!rows.is_empty(), "no QR code in:\n{screen}");
    let width = rows.iter().map(Vec::len).max().unwrap();
    let height = rows.len() * 2;
    let (margin, scale) = (8, 4);
    let ink = |x: usize, y: usize| -> bool {
        let Some(&c) = rows[y / 2].get(x) else {
            return false;
        };
        matches!((c, y % 2), ('█', _) | ('▀', 0) | ('▄', 1))
    };
    let dark = |x: usize, y: usize| -> bool {
        if x < margin || y < margin || x >= width + margin || y >= height + margin {
            return false;
        }
        ink(x - margin, y - margin) == inverted
    };
    let (w, h) = ((width + 2 * margin) * scale, (height + 2 * margin) * scale);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if dark(x / scale, y / scale) { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "expected one QR code in:\n{screen}");
    grids[0].decode().expect("the QR code decodes").1
}

/// Decodes the QR code in `screen` as a terminal shows it: ANSI colours (30/97 foreground,
/// 40/107 background, 0/39/49 back to the defaults) applied to the half blocks, on a
/// terminal with light text on a dark background (`dark`) or the other way round. Around
/// the drawing is the terminal's own background, as a phone camera sees it. `None` when no
/// code is found there.
fn decode_on_terminal(screen: &str, dark: bool) -> Option<String> {
    // Each character cell: (top light?, bottom light?), or None for text that is no QR code.
    let cells = |line: &str| -> Option<Vec<(bool, bool)>> {
        let (mut fg, mut bg): (Option<bool>, Option<bool>) = (None, None);
        let mut row = Vec::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                let sequence: String = chars.by_ref().take_while(|&c| c != 'm').collect();
                for code in sequence.trim_start_matches('[').split(';') {
                    match code {
                        "0" | "" => (fg, bg) = (None, None),
                        "30" => fg = Some(false),
                        "97" | "37" => fg = Some(true),
                        "39" => fg = None,
                        "40" => bg = Some(false),
                        "107" | "47" => bg = Some(true),
                        "49" => bg = None,
                        other => panic!("unexpected colour {other:?} in {line:?}"),
                    }
                }
                continue;
            }
            // Light text on a dark background, or dark on light.
            let fg = fg.unwrap_or(dark);
            let bg = bg.unwrap_or(!dark);
            row.push(match c {
                '█' => (fg, fg),
                '▀' => (fg, bg),
                '▄' => (bg, fg),
                ' ' => (bg, bg),
                _ => return None,
            });
        }
        (row.len() >= 21 && row.iter().any(|&(t, b)| t != b || t == dark)).then_some(row)
    };
    let rows: Vec<Vec<(bool, bool)>> = screen
        .lines()
        .skip_while(|l| cells(l).is_none())
        .map_while(cells)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let width = rows.iter().map(Vec::len).max().unwrap();
    let height = rows.len() * 2;
    let (margin, scale) = (8, 4);
    let light = |x: usize, y: usize| -> bool {
        if x < margin || y < margin || x >= width + margin || y >= height + margin {
            return !dark;
        }
        let (x, y) = (x - margin, y - margin);
        rows[y / 2].get(x).map_or(
            !dark,
            |&(top, bottom)| if y % 2 == 0 { top } else { bottom },
        )
    };
    let (w, h) = ((width + 2 * margin) * scale, (height + 2 * margin) * scale);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if light(x / scale, y / scale) { 255 } else { 0 }
    });
    let grids = image.detect_grids();
    grids.first()?.decode().ok().map(|(_, text)| text)
}

// ---------------------------------------------------------------------------------------
// A pseudo-terminal

/// The binary on a pseudo-terminal: standard input, output and error are the terminal,
/// so it reads codes with echo off exactly as for a person.
struct Terminal {
    child: Child,
    master: fs::File,
    output: Receiver<Vec<u8>>,
    /// Everything shown, as bytes: a chunk may end inside a UTF-8 character.
    raw: Vec<u8>,
    screen: String,
}

impl Terminal {
    fn start(env: &Env, args: &[&str]) -> Terminal {
        Terminal::start_sized(env, args, None)
    }

    /// On a terminal `columns` wide (`None`: size not set), with no `$COLUMNS`.
    fn start_sized(env: &Env, args: &[&str], columns: Option<u16>) -> Terminal {
        let size = columns.map(|ws_col| nix::pty::Winsize {
            ws_row: 50,
            ws_col,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let pty = openpty(size.as_ref(), None).unwrap();
        let slave = fs::File::from(pty.slave);
        let mut command = env.command(args);
        command.env_remove("COLUMNS");
        // A person's terminal delivers Ctrl-C as SIGINT with its default action; a test run
        // started from a script in the background inherits SIGINT ignored, and exec keeps
        // that. Put the default back so the interrupt tests mean what they say.
        // SAFETY: signal(2) is async-signal-safe, which is all pre_exec allows between fork
        // and exec; nothing else runs there.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        // Our copies of the slave are gone now: reading the master ends when the child's do.
        let master = fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (send, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || send.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            master,
            output,
            raw: Vec::new(),
            screen: String::new(),
        }
    }

    /// Waits until the screen shows `text`; returns everything shown so far.
    fn expect(&mut self, text: &str) -> String {
        self.expect_times(text, 1)
    }

    /// Waits until the screen shows `text` `times` times (a prompt asked again).
    fn expect_times(&mut self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while self.screen.matches(text).count() < times {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.take(&bytes),
                Err(_) => panic!("{text:?} never appeared; the screen:\n{}", self.screen),
            }
        }
        self.screen.clone()
    }

    fn take(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        self.screen = String::from_utf8_lossy(&self.raw).replace('\r', "");
    }

    fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for the command to end; returns its status and the whole screen.
    fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the command did not end; the screen:\n{}", self.screen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(500)) {
            self.take(&bytes);
        }
        (status, self.screen)
    }
}

const CODE_PROMPT: &str = "Code shown by the app";

// ---------------------------------------------------------------------------------------
// enroll

#[test]
fn enroll_in_a_terminal_with_a_code_from_oathtool() {
    let env = Env::new();
    let mut terminal = Terminal::start(&env, &["enroll", "--recovery-codes", "3"]);
    let screen = terminal.expect(CODE_PROMPT);
    let secret = printed_secret(&screen);
    assert_eq!(secret.len(), 32, "a 160-bit secret is 32 base32 characters");
    let uri = printed_uri(&screen);
    assert!(
        uri.starts_with("otpauth://totp/")
            && uri.contains("%40")
            && uri.contains(&format!("?secret={secret}&issuer="))
            && uri.ends_with("&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    assert!(screen.contains("upper or lower case"), "{screen}");
    let code = oathtool(&secret, 0, &[]);
    terminal.type_text(&format!("{code}\r"));
    terminal.expect("Next:");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(!screen.contains(&code), "the code was echoed:\n{screen}");
    assert_eq!(recovery_codes_in(&screen).len(), 3, "{screen}");
    assert!(screen.contains("auth required pam_totp.so"), "{screen}");
    assert!(screen.contains("pam-totp status"), "{screen}");

    let state = env.state().expect("the state was saved");
    assert_eq!(state.secret.expose(), secret);
    assert_eq!(state.recovery_codes.len(), 3);
    let meta = fs::metadata(env.state_file()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), getuid().as_raw());
}

#[test]
fn qr_code_decodes_to_the_printed_uri() {
    let env = Env::new();
    let mut terminal = Terminal::start_sized(&env, &["enroll"], Some(200));
    let screen = terminal.expect(CODE_PROMPT);
    let uri = printed_uri(&screen);
    // The default draws its own colours: it scans on a dark terminal and on a light one.
    for dark in [true, false] {
        assert_eq!(
            decode_on_terminal(&screen, dark).as_deref(),
            Some(uri.as_str()),
            "dark {dark}"
        );
    }
    assert!(!screen.contains("columns wide"), "{screen}");
    terminal.type_text("\x03");
    terminal.finish();
}

#[test]
fn utf8_qr_codes_scan_only_on_the_background_they_are_drawn_for() {
    let env = Env::new();
    for (args, scans_on_dark) in [(&["--qr", "utf8"][..], true), (&["--invert"], false)] {
        let mut all = vec!["enroll"];
        all.extend(args);
        let run = env.run(&all, "");
        let uri = printed_uri(&run.stdout);
        assert_eq!(
            decode_on_terminal(&run.stdout, scans_on_dark).as_deref(),
            Some(uri.as_str()),
            "{args:?}"
        );
        assert_eq!(
            decode_on_terminal(&run.stdout, !scans_on_dark),
            None,
            "{args:?}"
        );
    }
}

#[test]
fn a_terminal_narrower_than_the_qr_code_gets_a_warning() {
    let env = Env::new();
    let mut terminal = Terminal::start_sized(&env, &["enroll"], Some(40));
    let screen = terminal.expect(CODE_PROMPT);
    assert!(
        screen.contains("columns wide but the terminal has 40"),
        "{screen}"
    );
    assert!(screen.contains("--qr none"), "{screen}");
    terminal.type_text("\x03");
    terminal.finish();
    // Without a terminal, $COLUMNS says.
    let run = {
        let mut child = env
            .command(&["enroll"])
            .env("COLUMNS", "30")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take();
        child.wait_with_output().unwrap()
    };
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("the terminal has 30"), "{stderr}");
}

#[test]
fn inverted_qr_code_decodes_to_the_printed_uri() {
    let env = Env::new();
    let run = env.run(
        &[
            "enroll",
            "--invert",
            "--issuer",
            "ACME Corp",
            "--label",
            "a b",
        ],
        "",
    );
    let uri = printed_uri(&run.stdout);
    assert!(
        uri.starts_with("otpauth://totp/ACME%20Corp:a%20b?"),
        "{uri}"
    );
    assert!(uri.contains("&issuer=ACME%20Corp&"), "{uri}");
    assert_eq!(decode_qr(&run.stdout, true), uri);
}

#[test]
fn enroll_with_other_settings_matches_oathtool() {
    let env = Env::new();
    let mut terminal = Terminal::start(
        &env,
        &[
            "enroll",
            "--algorithm",
            "sha256",
            "--digits",
            "8",
            "--period",
            "60",
            "--qr",
            "none",
        ],
    );
    let screen = terminal.expect(CODE_PROMPT);
    let secret = printed_secret(&screen);
    assert!(
        printed_uri(&screen).ends_with("&algorithm=SHA256&digits=8&period=60"),
        "{screen}"
    );
    let code = oathtool(&secret, 0, &["--totp=sha256", "--digits=8", "-s", "60s"]);
    terminal.type_text(&format!("{code}\r"));
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    let state = env.state().unwrap();
    assert_eq!((state.digits, state.period), (8, 60));
}

#[test]
fn wrong_codes_at_enroll_save_nothing() {
    let env = Env::new();
    let mut terminal = Terminal::start(&env, &["enroll"]);
    let screen = terminal.expect(CODE_PROMPT);
    let secret = printed_secret(&screen);
    let right = oathtool(&secret, 0, &[]);
    let wrong = wrong_code(&secret);
    // Each answer after its prompt: typing ahead is discarded, as for a password.
    for n in 1..=3 {
        terminal.expect_times(CODE_PROMPT, n);
        terminal.type_text(&format!("{wrong}\r"));
    }
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(screen.contains("nothing was saved"), "{screen}");
    assert!(!screen.contains(&right), "the right code was revealed");
    assert!(env.state().is_none());
}

#[test]
fn ctrl_c_at_enroll_saves_nothing() {
    let env = Env::new();
    let mut terminal = Terminal::start(&env, &["enroll"]);
    terminal.expect(CODE_PROMPT);
    terminal.type_text("12\x03");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(screen.contains("cancelled; nothing was saved"), "{screen}");
    assert!(env.state().is_none());
    assert!(!env.state_file().exists());
}

#[test]
fn interrupt_signal_at_enroll_saves_nothing() {
    let env = Env::new();
    let mut terminal = Terminal::start(&env, &["enroll"]);
    terminal.expect(CODE_PROMPT);
    let pid = terminal.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (status, _) = terminal.finish();
    // Killed by the signal itself, not ended some other way (a closed terminal also fails).
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT)
    );
    assert!(env.state().is_none());
}

#[test]
fn end_of_input_at_enroll_saves_nothing() {
    let env = Env::new();
    let run = env.run(&["enroll"], "");
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("cancelled; nothing was saved"), "{run}");
    assert!(env.state().is_none());

    let mut terminal = Terminal::start(&env, &["enroll"]);
    terminal.expect(CODE_PROMPT);
    terminal.type_text("\x04");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(env.state().is_none());
}

#[test]
fn replacing_an_enrollment_needs_a_current_code() {
    let env = Env::new();
    let old = env.provision(&[]);
    let run = env.run(&["enroll"], &format!("{}\n", wrong_code(&old.secret)));
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(env.state().unwrap().secret.expose(), old.secret);

    // Proven, then cancelled at the new code's prompt: the old enrollment stays.
    let mut terminal = Terminal::start(&env, &["enroll"]);
    terminal.expect("Current code");
    terminal.type_text(&format!("{}\r", oathtool(&old.secret, 0, &[])));
    terminal.expect(CODE_PROMPT);
    terminal.type_text("\x03");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert_eq!(env.state().unwrap().secret.expose(), old.secret);

    // Proven with a recovery code, then confirmed: replaced, old codes gone.
    let mut terminal = Terminal::start(&env, &["enroll", "--qr", "none"]);
    terminal.expect("Current code");
    terminal.type_text(&format!("{}\r", old.codes[0].to_lowercase()));
    let screen = terminal.expect(CODE_PROMPT);
    let new_secret = printed_secret(&screen);
    terminal.type_text(&format!("{}\r", oathtool(&new_secret, 0, &[])));
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert_eq!(env.state().unwrap().secret.expose(), new_secret);
    let run = env.run(&["verify"], &format!("{}\n", old.codes[1]));
    assert_eq!(run.code, Some(1), "an old recovery code still works: {run}");
}

#[test]
fn the_code_confirmed_at_enroll_is_used_up() {
    let env = Env::new();
    let mut terminal = Terminal::start(&env, &["enroll", "--qr", "none"]);
    let secret = printed_secret(&terminal.expect(CODE_PROMPT));
    let code = oathtool(&secret, 0, &[]);
    terminal.type_text(&format!("{code}\r"));
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    let run = env.run(&["verify"], &format!("{code}\n"));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("replayed code"), "{run}");
}

#[test]
fn malformed_or_short_secrets_are_refused() {
    let env = Env::new();
    for bad in ["not base32!", "JBSWY3DP"] {
        let run = env.run(
            &["enroll", "--no-confirm", "--json", "--secret", "-"],
            &format!("{bad}\n"),
        );
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("\npam-totp: --secret: "), "{run}");
        assert!(!run.stderr.contains(bad), "the secret was echoed: {run}");
        assert_json_error(&run);
    }
    assert!(env.state().is_none());
}

#[test]
fn an_imported_80_bit_secret_works() {
    let env = Env::new();
    let run = env.run(
        &["enroll", "--no-confirm", "--json", "--secret", "-"],
        "jbsw y3dp-ehpk 3pxp\n",
    );
    assert_eq!(run.code, Some(0), "{run}");
    let provisioned = Provisioned::parse(&run.stdout);
    assert_eq!(provisioned.secret, "JBSWY3DPEHPK3PXP");
    let run = env.run(
        &["verify"],
        &format!("{}\n", oathtool("JBSWY3DPEHPK3PXP", 0, &[])),
    );
    assert_eq!(run.code, Some(0), "{run}");
}

#[test]
fn codes_file_is_new_and_private() {
    let env = Env::new();
    let path = env.path().join("codes.txt");
    let provisioned = env.provision(&["--codes-file", path.to_str().unwrap()]);
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), getuid().as_raw());
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(recovery_codes_in(&text), provisioned.codes);
}

#[test]
fn codes_file_refuses_an_existing_file_and_saves_nothing() {
    let env = Env::new();
    let existing = env.path().join("keep.txt");
    fs::write(&existing, "precious\n").unwrap();
    let link = env.path().join("link.txt");
    symlink(env.path().join("nowhere"), &link).unwrap();
    for path in [&existing, &link] {
        let run = env.run(
            &[
                "enroll",
                "--no-confirm",
                "--json",
                "--codes-file",
                path.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("already exists"), "{run}");
        assert_json_error(&run);
    }
    assert_eq!(fs::read_to_string(&existing).unwrap(), "precious\n");
    assert!(!env.path().join("nowhere").exists());
    assert!(env.state().is_none());
}

// ---------------------------------------------------------------------------------------
// status

#[test]
fn status_of_someone_not_enrolled() {
    let env = Env::new();
    let run = env.run(&["status"], "");
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("is not enrolled"), "{run}");
    let status = env.status();
    assert_eq!(status["enrolled"], false);
    assert_eq!(status["user"], me().as_str());
}

#[test]
fn status_shows_the_enrollment() {
    let env = Env::new();
    let provisioned = env.provision(&["--recovery-codes", "4"]);
    let status = env.status();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["algorithm"], "SHA1");
    assert_eq!(status["digits"], 6);
    assert_eq!(status["period"], 30);
    assert_eq!(status["recovery_codes_left"], 4);
    assert_eq!(status["last_success"], serde_json::Value::Null);
    assert_eq!(status["throttle"]["failures"], 0);

    // A wrong code counts; a recovery code used to disable would be a success.
    let run = env.run(
        &["disable"],
        &format!("{}\n", wrong_code(&provisioned.secret)),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(env.status()["throttle"]["failures"], 1);
    let run = env.run(&["status"], "");
    assert!(run.stdout.contains("4 left"), "{run}");
    assert!(run.stdout.contains("1 wrong codes in a row"), "{run}");
    assert!(!run.stdout.contains(&provisioned.secret), "{run}");
}

// ---------------------------------------------------------------------------------------
// recovery-codes

#[test]
fn new_recovery_codes_replace_the_old_ones() {
    let env = Env::new();
    let old = env.provision(&["--recovery-codes", "3"]);
    let code = oathtool(&old.secret, 0, &[]);
    let run = env.run(&["recovery-codes", "--count", "2"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run}");
    let new = recovery_codes_in(&run.stdout);
    assert_eq!(new.len(), 2, "{run}");
    for old_code in &old.codes {
        let run = env.run(&["verify"], &format!("{old_code}\n"));
        assert_eq!(run.code, Some(1), "an old code still works: {run}");
    }
    let run = env.run(&["verify"], &format!("{}\n", new[0]));
    assert_eq!(run.code, Some(0), "a new code does not work: {run}");
    // The TOTP code that allowed it is used up.
    let run = env.run(&["verify"], &format!("{code}\n"));
    assert!(run.stderr.contains("replayed code"), "{run}");
}

#[test]
fn new_recovery_codes_need_a_code_from_the_app() {
    let env = Env::new();
    let old = env.provision(&["--recovery-codes", "2"]);
    let run = env.run(&["recovery-codes"], &format!("{}\n", old.codes[0]));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("not a recovery code"), "{run}");
    let run = env.run(&["verify"], &format!("{}\n", old.codes[0]));
    assert_eq!(run.code, Some(0), "the old code was lost: {run}");
}

// ---------------------------------------------------------------------------------------
// disable

#[test]
fn disable_with_a_recovery_code_removes_the_enrollment() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let run = env.run(&["disable"], &format!("{}\n", provisioned.codes[3]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(env.state().is_none());
    assert_eq!(env.status()["enrolled"], false);
}

#[test]
fn disable_with_wrong_codes_keeps_the_enrollment() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let wrong = wrong_code(&provisioned.secret);
    let run = env.run(&["disable"], &format!("{wrong}\n{wrong}\n{wrong}\n"));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(env.state().is_some());
    assert_eq!(env.status()["throttle"]["failures"], 3);
}

// ---------------------------------------------------------------------------------------
// verify

#[test]
fn verify_does_not_use_up_a_code() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let code = oathtool(&provisioned.secret, 0, &[]);
    for _ in 0..2 {
        let run = env.run(&["verify"], &format!("{code}\n"));
        assert_eq!(run.code, Some(0), "{run}");
        assert!(run.stdout.contains("not used up"), "{run}");
    }
    assert_eq!(env.state().unwrap().last_step, None);
    // Still good for a real change.
    let run = env.run(&["disable"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run}");
}

#[test]
fn verify_counts_wrong_codes_toward_throttling() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let wrong = wrong_code(&provisioned.secret);
    for n in 1..=5 {
        let run = env.run(&["verify"], &format!("{wrong}\n"));
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains(&format!("({n} in a row")), "{run}");
    }
    let status = env.status();
    assert!(status["throttle"]["seconds_left"].as_u64().unwrap() > 0);
    // Throttled: even the right code is not checked.
    let right = oathtool(&provisioned.secret, 0, &[]);
    let run = env.run(&["verify"], &format!("{right}\n"));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("too many wrong codes"), "{run}");
}

#[test]
fn commands_need_an_enrollment() {
    let env = Env::new();
    for command in ["verify", "disable", "recovery-codes"] {
        let run = env.run(&[command], "123456\n");
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("is not enrolled"), "{run}");
    }
}

// ---------------------------------------------------------------------------------------
// usage and permissions

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &["frobnicate"][..],
        &[],
        &["enroll", "--digits", "9"],
        &["enroll", "--period", "5"],
        &["enroll", "--algorithm", "MD5"],
        &["enroll", "--json"],
        &["enroll", "--issuer", "a:b"],
        &["status", "--bogus"],
        &["recovery-codes", "--count", "101"],
    ] {
        let run = env.run(args, "");
        assert_eq!(run.code, Some(2), "{args:?}: {run}");
    }
    assert_eq!(env.run(&["--help"], "").code, Some(0));
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let run = Command::new(BIN)
        .args(["--config", "/nonexistent/pam_totp.conf", "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("pam-totp: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn only_root_acts_for_another_user() {
    let mut command = if Uid::effective().is_root() {
        // As nobody, naming root.
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        command
    } else {
        Command::new(BIN)
    };
    let output = command.args(["--user", "root", "status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("only root can use --user"), "{stderr}");
}

#[test]
fn an_unknown_user_is_refused() {
    if !Uid::effective().is_root() {
        eprintln!("note: an_unknown_user_is_refused needs root; skipped");
        return;
    }
    let env = Env::new();
    let run = env.run(&["--user", "no-such-user-pam-totp", "status"], "");
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("unknown user"), "{run}");
}

// ---------------------------------------------------------------------------------------
// root acting for another user (a real account, made for the test)

/// useradd and userdel lock /etc/passwd: one at a time.
static ACCOUNTS: Mutex<()> = Mutex::new(());

fn accounts() -> MutexGuard<'static, ()> {
    ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A real user whose home is in the test's directory; removed when dropped.
struct TestUser {
    name: String,
    uid: u32,
    home: PathBuf,
}

impl TestUser {
    fn create(env: &Env, tag: &str) -> TestUser {
        let name = format!("pt{}{tag}", std::process::id());
        let home = env.path().join(&name);
        // The user must be able to reach the home through the test's directory.
        fs::set_permissions(env.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let _lock = accounts();
        let status = Command::new("useradd")
            .args([
                "--create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
            ])
            .arg(&home)
            .arg(&name)
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name} failed");
        let uid = Account::by_name(&name).unwrap().unwrap().uid.as_raw();
        TestUser { name, uid, home }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _lock = accounts();
        let _ = Command::new("userdel")
            .args(["--force", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// An env whose state lives in each user's home, as by default.
fn home_env() -> Env {
    Env::with_config(|_| "secret = \"~/.config/pam-totp/state.toml\"\n".into())
}

fn needs_root(test: &str) -> bool {
    if Uid::effective().is_root() {
        return true;
    }
    eprintln!("note: {test} needs root (it creates a user); skipped");
    false
}

#[test]
fn root_provisions_a_user_with_json_and_an_imported_secret() {
    if !needs_root("root_provisions_a_user_with_json_and_an_imported_secret") {
        return;
    }
    let env = home_env();
    let user = TestUser::create(&env, "p");
    let secret_file = env.path().join("secret");
    fs::write(&secret_file, "gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n").unwrap();
    fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o600)).unwrap();
    // Standard input is closed: the command must ask nothing.
    let output = env
        .command(&[
            "--user",
            &user.name,
            "enroll",
            "--no-confirm",
            "--json",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {output:?}");
    let provisioned = Provisioned::parse(&stdout);
    assert_eq!(provisioned.user, user.name);
    assert_eq!(provisioned.secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert!(
        provisioned
            .uri
            .contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&")
    );
    assert_eq!(provisioned.codes.len(), 10);

    // Written as the user, never as root in the user's home.
    let dir = user.home.join(".config/pam-totp");
    let state = dir.join("state.toml");
    for (path, mode) in [
        (&user.home.join(".config"), 0o700),
        (&dir, 0o700),
        (&state, 0o600),
    ] {
        let meta = fs::symlink_metadata(path).unwrap();
        assert_eq!(meta.uid(), user.uid, "{}", path.display());
        assert_eq!(meta.mode() & 0o777, mode, "{}", path.display());
    }

    // The module's view agrees: a code from oathtool is accepted for the user.
    let code = oathtool(&provisioned.secret, 0, &[]);
    let run = env.run(&["--user", &user.name, "verify"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run}");

    // Provisioning again replaces it, still without asking.
    let output = env
        .command(&["--user", &user.name, "enroll", "--no-confirm", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let again = Provisioned::parse(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(again.secret.len(), 32);
    assert_ne!(again.secret, provisioned.secret);
}

#[test]
fn root_acts_for_a_user_without_a_code() {
    if !needs_root("root_acts_for_a_user_without_a_code") {
        return;
    }
    let env = home_env();
    let user = TestUser::create(&env, "a");
    let run = env.run(
        &["--user", &user.name, "enroll", "--no-confirm", "--json"],
        "",
    );
    assert_eq!(run.code, Some(0), "{run}");
    let old = Provisioned::parse(&run.stdout);

    let codes_file = user.home.join("codes.txt");
    let output = env
        .command(&[
            "--user",
            &user.name,
            "recovery-codes",
            "--count",
            "2",
            "--codes-file",
            codes_file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let meta = fs::symlink_metadata(&codes_file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));
    let new = recovery_codes_in(&fs::read_to_string(&codes_file).unwrap());
    assert_eq!(new.len(), 2);
    let run = env.run(
        &["--user", &user.name, "verify"],
        &format!("{}\n", old.codes[0]),
    );
    assert_eq!(run.code, Some(1), "an old code still works: {run}");

    let output = env
        .command(&["--user", &user.name, "disable"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!user.home.join(".config/pam-totp/state.toml").exists());
}

#[test]
fn a_user_is_sent_to_root_for_root_managed_storage() {
    if !needs_root("a_user_is_sent_to_root_for_root_managed_storage") {
        return;
    }
    // Storage only root can enter, as an admin sets it up; the user runs as nobody.
    let env = Env::new();
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("--config")
        .arg(&env.config)
        .arg("status")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("managed by root"), "{stderr}");
    assert!(stderr.contains("pam-totp --user nobody status"), "{stderr}");
    assert!(!stderr.contains("chown"), "{stderr}");
}

#[test]
fn a_user_without_a_home_is_refused_and_nothing_is_written() {
    if !needs_root("a_user_without_a_home_is_refused_and_nothing_is_written") {
        return;
    }
    let env = home_env();
    let user = TestUser::create(&env, "h");
    fs::remove_dir_all(&user.home).unwrap();
    let codes_file = env.path().join("codes.txt");
    let run = env.run(
        &[
            "--user",
            &user.name,
            "enroll",
            "--no-confirm",
            "--json",
            "--codes-file",
            codes_file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("does not exist"), "{run}");
    assert_json_error(&run);
    assert!(!user.home.exists());
    assert!(!codes_file.exists());
}

#[test]
fn ansi_qr_code_decodes_to_the_printed_uri() {
    let env = Env::new();
    let run = env.run(&["enroll", "--qr", "ansi"], "");
    // Each cell: foreground (top module) and background (bottom module), then '▀'.
    // Rewritten as the default style (a block where a module is light) and decoded so.
    let mut plain = String::new();
    for line in run.stdout.lines() {
        let cells: Vec<&str> = line.split('▀').collect();
        if cells.len() < 22 {
            plain.push_str(line);
        } else {
            for cell in &cells[..cells.len() - 1] {
                let top = cell.contains("\x1b[97m");
                let bottom = cell.contains("\x1b[107m");
                assert!(top || cell.contains("\x1b[30m"), "{cell:?}");
                assert!(bottom || cell.contains("\x1b[40m"), "{cell:?}");
                plain.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
        }
        plain.push('\n');
    }
    assert_eq!(decode_qr(&plain, false), printed_uri(&run.stdout));
}

// ---------------------------------------------------------------------------------------
// issue 13: secrets off the command line, output before commit, no panics, unlock, --json

fn dev_full() -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

/// Runs with `input` on standard input and standard output (`stdout`) and/or standard
/// error (`stderr`) sent to /dev/full; what is not full is captured.
fn run_full(env: &Env, args: &[&str], input: &str, stdout: bool, stderr: bool) -> Run {
    let mut command = env.command(args);
    command
        .stdin(Stdio::piped())
        .stdout(if stdout { dev_full() } else { Stdio::piped() })
        .stderr(if stderr { dev_full() } else { Stdio::piped() });
    let mut child = command.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_literal_secret_is_refused_and_the_safe_forms_are_shown() {
    let env = Env::new();
    let run = env.run(
        &[
            "enroll",
            "--no-confirm",
            "--json",
            "--secret",
            "JBSWY3DPEHPK3PXP",
        ],
        "",
    );
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("printf %s \"$SECRET\" | pam-totp enroll --secret -"),
        "{run}"
    );
    assert!(run.stderr.contains("--secret-file PATH"), "{run}");
    assert!(
        !run.stderr.contains("JBSWY3DPEHPK3PXP"),
        "the secret was echoed: {run}"
    );
    assert!(run.stdout.is_empty() && env.state().is_none(), "{run}");
}

#[test]
fn a_secret_file_must_be_private_mine_and_not_a_link() {
    let env = Env::new();
    let file = env.path().join("secret");
    fs::write(&file, "jbsw y3dp ehpk 3pxp\n").unwrap();
    let args = |path: &Path| {
        let mut args = vec!["enroll", "--no-confirm", "--json", "--secret-file"];
        args.push(path.to_str().unwrap());
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_with = |path: &Path| {
        let owned = args(path);
        let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
        env.run(&borrowed, "")
    };
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let run = run_with(&file);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("chmod 600"), "{run}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let link = env.path().join("link");
    symlink(&file, &link).unwrap();
    let run = run_with(&link);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("symbolic link"), "{run}");
    assert!(env.state().is_none());
    let run = run_with(&file);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(Provisioned::parse(&run.stdout).secret, "JBSWY3DPEHPK3PXP");
}

#[test]
fn enroll_json_to_a_full_output_enrolls_nothing() {
    let env = Env::new();
    let run = run_full(&env, &["enroll", "--no-confirm", "--json"], "", true, false);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("nothing was changed"), "{run}");
    assert!(env.state().is_none(), "a secret nobody saw was enrolled");
    // The same for a replacement: the old enrollment stays.
    let old = env.provision(&[]);
    let before = env.state().unwrap();
    let code = oathtool(&old.secret, 0, &[]);
    let run = run_full(
        &env,
        &["enroll", "--no-confirm", "--json"],
        &format!("{code}\n"),
        true,
        false,
    );
    assert_eq!(run.code, Some(1), "{run}");
    let after = env.state().unwrap();
    assert_eq!(after.recovery_codes, before.recovery_codes);
    assert_eq!(after.secret.expose(), old.secret);
}

#[test]
fn enroll_in_text_whose_codes_cannot_be_shown_saves_nothing() {
    let env = Env::new();
    let mut child = env
        .command(&["enroll", "--qr", "none"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read what is shown before the confirmation, then close the reading end: the
    // recovery codes shown after it cannot be written (EPIPE).
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&shown).contains("otpauth URI: ") {
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buffer[..n]);
    }
    drop(stdout);
    let screen = String::from_utf8_lossy(&shown).into_owned();
    let secret = printed_secret(&screen);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", oathtool(&secret, 0, &[])).as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(env.state().is_none(), "codes nobody saw were saved");
}

#[test]
fn recovery_codes_to_a_full_output_keep_the_old_ones() {
    let env = Env::new();
    let old = env.provision(&["--recovery-codes", "3"]);
    for (json, offset) in [(false, 0), (true, 30)] {
        let mut args = vec!["recovery-codes"];
        if json {
            args.push("--json");
        }
        // A new code each time (the accepted one is used up even when nothing else changes),
        // each still inside the window if a time step begins meanwhile.
        let code = oathtool(&old.secret, offset, &[]);
        let run = run_full(&env, &args, &format!("{code}\n"), true, false);
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("nothing was changed"), "{run}");
    }
    let run = env.run(&["verify"], &format!("{}\n", old.codes[0]));
    assert_eq!(run.code, Some(0), "the old codes were replaced: {run}");
}

#[test]
fn root_for_a_user_with_a_full_output_leaves_the_state_byte_for_byte() {
    if !needs_root("root_for_a_user_with_a_full_output_leaves_the_state_byte_for_byte") {
        return;
    }
    let env = home_env();
    let user = TestUser::create(&env, "f");
    let run = env.run(
        &["--user", &user.name, "enroll", "--no-confirm", "--json"],
        "",
    );
    assert_eq!(run.code, Some(0), "{run}");
    let state = user.home.join(".config/pam-totp/state.toml");
    let before = fs::read(&state).unwrap();
    for args in [
        &["enroll", "--no-confirm", "--json"][..],
        &["enroll", "--no-confirm", "--qr", "none"],
        &["recovery-codes"],
        &["recovery-codes", "--json"],
    ] {
        let mut full = vec!["--user", &user.name];
        full.extend(args);
        let run = run_full(&env, &full, "", true, false);
        assert_eq!(run.code, Some(1), "{args:?}: {run}");
        // Not assert_eq!: the bytes hold the secret.
        assert!(
            fs::read(&state).unwrap() == before,
            "{args:?} changed the state"
        );
    }
}

#[test]
fn a_full_stderr_or_stdout_never_panics() {
    let broken = Env::new();
    fs::remove_file(&broken.config).unwrap();
    let run = run_full(&broken, &["status"], "", false, true);
    assert_eq!(run.code, Some(1), "a missing config: {run}");
    let env = Env::new();
    for (args, stdout, stderr, code) in [
        (vec!["status"], true, true, 1),
        (vec!["status", "--json"], true, false, 1),
        (vec!["--help"], true, false, 1),
        (vec!["--help"], true, true, 1),
        (vec!["--version"], true, true, 1),
        (vec!["frobnicate"], false, true, 2),
        (vec!["status", "--bogus"], true, true, 2),
        (vec!["enroll", "--no-confirm", "--json"], true, true, 1),
        (vec!["verify"], false, true, 1),
    ] {
        let run = run_full(&env, &args, "", stdout, stderr);
        assert_eq!(run.code, Some(code), "{args:?}: {run}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run}");
    }
    assert!(env.state().is_none());
}

#[test]
fn root_unlocks_a_throttled_user_without_a_code() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let wrong = wrong_code(&provisioned.secret);
    for _ in 0..5 {
        env.run(&["verify"], &format!("{wrong}\n"));
    }
    let status = env.status();
    assert!(
        status["throttle"]["failures"].as_u64().unwrap() >= 3,
        "{status}"
    );
    if !Uid::effective().is_root() {
        let run = env.run(&["unlock"], "");
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("only root"), "{run}");
        return;
    }
    let me = me();
    let run = env.run(&["--user", &me, "unlock", "--json"], "");
    assert_eq!(run.code, Some(0), "{run}");
    let object: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    assert_eq!(object["unlocked"], true, "{run}");
    assert!(object["failures_cleared"].as_u64().unwrap() >= 3, "{run}");
    let status = env.status();
    assert_eq!(status["throttle"]["failures"], 0, "{status}");
    assert_eq!(status["throttle"]["locked_until"], 0, "{status}");
    let code = oathtool(&provisioned.secret, 0, &[]);
    let run = env.run(&["verify"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run}");
}

#[test]
fn a_user_cannot_unlock_themselves() {
    if !needs_root("a_user_cannot_unlock_themselves") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let user = TestUser::create(&env, "u");
    fs::set_permissions(&env.config, fs::Permissions::from_mode(0o644)).unwrap();
    let output = env
        .command(&["unlock"])
        .uid(user.uid)
        .gid(user.uid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only root can clear throttling"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pam-totp --user {} unlock", user.name)),
        "{stderr}"
    );
}

#[test]
fn every_command_prints_one_json_object() {
    let env = Env::new();
    let provisioned = env.provision(&["--recovery-codes", "4"]);
    let json = |args: &[&str], input: String, code: i32| -> serde_json::Value {
        let run = env.run(args, &input);
        assert_eq!(run.code, Some(code), "{args:?}: {run}");
        serde_json::from_str(&run.stdout).expect(&run.stdout)
    };
    let object = json(
        &["verify", "--json"],
        format!("{}\n", provisioned.codes[0]),
        0,
    );
    assert_eq!(
        (object["accepted"].clone(), object["method"].clone()),
        (true.into(), "recovery".into())
    );
    let object = json(&["verify", "--json"], "000000x\n".into(), 1);
    assert!(
        object["error"].as_str().unwrap().contains("not accepted"),
        "{object}"
    );
    let code = oathtool(&provisioned.secret, 0, &[]);
    let object = json(
        &["recovery-codes", "--json", "--count", "2"],
        format!("{code}\n"),
        0,
    );
    assert_eq!(
        object["recovery_codes"].as_array().unwrap().len(),
        2,
        "{object}"
    );
    let new_code = object["recovery_codes"][0].as_str().unwrap().to_owned();
    let object = json(&["disable", "--json"], format!("{new_code}\n"), 0);
    assert_eq!(object["enrolled"], false, "{object}");
    let object = json(&["disable", "--json"], String::new(), 1);
    assert!(
        object["error"].as_str().unwrap().contains("not enrolled"),
        "{object}"
    );
}

#[test]
fn a_damaged_state_file_stays_refused_for_its_user() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    fs::write(env.state_file(), "this is not toml [[[\n").unwrap();
    let code = oathtool(&provisioned.secret, 0, &[]);
    for args in [
        &["disable"][..],
        &["enroll", "--no-confirm", "--json"],
        &["status"],
    ] {
        let run = env.run(args, &format!("{code}\n"));
        assert_eq!(run.code, Some(1), "{args:?}: {run}");
        assert!(run.stderr.contains("is invalid"), "{args:?}: {run}");
    }
    assert_eq!(
        fs::read_to_string(env.state_file()).unwrap(),
        "this is not toml [[[\n"
    );
    let kept = fs::read_dir(env.path().join("state"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("damaged")
        })
        .count();
    assert_eq!(kept, 0);
}

#[test]
fn root_replaces_a_damaged_state_file_and_keeps_it_aside() {
    if !needs_root("root_replaces_a_damaged_state_file_and_keeps_it_aside") {
        return;
    }
    let env = home_env();
    let user = TestUser::create(&env, "d");
    let state = user.home.join(".config/pam-totp/state.toml");
    let damage = || {
        fs::write(&state, "version = [ damaged\n").unwrap();
        let run = env.run(&["--user", &user.name, "status"], "");
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("is invalid"), "{run}");
    };
    let kept_files = || -> Vec<PathBuf> {
        let mut kept: Vec<PathBuf> = fs::read_dir(state.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("state.toml.damaged-"))
            .collect();
        kept.sort();
        kept
    };
    for command in ["disable", "enroll"] {
        let run = env.run(
            &["--user", &user.name, "enroll", "--no-confirm", "--json"],
            "",
        );
        assert_eq!(run.code, Some(0), "{run}");
        damage();
        let before = kept_files();
        let args: &[&str] = if command == "disable" {
            &["disable"]
        } else {
            &["enroll", "--no-confirm", "--json"]
        };
        let mut full = vec!["--user", &user.name];
        full.extend(args);
        let run = env.run(&full, "");
        assert_eq!(run.code, Some(0), "{command}: {run}");
        assert!(run.stderr.contains("was kept as"), "{command}: {run}");
        let after = kept_files();
        let new: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
        assert_eq!(new.len(), 1, "{command}: {after:?}");
        assert!(run.stderr.contains(&new[0].display().to_string()), "{run}");
        assert_eq!(fs::read_to_string(new[0]).unwrap(), "version = [ damaged\n");
        let meta = fs::symlink_metadata(new[0]).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));
        let status = env.run(&["--user", &user.name, "status", "--json"], "");
        assert_eq!(status.code, Some(0), "{status}");
        let enrolled =
            serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap()["enrolled"]
                .as_bool()
                .unwrap();
        assert_eq!(enrolled, command == "enroll", "{command}: {status}");
        // Keeping aside is a second name for the file; the state itself has one again.
        if command == "enroll" {
            assert_eq!(fs::symlink_metadata(&state).unwrap().nlink(), 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// HOTP tokens

/// The token's code of `counter`, from `oathtool --hotp`.
fn hotp(secret: &str, counter: u64) -> String {
    let output = Command::new("oathtool")
        .args(["--hotp", "-b", &format!("--counter={counter}"), secret])
        .output()
        .expect("oathtool (Debian package oathtool) must be installed");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn enroll_hotp_provisions_a_counter_uri_and_status_shows_the_counter() {
    let env = Env::new();
    let provisioned = env.provision(&["--hotp", "--counter", "5"]);
    assert!(
        provisioned.uri.starts_with("otpauth://hotp/"),
        "{}",
        provisioned.uri
    );
    assert!(
        provisioned.uri.ends_with("&counter=5"),
        "{}",
        provisioned.uri
    );
    assert!(!provisioned.uri.contains("period="), "{}", provisioned.uri);
    let status = env.status();
    assert_eq!(status["kind"], "hotp", "{status}");
    assert_eq!(status["hotp_counter"], 5, "{status}");
    assert_eq!(status["period"], serde_json::Value::Null, "{status}");
    let run = env.run(&["status"], "");
    assert!(run.stdout.contains("HOTP (counter-based)"), "{run}");
    assert!(run.stdout.contains("counter 5"), "{run}");
    // A TOTP enrollment says so too.
    let totp = Env::new();
    totp.provision(&[]);
    assert_eq!(totp.status()["kind"], "totp");
    assert_eq!(totp.status()["hotp_counter"], serde_json::Value::Null);
}

#[test]
fn enroll_hotp_with_an_imported_seed_confirms_a_code_and_moves_past_it() {
    let env = Env::new();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    // The token was pressed twice since its counter was 0: its code of counter 2.
    let input = format!("{secret}\n{}\n", hotp(secret, 2));
    let run = env.run(
        &["enroll", "--hotp", "--secret", "-", "--qr", "none"],
        &input,
    );
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("counter-based (HOTP)"), "{run}");
    assert!(run.stderr.contains("press its button"), "{run}");
    let state = env.state().unwrap();
    assert_eq!(state.kind, pam_totp::otp::Kind::Hotp);
    assert_eq!(state.hotp_counter, 3, "the confirming code is used up");
    let text = fs::read_to_string(env.state_file()).unwrap();
    assert!(text.contains("kind = \"hotp\""), "{text}");
}

#[test]
fn verify_of_an_hotp_code_uses_it_up() {
    let env = Env::new();
    let provisioned = env.provision(&["--hotp"]);
    let code = hotp(&provisioned.secret, 4);
    let run = env.run(&["verify"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("used up"), "{run}");
    assert_eq!(env.status()["hotp_counter"], 5);
    let run = env.run(&["verify"], &format!("{code}\n"));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("replayed code"), "{run}");
}

#[test]
fn resync_finds_two_consecutive_codes_far_ahead_and_refuses_others() {
    let env = Env::new();
    let provisioned = env.provision(&["--hotp"]);
    let secret = &provisioned.secret;
    // Far beyond the login window.
    let run = env.run(&["verify"], &format!("{}\n", hotp(secret, 600)));
    assert_eq!(run.code, Some(1), "{run}");
    // Not consecutive: refused, counted, nothing changed.
    let input = format!("{}\n{}\n", hotp(secret, 600), hotp(secret, 602));
    let run = env.run(&["resync"], &input);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("two counters in a row"), "{run}");
    assert_eq!(env.status()["hotp_counter"], 0);
    assert_eq!(env.status()["throttle"]["failures"], 2);
    // Beyond the resync window (1000): refused.
    let input = format!("{}\n{}\n", hotp(secret, 1001), hotp(secret, 1002));
    assert_eq!(env.run(&["resync"], &input).code, Some(1));
    // Two in a row: found, the counter is after the second, failures cleared.
    let input = format!("{}\n{}\n", hotp(secret, 600), hotp(secret, 601));
    let run = env.run(&["resync", "--json"], &input);
    assert_eq!(run.code, Some(0), "{run}");
    let object: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    assert_eq!(object["hotp_counter"], 602, "{run}");
    let status = env.status();
    assert_eq!(status["hotp_counter"], 602);
    assert_eq!(status["throttle"]["failures"], 0);
    // The codes used to resync are used up.
    let run = env.run(&["verify"], &format!("{}\n", hotp(secret, 601)));
    assert_eq!(run.code, Some(1), "{run}");
    let run = env.run(&["verify"], &format!("{}\n", hotp(secret, 602)));
    assert_eq!(run.code, Some(0), "{run}");
}

#[test]
fn resync_of_a_totp_enrollment_and_counter_without_hotp_are_refused() {
    let env = Env::new();
    let provisioned = env.provision(&[]);
    let code = oathtool(&provisioned.secret, 0, &[]);
    let run = env.run(&["resync"], &format!("{code}\n{code}\n"));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("resync is for HOTP"), "{run}");
    let run = env.run(&["enroll", "--counter", "3", "--no-confirm"], "");
    assert_eq!(run.code, Some(2), "{run}");
    let run = env.run(&["enroll", "--hotp", "--period", "60", "--no-confirm"], "");
    assert_eq!(
        run.code,
        Some(2),
        "a period means nothing to a token: {run}"
    );
}
