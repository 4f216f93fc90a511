//! Pins for the config rules no other test holds (issue 13, item 18): the config file's
//! owner and size cap, the default path's failures, the checks across options, and the
//! `secret=` template's components. Each test fails when the check it names is removed.

use super::file::read_config;
use super::{DEFAULT_CONFIG, Options, SecretPath};
use crate::error::Error;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn from_text(text: &str) -> Result<Options, String> {
    Options::from_config_text(text, Path::new("/test/pam_totp.conf")).map_err(|e| e.to_string())
}

#[test]
fn a_config_file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to give the file away");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pam_totp.conf");
    fs::write(&config, "window = 2\n").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(Options::from_config_file(Some(&config)).unwrap().window, 2);
    nix::unistd::chown(&config, Some(nix::unistd::Uid::from_raw(54321)), None).unwrap();
    let err = Options::from_config_file(Some(&config)).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("owned by root"), "{err}");
}

#[test]
fn the_default_config_may_be_missing_but_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // Missing: fine when not named, an error when named.
    let missing = dir.path().join("missing.conf");
    assert!(read_config(&missing, false).unwrap().is_none());
    assert!(read_config(&missing, true).is_err());
    // A directory in its place.
    let directory = dir.path().join("dir.conf");
    fs::create_dir(&directory).unwrap();
    assert!(matches!(
        read_config(&directory, false),
        Err(Error::Unsafe { .. })
    ));
    // A symlink loop.
    let looped = dir.path().join("loop.conf");
    symlink(&looped, &looped).unwrap();
    assert!(read_config(&looped, false).is_err());
    // Unreadable: below a regular file (ENOTDIR) for anyone; a mode-000 file for non-root.
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    assert!(read_config(&file.join("pam_totp.conf"), false).is_err());
    if !is_root() {
        fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
        assert!(read_config(&file, false).is_err());
    }
    // A file that exists is read.
    let real = dir.path().join("real.conf");
    fs::write(&real, "nullok = true\n").unwrap();
    assert_eq!(
        read_config(&real, false).unwrap().as_deref(),
        Some("nullok = true\n")
    );
    assert_eq!(Options::default().config, Path::new(DEFAULT_CONFIG));
}

#[test]
fn the_default_config_path_is_the_one_documented() {
    assert_eq!(DEFAULT_CONFIG, "/etc/security/pam_totp.conf");
    // Without a path, that file is read (or, on a machine without it, the defaults).
    let expected = match fs::metadata(DEFAULT_CONFIG) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Options::default()),
        _ => None,
    };
    if let Some(expected) = expected {
        assert_eq!(Options::from_config_file(None).unwrap(), expected);
    }
}

#[test]
fn the_config_file_is_capped_at_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pam_totp.conf");
    // Blank lines are valid TOML: exactly at the cap is read, one byte more is refused.
    fs::write(&config, "\n".repeat(64 * 1024)).unwrap();
    assert!(Options::from_config_file(Some(&config)).is_ok());
    fs::write(&config, "\n".repeat(64 * 1024 + 1)).unwrap();
    let err = Options::from_config_file(Some(&config))
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than 65536 bytes"), "{err}");
}

#[test]
fn a_config_file_that_is_not_utf8_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pam_totp.conf");
    fs::write(&config, b"window = 1 # \xff\n").unwrap();
    let err = Options::from_config_file(Some(&config))
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid UTF-8"), "{err}");
}

#[test]
fn contradictory_options_are_refused() {
    let both = "forward_pass cannot be combined";
    for text in [
        "forward_pass = true\ntry_first_pass = true",
        "forward_pass = true\nuse_first_pass = true",
    ] {
        assert!(from_text(text).unwrap_err().contains(both), "{text}");
    }
    assert!(from_text("forward_pass = true").unwrap().forward_pass);
    // Turning the other one off again is fine.
    assert!(from_text("forward_pass = true\ntry_first_pass = false").is_ok());
}

#[test]
fn the_prompt_is_1_to_200_bytes() {
    let prompt = |len: usize| from_text(&format!("prompt = \"{}\"", "p".repeat(len)));
    let why = "bad option: prompt must be 1 to 200 characters";
    assert_eq!(prompt(0).unwrap_err(), why);
    assert_eq!(prompt(1).unwrap().prompt, "p");
    assert_eq!(prompt(200).unwrap().prompt.len(), 200);
    assert_eq!(prompt(201).unwrap_err(), why);
    // Counted in bytes today: 100 two-byte characters are the most.
    assert!(from_text(&format!("prompt = \"{}\"", "é".repeat(100))).is_ok());
    assert!(from_text(&format!("prompt = \"{}\"", "é".repeat(101))).is_err());
}

#[test]
fn number_bounds_are_inclusive() {
    assert_eq!(from_text("window = 10").unwrap().window, 10);
    assert_eq!(from_text("window = 0").unwrap().window, 0);
    assert!(from_text("window = 11").is_err());
    assert_eq!(from_text("max_failures = 1").unwrap().max_failures, 1);
    assert_eq!(from_text("max_failures = 1000").unwrap().max_failures, 1000);
    assert!(from_text("max_failures = 1001").is_err());
    assert!(from_text("max_failures = 0").is_err());
    assert!(from_text("window = \"3\"").is_ok());
    assert!(from_text("window = true").is_err());
    assert!(from_text("window = 1.5").is_err());
}

