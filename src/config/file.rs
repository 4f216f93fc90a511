//! Reading the config file. It must belong to root (or to whoever runs us) and be writable
//! by nobody else, since it decides where secrets are read from.

use crate::error::{Error, Result};
use crate::safe_fs::{self, Expect, Kind, Owner, ReadFailure, Violation};
use nix::unistd::Uid;
use std::io::{self, ErrorKind};
use std::path::Path;

const MAX_CONFIG_SIZE: u64 = 64 * 1024;

/// The config file's text; `None` when it does not exist and was not named explicitly.
pub(super) fn read_config(path: &Path, explicit: bool) -> Result<Option<String>> {
    let file = match safe_fs::open_trusted_file(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(Error::io(path, "read config file", e)),
    };
    let stat = safe_fs::inspect(&file).map_err(|e| Error::io(path, "read config file", e))?;
    let expect = Expect {
        kind: Kind::RegularFile,
        owner: Owner::RootOr(Uid::effective().as_raw()),
        forbidden_mode: 0o022,
    };
    match safe_fs::check(&stat, &expect) {
        Ok(()) => {}
        // chown/chmod advice only for a regular file of ours: never for /dev/zero or a
        // second name of someone else's file.
        Err(Violation::NotRegular) => {
            return Err(safe_fs::not_regular_refusal(
                path,
                "point config= at a regular file owned by root".into(),
            ));
        }
        Err(Violation::HardLinks { links }) => {
            return Err(safe_fs::hard_links_refusal(path, links));
        }
        Err(Violation::Owner { .. } | Violation::Mode { .. }) => {
            return Err(Error::Unsafe {
                path: path.to_owned(),
                problem: "the config file must be a regular file owned by root and writable only by its owner".into(),
                fix: format!("chown root:root {0} && chmod 644 {0}", path.display()),
            });
        }
    }
    let bytes = match safe_fs::read_capped(file, stat.st_size as u64, MAX_CONFIG_SIZE) {
        Ok(bytes) => bytes,
        Err(ReadFailure::TooLarge) => {
            return Err(Error::BadOption(format!(
                "config file {} is larger than {MAX_CONFIG_SIZE} bytes",
                path.display()
            )));
        }
        Err(ReadFailure::Grew) => {
            return Err(Error::BadOption(format!(
                "config file {} changed while it was read; try again once it is written",
                path.display()
            )));
        }
        Err(ReadFailure::Io(e)) => return Err(Error::io(path, "read config file", e)),
    };
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Ok(Some(text)),
        // The words std's read_to_string uses, which this message has always had.
        Err(_) => Err(Error::io(
            path,
            "read config file",
            io::Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8"),
        )),
    }
}
