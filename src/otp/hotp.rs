//! HOTP (RFC 4226): the code of a counter value, and which counter of a look-ahead window a
//! typed code belongs to. The stored counter is the next one a code may come from: a code
//! of any counter before it was used already (or skipped), and is never accepted again.

use super::{HashAlgorithm, OtpParams, decode_secret};
use crate::error::{Error, Result};
use crate::secret::SecretString;
use hmac::{Hmac, KeyInit, Mac};
use zeroize::{Zeroize, Zeroizing};

/// The login's look-ahead when `hotp_window=` is not set: ten presses of the button that
/// never reached a login are forgiven.
pub const DEFAULT_HOTP_WINDOW: u32 = 10;
/// The largest `hotp_window=`: every counter in the window is one more code a guess may
/// hit (101 of 10^6 for 6 digits), so a token pressed more often than this needs `resync`.
pub const MAX_HOTP_WINDOW: u32 = 100;
/// How far past the stored counter `resync` looks for the two consecutive codes. Two codes
/// in a row make a false match about 1000 / 10^12 likely for 6 digits.
pub const RESYNC_WINDOW: u32 = 1000;
/// How many counters before the stored one are compared to tell a replayed code from a
/// wrong one (the words in the log); refused either way.
const REPLAY_LOOKBACK: u64 = 10;

/// How an HOTP code compares with the codes of the counters around the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotpMatch {
    /// The code of this counter, at or after the stored one: store it + 1.
    Fresh(u64),
    /// The code of a counter before the stored one: used already.
    Replayed,
    NoMatch,
}

/// The HMAC of one secret, keyed once: the key's inner and outer pads are hashed here, and
/// each counter then costs only its own two blocks, half of what keying anew for every
/// counter cost (a login compares 3 to 111 counters). Wiped when dropped (the `zeroize`
/// features of hmac, sha1 and sha2).
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    /// The HMAC of the base32 `secret` with `algorithm`.
    pub(crate) fn new(secret: &SecretString, algorithm: HashAlgorithm) -> Result<KeyedMac> {
        let key = key(secret)?;
        let bad = |e: hmac::digest::InvalidLength| Error::Internal(format!("hmac: {e}"));
        Ok(match algorithm {
            HashAlgorithm::SHA1 => KeyedMac::Sha1(KeyInit::new_from_slice(&key).map_err(bad)?),
            HashAlgorithm::SHA256 => KeyedMac::Sha256(KeyInit::new_from_slice(&key).map_err(bad)?),
            HashAlgorithm::SHA512 => KeyedMac::Sha512(KeyInit::new_from_slice(&key).map_err(bad)?),
        })
    }

    /// The RFC 4226 value of `counter`: HMAC of the 8-byte big-endian counter, then dynamic
    /// truncation to 31 bits. The digest is wiped.
    pub(crate) fn value(&self, counter: u64) -> u32 {
        #[cfg(test)]
        super::hmac_count::add_one();
        fn truncated<M: Mac + Clone>(keyed: &M, counter: u64) -> u32 {
            let mut mac = keyed.clone();
            mac.update(&counter.to_be_bytes());
            let mut digest = mac.finalize().into_bytes();
            // Every digest is at least 20 bytes and the offset at most 15: in range.
            let offset = usize::from(digest[digest.len() - 1] & 0x0f);
            let value = u32::from_be_bytes([
                digest[offset] & 0x7f,
                digest[offset + 1],
                digest[offset + 2],
                digest[offset + 3],
            ]);
            digest[..].zeroize();
            value
        }
        match self {
            KeyedMac::Sha1(mac) => truncated(mac, counter),
            KeyedMac::Sha256(mac) => truncated(mac, counter),
            KeyedMac::Sha512(mac) => truncated(mac, counter),
        }
    }

    /// The code of `counter`, `digits` long.
    pub(crate) fn code(&self, counter: u64, digits: u8) -> Zeroizing<String> {
        format_code(self.value(counter), digits)
    }

    /// Whether `code` is the code of `counter`. Constant time for equal lengths; the
    /// length (digits) is public.
    pub(crate) fn matches(&self, counter: u64, digits: u8, code: &SecretString) -> bool {
        let expected = self.code(counter, digits);
        constant_time_eq::constant_time_eq(expected.as_bytes(), code.expose().as_bytes())
    }
}

/// The decoded key, wiped when dropped.
fn key(secret: &SecretString) -> Result<Zeroizing<Vec<u8>>> {
    let secret =
        decode_secret(secret).ok_or_else(|| Error::Internal("secret is not base32".into()))?;
    Ok(Zeroizing::new(secret.as_ref().to_vec()))
}

fn format_code(value: u32, digits: u8) -> Zeroizing<String> {
    let modulus = 10u32.pow(u32::from(digits));
    Zeroizing::new(format!(
        "{:0width$}",
        value % modulus,
        width = usize::from(digits)
    ))
}

