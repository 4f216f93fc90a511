//! A fast path for reading state files: a strict reader of the one shape of TOML that
//! pam-totp writes (`toml::to_string` of the state's serde structs), feeding the same serde
//! structs. The general TOML parser cost more than the rest of a login's own work (about
//! 120 k instructions per login), and a login reads the same few lines every time.
//!
//! It accepts only a small subset of TOML, each line one of:
//! - `key = value`: a bare key, exactly ` = `, and a decimal integer (no `+`, `_` or
//!   leading zero), a basic string without escapes or control characters, or `[]`;
//! - `[name]` or `[[name]]`: a table or an entry of an array of tables, one level deep;
//! - an empty line;
//!
//! with no comments, no whitespace elsewhere, no duplicate key and the text ending in a
//! newline. Anything else, and any error of the serde struct (a missing or unknown field,
//! a wrong type), gives `None`, and the caller parses the text with the `toml` crate as
//! before: errors, their messages and hand-edited files are the general parser's, and
//! whatever this reader accepts, `toml` reads to the same value (tested below against
//! `toml` on mutations of real files).

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error, MapDeserializer, SeqDeserializer};
use serde::de::{IntoDeserializer, Visitor};

/// `T` read from `text` if `text` is in the subset and has `T`'s shape; `None` otherwise
/// (then parse it with `toml`).
pub(crate) fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Option<T> {
    let root = parse(text)?;
    T::deserialize(Value::Table(root)).ok()
}

type Table<'a> = Vec<(&'a str, Value<'a>)>;

enum Value<'a> {
    Integer(i64),
    /// Borrowed from the text: a secret is never copied here.
    String(&'a str),
    EmptyArray,
    Table(Table<'a>),
    Tables(Vec<Table<'a>>),
}

/// More lines than any file pam-totp writes (100 recovery codes take about 400): the
/// duplicate-key checks below are quadratic, so a long hand-made file goes to `toml`.
const MAX_LINES: usize = 1024;

fn parse(text: &str) -> Option<Table<'_>> {
    let body = text.strip_suffix('\n')?;
    if body.bytes().filter(|&b| b == b'\n').count() >= MAX_LINES {
        return None;
    }
    let mut root: Table = Vec::new();
    // Where `key = value` lines go: the root, or the table (or last array entry) at this
    // index of the root.
    let mut current: Option<usize> = None;
    for line in body.split('\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            bare_key(name)?;
            match root.iter().position(|(key, _)| *key == name) {
                // Only right after the previous entry of the same array: TOML allows
                // more, this reader need not.
                Some(index) if current == Some(index) => match &mut root[index].1 {
                    Value::Tables(tables) => tables.push(Vec::new()),
                    _ => return None,
                },
                Some(_) => return None,
                None => {
                    root.push((name, Value::Tables(vec![Vec::new()])));
                    current = Some(root.len() - 1);
                }
            }
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            bare_key(name)?;
            if root.iter().any(|(key, _)| *key == name) {
                return None;
            }
            root.push((name, Value::Table(Vec::new())));
            current = Some(root.len() - 1);
        } else {
            // A bare key holds no space: the first one starts ` = `.
            let space = line.bytes().position(|b| b == b' ')?;
            let (key, value) = (&line[..space], line[space..].strip_prefix(" = ")?);
            bare_key(key)?;
            let value = parse_value(value)?;
            let table = match current {
                None => &mut root,
                Some(index) => match &mut root[index].1 {
                    Value::Table(table) => table,
                    Value::Tables(tables) => tables.last_mut()?,
                    _ => return None,
                },
            };
            if table.iter().any(|(existing, _)| *existing == key) {
                return None;
            }
            table.push((key, value));
        }
    }
    Some(root)
}

fn bare_key(key: &str) -> Option<()> {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    bare.then_some(())
}

fn parse_value(text: &str) -> Option<Value<'_>> {
    if text == "[]" {
        return Some(Value::EmptyArray);
    }
    if text.starts_with('"') {
        return plain_string(text).map(Value::String);
    }
    decimal(text).map(Value::Integer)
}

/// The contents of a basic string without escapes (`"…"`): what it holds unescaped, with
/// no quote, backslash or ASCII control character (TOML allows the C1 controls; refusing
/// them is needless).
pub(super) fn plain_string(text: &str) -> Option<&str> {
    plain_string_contents(text.strip_prefix('"')?.strip_suffix('"')?)
}

/// `inner` if it can stand between the quotes of such a string as it is.
pub(super) fn plain_string_contents(inner: &str) -> Option<&str> {
    // No early exit: the compiler can then check 32 bytes at a time (the ten hashes are
    // most of a state file's bytes).
    let plain = inner.bytes().fold(true, |ok, b| {
        ok & (b != b'"') & (b != b'\\') & (b >= 0x20) & (b != 0x7f)
    });
    plain.then_some(inner)
}

/// A decimal integer as TOML writes it: no `+`, `_` or leading zero.
pub(super) fn decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let decimal = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !decimal {
        return None;
    }
    text.parse::<i64>().ok()
}

impl<'de> serde::Deserializer<'de> for Value<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Integer(n) => visitor.visit_i64(n),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::EmptyArray => {
                visitor.visit_seq(SeqDeserializer::new(std::iter::empty::<Value<'de>>()))
            }
            Value::Table(table) => visitor.visit_map(MapDeserializer::new(table.into_iter())),
            Value::Tables(tables) => {
                visitor.visit_seq(SeqDeserializer::new(tables.into_iter().map(Value::Table)))
            }
        }
    }

    /// A key that is present is `Some`; a missing one never gets here (serde's default).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    /// Unit variants from their name, as TOML stores them (`algorithm = "SHA1"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for Value<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests;
