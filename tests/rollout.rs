//! Rolling 2FA out by a date: `nullok_until=` through the real libpam (pam_wrapper +
//! nss_wrapper), and `pam-totp report` to see who is left.
#![allow(clippy::disallowed_methods)] // tests may read the clock; the library may not

mod common;
mod fixtures;

use common::*;
use fixtures::*;

#[test]
fn nullok_until_lets_the_unenrolled_through_with_the_deadline_then_stops() {
    let env = TestEnv::new();
    env.add_user("alice");
    let config = empty_config(&env);
    for (service, date) in [("before", "9999-12-31"), ("after", "2000-01-01")] {
        env.service(
            service,
            &format!(
                "auth required {{module}} config={} nullok_until={date}\nauth required pam_permit.so\n",
                config.display()
            ),
        );
    }
    let out = env.authenticate("before", "alice", &[]);
    assert_eq!(out.code, PAM_SUCCESS, "{out}");
    assert!(out.prompts().is_empty(), "not asked for a code: {out}");
    assert!(
        out.infos()
            .iter()
            .any(|m| m.contains("after 9999-12-31 (UTC)") && m.contains("pam-totp enroll")),
        "told the deadline and the command: {out}"
    );
    let out = env.authenticate("after", "alice", &["123456"]);
    assert_eq!(
        out.code, PAM_AUTH_ERR,
        "after the date, as without it: {out}"
    );
    assert!(out.infos().is_empty(), "{out}");

    let lines = env.syslog_lines().join("\n");
    assert!(
        lines.contains("ignored alice: not enrolled (nullok_until 9999-12-31)"),
        "{lines}"
    );
    assert!(lines.contains("refused alice: not enrolled"), "{lines}");
}

#[test]
fn nullok_with_nullok_until_is_a_configuration_error() {
    let env = TestEnv::new();
    env.add_user("alice");
    totp_service(&env, "both", "nullok nullok_until=9999-12-31");
    let out = env.authenticate("both", "alice", &[]);
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert_ne!(out.code, PAM_IGNORE, "{out}");
    let lines = env.syslog_lines().join("\n");
    assert!(lines.contains("cannot be combined"), "{lines}");
}