/// The code of `counter` (enroll's self-check, tests).
pub fn hotp_code(secret: &SecretString, params: OtpParams, counter: u64) -> Result<SecretString> {
    let mac = KeyedMac::new(secret, params.algorithm)?;
    Ok(SecretString::new(
        mac.code(counter, params.digits).as_str().to_owned(),
    ))
}

/// The counters whose codes are compared with `code`: `count` of them from `first`, never
/// past u64::MAX (a counter there cannot be stored + 1, so it is never accepted).
fn matches_in(
    mac: &KeyedMac,
    params: OtpParams,
    code: &SecretString,
    first: u64,
    count: u64,
) -> Vec<u64> {
    let mut found = vec![];
    for counter in (first..first.saturating_add(count)).filter(|c| *c < u64::MAX) {
        // Every candidate is compared, so the time taken does not tell which one matched.
        if mac.matches(counter, params.digits, code) {
            found.push(counter);
        }
    }
    found
}

/// Finds the counter in `next ..= next + window` whose code is `code`; counters before
/// `next` are used already. The window is capped at [`MAX_HOTP_WINDOW`] whatever the caller
/// asks.
pub fn find_hotp_counter(
    secret: &SecretString,
    params: OtpParams,
    next: u64,
    code: &SecretString,
    window: u32,
) -> Result<HotpMatch> {
    let mac = KeyedMac::new(secret, params.algorithm)?;
    let window = u64::from(window.min(MAX_HOTP_WINDOW));
    // The earliest fresh match: a later counter that happens to share the code (one in a
    // million) stays usable once this one is passed, and nothing behind is skipped needlessly.
    if let Some(&counter) = matches_in(&mac, params, code, next, window + 1).first() {
        return Ok(HotpMatch::Fresh(counter));
    }
    let behind = next.saturating_sub(REPLAY_LOOKBACK);
    Ok(
        if matches_in(&mac, params, code, behind, next - behind).is_empty() {
            HotpMatch::NoMatch
        } else {
            HotpMatch::Replayed
        },
    )
}

/// How many HMACs [`find_hotp_counter`] computes at most for a wrong code with `window`
/// (the look-ahead, then the look-back for a replay): what the login's decoy must cost at
/// least, so that an HOTP user's refusal takes no longer than an unknown user's.
pub fn hmacs_per_wrong_code(window: u32) -> u64 {
    u64::from(window.min(MAX_HOTP_WINDOW)) + 1 + REPLAY_LOOKBACK
}

/// Compares `code` with the codes of `count` counters of `secret`, as a real check does,
/// and forgets the result: the cost of a check, for the login's decoy.
pub fn compare_decoy(secret: &SecretString, params: OtpParams, code: &SecretString, count: u64) {
    if let Ok(mac) = KeyedMac::new(secret, params.algorithm) {
        let _ = std::hint::black_box(matches_in(&mac, params, code, 0, count));
    }
}

