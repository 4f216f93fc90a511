//! Module arguments and the system-wide config file, parsed in one place.
//!
//! The config file (`/etc/security/pam_totp.conf` unless `config=PATH`) holds the same keys
//! as the module arguments, in TOML; the arguments win. The CLI reads the same file, so the
//! module and the CLI agree on where state lives. An unknown key fails closed.

use super::file::read_config;
use super::template::SecretPath;
use crate::error::{Error, Result, line_of};
use crate::otp::MAX_WINDOW;
use crate::otp::hotp::{DEFAULT_HOTP_WINDOW, MAX_HOTP_WINDOW};
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/security/pam_totp.conf";
pub const DEFAULT_STATE_PATH: &str = "~/.config/pam-totp/state.toml";
pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const DEFAULT_WINDOW: u32 = 1;
pub const DEFAULT_MAX_FAILURES: u32 = 5;
const MAX_MAX_FAILURES: u32 = 1000;
/// pam_unix's delay after a failed attempt, 2 s.
pub const DEFAULT_FAIL_DELAY_MS: u32 = 2000;
const MAX_FAIL_DELAY_MS: u32 = 10_000;
/// The longest `grace_period`, 7 days: a remembered host is only a remote address, which a
/// shared NAT or a new holder of the address also has; no longer than a week.
pub const MAX_GRACE_PERIOD: u32 = 7 * 24 * 3600;

/// Where the code comes from when an earlier module already asked for something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPass {
    /// Always prompt (the default).
    Prompt,
    /// Use PAM_AUTHTOK if it looks like a code and is accepted; otherwise prompt.
    Try,
    /// Use PAM_AUTHTOK only; never prompt.
    Use,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// A user without a state file is ignored (PAM_IGNORE) instead of refused.
    pub nullok: bool,
    /// Template of the state file path: `~/…` or `%h/…` in the home, or absolute with `%u`.
    pub secret: SecretPath,
    /// How many time steps before and after now a TOTP code may come from.
    pub window: u32,
    pub prompt: String,
    pub echo: bool,
    pub first_pass: FirstPass,
    /// One prompt: the password immediately followed by the code; the password is handed on.
    pub forward_pass: bool,
    /// Consecutive failed codes before further attempts are refused for a while.
    pub max_failures: u32,
    /// How many counters after the stored one an HOTP code may come from.
    pub hotp_window: u32,
    /// The delay libpam applies after a failed attempt, in milliseconds (0: none asked).
    pub fail_delay_ms: u32,
    pub debug: bool,
    pub config: PathBuf,
    /// With protected storage: whether a user who is not enrolled may enroll themselves
    /// through the setuid helper (`pam-totp enroll`). Root can always enroll anyone.
    pub self_enroll: bool,
    /// `nullok_until=YYYY-MM-DD`: `nullok` through the end of that day (UTC), then not.
    pub nullok_until: Option<NullokUntil>,
    /// `grace_period=SECONDS`: a login from a PAM_RHOST that passed with a code less than
    /// this long ago is not asked for one (0: off, the default).
    pub grace_period: u32,
}

/// The last day (UTC) on which a user who is not enrolled is let through, for a rollout
/// where 2FA becomes required by a date. Through the *end* of the day, because a deadline
/// an admin announces as "by December 31" means that day is still fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NullokUntil {
    /// As written, checked: `YYYY-MM-DD`.
    pub date: String,
    /// Unix time of the midnight (UTC) after that day: in force while `now` is before it.
    pub ends_at: u64,
}

