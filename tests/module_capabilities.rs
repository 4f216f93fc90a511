//! Files in a home are opened as the user (setfsuid/setfsgid) only because the kernel then
//! clears root's file capabilities from the effective set; with SECBIT_NO_SETUID_FIXUP it
//! does not, and the module must refuse instead of opening them with root's powers. Through
//! the real libpam (pam_wrapper + nss_wrapper), with pam_client run under util-linux's
//! setpriv (as a service started with that securebit would be).
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

fn setpriv() -> &'static str {
    let path = "/usr/bin/setpriv";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: apt-get install util-linux (tests/run.sh installs it)"
    );
    path
}

/// alice enrolled, a service "cap" with pam_totp alone, and her current code.
fn alice_and_a_service(env: &TestEnv) -> (Enrolled, String) {
    let alice = enroll(env, "alice");
    let config = empty_config(env);
    env.service(
        "cap",
        &format!(
            "auth required {{module}} config={} fail_delay=0\n",
            config.display()
        ),
    );
    let code = alice.current_code();
    (alice, code)
}

#[test]
fn file_capabilities_kept_after_the_switch_refuse_the_login_with_one_clear_line() {
    if !is_root() {
        eprintln!("SKIPPED file_capabilities_kept...: needs root (setfsuid and securebits)");
        return;
    }
    // A container without CAP_SETPCAP cannot set securebits at all: nothing to test there.
    let probe = std::process::Command::new(setpriv())
        .args(["--securebits", "+no_setuid_fixup", "true"])
        .status()
        .expect("run setpriv");
    if !probe.success() {
        eprintln!("SKIPPED file_capabilities_kept...: setpriv cannot set securebits here");
        return;
    }
    let env = TestEnv::new();
    let (alice, code) = alice_and_a_service(&env);
    let kept = AuthOptions::new().under(setpriv(), &["--securebits", "+no_setuid_fixup"]);
    let out = env.authenticate_with("cap", "alice", &[&code], &kept);
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "asked although refused: {out}");
    assert!(alice.state().last_step.is_none(), "the state was touched");
    let lines = env.syslog_lines();
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("file capabilities (CAP_CHOWN, CAP_DAC_OVERRIDE"))
        .collect();
    assert_eq!(refusals.len(), 1, "{lines:?}");
    assert!(
        refusals[0].contains("SECBIT_NO_SETUID_FIXUP") && refusals[0].contains("fix:"),
        "{refusals:?}"
    );
    assert!(
        !refusals[0].contains(&code),
        "a code in the log: {refusals:?}"
    );
    // The same login without the securebit passes.
    let out = env.authenticate("cap", "alice", &[&code]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(alice.state().last_step.is_some());
}

/// A caller that is not root does not switch identity, so nothing takes away capabilities
/// it holds (ambient ones, a service's `AmbientCapabilities=`): with CAP_DAC_OVERRIDE it
/// would open another user's files with powers that user does not have. The module must
/// refuse (noted in session 4 as untested).
#[test]
fn a_non_root_caller_with_ambient_file_capabilities_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED a_non_root_caller_with_ambient...: needs root to grant the capability");
        return;
    }
    // setpriv keeps the permitted set across the uid change and makes CAP_DAC_OVERRIDE
    // ambient: pam_client runs as uid 4242 holding it, as a service started that way would.
    let ambient = [
        "--reuid",
        "4242",
        "--regid",
        "4242",
        "--clear-groups",
        "--inh-caps",
        "+dac_override",
        "--ambient-caps",
        "+dac_override",
    ];
    let probe = std::process::Command::new(setpriv())
        .args(ambient)
        .args(["true"])
        .status()
        .expect("run setpriv");
    if !probe.success() {
        eprintln!(
            "SKIPPED a_non_root_caller_with_ambient...: setpriv cannot grant ambient capabilities here"
        );
        return;
    }
    let env = TestEnv::new();
    let (alice, code) = alice_and_a_service(&env);
    let held = AuthOptions::new().under(setpriv(), &ambient);
    let out = env.authenticate_with("cap", "alice", &[&code], &held);
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert!(alice.state().last_step.is_none(), "the state was touched");
    let lines = env.syslog_lines();
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("CAP_DAC_OVERRIDE") && l.contains("a non-root caller holds them"))
        .collect();
    assert_eq!(refusals.len(), 1, "{lines:?}");
    assert!(refusals[0].contains("fix:"), "{refusals:?}");
    assert!(
        !refusals[0].contains(&code),
        "a code in the log: {refusals:?}"
    );
}
