//! `pam-totp doctor` through the real binary, on fixture trees (`--root`): a clean setup
//! exits 0, and each finding is reported with its id, file and line, and exits 1.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pam-totp");

const SSHD_STACK: &str =
    "auth requisite pam_unix.so\nauth required pam_totp.so\naccount required pam_unix.so\n";
const SSHD_CONFIG: &str = "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n";
const SSHD_DROPIN: &str = "KbdInteractiveAuthentication yes\nPasswordAuthentication no\nAuthenticationMethods publickey,keyboard-interactive\n";
const CONFIG: &str = "secret = \"/var/lib/pam-totp/%u.toml\"\nwindow = 1\n";

/// A tree that doctor finds nothing wrong with; tests then break one thing.
struct Tree(tempfile::TempDir);

impl Tree {
    fn clean() -> Tree {
        let tree = Tree(tempfile::tempdir().unwrap());
        tree.write("etc/pam.d/sshd", SSHD_STACK, 0o644);
        tree.write(
            "etc/pam.d/common-auth",
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
            0o644,
        );
        tree.write(
            "etc/pam.d/sudo",
            "@include common-auth\nauth required pam_totp.so\n@include common-account\n",
            0o644,
        );
        tree.write(
            "etc/pam.d/common-account",
            "account required pam_unix.so\n",
            0o644,
        );
        tree.write("etc/pam.d/login", "@include common-auth\n", 0o644);
        tree.write("etc/ssh/sshd_config", SSHD_CONFIG, 0o644);
        tree.write("etc/ssh/sshd_config.d/pam-totp.conf", SSHD_DROPIN, 0o644);
        tree.write("etc/security/pam_totp.conf", CONFIG, 0o644);
        tree.dir("var/lib/pam-totp", 0o700);
        tree
    }

    fn write(&self, path: &str, text: &str, mode: u32) {
        let path = self.0.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn dir(&self, path: &str, mode: u32) {
        let path = self.0.path().join(path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    /// Runs doctor --json with `args`; (exit code, the report).
    fn doctor(&self, args: &[&str]) -> (i32, Value) {
        let output = Command::new(BIN)
            .arg("doctor")
            .arg("--json")
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), report)
    }

    /// The one finding with `id`, asserting exit 1 and the severity.
    fn finding(&self, args: &[&str], id: &str, severity: &str) -> Value {
        let (code, report) = self.doctor(args);
        let found: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == id)
            .collect();
        assert_eq!(found.len(), 1, "one {id} expected in {report:#}");
        assert_eq!(found[0]["severity"], severity, "{report:#}");
        let expected_code = if severity == "note" { 0 } else { 1 };
        assert_eq!(code, expected_code, "{report:#}");
        for key in ["what", "why", "fix"] {
            assert!(found[0][key].is_string(), "{key} missing: {report:#}");
        }
        found[0].clone()
    }
}

fn at(finding: &Value) -> (String, Option<u64>) {
    (
        finding["file"].as_str().unwrap_or_default().to_owned(),
        finding["line"].as_u64(),
    )
}

#[test]
fn nullok_until_is_reported_in_force_or_expired() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "@include common-auth\nauth required pam_totp.so nullok_until=9999-12-31\n@include common-account\n",
        0o644,
    );
    let found = tree.finding(&["--service", "sudo"], "pam.nullok-until", "warning");
    assert!(
        found["what"].as_str().unwrap().contains("9999-12-31"),
        "{found}"
    );
    assert!(
        found["fix"].as_str().unwrap().contains("pam-totp report"),
        "{found}"
    );
    assert_eq!(at(&found), ("/etc/pam.d/sudo".to_owned(), Some(2)));

    tree.write(
        "etc/pam.d/sudo",
        "@include common-auth\nauth required pam_totp.so nullok_until=2000-01-01\n@include common-account\n",
        0o644,
    );
    let found = tree.finding(&["--service", "sudo"], "pam.nullok-until-expired", "note");
    assert!(
        found["what"].as_str().unwrap().contains("has passed"),
        "{found}"
    );
}