impl NullokUntil {
    /// Parses `YYYY-MM-DD`, a real calendar date from 1970 to 9999.
    pub fn parse(text: &str) -> Result<NullokUntil> {
        let bad = || {
            Error::BadOption(format!(
                "nullok_until needs a date as YYYY-MM-DD (UTC), not {text:?}"
            ))
        };
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return Err(bad());
        }
        let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().map_err(|_| bad());
        let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if year < 1970 || !(1..=12).contains(&month) || day == 0 {
            return Err(bad());
        }
        if day > month_days[(month - 1) as usize] {
            return Err(bad());
        }
        let days = days_from_civil(year, month, day);
        Ok(NullokUntil {
            date: text.to_owned(),
            ends_at: (days + 1) * 86_400,
        })
    }

    /// Whether a user who is not enrolled is still let through at `now`.
    pub fn in_force(&self, now: u64) -> bool {
        now < self.ends_at
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`), for dates from 1970 on.
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let year = u64::from(if month <= 2 { year - 1 } else { year });
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month = u64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nullok: false,
            secret: SecretPath::parse(DEFAULT_STATE_PATH)
                .expect("the default secret= template is valid"),
            window: DEFAULT_WINDOW,
            prompt: DEFAULT_PROMPT.to_owned(),
            echo: false,
            first_pass: FirstPass::Prompt,
            forward_pass: false,
            max_failures: DEFAULT_MAX_FAILURES,
            hotp_window: DEFAULT_HOTP_WINDOW,
            fail_delay_ms: DEFAULT_FAIL_DELAY_MS,
            debug: false,
            config: PathBuf::from(DEFAULT_CONFIG),
            self_enroll: true,
            nullok_until: None,
            grace_period: 0,
        }
    }
}

/// A value as written in either source: a bare flag, or `key=value` / `key = value`.
enum Value<'a> {
    Flag(bool),
    Text(&'a str),
    Number(i64),
}

impl Options {
    /// Options for the module: the config file (from `config=` or the default), then the
    /// module arguments on top.
    pub fn from_module_args<S: AsRef<str>>(args: &[S]) -> Result<Options> {
        let mut config = None;
        for arg in args {
            if let Some(path) = arg.as_ref().strip_prefix("config=") {
                config = Some(PathBuf::from(path));
            }
        }
        let mut draft = Draft::from(Options::from_config_file(config.as_deref())?);
        for arg in args {
            let arg = arg.as_ref();
            match arg.split_once('=') {
                Some(("config", _)) => {}
                Some((key, value)) => draft.set(key, module_value(key, value))?,
                None => draft.set(arg, Value::Flag(true))?,
            }
        }
        draft.finish()
    }

    /// Options from the config file alone (what the CLI uses). `None` means the default
    /// path, which may be absent; a path given explicitly must exist.
    pub fn from_config_file(path: Option<&Path>) -> Result<Options> {
        let explicit = path.is_some();
        let path = path.unwrap_or(Path::new(DEFAULT_CONFIG));
        match read_config(path, explicit)? {
            Some(text) => Options::from_config_text(&text, path),
            None => Ok(Options {
                config: path.to_owned(),
                ..Options::default()
            }),
        }
    }

    /// Options from a config file's text; `path` is the file it came from (recorded in
    /// `config`, and named in messages).
    pub fn from_config_text(text: &str, path: &Path) -> Result<Options> {
        let mut draft = Draft::from(Options {
            config: path.to_owned(),
            ..Options::default()
        });
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::BadOption(format!(
                "config file {} is not valid TOML{}",
                path.display(),
                line_of(text, e.span())
            ))
        })?;
        for (key, value) in &table {
            let value = match value {
                toml::Value::Boolean(b) => Value::Flag(*b),
                toml::Value::String(s) => Value::Text(s),
                toml::Value::Integer(n) => Value::Number(*n),
                _ => {
                    return Err(Error::BadOption(format!(
                        "{}: {key} must be a boolean, a string or a number",
                        path.display()
                    )));
                }
            };
            draft.set(key, value).map_err(|e| match e {
                Error::BadOption(msg) => Error::BadOption(format!("{}: {msg}", path.display())),
                other => other,
            })?;
        }
        draft.finish()
    }
}

/// A module argument's value: `flag=true|false|1|0` for the flags, so that a flag set in the
/// config file can be turned off for one service (`nullok=false`); text otherwise.
fn module_value<'a>(key: &str, value: &'a str) -> Value<'a> {
    match (FLAGS.contains(&key), value) {
        (true, "true" | "1") => Value::Flag(true),
        (true, "false" | "0") => Value::Flag(false),
        _ => Value::Text(value),
    }
}

const FLAGS: [&str; 7] = [
    "nullok",
    "echo",
    "debug",
    "forward_pass",
    "try_first_pass",
    "use_first_pass",
    "self_enroll",
];

/// Options being read: the `secret=` text is kept as written until every other value is
/// in, then parsed once (so errors come in the order they always have).
struct Draft {
    options: Options,
    secret: String,
    /// Kept apart until the end so that both set is refused, not "the last one wins".
    try_first_pass: bool,
    use_first_pass: bool,
}

impl From<Options> for Draft {
    fn from(options: Options) -> Self {
        let secret = options.secret.as_str().to_owned();
        Draft {
            try_first_pass: options.first_pass == FirstPass::Try,
            use_first_pass: options.first_pass == FirstPass::Use,
            options,
            secret,
        }
    }
}

impl Draft {
    fn set(&mut self, key: &str, value: Value<'_>) -> Result<()> {
        let options = &mut self.options;
        match (key, value) {
            ("nullok", Value::Flag(on)) => options.nullok = on,
            ("echo", Value::Flag(on)) => options.echo = on,
            ("debug", Value::Flag(on)) => options.debug = on,
            ("forward_pass", Value::Flag(on)) => options.forward_pass = on,
            ("self_enroll", Value::Flag(on)) => options.self_enroll = on,
            ("try_first_pass", Value::Flag(on)) => self.try_first_pass = on,
            ("use_first_pass", Value::Flag(on)) => self.use_first_pass = on,
            ("secret", Value::Text(path)) => self.secret = path.to_owned(),
            ("nullok_until", Value::Text(date)) => {
                options.nullok_until = Some(NullokUntil::parse(date)?)
            }
            ("nullok_until", _) => {
                return Err(Error::BadOption(
                    "nullok_until needs a date as YYYY-MM-DD (UTC), in quotes in the config file"
                        .into(),
                ));
            }
            ("prompt", Value::Text(text)) => options.prompt = text.to_owned(),
            ("window", value) => options.window = number(key, value, 0, MAX_WINDOW)?,
            ("max_failures", value) => {
                options.max_failures = number(key, value, 1, MAX_MAX_FAILURES)?
            }
            ("hotp_window", value) => options.hotp_window = number(key, value, 0, MAX_HOTP_WINDOW)?,
            ("fail_delay", value) => {
                options.fail_delay_ms = number(key, value, 0, MAX_FAIL_DELAY_MS)?
            }
            ("grace_period", value) => {
                options.grace_period = number(key, value, 0, MAX_GRACE_PERIOD)?
            }
            (flag, _) if FLAGS.contains(&flag) => {
                return Err(Error::BadOption(format!(
                    "{key} takes no value other than true or false"
                )));
            }
            ("secret" | "prompt", _) => {
                return Err(Error::BadOption(format!("{key} needs a text value")));
            }
            _ => return Err(Error::BadOption(format!("unknown option {key:?}"))),
        }
        Ok(())
    }

    fn finish(self) -> Result<Options> {
        let Draft {
            mut options,
            secret,
            try_first_pass,
            use_first_pass,
        } = self;
        options.first_pass = match (try_first_pass, use_first_pass) {
            (false, false) => FirstPass::Prompt,
            (true, false) => FirstPass::Try,
            (false, true) => FirstPass::Use,
            (true, true) => {
                return Err(Error::BadOption(
                    "try_first_pass and use_first_pass contradict each other; choose one".into(),
                ));
            }
        };
        if options.prompt.is_empty() || options.prompt.len() > 200 {
            return Err(Error::BadOption(
                "prompt must be 1 to 200 characters".into(),
            ));
        }
        if options.forward_pass && options.first_pass != FirstPass::Prompt {
            return Err(Error::BadOption(
                "forward_pass cannot be combined with try_first_pass or use_first_pass".into(),
            ));
        }
        if options.nullok && options.nullok_until.is_some() {
            // nullok never ends, so with both the deadline would silently mean nothing.
            return Err(Error::BadOption(
                "nullok and nullok_until cannot be combined: nullok never expires; keep nullok_until for a rollout with a deadline".into(),
            ));
        }
        if options.forward_pass && options.grace_period > 0 {
            // With forward_pass this module asks for the password too: a remembered host
            // would skip that prompt, and the password module after it would get no password
            // (use_first_pass: every such login fails) or ask in its own words.
            return Err(Error::BadOption(
                "forward_pass cannot be combined with grace_period: a remembered host would skip the password prompt too; ask for the code in its own prompt to use grace_period".into(),
            ));
        }
        // Parsed already when it is the text the options hold (the default, most often).
        if secret != options.secret.as_str() {
            options.secret = SecretPath::parse(&secret)?;
        }
        Ok(options)
    }
}

fn number(key: &str, value: Value<'_>, min: u32, max: u32) -> Result<u32> {
    let parsed = match value {
        Value::Number(n) => u32::try_from(n).ok(),
        Value::Text(text) => text.parse::<u32>().ok(),
        Value::Flag(_) => None,
    };
    match parsed {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::BadOption(format!(
            "{key} needs a whole number from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn args(list: &[&str]) -> Result<Options> {
        // A config path that does not exist would be an error; use an empty file we own.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::File::create(&config).unwrap();
        let mut all = vec![format!("config={}", config.display())];
        all.extend(list.iter().map(|s| s.to_string()));
        Options::from_module_args(&all)
    }

    #[test]
    fn defaults_are_safe() {
        let options = args(&[]).unwrap();
        assert!(!options.nullok);
        assert_eq!(options.window, 1);
        assert_eq!(options.max_failures, 5);
        assert_eq!(options.secret.as_str(), DEFAULT_STATE_PATH);
        assert_eq!(options.first_pass, FirstPass::Prompt);
    }

    #[test]
    fn module_arguments_are_parsed() {
        let options = args(&[
            "nullok",
            "window=3",
            "prompt=Code please: ",
            "echo",
            "try_first_pass",
            "max_failures=7",
            "secret=/var/lib/pam-totp/%u.toml",
            "debug",
        ])
        .unwrap();
        assert!(options.nullok && options.echo && options.debug);
        assert_eq!(options.window, 3);
        assert_eq!(options.prompt, "Code please: ");
        assert_eq!(options.first_pass, FirstPass::Try);
        assert_eq!(options.max_failures, 7);
        assert_eq!(options.secret.as_str(), "/var/lib/pam-totp/%u.toml");
    }

    #[test]
    fn hotp_window_defaults_to_10_and_is_bounded() {
        assert_eq!(args(&[]).unwrap().hotp_window, 10);
        assert_eq!(args(&["hotp_window=0"]).unwrap().hotp_window, 0);
        assert_eq!(args(&["hotp_window=100"]).unwrap().hotp_window, 100);
        for bad in [
            "hotp_window=101",
            "hotp_window=-1",
            "hotp_window=x",
            "hotp_window",
        ] {
            let err = args(&[bad]).unwrap_err().to_string();
            assert!(err.contains("hotp_window"), "{bad}: {err}");
        }
    }

    #[test]
    fn nullok_until_is_a_real_date_through_the_end_of_that_day_utc() {
        let until = args(&["nullok_until=2026-12-31"])
            .unwrap()
            .nullok_until
            .unwrap();
        // 2027-01-01T00:00:00Z
        assert_eq!(until.ends_at, 1_798_761_600);
        assert!(until.in_force(1_798_761_599));
        assert!(!until.in_force(1_798_761_600));
        assert_eq!(NullokUntil::parse("1970-01-01").unwrap().ends_at, 86_400);
        assert_eq!(
            NullokUntil::parse("2024-02-29").unwrap().ends_at,
            1_709_251_200
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-1",
            "26-12-31",
            "2026/12/31",
            "1969-12-31",
            "2026-12-31T00",
            "",
        ] {
            assert!(NullokUntil::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(args(&["nullok_until"]).is_err());
        let from_file =
            Options::from_config_text("nullok_until = \"2026-12-31\"\n", Path::new("/c")).unwrap();
        assert_eq!(from_file.nullok_until, Some(until.clone()));
        assert!(Options::from_config_text("nullok_until = 2026-12-31\n", Path::new("/c")).is_err());
        let both = args(&["nullok", "nullok_until=2026-12-31"]).unwrap_err();
        assert!(both.to_string().contains("cannot be combined"), "{both}");
    }

    #[test]
    fn unknown_option_fails_closed() {
        let err = args(&["nulok"]).unwrap_err();
        assert!(
            err.to_string().contains("unknown option \"nulok\""),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        assert!(args(&["window=11"]).is_err());
        assert!(args(&["window=-1"]).is_err());
        assert!(args(&["max_failures=0"]).is_err());
        assert!(args(&["window"]).is_err());
        assert!(args(&["nullok=yes"]).is_err());
        assert!(args(&["fail_delay=10001"]).is_err());
        assert!(args(&["fail_delay=-1"]).is_err());
        assert!(args(&["fail_delay"]).is_err());
    }

    #[test]
    fn fail_delay_defaults_to_pam_unix_two_seconds_and_zero_disables_it() {
        assert_eq!(args(&[]).unwrap().fail_delay_ms, 2000);
        assert_eq!(args(&["fail_delay=0"]).unwrap().fail_delay_ms, 0);
        assert_eq!(args(&["fail_delay=10000"]).unwrap().fail_delay_ms, 10000);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::write(&config, "fail_delay = 300\n").unwrap();
        let options = Options::from_config_file(Some(&config)).unwrap();
        assert_eq!(options.fail_delay_ms, 300);
    }

    #[test]
    fn grace_period_is_off_by_default_bounded_and_not_with_forward_pass() {
        assert_eq!(args(&[]).unwrap().grace_period, 0);
        assert_eq!(args(&["grace_period=3600"]).unwrap().grace_period, 3600);
        assert_eq!(
            args(&["grace_period=604800"]).unwrap().grace_period,
            MAX_GRACE_PERIOD
        );
        for bad in ["grace_period=604801", "grace_period=-1", "grace_period"] {
            assert!(args(&[bad]).is_err(), "{bad} accepted");
        }
        let err = args(&["grace_period=60", "forward_pass"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("forward_pass cannot be combined"), "{err}");
        assert!(args(&["grace_period=0", "forward_pass"]).is_ok());
        let from_file = Options::from_config_text("grace_period = 900\n", Path::new("/c")).unwrap();
        assert_eq!(from_file.grace_period, 900);
    }

    #[test]
    fn try_first_pass_with_use_first_pass_is_refused_in_either_order_or_source() {
        for list in [
            &["try_first_pass", "use_first_pass"][..],
            &["use_first_pass", "try_first_pass"][..],
        ] {
            let err = args(list).unwrap_err().to_string();
            assert!(err.contains("contradict"), "{list:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::write(&config, "try_first_pass = true\n").unwrap();
        let config_arg = format!("config={}", config.display());
        let err = Options::from_module_args(&[config_arg.as_str(), "use_first_pass"]).unwrap_err();
        assert!(err.to_string().contains("contradict"), "{err}");
        // Turning the file's choice off for one service and picking the other is fine.
        let options = Options::from_module_args(&[
            config_arg.as_str(),
            "try_first_pass=false",
            "use_first_pass",
        ])
        .unwrap();
        assert_eq!(options.first_pass, FirstPass::Use);
    }

    #[test]
    fn flags_from_the_config_file_can_be_turned_off_by_a_module_argument() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::write(&config, "nullok = true\necho = true\ndebug = true\n").unwrap();
        let config_arg = format!("config={}", config.display());
        let on = Options::from_module_args(&[config_arg.as_str()]).unwrap();
        assert!(on.nullok && on.echo && on.debug);
        let off = Options::from_module_args(&[
            config_arg.as_str(),
            "nullok=false",
            "echo=0",
            "debug=false",
        ])
        .unwrap();
        assert!(!off.nullok && !off.echo && !off.debug);
        let again = args(&["nullok=true", "forward_pass=1", "echo=1"]).unwrap();
        assert!(again.nullok && again.forward_pass && again.echo);
        let err = args(&["nullok=off"]).unwrap_err().to_string();
        assert!(err.contains("true or false"), "{err}");
    }

    #[test]
    fn config_file_is_read_and_arguments_win() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        let mut file = fs::File::create(&config).unwrap();
        writeln!(
            file,
            "secret = \"/srv/totp/%u.toml\"\nwindow = 2\nnullok = true"
        )
        .unwrap();
        let options =
            Options::from_module_args(&[format!("config={}", config.display()), "window=0".into()])
                .unwrap();
        assert_eq!(options.secret.as_str(), "/srv/totp/%u.toml");
        assert_eq!(options.window, 0);
        assert!(options.nullok);
    }

    #[test]
    fn bad_config_file_names_the_line_but_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::write(&config, "window = 1\nsecret = \"SUPERSECRET\n").unwrap();
        let err = Options::from_config_file(Some(&config))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SUPERSECRET"), "{err}");
    }

    #[test]
    fn explicit_config_must_exist_but_default_may_not() {
        assert!(Options::from_config_file(Some(Path::new("/nonexistent/pam_totp.conf"))).is_err());
    }

    #[test]
    fn group_writable_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pam_totp.conf");
        fs::write(&config, "").unwrap();
        fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o664)).unwrap();
        let err = Options::from_config_file(Some(&config)).unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    }
}
