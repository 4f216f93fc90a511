//! The `pam-totp` front end: who is asking, the config, then one command. What the
//! commands do to the state is decided in `pam_totp::admin`; this module only asks and
//! tells, and every sentence a person reads is written here (most in [`messages`]).

mod args;
mod commands;
mod doctor;
mod messages;
mod prompt;
mod qr;

pub use args::Args;
use args::Command;
use pam_totp::admin::{self, Actor, Failure};
use pam_totp::config::{DEFAULT_CONFIG, Options};
use pam_totp::log::Priority;
use pam_totp::privileges::PasswdDatabase;
use pam_totp::store::Store;
use pam_totp::store::fs::FsStore;
use pam_totp::store::helper::HelperStore;
use std::fmt;
use std::io;

pub const EXIT_FAILED: u8 = 1;

/// Why a command stopped without doing its job. Each `Display`s as one line for the
/// person, printed after `pam-totp: `.
#[derive(Debug)]
pub enum CliError {
    Failure(Failure),
    /// Ctrl-C or end of input at a prompt; says what was (not) changed.
    Cancelled(&'static str),
    /// The terminal or standard output failed.
    Io(io::Error),
    /// Anything else the front end refuses, with the fix.
    Refused(String),
    /// Failed, and the command's own output already said why (doctor's summary): exit 1
    /// without a second line.
    AlreadyReported,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Failure(failure) => write!(f, "{}", messages::Says(failure)),
            CliError::Cancelled(what) => write!(f, "cancelled; {what}"),
            CliError::Io(error) => write!(f, "cannot use the terminal or standard output: {error}"),
            CliError::Refused(why) => f.write_str(why),
            CliError::AlreadyReported => f.write_str("see above"),
        }
    }
}

impl From<Failure> for CliError {
    fn from(failure: Failure) -> Self {
        CliError::Failure(failure)
    }
}

impl From<pam_totp::Error> for CliError {
    fn from(error: pam_totp::Error) -> Self {
        CliError::Failure(error.into())
    }
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> Self {
        CliError::Io(error)
    }
}

/// What every command works with.
pub struct Context {
    pub actor: Actor,
    pub options: Options,
}

pub fn run(args: Args) -> Result<(), CliError> {
    // doctor checks another tree (--root) and must report a broken config, not stop at it:
    // it needs neither the actor nor the options below.
    if let Command::Doctor(doctor) = &args.command {
        return doctor::run(doctor, args.user.as_deref(), args.config.as_deref());
    }
    // Who may act for whom is settled before the config is read.
    let actor = Actor::resolve(nix::unistd::getuid(), args.user.as_deref(), &PasswdDatabase)?;
    let options = Options::from_config_file(args.config.as_deref())?;
    let context = Context { actor, options };
    let (name, changes) = match &args.command {
        Command::Enroll(_) => ("enroll", true),
        Command::Status { .. } => ("status", false),
        Command::RecoveryCodes { .. } => ("recovery-codes", true),
        Command::Disable { .. } => ("disable", true),
        Command::Verify { .. } => ("verify", false),
        Command::Resync { .. } => ("resync", true),
        Command::Unlock { .. } => ("unlock", true),
        Command::Doctor(_) => ("doctor", false),
        Command::Protect { .. } => ("protect", true),
        Command::Import(_) => ("import", true),
        Command::Report { .. } => ("report", false),
    };
    let result = match args.command {
        Command::Enroll(enroll) if through_helper(&context) => {
            commands::protected::enroll(&context, enroll)
        }
        Command::RecoveryCodes {
            count,
            codes_file,
            json,
        } if through_helper(&context) => {
            commands::protected::recovery_codes(&context, count, codes_file.as_deref(), json)
        }
        Command::Protect { all_users } => commands::protected::protect(&context, all_users),
        Command::Enroll(enroll) => commands::enroll(&context, enroll),
        Command::Status { json } => commands::status(&context, json),
        Command::RecoveryCodes {
            count,
            codes_file,
            json,
        } => commands::recovery_codes(&context, count, codes_file.as_deref(), json),
        Command::Disable { json } => commands::disable(&context, json),
        Command::Verify { json } => commands::verify(&context, json),
        Command::Resync { json } => commands::resync(&context, json),
        Command::Unlock { json } => commands::unlock(&context, json),
        Command::Import(import) => commands::import(&context, import),
        Command::Report { names, json } => commands::report(&context, &names, json),
        // Returned above, before the actor and the options.
        Command::Doctor(_) => Ok(String::new()),
    }
    .map_err(|error| match error {
        CliError::Failure(failure) => {
            CliError::Failure(failure.for_caller(&context.actor, &context.options, name))
        }
        other => other,
    });
    // One syslog line for every change, and for everything root does for another user.
    if changes || context.actor.for_other() {
        match &result {
            Ok(what) => messages::audit(&context.actor, Priority::Info, what),
            Err(error) => messages::audit(
                &context.actor,
                Priority::Notice,
                &format!("{name} not done: {error}"),
            ),
        }
    }
    result.map(|_| ())
}

/// With `--json`, a failure as one JSON object on standard output (`{"error": "..."}`),
/// besides the usual line on standard error. Nothing more can be done if it cannot be
/// written.
pub fn json_error(error: &CliError) {
    let object = serde_json::json!({ "error": error.to_string() });
    let _ = commands::out(&format!("{object}\n"));
}

/// Whether this caller reaches the state through the setuid helper: the system config
/// (the only one the helper reads) keeps it in root-owned storage, the caller is not root
/// (root reads it directly), and the helper is installed.
pub(crate) fn through_helper(context: &Context) -> bool {
    admin::root_managed(&context.options)
        && !context.actor.caller.uid.is_root()
        && context.options.config == std::path::Path::new(DEFAULT_CONFIG)
        && HelperStore::installed()
}

/// The store of the context's target (the same file and keys the module reads), or the
/// helper in front of it ([`through_helper`]).
fn store(context: &Context) -> Result<Box<dyn Store>, CliError> {
    if through_helper(context) {
        return Ok(Box::new(HelperStore::connect()?));
    }
    // A repair made on the way is said, as the module's log line says it for a login.
    let actor = context.actor.clone();
    let store = FsStore::for_account(&context.options, &context.actor.target)?.report_repairs(
        move |note| {
            messages::audit(&actor, Priority::Notice, &format!("repaired: {note}"));
            let _ = commands::note(&format!("pam-totp: notice: repaired {note}\n"));
        },
    );
    Ok(Box::new(store))
}

/// The time now: the front end's to read (`pam_totp::clock`).
fn now() -> Result<u64, CliError> {
    Ok(pam_totp::clock::now()?)
}