#[test]
fn problems_are_summed_up_once() {
    let tree = Tree::clean();
    tree.write("etc/security/pam_totp.conf", "nullok\n", 0o666);
    let output = Command::new(BIN)
        .arg("doctor")
        .arg("--root")
        .arg(tree.root())
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stdout.matches("problems found").count(),
        1,
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("error(s)"), "summary repeated: {stderr}");
}

#[test]
fn a_clean_setup_exits_0_with_only_notes() {
    let tree = Tree::clean();
    let (code, report) = tree.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["severity"] == "note"),
        "{report:#}"
    );
    // Both services that use pam_totp are found and placed; login (without it) is not listed.
    let placed: Vec<(String, Option<u64>)> = findings
        .iter()
        .filter(|f| f["id"] == "pam.totp-position")
        .map(at)
        .collect();
    assert_eq!(
        placed,
        [
            ("/etc/pam.d/sshd".to_owned(), Some(2)),
            ("/etc/pam.d/sudo".to_owned(), Some(2))
        ]
    );
    // And as text, for people.
    let output = Command::new(BIN)
        .args(["doctor", "--root"])
        .arg(tree.root())
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        text.contains("note: /etc/pam.d/sshd:2: sshd: pam_totp.so is auth rule 2 of 2"),
        "{text}"
    );
    assert!(text.contains("nothing wrong found"), "{text}");
}

#[test]
fn a_required_password_module_before_pam_totp_is_a_lockout() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sshd",
        "auth required pam_unix.so\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.password-not-requisite", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/sshd".into(), Some(1)));
}

#[test]
fn debian_common_auth_through_include_counts_as_requisite_but_not_through_substack() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "auth include common-auth\nauth required pam_totp.so\n",
        0o644,
    );
    let (code, report) = tree.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
    // In a substack, pam_deny's "die" ends only the substack: the code is still asked.
    tree.write(
        "etc/pam.d/sudo",
        "auth substack common-auth\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.password-not-requisite", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/common-auth".into(), Some(1)));
    // Without the jump, a wrong password gets through to the code in any case.
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/common-auth",
        "auth [success=ok default=ignore] pam_unix.so\nauth required pam_permit.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.password-not-requisite", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/common-auth".into(), Some(1)));
}

#[test]
fn a_named_service_without_pam_totp_is_an_error() {
    let tree = Tree::clean();
    let finding = tree.finding(&["--service", "sshd,login"], "pam.totp-missing", "error");
    assert_eq!(at(&finding), ("/etc/pam.d/login".into(), None));
}

#[test]
fn nullok_is_reported_from_the_arguments_and_from_the_config_file() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sshd",
        "auth requisite pam_unix.so\nauth required pam_totp.so nullok\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.nullok", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/sshd".into(), Some(2)));

    let tree = Tree::clean();
    tree.write(
        "etc/security/pam_totp.conf",
        &format!("{CONFIG}nullok = true\n"),
        0o644,
    );
    let (_, report) = tree.doctor(&[]);
    let places: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "pam.nullok")
        .map(at)
        .collect();
    let expected = ("/etc/security/pam_totp.conf".to_owned(), Some(3));
    assert_eq!(places, [expected.clone(), expected]);
}

#[test]
fn forward_pass_needs_a_password_module_after_it_with_use_first_pass() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sshd",
        "auth required pam_totp.so forward_pass\n",
        0o644,
    );
    let finding = tree.finding(
        &["--service", "sshd"],
        "pam.forward-pass-no-password",
        "error",
    );
    assert_eq!(at(&finding), ("/etc/pam.d/sshd".into(), Some(1)));

    tree.write(
        "etc/pam.d/sshd",
        "auth required pam_totp.so forward_pass\nauth requisite pam_unix.so\n",
        0o644,
    );
    let finding = tree.finding(
        &["--service", "sshd"],
        "pam.forward-pass-no-use-first-pass",
        "warning",
    );
    assert_eq!(at(&finding), ("/etc/pam.d/sshd".into(), Some(2)));

    // Done right, forward_pass is clean apart from the note on its known lockout risk.
    tree.write(
        "etc/pam.d/sshd",
        "auth required pam_totp.so forward_pass\nauth requisite pam_unix.so use_first_pass\n",
        0o644,
    );
    let finding = tree.finding(&["--service", "sshd"], "pam.forward-pass-lockout", "note");
    assert!(finding["why"].as_str().unwrap().contains("throttled"));
}

