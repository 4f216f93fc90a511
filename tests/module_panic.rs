//! A panic inside the module, through the real libpam: caught at the FFI boundary, logged,
//! turned into a refusal, and the host process lives on and logs the next user in.
//!
//! The panic comes from a test-only trigger (cargo feature `test-panic`: the module panics
//! for the user `pam-totp-test-panic`). This test builds the cdylib with that feature into
//! target/panic-test/, so the module every other test (and every package) uses never has it.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::harness::helpers::{self, Helper};
use common::harness::pwrap_process::{self, PwrapProcess};
use common::*;
use fixtures::*;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PANIC_USER: &str = "pam-totp-test-panic";

/// libpam_totp.so built with the `test-panic` feature, in a target dir of its own.
fn module_with_panic_trigger() -> PathBuf {
    let target = target_profile_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("panic-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--locked", "--lib", "--features", "test-panic"])
        .arg("--target-dir")
        .arg(&target)
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --features test-panic failed");
    target.join("debug").join("libpam_totp.so")
}

#[test]
fn a_panic_is_caught_logged_refused_and_the_process_logs_the_next_user_in() {
    let module = module_with_panic_trigger();
    let env = TestEnv::new();
    env.add_user(PANIC_USER);
    let alice = enroll(&env, "alice");
    env.service(
        "login",
        &format!(
            "auth required {} config={}\n",
            module.display(),
            empty_config(&env).display()
        ),
    );
    // One process, two logins (pam_start .. pam_end each): the panicking one, then alice.
    // Columns: LABEL SERVICE USER SECRET_HEX ANSWER EXPECT (see pam_driver.c); the driver
    // only computes codes for `totp:` answers, so the secret is a placeholder here.
    let plan = env.root().join("plan.tsv");
    fs::write(
        &plan,
        format!(
            "panic\tlogin\t{PANIC_USER}\t00\ttext:123456\t7\n\
             next\tlogin\talice\t00\ttext:{}\t0\n",
            alice.current_code()
        ),
    )
    .unwrap();
    let s = support();
    let driver = helpers::build(Helper::PamDriver).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = env.command(&driver);
    cmd.env(
        "LD_PRELOAD",
        harness::env::preload(&[&s.libpam_wrapper, &s.libnss_wrapper, &s.syslog_capture]),
    );
    harness::env::pam_wrapper(&mut cmd, &env.services_dir());
    cmd.arg(&plan);
    let mut process = PwrapProcess::start(&mut cmd, "pam_driver (panic)", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    process.release();
    process.read_to_end().unwrap_or_else(|e| panic!("{e}"));
    let status = process.reap().unwrap_or_else(|e| panic!("{e}"));
    let stderr = process.stderr();
    let results: Vec<(String, String)> = process
        .transcript()
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                ["LOGIN", label, _user, _ns, rc] => Some((label.to_owned(), rc.to_owned())),
                _ => None,
            }
        })
        .collect();
    assert!(
        status.success(),
        "the driver did not survive the panic: {}\n{stderr}",
        pwrap_process::describe_exit(status)
    );
    // 7: PAM_AUTH_ERR, the refusal; 0: alice is let in by the same process afterwards.
    assert_eq!(
        results,
        [
            ("panic".to_owned(), "7".to_owned()),
            ("next".to_owned(), "0".to_owned())
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains("test-panic: a deliberate panic"),
        "{stderr}"
    );
    let log = env.syslog_lines();
    assert!(
        log.iter()
            .any(|l| l.contains("internal error (panic); login refused")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("accepted TOTP code for alice")),
        "{log:#?}"
    );
}
