//! An admin change that finds the newest counters record damaged falls back to the older
//! one and repairs the file (as a login does); it says so, on standard error and in the
//! log, instead of repairing silently. The real CLI over real state files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pam-totp");
/// One counters record (see the format in the README).
const BLOCK: usize = 4096;

fn run(config: &Path, args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn newest_block(path: &Path) -> usize {
    let bytes = fs::read(path).unwrap();
    let generation = |block: usize| {
        let at = block * BLOCK + 16;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    usize::from(generation(1) > generation(0))
}

#[test]
fn an_admin_change_that_repairs_a_damaged_newest_counters_record_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("pam_totp.conf");
    fs::write(
        &config,
        format!(
            "secret = \"{}/%u.toml\"\nmax_failures = 100\n",
            state.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(&config, &["enroll", "--no-confirm", "--json"], "");
    assert_eq!(code, Some(0), "{out}{err}");
    // Two wrong codes checked: two counted failures, so both records exist and differ.
    for _ in 0..2 {
        let (code, out, err) = run(&config, &["verify"], "000000\n");
        assert_ne!(code, Some(0), "{out}{err}");
        assert!(!err.contains("repaired"), "nothing to repair yet: {err}");
    }
    let counters: PathBuf = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".toml.counters"))
        .expect("a counters file");
    let newest = newest_block(&counters);
    let mut bytes = fs::read(&counters).unwrap();
    bytes[newest * BLOCK + 100] ^= 0x55;
    fs::write(&counters, bytes).unwrap();

    let (code, out, err) = run(&config, &["verify"], "000000\n");
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("notice: repaired") && err.contains("counters block"),
        "the repair was silent: {err}"
    );
    assert!(err.contains(&counters.display().to_string()), "{err}");
    // Repaired once: the next change finds both records valid and says nothing.
    let (_, _, err) = run(&config, &["verify"], "000000\n");
    assert!(!err.contains("repaired"), "{err}");
}
