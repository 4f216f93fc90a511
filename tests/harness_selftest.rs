//! Tests of the integration-test harness itself (tests/common and tests/harness), using only
//! pam_wrapper's pam_matrix and stock Linux-PAM modules, so they run before
//! (and independently of) the pam_totp module.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

/// A password login through pam_matrix; account too, to prove the per-service
/// passdb makes pam_matrix's service check pass.
const MATRIX_LOGIN: &str = "auth required {matrix} verbose\naccount required {matrix}\n";

fn env_with_alice() -> (TestEnv, User) {
    let env = TestEnv::new();
    let alice = env.add_user_with_password("alice", "secret");
    env.service("login", MATRIX_LOGIN);
    (env, alice)
}

#[test]
fn correct_password_succeeds_and_prompt_is_captured() {
    let (env, alice) = env_with_alice();
    let out = env.authenticate("login", &alice.name, &["secret"]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.code_text, "Success");
    assert_eq!(out.prompts(), vec!["Password: ".to_string()], "{out}");
    assert_eq!(out.messages[0].0, PROMPT_ECHO_OFF);
    assert_eq!(out.infos(), vec!["Authentication succeeded".to_string()]);
    assert!(out.errors().is_empty(), "{out}");
    assert_eq!(out.setcred, None, "setcred was not requested");
}