#[test]
fn use_first_pass_without_a_module_that_asks_first_is_an_error() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "auth required pam_totp.so use_first_pass\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.use-first-pass-no-password", "error");
    assert_eq!(at(&finding), ("/etc/pam.d/sudo".into(), Some(1)));
}

#[test]
fn a_sufficient_line_before_pam_totp_skips_the_code() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "auth sufficient pam_unix.so\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.totp-skipped", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/sudo".into(), Some(1)));
    assert!(finding["why"].as_str().unwrap().contains("password alone"));

    tree.write(
        "etc/pam.d/sudo",
        "auth requisite pam_unix.so\nauth sufficient pam_rootok.so\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.totp-skipped", "warning");
    assert_eq!(at(&finding), ("/etc/pam.d/sudo".into(), Some(2)));
}

#[test]
fn an_exemption_group_is_a_note_not_a_problem() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "auth requisite pam_unix.so\nauth [success=1 default=ignore] pam_succeed_if.so quiet_fail user ingroup totp-exempt\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.totp-skipped", "note");
    assert_eq!(at(&finding), ("/etc/pam.d/sudo".into(), Some(2)));
}

#[test]
fn an_optional_pam_totp_does_not_enforce_the_code() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "auth requisite pam_unix.so\nauth optional pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.totp-not-enforced", "error");
    assert_eq!(at(&finding), ("/etc/pam.d/sudo".into(), Some(2)));
}

#[test]
fn a_missing_include_and_a_bad_argument_are_errors() {
    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "@include common-gone\nauth required pam_totp.so\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.unreadable", "error");
    assert_eq!(at(&finding), ("/etc/pam.d/common-gone".into(), None));

    let tree = Tree::clean();
    tree.write(
        "etc/pam.d/sudo",
        "@include common-auth\nauth required pam_totp.so nulok\n",
        0o644,
    );
    let finding = tree.finding(&[], "pam.bad-arguments", "error");
    assert!(
        finding["what"].as_str().unwrap().contains("nulok"),
        "{finding}"
    );
}

#[test]
fn sshd_without_pam_or_keyboard_interactive_never_asks_for_the_code() {
    let tree = Tree::clean();
    tree.write(
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM no\n",
        0o644,
    );
    let finding = tree.finding(&[], "sshd.usepam", "error");
    assert_eq!(at(&finding), ("/etc/ssh/sshd_config".into(), Some(2)));

    let tree = Tree::clean();
    tree.write(
        "etc/ssh/sshd_config.d/00-first.conf",
        "KbdInteractiveAuthentication no\n",
        0o644,
    );
    // The first value sshd reads wins: the earlier drop-in, not pam-totp.conf.
    let finding = tree.finding(&[], "sshd.kbdinteractive", "error");
    assert_eq!(
        at(&finding),
        ("/etc/ssh/sshd_config.d/00-first.conf".into(), Some(1))
    );
}

#[test]
fn sshd_without_authentication_methods_lets_a_key_in_without_the_code() {
    let tree = Tree::clean();
    tree.write(
        "etc/ssh/sshd_config.d/pam-totp.conf",
        "KbdInteractiveAuthentication yes\nPasswordAuthentication no\n",
        0o644,
    );
    let finding = tree.finding(&[], "sshd.key-skips-code", "error");
    assert_eq!(at(&finding), ("/etc/ssh/sshd_config".into(), None));

    tree.write(
        "etc/ssh/sshd_config.d/pam-totp.conf",
        "KbdInteractiveAuthentication yes\nPasswordAuthentication no\nAuthenticationMethods publickey,keyboard-interactive publickey\n",
        0o644,
    );
    let finding = tree.finding(&[], "sshd.key-skips-code", "error");
    assert_eq!(
        at(&finding),
        ("/etc/ssh/sshd_config.d/pam-totp.conf".into(), Some(3))
    );
}