/// `resync`: the counter of `second`, when `first` and `second` are the codes of two
/// consecutive counters in `next ..= next + RESYNC_WINDOW`; `None` otherwise. The caller
/// then stores the result + 1.
pub fn find_resync(
    secret: &SecretString,
    params: OtpParams,
    next: u64,
    first: &SecretString,
    second: &SecretString,
) -> Result<Option<u64>> {
    let mac = KeyedMac::new(secret, params.algorithm)?;
    let count = u64::from(RESYNC_WINDOW) + 1;
    let firsts = matches_in(&mac, params, first, next, count);
    let seconds = matches_in(&mac, params, second, next, count + 1);
    Ok(firsts
        .iter()
        .map(|c| c + 1)
        .find(|c| seconds.contains(c) && *c < u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use totp_rs::Secret;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    fn rfc_secret() -> SecretString {
        SecretString::new(Secret::new(RFC_SEED.to_vec().into_boxed_slice()).to_base32())
    }

    fn params(digits: u8) -> OtpParams {
        OtpParams {
            algorithm: HashAlgorithm::SHA1,
            digits,
            period: 30,
        }
    }

    fn code(text: &str) -> SecretString {
        SecretString::new(text.into())
    }

    /// RFC 4226 appendix D: the truncated values and the 6-digit codes of counters 0..=9.
    #[test]
    fn rfc4226_appendix_d_test_vectors() {
        let truncated: [u32; 10] = [
            1284755224, 1094287082, 137359152, 1726969429, 1640338314, 868254676, 1918287922,
            82162583, 673399871, 645520489,
        ];
        let codes = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        let mac = KeyedMac::new(&rfc_secret(), HashAlgorithm::SHA1).unwrap();
        for counter in 0..10u64 {
            let i = counter as usize;
            assert_eq!(mac.value(counter), truncated[i]);
            assert_eq!(
                hotp_code(&rfc_secret(), params(6), counter)
                    .unwrap()
                    .expose(),
                codes[i],
                "counter {counter}"
            );
        }
    }

    #[test]
    fn a_wrong_code_costs_the_counted_hmacs_and_the_decoy_as_many_as_asked() {
        use crate::otp::hmac_count;
        let secret = rfc_secret();
        for window in [0, 1, 10, MAX_HOTP_WINDOW, MAX_HOTP_WINDOW + 5] {
            hmac_count::take();
            // From counter 20: the whole look-back is in range ("000000" is no code of
            // counters 10..=20+window of this seed).
            let found = find_hotp_counter(&secret, params(6), 20, &code("000000"), window);
            assert_eq!(found.unwrap(), HotpMatch::NoMatch);
            assert_eq!(hmac_count::take(), hmacs_per_wrong_code(window), "{window}");
        }
        compare_decoy(&secret, params(6), &code("000000"), 37);
        assert_eq!(hmac_count::take(), 37);
    }

    #[test]
    fn the_window_runs_from_the_stored_counter_and_is_capped() {
        let secret = rfc_secret();
        let p = params(6);
        // Counter 3's code with 3 stored: fresh; with 4 stored: replayed.
        assert_eq!(
            find_hotp_counter(&secret, p, 3, &code("969429"), 0).unwrap(),
            HotpMatch::Fresh(3)
        );
        assert_eq!(
            find_hotp_counter(&secret, p, 4, &code("969429"), 10).unwrap(),
            HotpMatch::Replayed
        );
        // Counter 9 from 0: inside a window of 9, outside one of 8.
        assert_eq!(
            find_hotp_counter(&secret, p, 0, &code("520489"), 9).unwrap(),
            HotpMatch::Fresh(9)
        );
        assert_eq!(
            find_hotp_counter(&secret, p, 0, &code("520489"), 8).unwrap(),
            HotpMatch::NoMatch
        );
        let far = hotp_code(&secret, p, u64::from(MAX_HOTP_WINDOW) + 1).unwrap();
        assert_eq!(
            find_hotp_counter(&secret, p, 0, &far, u32::MAX).unwrap(),
            HotpMatch::NoMatch
        );
        assert_eq!(
            find_hotp_counter(&secret, p, 0, &code("12345"), 10).unwrap(),
            HotpMatch::NoMatch
        );
    }

    #[test]
    fn the_last_counter_is_never_accepted() {
        let secret = rfc_secret();
        let p = params(6);
        let last = hotp_code(&secret, p, u64::MAX).unwrap();
        assert_ne!(
            find_hotp_counter(&secret, p, u64::MAX - 1, &last, 10).unwrap(),
            HotpMatch::Fresh(u64::MAX)
        );
    }

    #[test]
    fn resync_needs_two_consecutive_codes() {
        let secret = rfc_secret();
        let p = params(8);
        let at = |c| hotp_code(&secret, p, c).unwrap();
        assert_eq!(
            find_resync(&secret, p, 0, &at(700), &at(701)).unwrap(),
            Some(701)
        );
        assert_eq!(
            find_resync(&secret, p, 0, &at(700), &at(702)).unwrap(),
            None
        );
        assert_eq!(
            find_resync(&secret, p, 0, &at(701), &at(700)).unwrap(),
            None
        );
        assert_eq!(find_resync(&secret, p, 10, &at(5), &at(6)).unwrap(), None);
        let beyond = u64::from(RESYNC_WINDOW) + 1;
        assert_eq!(
            find_resync(&secret, p, 0, &at(beyond), &at(beyond + 1)).unwrap(),
            None
        );
        assert_eq!(
            find_resync(&secret, p, 0, &at(beyond - 1), &at(beyond)).unwrap(),
            Some(beyond)
        );
    }

    /// The same codes as `oathtool --hotp` (an implementation we did not write; SHA1 only).
    #[test]
    fn codes_match_oathtool() {
        let secret = crate::otp::new_secret().unwrap();
        for (digits, counter) in [(6, 0u64), (7, 41), (8, 1_000_000)] {
            let out = std::process::Command::new("oathtool")
                .args(["--hotp", "--base32", &format!("--digits={digits}")])
                .arg(format!("--counter={counter}"))
                .arg(secret.expose())
                .output()
                .expect("run oathtool (Debian package oathtool)");
            assert!(out.status.success(), "{out:?}");
            let expected = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                hotp_code(&secret, params(digits), counter)
                    .unwrap()
                    .expose(),
                expected.trim()
            );
        }
    }

    /// TOTP is HOTP of the time step (RFC 6238 section 4): the SHA256 and SHA512 codes agree
    /// with totp-rs, which is checked against RFC 6238's vectors.
    #[test]
    fn sha256_and_sha512_codes_agree_with_totp_of_the_same_step() {
        let secret = crate::otp::new_secret().unwrap();
        for algorithm in [HashAlgorithm::SHA256, HashAlgorithm::SHA512] {
            for (digits, counter) in [(6u8, 1u64), (8, 56_666_666)] {
                let p = OtpParams {
                    algorithm,
                    digits,
                    period: 30,
                };
                assert_eq!(
                    hotp_code(&secret, p, counter).unwrap(),
                    crate::otp::code_at(&secret, p, counter * 30).unwrap(),
                    "{algorithm:?}"
                );
            }
        }
    }
}