#[test]
fn wrong_password_fails() {
    let (env, alice) = env_with_alice();
    let out = env.authenticate("login", &alice.name, &["not-the-password"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(out.errors(), vec!["Authentication failed".to_string()]);
}

#[test]
fn unknown_user_fails() {
    let (env, _alice) = env_with_alice();
    // pam_matrix still prompts, then fails: no passdb entry.
    let out = env.authenticate("login", "mallory", &["secret"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
}

/// nss_wrapper does not fall back to /etc/passwd: system accounts that exist
/// on every Debian machine are unknown inside the test env.
#[test]
fn system_users_are_unknown_under_nss_wrapper() {
    let env = TestEnv::new();
    let alice = env.add_user("alice");
    // pam_succeed_if looks the user up through libpam's pam_modutil_getpwnam.
    env.service("succeed", "auth required pam_succeed_if.so uid >= 0\n");
    assert_eq!(
        env.authenticate("succeed", &alice.name, &[]).code,
        PAM_SUCCESS
    );
    for system_user in ["root", "daemon", "nobody"] {
        let out = env.authenticate("succeed", system_user, &[]);
        assert_eq!(out.code, PAM_USER_UNKNOWN, "{system_user}: {out}");
    }

    // And plain getpwnam (getent) sees exactly the fake passwd file.
    let found = env
        .command("getent")
        .args(["passwd", "alice"])
        .output()
        .expect("run getent");
    assert!(found.status.success());
    let line = String::from_utf8(found.stdout).unwrap();
    assert_eq!(
        line.trim(),
        format!(
            "alice:x:{}:{}:alice:{}:/bin/sh",
            alice.uid,
            alice.gid,
            alice.home.display()
        )
    );
    let missing = env
        .command("getent")
        .args(["passwd", "root"])
        .status()
        .expect("run getent");
    assert_eq!(missing.code(), Some(2), "root must be unknown to getent");
}

#[test]
fn users_get_homes_and_ids() {
    let env = TestEnv::new();
    let a = env.add_user("alice");
    let b = env.add_user("bob");
    for u in [&a, &b] {
        assert_eq!(u.home, env.root().join("home").join(&u.name));
        let meta = std::fs::metadata(&u.home).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o755);
        assert_eq!((meta.uid(), meta.gid()), (u.uid, u.gid));
    }
    if is_root() {
        assert_eq!((a.uid, a.gid), (61000, 61000));
        assert_eq!((b.uid, b.gid), (61001, 61001));
    } else {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let me = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!((a.uid, a.gid), me);
        assert_eq!((b.uid, b.gid), me);
    }
    assert_eq!(env.users(), vec![a, b]);
}

#[test]
fn tempdir_is_removed_on_drop() {
    let env = TestEnv::new();
    env.add_user("alice");
    let root = env.root().to_path_buf();
    assert!(root.is_dir());
    drop(env);
    assert!(!root.exists());
}

#[test]
fn running_out_of_answers_is_a_conversation_failure() {
    let (env, alice) = env_with_alice();
    let out = env.authenticate("login", &alice.name, &[]);
    // The prompt is still recorded; pam_matrix maps the conversation error.
    assert_eq!(out.prompts(), vec!["Password: ".to_string()]);
    assert_eq!(out.code, PAM_AUTHINFO_UNAVAIL, "{out}");
}

#[test]
fn echo_on_prompts_are_answered_too() {
    let env = TestEnv::new();
    env.add_user_with_password("alice", "secret");
    env.service("echo", "auth required {matrix} echo\n");
    let out = env.authenticate("echo", "alice", &["secret"]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.prompts().len(), 1);
}

#[test]
fn multi_line_messages_survive_the_transcript() {
    let env = TestEnv::new();
    env.add_user("alice");
    // pam_echo sends a whole file as one TEXT_INFO, newlines included.
    let motd = env.root().join("motd");
    std::fs::write(&motd, "line one\nback\\slash\r\nlast").unwrap();
    env.service(
        "echo-file",
        &format!(
            "auth optional pam_echo.so file={}\nauth required pam_permit.so\n",
            motd.display()
        ),
    );
    let out = env.authenticate("echo-file", "alice", &[]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(
        out.infos(),
        vec!["line one\nback\\slash\r\nlast".to_string()],
        "{out}"
    );
    assert_eq!(out.stdout.lines().count(), 3, "one line per record: {out}");
}

#[test]
fn unknown_service_falls_back_to_deny_all_other() {
    let (env, alice) = env_with_alice();
    let out = env.authenticate("no-such-service", &alice.name, &["secret"]);
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
}

#[test]
fn pam_syslog_lines_are_captured() {
    let (env, alice) = env_with_alice();
    env.service(
        "warn",
        "auth required pam_warn.so\nauth required {matrix}\n",
    );
    let out = env.authenticate_with(
        "warn",
        &alice.name,
        &["secret"],
        &AuthOptions::new().setcred(),
    );
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.setcred, Some(PAM_SUCCESS), "{out}");
    let lines = env.syslog_lines();
    // LOG_AUTHPRIV|LOG_NOTICE = 85; the prefix is libpam's pam_vsyslog's.
    let auth = lines
        .iter()
        .find(|l| l.contains("pam_warn(warn:auth)"))
        .unwrap_or_else(|| panic!("no pam_warn auth line in {lines:#?}"));
    assert!(auth.starts_with("<85> pam_client: "), "{auth}");
    assert!(auth.contains("user=[alice]"), "{auth}");
    assert!(
        lines.iter().any(|l| l.contains("pam_warn(warn:setcred)")),
        "{lines:#?}"
    );
    // The deny-all "other" keeps libpam from complaining on every pam_start.
    assert!(
        !lines.iter().any(|l| l.contains("no default config")),
        "{lines:#?}"
    );
    env.clear_syslog();
    assert!(env.syslog_lines().is_empty());
}

#[test]
fn setcred_is_skipped_after_failed_auth() {
    let (env, alice) = env_with_alice();
    let out = env.authenticate_with(
        "login",
        &alice.name,
        &["wrong"],
        &AuthOptions::new().setcred(),
    );
    assert_eq!(out.code, PAM_AUTH_ERR, "{out}");
    assert_eq!(out.setcred, None, "{out}");
}

/// PAM_AUTHTOK goes in through pam_set_items.so (Linux-PAM forbids an
/// application from setting it) and comes out through pam_get_items.so.
#[test]
fn authtok_round_trip() {
    let env = TestEnv::new();
    env.add_user("alice");
    env.service(
        "items",
        "auth required {wrapper_modules}/pam_set_items.so\n\
         auth required pam_permit.so\n\
         auth optional {wrapper_modules}/pam_get_items.so\n",
    );
    let out = env.authenticate_with(
        "items",
        "alice",
        &[],
        &AuthOptions::new().authtok("tok-123 with space"),
    );
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert_eq!(out.authtok.as_deref(), Some("tok-123 with space"), "{out}");

    // Without --authtok nothing is set.
    let out = env.authenticate("items", "alice", &[]);
    assert_eq!(out.authtok, None, "{out}");

    // Without pam_get_items.so the application cannot see the item at all.
    env.service(
        "set-only",
        "auth required {wrapper_modules}/pam_set_items.so\nauth required pam_permit.so\n",
    );
    let out = env.authenticate_with("set-only", "alice", &[], &AuthOptions::new().authtok("x"));
    assert_eq!(out.authtok, None, "{out}");
}

/// A module that prompts sets PAM_AUTHTOK for the rest of the stack.
#[test]
fn authtok_set_by_a_prompting_module_is_reported() {
    let env = TestEnv::new();
    env.add_user_with_password("alice", "secret");
    env.service(
        "matrix-items",
        "auth required {matrix}\nauth optional {wrapper_modules}/pam_get_items.so\n",
    );
    let out = env.authenticate("matrix-items", "alice", &["secret"]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    // pam_matrix overwrites the first byte of the item after checking it
    // (its wipe_authtok), so only presence is stable across versions.
    assert!(out.authtok.is_some(), "{out}");
}

/// `.env()` reaches the modules: pam_set_items.so copies PAM_RHOST from the
/// environment, and pam_warn logs it.
#[test]
fn env_passthrough_reaches_modules() {
    let env = TestEnv::new();
    env.add_user("alice");
    env.service(
        "rhost",
        "auth required {wrapper_modules}/pam_set_items.so\nauth required pam_warn.so\n",
    );
    let out = env.authenticate_with(
        "rhost",
        "alice",
        &[],
        &AuthOptions::new().env("PAM_RHOST", "client.example"),
    );
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    let lines = env.syslog_lines();
    assert!(
        lines.iter().any(|l| l.contains("rhost=[client.example]")),
        "{lines:#?}"
    );
}

#[test]
fn sixteen_concurrent_logins_all_complete() {
    let env = TestEnv::new();
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(env.add_user_with_password(&format!("user{i}"), &format!("pw{i}")));
    }
    env.service("login", MATRIX_LOGIN);
    env.service(
        "warn",
        "auth required pam_warn.so\nauth required {matrix}\n",
    );

    let mut pending: Vec<PendingAuth> = (0..16)
        .map(|i| {
            let u = &users[i % 4];
            // Alternate services and right/wrong passwords, so a mix-up
            // between concurrent clients would show.
            let service = if i % 2 == 0 { "login" } else { "warn" };
            let password = if i % 3 == 0 {
                "wrong".to_string()
            } else {
                format!("pw{}", i % 4)
            };
            env.spawn_authenticate(service, &u.name, &[&password])
        })
        .collect();
    // All 16 are parked after pam_start; let them authenticate together.
    release_all(&mut pending);
    let outcomes = wait_all(pending);

    assert_eq!(outcomes.len(), 16);
    for (i, out) in outcomes.iter().enumerate() {
        let expected = if i % 3 == 0 {
            PAM_AUTH_ERR
        } else {
            PAM_SUCCESS
        };
        assert_eq!(out.code, expected, "login {i}: {out}");
    }
    let warn_lines = env
        .syslog_lines()
        .into_iter()
        .filter(|l| l.contains("pam_warn(warn:auth)"))
        .count();
    assert_eq!(warn_lines, 8);
}

#[test]
fn dropping_a_pending_login_kills_it() {
    let (env, alice) = env_with_alice();
    let pending = env.spawn_authenticate("login", &alice.name, &["secret"]);
    drop(pending);
    // The env is still usable afterwards.
    let out = env.authenticate("login", &alice.name, &["secret"]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
}

/// pam_wrapper's destructor never runs in a killed client, so its /tmp/pam.X would stay
/// (and use up one of the ~62 names the whole machine shares) unless the harness removes it.
#[test]
fn a_killed_client_leaves_no_pam_wrapper_dir() {
    let (env, alice) = env_with_alice();
    let pending = env.spawn_authenticate("login", &alice.name, &["secret"]);
    let pid = pending
        .pid()
        .expect("a parked client is running")
        .to_string();
    let owned_by_client = || {
        std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pam."))
            .filter(|e| {
                std::fs::read_to_string(e.path().join("pid")).is_ok_and(|p| p.trim() == pid)
            })
            .count()
    };
    assert_eq!(owned_by_client(), 1, "the parked client has its /tmp/pam.X");
    drop(pending);
    assert_eq!(owned_by_client(), 0, "its /tmp/pam.X outlived the kill");
}

#[test]
fn module_path_points_at_the_built_cdylib() {
    // `cargo test` builds the cdylib (into deps/) before running this binary.
    let path = module_path();
    assert!(path.is_absolute() && path.is_file(), "{}", path.display());
    assert!(path.starts_with(target_profile_dir()), "{}", path.display());
}

/// The capture shim itself, for the plain and the _FORTIFY_SOURCE entry
/// points (a Rust module calls plain syslog(); libpam calls __syslog_chk).
#[test]
fn syslog_capture_handles_every_entry_point() {
    let env = TestEnv::new();
    let src = env.root().join("logger.c");
    std::fs::write(
        &src,
        r#"#include <errno.h>
#include <stdarg.h>
#include <syslog.h>
static void v(int pri, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vsyslog(pri, fmt, ap); va_end(ap);
}
int main(void) {
    syslog(LOG_AUTHPRIV | LOG_INFO, "before openlog %d", 1);
    openlog("myident", LOG_PID, LOG_AUTHPRIV);
    v(LOG_NOTICE, "via vsyslog %s", "ok");
    errno = ENOENT;
    syslog(LOG_ERR, "errno says %m");
    closelog();
    syslog(LOG_WARNING, "two\nlines\\");
    return 0;
}
"#,
    )
    .unwrap();
    for (name, flags) in [("plain", "-O0"), ("fortified", "-O2 -D_FORTIFY_SOURCE=2")] {
        let bin = env.root().join(name);
        let cc = std::process::Command::new("cc")
            .args(flags.split(' '))
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .status()
            .unwrap();
        assert!(cc.success());
        if name == "fortified" {
            let nm = std::process::Command::new("nm")
                .arg("-D")
                .arg(&bin)
                .output()
                .unwrap();
            let syms = String::from_utf8_lossy(&nm.stdout).into_owned();
            assert!(syms.contains("__syslog_chk"), "{syms}");
        }
        env.clear_syslog();
        let status = env.command(&bin).status().unwrap();
        assert!(status.success());
        let lines = env.syslog_lines();
        let pid_part = |l: &str| l.contains("myident[") && l.contains("]: via vsyslog ok");
        assert_eq!(lines.len(), 4, "{name}: {lines:#?}");
        assert_eq!(lines[0], format!("<86> {name}: before openlog 1"));
        assert!(lines[1].starts_with("<85> myident["), "{}", lines[1]);
        assert!(pid_part(&lines[1]), "{}", lines[1]);
        assert!(
            lines[2].ends_with("]: errno says No such file or directory"),
            "{}",
            lines[2]
        );
        // After closelog: default ident and facility (LOG_USER = 8) again.
        assert_eq!(lines[3], format!("<12> {name}: two\\nlines\\\\"));
    }
}