#[test]
fn sshd_password_authentication_feeds_the_password_to_the_code_prompt() {
    let tree = Tree::clean();
    tree.write(
        "etc/ssh/sshd_config.d/pam-totp.conf",
        "KbdInteractiveAuthentication yes\nPasswordAuthentication yes\nAuthenticationMethods keyboard-interactive password\n",
        0o644,
    );
    let finding = tree.finding(&[], "sshd.password-auth", "warning");
    assert_eq!(
        at(&finding),
        ("/etc/ssh/sshd_config.d/pam-totp.conf".into(), Some(2))
    );
}

#[test]
fn keyboard_interactive_alone_with_a_code_only_stack_lets_a_code_alone_in() {
    let tree = Tree::clean();
    tree.write("etc/pam.d/sshd", "auth required pam_totp.so\n", 0o644);
    tree.write(
        "etc/ssh/sshd_config.d/pam-totp.conf",
        "KbdInteractiveAuthentication yes\nPasswordAuthentication no\nAuthenticationMethods keyboard-interactive\n",
        0o644,
    );
    let finding = tree.finding(&[], "sshd.code-alone", "error");
    assert_eq!(
        at(&finding),
        ("/etc/ssh/sshd_config.d/pam-totp.conf".into(), Some(3))
    );
    // The same stack behind a key is the documented publickey + code setup: clean.
    tree.write("etc/ssh/sshd_config.d/pam-totp.conf", SSHD_DROPIN, 0o644);
    assert_eq!(tree.doctor(&[]).0, 0);
}

#[test]
fn a_match_block_is_noted_not_evaluated() {
    let tree = Tree::clean();
    tree.write(
        "etc/ssh/sshd_config",
        &format!("{SSHD_CONFIG}Match User backup\n    AuthenticationMethods publickey\n"),
        0o644,
    );
    let finding = tree.finding(&[], "sshd.match-block", "note");
    assert_eq!(at(&finding), ("/etc/ssh/sshd_config".into(), Some(4)));
}

#[test]
fn the_config_file_must_be_roots_closed_to_writers_and_valid() {
    let tree = Tree::clean();
    tree.write("etc/security/pam_totp.conf", CONFIG, 0o666);
    let finding = tree.finding(&[], "config.unsafe", "error");
    assert_eq!(at(&finding), ("/etc/security/pam_totp.conf".into(), None));

    let tree = Tree::clean();
    tree.write(
        "etc/security/pam_totp.conf",
        &format!("{CONFIG}windw = 2\n"),
        0o644,
    );
    let finding = tree.finding(&[], "config.invalid", "error");
    assert!(
        finding["what"].as_str().unwrap().contains("windw"),
        "{finding}"
    );

    let tree = Tree::clean();
    fs::remove_file(tree.root().join("etc/security/pam_totp.conf")).unwrap();
    tree.finding(&[], "config.absent", "note");
}

#[test]
fn root_owned_storage_must_exist_with_mode_0700() {
    let tree = Tree::clean();
    fs::remove_dir(tree.root().join("var/lib/pam-totp")).unwrap();
    let finding = tree.finding(&[], "storage.missing", "error");
    assert_eq!(at(&finding), ("/var/lib/pam-totp".into(), None));

    let tree = Tree::clean();
    tree.dir("var/lib/pam-totp", 0o777);
    tree.finding(&[], "storage.writable", "error");

    let tree = Tree::clean();
    tree.dir("var/lib/pam-totp", 0o755);
    tree.finding(&[], "storage.readable", "error");
}

