//! Secrets that are wiped from memory when dropped and never printed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A secret string: a TOTP secret in base32, a typed code, a recovery code, a password.
/// Zeroed on drop; `Debug` prints `[redacted]`; no `Display`.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Takes the bytes of a secret (for example a conversation answer); `None` if not UTF-8.
    pub fn from_utf8(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok().map(|s| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Zeroizing: the intermediate String is wiped once moved from.
        let value = Zeroizing::new(String::deserialize(deserializer)?);
        Ok(Self(value.as_str().to_owned()))
    }
}

/// Bytes that may hold a secret (a state file's text), wiped when dropped, spare capacity
/// included. Not `Zeroizing<Vec<u8>>`: its byte-at-a-time volatile writes cost about 6 k
/// instructions a login for the enrollment file (1.5 KB, read twice); `explicit_bzero`
/// clears it at memset speed ([`sys::wipe_allocation`](crate::sys::wipe_allocation)).
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn with_capacity(capacity: usize) -> SecretBytes {
        SecretBytes(Vec::with_capacity(capacity))
    }

    /// To fill it. A reallocation would leave the old buffer unwiped: size it first.
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl std::ops::Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        #[cfg(test)]
        wipe_count::add_one();
        crate::sys::wipe_allocation(&mut self.0);
    }
}

// Test builds count the wipes of dropped bytes (what the wipe leaves is tested in `sys`).
#[cfg(test)]
crate::test_counter::per_thread_counter!(wipe_count);

/// Never prints the bytes.
impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// Random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, getrandom::Error> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bytes_are_wiped_when_dropped_and_never_shown() {
        let mut bytes = SecretBytes::with_capacity(16);
        bytes.as_mut_vec().extend_from_slice(b"JBSWY3DPEHPK3PXP");
        assert_eq!(format!("{bytes:?}"), "SecretBytes(16 bytes)");
        wipe_count::take();
        drop(bytes);
        assert_eq!(wipe_count::take(), 1);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretString::new("JBSWY3DPEHPK3PXP".into());
        assert!(!format!("{secret:?}").contains("JBSW"));
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<20>().unwrap();
        let b = random_bytes::<20>().unwrap();
        assert_ne!(*a, *b);
    }
}
