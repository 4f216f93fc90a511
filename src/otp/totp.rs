//! TOTP (RFC 6238): the code of a time step, and which step of a window a typed code
//! belongs to. A TOTP code is the HOTP code (RFC 4226) of the time step, so both go
//! through one keyed HMAC ([`KeyedMac`]).

use super::hotp::KeyedMac;
use super::{MAX_WINDOW, OtpParams};
use crate::error::Result;
use crate::secret::SecretString;

pub fn time_step(now: u64, period: u64) -> u64 {
    now / period
}

/// How a TOTP code compares with the codes of the steps in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpMatch {
    /// The code of this step, which comes after the last accepted one.
    Fresh(u64),
    /// The code of a step at or before the last accepted one: used already.
    Replayed,
    NoMatch,
}

/// Finds the step in `now ± window` whose code is `code`; steps up to `last_step` are
/// used already. Every candidate is compared, in constant time, so the time taken does not
/// depend on which one matched.
pub fn find_totp_step(
    secret: &SecretString,
    params: OtpParams,
    last_step: Option<u64>,
    code: &SecretString,
    now: u64,
    window: u32,
) -> Result<TotpMatch> {
    let mac = KeyedMac::new(secret, params.algorithm)?;
    // Options are checked when parsed; the cap here keeps any caller from asking for
    // billions of HMACs.
    let window = window.min(MAX_WINDOW);
    let current = time_step(now, params.period);
    let first = current.saturating_sub(u64::from(window));
    let last = current.saturating_add(u64::from(window));
    let mut fresh = None;
    let mut replayed = false;
    for step in first..=last {
        let matches = mac.matches(step, params.digits, code);
        let is_fresh = last_step.is_none_or(|last_step| step > last_step);
        if matches && is_fresh {
            // The latest: a code that matches two fresh steps (a one-in-a-million
            // coincidence) must not be accepted again for the later one.
            fresh = Some(step);
        } else if matches {
            replayed = true;
        }
    }
    Ok(match (fresh, replayed) {
        (Some(step), _) => TotpMatch::Fresh(step),
        (None, true) => TotpMatch::Replayed,
        (None, false) => TotpMatch::NoMatch,
    })
}

/// How many HMACs [`find_totp_step`] computes for `window` (away from the ends of time):
/// what the login's decoy must cost at least.
pub fn hmacs_per_check(window: u32) -> u64 {
    2 * u64::from(window.min(MAX_WINDOW)) + 1
}

/// Generates the code for a time (for the CLI's self-check and tests).
pub fn code_at(secret: &SecretString, params: OtpParams, time: u64) -> Result<SecretString> {
    let mac = KeyedMac::new(secret, params.algorithm)?;
    let step = time_step(time, params.period);
    Ok(SecretString::new(
        mac.code(step, params.digits).as_str().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;
    use crate::otp::new_secret;
    use totp_rs::Secret;

    fn params(algorithm: HashAlgorithm, digits: u8) -> OtpParams {
        OtpParams {
            algorithm,
            digits,
            period: 30,
        }
    }

    /// RFC 6238 Appendix B: the seeds are the ASCII bytes "1234567890" repeated to 20, 32
    /// and 64 bytes; 8 digits.
    #[test]
    fn a_check_costs_the_counted_hmacs() {
        use crate::otp::hmac_count;
        let secret = new_secret().unwrap();
        for window in [0, 1, 3, MAX_WINDOW, MAX_WINDOW + 5] {
            hmac_count::take();
            let code = SecretString::new("000000".into());
            let p = params(HashAlgorithm::SHA1, 6);
            let _ = find_totp_step(&secret, p, None, &code, 1_700_000_000, window).unwrap();
            assert_eq!(hmac_count::take(), hmacs_per_check(window), "{window}");
        }
    }

    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (algorithm, seed, column) in [
            (HashAlgorithm::SHA1, &sha1, 1),
            (HashAlgorithm::SHA256, &sha256, 2),
            (HashAlgorithm::SHA512, &sha512, 3),
        ] {
            let secret =
                SecretString::new(Secret::new(seed.clone().into_boxed_slice()).to_base32());
            let params = params(algorithm, 8);
            for vector in vectors {
                let expected = [vector.1, vector.2, vector.3][column - 1];
                let code = code_at(&secret, params, vector.0).unwrap();
                assert_eq!(code.expose(), expected, "{algorithm:?} at {}", vector.0);
                let step = find_totp_step(&secret, params, None, &code, vector.0, 0).unwrap();
                assert_eq!(step, TotpMatch::Fresh(vector.0 / 30));
            }
        }
    }

    #[test]
    fn window_edges() {
        let secret = new_secret().unwrap();
        let params = params(HashAlgorithm::SHA1, 6);
        let now = 1_700_000_000;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let time = (now as i64 + offset * 30) as u64;
            let code = code_at(&secret, params, time).unwrap();
            let found = find_totp_step(&secret, params, None, &code, now, 1).unwrap();
            assert_eq!(
                matches!(found, TotpMatch::Fresh(_)),
                accepted,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn steps_up_to_the_last_accepted_one_are_refused() {
        let secret = new_secret().unwrap();
        let params = params(HashAlgorithm::SHA1, 6);
        let now = 1_700_000_000;
        let code = code_at(&secret, params, now).unwrap();
        let last_step = Some(time_step(now, 30));
        assert_eq!(
            find_totp_step(&secret, params, last_step, &code, now, 1).unwrap(),
            TotpMatch::Replayed
        );
        let next = code_at(&secret, params, now + 30).unwrap();
        assert!(matches!(
            find_totp_step(&secret, params, last_step, &next, now, 1).unwrap(),
            TotpMatch::Fresh(_)
        ));
    }

    #[test]
    fn the_window_is_capped() {
        let secret = new_secret().unwrap();
        let params = params(HashAlgorithm::SHA1, 6);
        let now = 1_700_000_000;
        let far = code_at(&secret, params, now + 30 * u64::from(MAX_WINDOW + 1)).unwrap();
        let found = find_totp_step(&secret, params, None, &far, now, u32::MAX).unwrap();
        assert_ne!(
            found,
            TotpMatch::Fresh(now / 30 + u64::from(MAX_WINDOW) + 1)
        );
    }
}