#[test]
fn user_state_is_read_with_the_store_and_reported() {
    let tree = Tree::clean();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap();
    tree.write(
        "etc/passwd",
        &format!("{}:x:{}:{}::/home/{0}:/bin/sh\n", me.name, me.uid, me.gid),
        0o644,
    );
    tree.finding(&["--user", &me.name], "user.not-enrolled", "warning");
    tree.finding(&["--user", "nobody-here"], "user.unknown", "error");

    // Enrolled by the real CLI into the tree's storage.
    let config = tree.root().join("enroll.conf");
    fs::write(
        &config,
        format!(
            "secret = \"{}/var/lib/pam-totp/%u.toml\"\n",
            tree.root().display()
        ),
    )
    .unwrap();
    let status = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["enroll", "--no-confirm", "--json", "--recovery-codes", "3"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let finding = tree.finding(&["--user", &me.name], "user.enrolled", "note");
    assert!(
        finding["what"]
            .as_str()
            .unwrap()
            .contains("3 recovery code"),
        "{finding}"
    );
}

/// The shipped sshd examples (stack + sshd_config lines) and the README's Quick start give
/// no way around the code.
#[test]
fn the_documented_sshd_setups_pass_doctor() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("pam.d-examples/debian");
    let read = |name: &str| fs::read_to_string(examples.join(name)).unwrap();
    for (stack, sshd) in [
        ("sshd.password-totp", "sshd_config.password-totp"),
        ("sshd.publickey-totp", "sshd_config.publickey-totp"),
    ] {
        let tree = Tree::clean();
        for include in ["common-session", "common-password"] {
            tree.write(
                &format!("etc/pam.d/{include}"),
                "session required pam_unix.so\n",
                0o644,
            );
        }
        tree.write("etc/pam.d/sshd", &read(stack), 0o644);
        tree.write("etc/ssh/sshd_config.d/pam-totp.conf", &read(sshd), 0o644);
        let (code, report) = tree.doctor(&["--service", "sshd"]);
        assert_eq!(code, 0, "{stack} + {sshd}: {report:#}");
    }
    // The README's Quick start: its stack and its sshd_config lines, taken from the README.
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let quick =
        &readme[readme.find("## Quick start").unwrap()..readme.find("## Configuration").unwrap()];
    let blocks: Vec<String> = quick
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| {
            block
                .lines()
                .skip(1)
                .map(|l| format!("{}\n", l.trim()))
                .collect()
        })
        .collect();
    let stack = blocks.iter().find(|b| b.contains("pam_totp.so")).unwrap();
    let sshd = blocks.iter().find(|b| b.contains("UsePAM")).unwrap();
    let tree = Tree::clean();
    tree.write("etc/pam.d/sshd", stack, 0o644);
    tree.write("etc/ssh/sshd_config.d/pam-totp.conf", sshd, 0o644);
    let (code, report) = tree.doctor(&["--service", "sshd"]);
    assert_eq!(code, 0, "README Quick start: {report:#}");
    // And the old Quick start (no AuthenticationMethods) is caught.
    tree.write(
        "etc/ssh/sshd_config.d/pam-totp.conf",
        "UsePAM yes\nKbdInteractiveAuthentication yes\n",
        0o644,
    );
    let finding = tree.finding(&["--service", "sshd"], "sshd.key-skips-code", "error");
    assert!(
        finding["what"].as_str().unwrap().contains("publickey"),
        "{finding}"
    );
}

/// A passwd service whose password stack is `password_lines` (through common-password, as
/// on Debian).
fn with_password_stack(tree: &Tree, password_lines: &str) {
    tree.write("etc/pam.d/common-password", password_lines, 0o644);
    tree.write("etc/pam.d/passwd", "@include common-password\n", 0o644);
}

#[test]
fn the_shipped_password_stacks_pass_doctor() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("pam.d-examples");
    for example in ["debian/common-password", "rhel/system-auth"] {
        let tree = Tree::clean();
        let text = fs::read_to_string(examples.join(example)).unwrap();
        with_password_stack(&tree, &text);
        let (code, report) = tree.doctor(&[]);
        assert_eq!(code, 0, "{example}: {report:#}");
        let ids: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(
            !ids.iter().any(|id| id.starts_with("pam.password-totp")),
            "{example}: {report:#}"
        );
    }
}

#[test]
fn pam_totp_after_pam_unix_in_the_password_stack_is_reported_with_the_fix() {
    let tree = Tree::clean();
    with_password_stack(
        &tree,
        "password requisite pam_unix.so obscure yescrypt\npassword requisite pam_totp.so\npassword required pam_permit.so\n",
    );
    for args in [&[][..], &["--service", "passwd"][..]] {
        let finding = tree.finding(args, "pam.password-totp-after-password", "warning");
        assert_eq!(
            at(&finding),
            ("/etc/pam.d/common-password".to_owned(), Some(2)),
            "{args:?}: {finding}"
        );
        assert!(
            finding["what"].as_str().unwrap().contains("after pam_unix"),
            "{finding}"
        );
        let fix = finding["fix"].as_str().unwrap();
        assert!(
            fix.contains("password requisite pam_totp.so") && fix.contains("common-password"),
            "{fix}"
        );
    }
}

