//! What the admin configured: module arguments and the system-wide config file
//! ([`options`]), the `secret=` path template parsed once ([`template`]), and reading the
//! config file safely ([`file`]).

mod file;
pub mod options;
pub mod template;

pub use options::{
    DEFAULT_CONFIG, DEFAULT_PROMPT, DEFAULT_STATE_PATH, FirstPass, NullokUntil, Options,
};
pub use template::SecretPath;