#[test]
fn flags_and_texts_are_checked_in_the_config_file() {
    let options = from_text(
        "nullok = true\necho = true\ndebug = true\nuse_first_pass = true\nprompt = \"Code: \"",
    )
    .unwrap();
    assert!(options.nullok && options.echo && options.debug);
    assert_eq!(options.first_pass, super::FirstPass::Use);
    assert_eq!(options.prompt, "Code: ");
    let options = from_text("nullok = false\ntry_first_pass = true").unwrap();
    assert!(!options.nullok);
    assert_eq!(options.first_pass, super::FirstPass::Try);
    assert!(
        from_text("nullok = \"yes\"")
            .unwrap_err()
            .contains("takes no value")
    );
    assert!(
        from_text("prompt = 3")
            .unwrap_err()
            .contains("needs a text value")
    );
    assert!(
        from_text("secret = true")
            .unwrap_err()
            .contains("needs a text value")
    );
}

#[test]
fn the_config_argument_names_the_file_and_arguments_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pam_totp.conf");
    fs::write(&config, "prompt = \"From file: \"\n").unwrap();
    let arg = format!("config={}", config.display());
    let options = Options::from_module_args(&[arg.as_str(), "echo"]).unwrap();
    assert_eq!(options.config, config);
    assert_eq!(options.prompt, "From file: ");
    assert!(options.echo);
    assert!(Options::from_module_args(&[arg.as_str(), "forward_pass", "use_first_pass"]).is_err());
}

// --- the secret= template, as main has it after the hmod merge (real %u, written
// components checked, a component of only %% refused).

fn resolve(template: &str, user: &str) -> Result<(String, Vec<String>, String), String> {
    let path = SecretPath::parse(template).map_err(|e| e.to_string())?;
    let resolved = path
        .resolve(user, Path::new("/home/u"))
        .map_err(|e| e.to_string())?;
    Ok((
        resolved.anchor.display().to_string(),
        resolved
            .dirs
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect(),
        resolved.file.to_string_lossy().into_owned(),
    ))
}

#[test]
fn dot_dotdot_and_empty_template_components_are_refused() {
    for (template, why) in [
        ("~/./state.toml", "a . component"),
        ("~/a/.", "a . component"),
        ("~/a/..", "a .. component"),
        ("%h/..", "a .. component"),
        ("~/a/", "an empty component"),
        ("~/", "an empty component"),
        ("/srv/totp/%u/", "an empty component"),
        ("/srv/totp/%u//x", "an empty component"),
        // The fixed prefix is checked too.
        ("/srv/totp/./%u", "a . component"),
        ("/srv/../%u", "a .. component"),
        ("/srv//%u", "an empty component"),
    ] {
        let err = SecretPath::parse(template).unwrap_err().to_string();
        assert!(err.contains(why), "{template}: {err}");
    }
    // A user whose name makes a component empty, "." or ".." is refused when resolved.
    for user in ["", ".", ".."] {
        let err = resolve("/srv/totp/%u.d/%u", user).unwrap_err();
        assert!(err.contains("empty, . and .."), "{user:?}: {err}");
    }
    // ".x" and "..x" are ordinary names.
    assert!(resolve("~/.x/..x", "u").is_ok());
    assert!(resolve("/srv/.x/%u", "u").is_ok());
}

#[test]
fn percent_percent_is_a_literal_percent() {
    assert_eq!(
        resolve("/srv/totp/%u/%%.toml", "bob").unwrap(),
        ("/srv/totp".into(), vec!["bob".into()], "%.toml".into())
    );
    // `%%u` is a literal "%u" (the %% is read first), not the user name.
    assert_eq!(
        resolve("/srv/%u/%%u", "bob").unwrap(),
        ("/srv".into(), vec!["bob".into()], "%u".into())
    );
    // ...so an absolute template whose only %u is %%u would be one file for everyone.
    let err = SecretPath::parse("/srv/%%u.toml").unwrap_err().to_string();
    assert!(err.contains("not %%u"), "{err}");
    // A component of only %% (any even count) is a mistyped %u.
    for template in ["~/%%/s", "~/%%%%", "/srv/%u/%%"] {
        let err = SecretPath::parse(template).unwrap_err().to_string();
        assert!(err.contains("only %%"), "{template}: {err}");
    }
    // A lone % or %x is refused.
    assert!(SecretPath::parse("~/a%").is_err());
    assert!(SecretPath::parse("/srv/%x/%u").is_err());
}

#[test]
fn the_fixed_prefix_ends_before_the_first_percent() {
    assert_eq!(
        resolve("/%u.toml", "bob").unwrap(),
        ("/".into(), vec![], "bob.toml".into())
    );
    assert_eq!(
        resolve("/var/lib/pam-totp/u-%u/state", "bob").unwrap(),
        (
            "/var/lib/pam-totp".into(),
            vec!["u-bob".into()],
            "state".into()
        )
    );
    assert_eq!(
        resolve("%h/x/%u", "bob").unwrap(),
        ("/home/u".into(), vec!["x".into()], "bob".into())
    );
    assert!(SecretPath::parse("/srv/%u").unwrap().to_string() == "/srv/%u");
    assert!(!SecretPath::parse("/srv/%u").unwrap().in_home());
    assert!(SecretPath::parse("%h/%u").unwrap().in_home());
}
