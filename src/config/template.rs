//! The `secret=` template, parsed once into a [`SecretPath`]: `~/…` or `%h/…` below the home
//! from the passwd database, or an absolute path with `%u` for root-owned storage.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a user's state lives, as the admin wrote it, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPath {
    text: String,
    base: Base,
    /// The components below the base, each a sequence of pieces.
    components: Vec<Vec<Piece>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    Home,
    /// The admin's fixed prefix: the directories before the first one with a '%'.
    Fixed(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    User,
}

/// A template for one user: the anchor (opened as given), the directories below it (each
/// opened without following links), and the file name.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) anchor: PathBuf,
    pub(crate) dirs: Vec<OsString>,
    pub(crate) file: OsString,
    pub(crate) in_home: bool,
}

/// Prints as the text the admin wrote (the `debug` option logs it).
impl fmt::Debug for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl SecretPath {
    pub fn parse(template: &str) -> Result<SecretPath> {
        let bad = |why: &str| Error::BadOption(format!("secret={template}: {why}"));
        let (base, rest) = if let Some(rest) = template
            .strip_prefix("~/")
            .or_else(|| template.strip_prefix("%h/"))
        {
            (Base::Home, rest)
        } else if template.starts_with('/') {
            let cut = match template.find('%') {
                Some(percent) => template[..percent].rfind('/').unwrap_or(0),
                None => return Err(bad("an absolute path must contain %u, one file per user")),
            };
            let anchor = if cut == 0 { "/" } else { &template[..cut] };
            // The fixed prefix too: `/var/lib/../tmp/%u` is a mistake, whatever it resolves to.
            if cut > 0 {
                for part in template[1..cut].split('/') {
                    check_written_component(part).map_err(&bad)?;
                }
            }
            (Base::Fixed(PathBuf::from(anchor)), &template[cut + 1..])
        } else {
            return Err(bad("must start with ~/, %h/ or /"));
        };
        let mut components = Vec::new();
        for part in rest.split('/') {
            check_written_component(part).map_err(&bad)?;
            let pieces = pieces(part).map_err(&bad)?;
            // The same check as for a real user, once: a component without %u is its
            // text (one piece: `pieces` joins adjacent text), and one with %u is never
            // empty, "." or "..".
            if !pieces.contains(&Piece::User) {
                let text = match pieces.as_slice() {
                    [Piece::Text(text)] => text.as_str(),
                    _ => "",
                };
                check_component(text).map_err(&bad)?;
            }
            components.push(pieces);
        }
        // `%%u` is a literal "%u": without a real %u every user would share one file, and
        // one user's code would log in another.
        if base != Base::Home && !components.iter().flatten().any(|p| *p == Piece::User) {
            return Err(bad(
                "an absolute path must contain %u (not %%u, which is a literal %u), one file per user",
            ));
        }
        Ok(SecretPath {
            text: template.to_owned(),
            base,
            components,
        })
    }

    /// The text the admin wrote.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the state is kept below the users' homes (otherwise: storage root manages).
    pub fn in_home(&self) -> bool {
        self.base == Base::Home
    }

    /// The path for one user.
    pub(crate) fn resolve(&self, user: &str, home: &Path) -> Result<Resolved> {
        let bad = |why: &str| Error::BadOption(format!("secret={}: {why}", self.text));
        let mut dirs = Vec::with_capacity(self.components.len());
        for pieces in &self.components {
            let expanded = expand(pieces, user);
            check_component(&expanded).map_err(&bad)?;
            dirs.push(OsString::from(expanded));
        }
        let file = dirs.pop().ok_or_else(|| bad("no file name"))?;
        let (anchor, in_home) = match &self.base {
            Base::Home => (home.to_owned(), true),
            Base::Fixed(anchor) => (anchor.clone(), false),
        };
        Ok(Resolved {
            anchor,
            dirs,
            file,
            in_home,
        })
    }
}