#[test]
fn a_password_line_that_is_not_requisite_or_required_is_reported() {
    for control in ["sufficient", "optional", "[success=done default=die]"] {
        let tree = Tree::clean();
        with_password_stack(
            &tree,
            &format!(
                "password {control} pam_totp.so\npassword [success=1 default=ignore] pam_unix.so obscure yescrypt\npassword requisite pam_deny.so\npassword required pam_permit.so\n"
            ),
        );
        let finding = tree.finding(
            &["--service", "passwd"],
            "pam.password-totp-control",
            "warning",
        );
        assert_eq!(
            at(&finding),
            ("/etc/pam.d/common-password".to_owned(), Some(1)),
            "{control}: {finding}"
        );
        assert!(
            finding["fix"]
                .as_str()
                .unwrap()
                .contains("password requisite pam_totp.so"),
            "{finding}"
        );
    }
    // `required` is accepted as well as `requisite`.
    let tree = Tree::clean();
    with_password_stack(
        &tree,
        "password required pam_totp.so\npassword [success=1 default=ignore] pam_unix.so obscure yescrypt\npassword requisite pam_deny.so\npassword required pam_permit.so\n",
    );
    let (code, report) = tree.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
}

/// pam_totp answers PAM_IGNORE for root setting another user's password and for users not
/// enrolled under nullok: a bracketed control without `ignore=ignore` makes those password
/// changes fail (noted in session 4, not flagged before).
#[test]
fn a_bracketed_password_control_that_does_not_ignore_pam_ignore_is_reported() {
    let stack = |control: &str| {
        format!(
            "password {control} pam_totp.so\npassword [success=1 default=ignore] pam_unix.so obscure yescrypt\npassword requisite pam_deny.so\npassword required pam_permit.so\n"
        )
    };
    let tree = Tree::clean();
    with_password_stack(&tree, &stack("[success=ok default=die]"));
    let finding = tree.finding(&[], "pam.password-totp-ignore", "warning");
    assert_eq!(
        at(&finding),
        ("/etc/pam.d/common-password".to_owned(), Some(1)),
        "{finding}"
    );
    assert!(
        finding["fix"].as_str().unwrap().contains("ignore=ignore"),
        "{finding}"
    );
    // With ignore=ignore the same control is fine.
    let tree = Tree::clean();
    with_password_stack(&tree, &stack("[success=ok ignore=ignore default=die]"));
    let (code, report) = tree.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn a_sufficient_module_before_pam_totp_in_the_password_stack_skips_the_code() {
    let tree = Tree::clean();
    with_password_stack(
        &tree,
        "password sufficient pam_sss.so\npassword requisite pam_totp.so\npassword required pam_permit.so\n",
    );
    // pam_sss is a password module too: it is named both as coming first and as the skip.
    let finding = tree.finding(&[], "pam.password-totp-not-enforced", "error");
    assert_eq!(
        at(&finding),
        ("/etc/pam.d/common-password".to_owned(), Some(1)),
        "{finding}"
    );
    assert!(
        finding["what"].as_str().unwrap().contains("pam_sss"),
        "{finding}"
    );
}

/// A module doctor does not know (pam_tcb, pam_exec, a vendor's) may succeed: `sufficient`
/// before pam_totp passes the change without a code, and must be reported (found by review:
/// unknown modules were taken as ignoring).
#[test]
fn an_unknown_sufficient_module_before_pam_totp_in_the_password_stack_is_reported() {
    let tree = Tree::clean();
    with_password_stack(
        &tree,
        "password sufficient pam_tcb.so\npassword requisite pam_totp.so\npassword required pam_unix.so obscure yescrypt\n",
    );
    let finding = tree.finding(&[], "pam.password-totp-not-enforced", "error");
    assert_eq!(
        at(&finding),
        ("/etc/pam.d/common-password".to_owned(), Some(1)),
        "{finding}"
    );
    assert!(
        finding["what"].as_str().unwrap().contains("pam_tcb"),
        "{finding}"
    );
}
