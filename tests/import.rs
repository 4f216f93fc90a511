//! `pam-totp import`: files written by the real `google-authenticator` program become
//! enrollments, and the user then logs in through the real libpam (pam_wrapper +
//! nss_wrapper) with a code from `oathtool` and with one of GA's scratch codes, once.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;
use pam_totp::otp::HashAlgorithm;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    let config = empty_config(env);
    env.command(env!("CARGO_BIN_EXE_pam-totp"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pam-totp")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The user's `~/.google_authenticator`, written by google-authenticator with `flags`,
/// owned by the user, mode 0400 as GA leaves it.
fn ga_file(user: &User, flags: &[&str]) -> PathBuf {
    let path = user.home.join(".google_authenticator");
    let status = Command::new("google-authenticator")
        .args(flags)
        .args(["--force", "--quiet", "--qr-mode=NONE", "--secret"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("google-authenticator is installed (apt-get install libpam-google-authenticator)");
    assert!(status.success(), "google-authenticator {flags:?} failed");
    give_to(user, &path);
    path
}

fn secret_and_scratch_codes(path: &Path) -> (String, Vec<String>) {
    let text = fs::read_to_string(path).unwrap();
    let secret = text.lines().next().unwrap().to_owned();
    let scratch = text
        .lines()
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect();
    (secret, scratch)
}

fn needs_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (files of other users)");
    }
    is_root()
}

#[test]
fn an_imported_google_authenticator_file_keeps_the_app_and_its_scratch_codes_work_once() {
    if !needs_root("import_then_login") {
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let alice = env.add_user("alice");
    totp_service(&env, "login", "");
    let file = ga_file(
        &alice,
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "5"],
    );
    let (secret, scratch) = secret_and_scratch_codes(&file);
    assert_eq!(scratch.len(), 5);

    let out = cli(&env, &["--user", "alice", "import", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one object");
    assert_eq!(report["imported"], true, "{report}");
    assert_eq!(report["recovery_codes"], 5, "{report}");
    assert_eq!(report["period"], 30, "{report}");
    let not_carried = report["not_carried"].to_string();
    for option in ["WINDOW_SIZE", "RATE_LIMIT", "DISALLOW_REUSE"] {
        assert!(not_carried.contains(option), "{option} listed: {report}");
    }
    assert!(
        file.exists(),
        "the GA file is left as it is without --remove"
    );

    // The state holds neither the secret's codes nor the scratch codes in the clear.
    let state_text = fs::read_to_string(default_state_path(&alice)).unwrap();
    for code in &scratch {
        assert!(!state_text.contains(code.as_str()), "scratch code in clear");
    }

    let code = oathtool(&secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    let out = env.authenticate("login", "alice", &[&code]);
    assert_eq!(out.code, PAM_SUCCESS, "the app's code after import: {out}");

    let out = env.authenticate("login", "alice", &[&scratch[2]]);
    assert_eq!(out.code, PAM_SUCCESS, "a GA scratch code: {out}");
    assert!(
        out.infos().iter().any(|m| m.contains("4 are left")),
        "{out}"
    );
    let out = env.authenticate("login", "alice", &[&scratch[2]]);
    assert_eq!(out.code, PAM_AUTH_ERR, "a scratch code works once: {out}");
    let out = env.authenticate("login", "alice", &["12345678"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "not a scratch code: {out}");

    let lines = env.syslog_lines().join("\n");
    assert!(lines.contains("import"), "the import is logged:\n{lines}");
    for secret_text in std::iter::once(&secret).chain(&scratch) {
        assert!(
            !lines.contains(secret_text.as_str()),
            "secret in log:\n{lines}"
        );
    }
}

#[test]
fn an_existing_enrollment_is_kept_unless_forced_and_remove_removes_the_file() {
    if !needs_root("existing_enrollment") {
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let bob = enroll(&env, "bob");
    let file = ga_file(
        &bob.user,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "2"],
    );
    let before = fs::read(&bob.state_path).unwrap();

    let out = cli(&env, &["--user", "bob", "import"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already enrolled"), "{}", text(&out));
    assert_eq!(
        fs::read(&bob.state_path).unwrap(),
        before,
        "nothing written"
    );

    let out = cli(&env, &["--user", "bob", "import", "--force", "--remove"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!file.exists(), "--remove removes the GA file");
    assert_ne!(fs::read(&bob.state_path).unwrap(), before);
    assert_eq!(bob.state().recovery_codes.len(), 2);
}

#[test]
fn unsafe_and_damaged_files_are_refused_and_nothing_is_written() {
    if !needs_root("refusals") {
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let carol = env.add_user("carol");
    let state = default_state_path(&carol);
    let file = ga_file(
        &carol,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "1"],
    );
    let refused = |expect: &str| {
        let out = cli(&env, &["--user", "carol", "import"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(expect), "{expect}: {}", text(&out));
        assert!(!state.exists(), "nothing written ({expect})");
    };

    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    refused("chmod 600");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

    let second = carol.home.join("ga-second-name");
    fs::hard_link(&file, &second).unwrap();
    refused("hard links");
    fs::remove_file(&second).unwrap();

    let real = carol.home.join("ga-real");
    fs::rename(&file, &real).unwrap();
    symlink(&real, &file).unwrap();
    refused("symbolic link");
    fs::remove_file(&file).unwrap();

    fs::write(
        &real,
        b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\nnot a line GA writes\n",
    )
    .unwrap();
    fs::rename(&real, &file).unwrap();
    refused("line 3");
    assert!(
        !text(&cli(&env, &["--user", "carol", "import"])).contains("JBSWY3DP"),
        "the secret is never quoted"
    );
}

/// The token's code of `counter`, from `oathtool --hotp`.
fn oathtool_hotp(secret: &str, counter: u64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--hotp",
            "--base32",
            &format!("--counter={counter}"),
            secret,
        ])
        .output()
        .expect("run oathtool");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn an_hotp_google_authenticator_file_keeps_its_counter_and_its_token_works() {
    if !needs_root("import_hotp") {
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let gina = env.add_user("gina");
    totp_service(&env, "login", "");
    // google-authenticator -c writes HOTP_COUNTER 1: the next code it would accept.
    let file = ga_file(&gina, &["-c", "-w", "5", "-r", "3", "-R", "30"]);
    let (secret, scratch) = secret_and_scratch_codes(&file);
    let out = cli(&env, &["--user", "gina", "import", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one object");
    assert_eq!(report["kind"], "hotp", "{report}");
    assert_eq!(report["hotp_counter"], 1, "{report}");
    assert_eq!(report["period"], serde_json::Value::Null, "{report}");
    let enrollment = fs::read_to_string(default_state_path(&gina)).unwrap();
    assert!(enrollment.contains("kind = \"hotp\""), "{enrollment}");

    // Counter 0 was GA's to use; counter 1 is the next, and works once.
    let login = |code: &str| env.authenticate("login", "gina", &[code]).code;
    assert_eq!(login(&oathtool_hotp(&secret, 0)), PAM_AUTH_ERR);
    assert_eq!(login(&oathtool_hotp(&secret, 1)), PAM_SUCCESS);
    assert_eq!(login(&oathtool_hotp(&secret, 1)), PAM_AUTH_ERR);
    assert_eq!(login(&scratch[0]), PAM_SUCCESS, "a scratch code");
    assert_eq!(login(&scratch[0]), PAM_AUTH_ERR, "once");
    assert_eq!(login(&oathtool_hotp(&secret, 4)), PAM_SUCCESS);
}

#[test]
fn all_users_imports_every_file_and_goes_on_past_failures() {
    if !needs_root("all_users") {
        return;
    }
    let env = TestEnv::new();
    env.add_root();
    let dave = env.add_user("dave");
    let erin = env.add_user("erin");
    env.add_user("frank"); // no GA file: skipped
    ga_file(
        &dave,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "3"],
    );
    let broken = ga_file(
        &erin,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "3"],
    );
    fs::set_permissions(&broken, fs::Permissions::from_mode(0o644)).unwrap();

    let out = cli(&env, &["import", "--all-users", "--json"]);
    assert_eq!(out.status.code(), Some(1), "one failed: {}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&out));
    assert_eq!(lines[0]["user"], "dave");
    assert_eq!(lines[0]["imported"], true);
    assert_eq!(lines[1]["user"], "erin");
    assert_eq!(lines[1]["imported"], false);
    assert!(lines[1]["error"].as_str().unwrap().contains("chmod 600"));
    assert!(default_state_path(&dave).exists());
    assert!(!default_state_path(&erin).exists());

    let out = cli(&env, &["--user", "dave", "import", "--all-users"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--user and --all-users: {}",
        text(&out)
    );
}

/// As whoever runs the tests, without nss_wrapper: storage of our own, a GA file of ours.
fn own_import(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
        .arg("--config")
        .arg(dir.join("pam_totp.conf"))
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn importing_over_ones_own_enrollment_needs_a_current_code_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    fs::create_dir(&state_dir).unwrap();
    fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("pam_totp.conf");
    fs::write(
        &config,
        format!("secret = \"{}/%u.toml\"\n", state_dir.display()),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let ga = dir.path().join("ga");
    let status = Command::new("google-authenticator")
        .args(["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "2"])
        .args(["--force", "--quiet", "--qr-mode=NONE", "--secret"])
        .arg(&ga)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let ga_arg = ga.to_str().unwrap();

    let out = own_import(dir.path(), &["enroll", "--no-confirm", "--json"], "");
    assert!(out.status.success(), "{}", text(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let old_secret = enrolled["secret"].as_str().unwrap().to_owned();
    let state_file = fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .unwrap();
    let before = fs::read(&state_file).unwrap();

    let out = own_import(dir.path(), &["import", ga_arg], "000000\n000001\n000002\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already enrolled"), "{}", text(&out));
    let after_wrong = String::from_utf8_lossy(&fs::read(&state_file).unwrap()).to_string();
    assert!(
        String::from_utf8_lossy(&before).contains(&old_secret) && after_wrong.contains(&old_secret),
        "a wrong code replaces nothing"
    );
    if !is_root() {
        let out = own_import(dir.path(), &["import", "--force", ga_arg], "");
        assert_eq!(
            out.status.code(),
            Some(1),
            "--force is root's: {}",
            text(&out)
        );
    }

    let code = oathtool(&old_secret, HashAlgorithm::SHA1, 6, 30, fresh_now(30));
    let out = own_import(
        dir.path(),
        &["import", "--json", ga_arg],
        &format!("{code}\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["replaced"], true, "{report}");
    assert_eq!(report["recovery_codes"], 2, "{report}");
    let (new_secret, _) = secret_and_scratch_codes(&ga);
    assert!(
        String::from_utf8_lossy(&fs::read(&state_file).unwrap()).contains(&new_secret),
        "the GA secret is now the enrollment's"
    );
}