fn pieces(part: &str) -> std::result::Result<Vec<Piece>, &'static str> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    // Plain runs are copied whole, not a character at a time: the module parses the
    // template at every login.
    let mut rest = part;
    while let Some(percent) = rest.find('%') {
        text.push_str(&rest[..percent]);
        match rest.as_bytes().get(percent + 1) {
            Some(b'u') => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::User);
            }
            Some(b'%') => text.push('%'),
            _ => return Err("only %u and %% may appear after the start (%h only first)"),
        }
        // Past the '%' and the ASCII character after it.
        rest = &rest[percent + 2..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn expand(pieces: &[Piece], user: &str) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.as_str(),
            Piece::User => user,
        })
        .collect()
}

/// A component as the admin wrote it, before `%u` is expanded: each mistake gets its own
/// sentence.
fn check_written_component(part: &str) -> std::result::Result<(), &'static str> {
    match part {
        "" => Err("an empty component (// or a trailing /) is not allowed"),
        "." => Err("a . component is not allowed"),
        ".." => Err("a .. component is not allowed"),
        // Only literal percent signs: certainly a mistyped %u, never a name anyone means.
        _ if part.len().is_multiple_of(2) && part.bytes().all(|b| b == b'%') => {
            Err("a component of only %% (a literal %) is not allowed; did you mean %u?")
        }
        _ => Ok(()),
    }
}

fn check_component(expanded: &str) -> std::result::Result<(), &'static str> {
    if expanded.is_empty() || expanded == "." || expanded == ".." {
        return Err("empty, . and .. components are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_resolve_per_user() {
        let home = SecretPath::parse("~/.config/pam-totp/state.toml").unwrap();
        assert!(home.in_home());
        let resolved = home.resolve("alice", Path::new("/home/alice")).unwrap();
        assert_eq!(resolved.anchor, Path::new("/home/alice"));
        assert_eq!(resolved.dirs, [".config", "pam-totp"]);
        assert_eq!(resolved.file, "state.toml");

        let fixed = SecretPath::parse("/var/lib/pam-totp/%u/100%%.toml").unwrap();
        assert!(!fixed.in_home());
        let resolved = fixed.resolve("bob", Path::new("/home/bob")).unwrap();
        assert_eq!(resolved.anchor, Path::new("/var/lib/pam-totp"));
        assert_eq!(resolved.dirs, ["bob"]);
        assert_eq!(resolved.file, "100%.toml");
        assert_eq!(format!("{fixed:?}"), "\"/var/lib/pam-totp/%u/100%%.toml\"");
    }

    #[test]
    fn a_real_percent_u_in_a_directory_or_the_file_name_is_enough() {
        for template in [
            "/var/lib/pam-totp/%u.toml",
            "/var/lib/pam-totp/%u/state.toml",
            "/var/lib/pam-totp/%%u-%u.toml",
            "/%u",
        ] {
            let parsed = SecretPath::parse(template).unwrap();
            let resolved = parsed.resolve("carol", Path::new("/home/carol")).unwrap();
            let mut path = resolved.anchor.clone();
            path.extend(&resolved.dirs);
            path.push(&resolved.file);
            assert!(
                path.to_string_lossy().contains("carol"),
                "{template}: {path:?}"
            );
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (template, why) in [
            ("/var/lib/pam-totp/state.toml", "must contain %u"),
            ("relative/%u", "must start with"),
            ("~/a/%h", "only %u and %%"),
            ("~/a//b", "an empty component"),
            ("~/a/", "an empty component"),
            ("/var/lib//%u", "an empty component"),
            ("~/./b", "a . component"),
            ("~/../b", "a .. component"),
            ("/var/lib/%u/../x", "a .. component"),
            ("/var/lib/%%/%u", "only %%"),
            ("~/%%%%/state.toml", "only %%"),
            ("/var/lib/pam-totp/%%u.toml", "not %%u"),
            ("/var/lib/%%u/state.toml", "not %%u"),
            ("/var/lib/pam-totp/100%%.toml", "must contain %u"),
        ] {
            let err = SecretPath::parse(template).unwrap_err().to_string();
            assert!(err.contains(why), "{template}: {err}");
            assert!(err.contains(&format!("secret={template}")), "{err}");
        }
    }
}
