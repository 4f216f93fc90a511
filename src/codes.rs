//! Checking codes and making new ones: TOTP (RFC 6238) through totp-rs, recovery codes as
//! argon2id hashes.

use crate::error::{Error, Result};
use crate::secret::{SecretString, random_bytes};
use crate::state::{HashAlgorithm, RecoveryCodeHash, State};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

/// Recovery-code alphabet: no 0/O, 1/I/L, so a code read off paper is typed right.
pub const RECOVERY_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const GROUP: usize = 4;
/// Five groups of four: the first is the id, the other sixteen characters (79 bits) exist
/// only as an argon2id hash.
const RECOVERY_GROUPS: usize = 5;
const RECOVERY_LEN: usize = GROUP * RECOVERY_GROUPS;

/// Argon2id cost for new recovery codes (OWASP's 19 MiB, 2 passes, 1 lane). The codes carry
/// 79 random bits, so the hash guards against offline guessing with room to spare.
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;
const ARGON2_OUTPUT: usize = 32;
/// The most a state file may ask for: a hostile file must not make a login allocate
/// gigabytes or spin for minutes.
const MAX_M_KIB: u32 = 64 * 1024;
const MAX_T: u32 = 8;
const MAX_P: u32 = 4;
const MAX_SALT: usize = 64;
const MAX_OUTPUT: usize = 64;

/// What the user typed, after normalization.
pub enum Entered {
    Totp(SecretString),
    Recovery {
        id: String,
        code: SecretString,
    },
    /// Neither shape: counts as a wrong code.
    Malformed,
    Empty,
}

/// Sorts an answer into a TOTP code (`digits` digits) or a recovery code (case, spaces and
/// dashes ignored). The two shapes never overlap: a recovery code has 20 characters.
pub fn classify(input: &str, digits: u8) -> Entered {
    let normalized: Zeroizing<String> = Zeroizing::new(
        input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if normalized.is_empty() {
        return Entered::Empty;
    }
    if normalized.len() == usize::from(digits) && normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Entered::Totp(SecretString::new(normalized.as_str().to_owned()));
    }
    if normalized.len() == RECOVERY_LEN
        && normalized.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
    {
        return Entered::Recovery {
            id: normalized[..GROUP].to_owned(),
            code: SecretString::new(normalized.as_str().to_owned()),
        };
    }
    Entered::Malformed
}

/// Normalizes a base32 secret typed or pasted by a person: any case, spaces, dashes and
/// padding allowed. `None` if it is not base32.
pub fn normalize_secret(input: &str) -> Option<SecretString> {
    let normalized: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = SecretString::new(normalized);
    decode_secret(&secret)?;
    Some(secret)
}

pub fn decode_secret(base32: &SecretString) -> Option<Secret> {
    if base32.is_empty() {
        return None;
    }
    Secret::try_from_base32(base32.expose()).ok()
}

/// A new 160-bit TOTP secret from the OS generator, in base32.
pub fn new_secret() -> Result<SecretString> {
    let bytes = random_bytes::<20>().map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(SecretString::new(Secret::new_stack(*bytes).to_base32()))
}

/// The TOTP generator for a state. Skew 0: the window is ours to walk (see
/// [`find_totp_step`]), so replayed steps are skipped before comparing.
pub fn totp(state: &State) -> Result<Totp> {
    let secret = decode_secret(&state.secret)
        .ok_or_else(|| Error::Internal("secret is not base32".into()))?;
    let algorithm = match state.algorithm {
        HashAlgorithm::SHA1 => Algorithm::SHA1,
        HashAlgorithm::SHA256 => Algorithm::SHA256,
        HashAlgorithm::SHA512 => Algorithm::SHA512,
    };
    // build_noncompliant: totp-rs insists on 128-bit secrets, but secrets imported from
    // other systems are often 80 bits. Digits and period were validated with the state.
    Ok(Builder::new()
        .with_secret(secret)
        .with_algorithm(algorithm)
        .with_digits(state.digits)
        .with_step_duration(state.period)
        .with_skew(0)
        .build_noncompliant())
}

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

/// Finds the step in `now ± window` whose code is `code`. Every candidate is compared
/// (in constant time, by totp-rs) so the time taken does not depend on which one matched.
pub fn find_totp_step(
    state: &State,
    code: &SecretString,
    now: u64,
    window: u32,
) -> Result<TotpMatch> {
    let totp = totp(state)?;
    // Options are checked when parsed; the cap here keeps any caller from asking for
    // billions of HMACs.
    let window = window.min(crate::options::MAX_WINDOW);
    let current = time_step(now, state.period);
    let first = current.saturating_sub(u64::from(window));
    let last = current.saturating_add(u64::from(window));
    let mut fresh = None;
    let mut replayed = false;
    for step in first..=last {
        let matches = step
            .checked_mul(state.period)
            .and_then(|time| totp.check(code.expose(), time))
            .is_some();
        let is_fresh = state.last_step.is_none_or(|last_step| step > last_step);
        if matches && is_fresh {
            fresh = fresh.or(Some(step));
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

/// Generates the code for a time (for the CLI's self-check and tests).
pub fn code_at(state: &State, time: u64) -> Result<SecretString> {
    Ok(SecretString::new(totp(state)?.generate(time).to_string()))
}

pub fn is_recovery_id(id: &str) -> bool {
    id.len() == GROUP && id.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
}

/// `count` new recovery codes: the readable codes (to show once) and their hashes (to store).
pub fn new_recovery_codes(count: usize) -> Result<(Vec<SecretString>, Vec<RecoveryCodeHash>)> {
    let mut shown = Vec::with_capacity(count);
    let mut stored: Vec<RecoveryCodeHash> = Vec::with_capacity(count);
    while stored.len() < count {
        let code = random_recovery_code()?;
        let id = code.expose()[..GROUP].to_owned();
        if stored.iter().any(|c| c.id == id) {
            continue; // ids pick the hash to check, so they must be unique
        }
        let hash = hash_recovery_code(&code)?;
        shown.push(format_recovery_code(&code));
        stored.push(RecoveryCodeHash { id, hash });
    }
    Ok((shown, stored))
}

fn random_recovery_code() -> Result<SecretString> {
    let mut code = String::with_capacity(RECOVERY_LEN);
    while code.len() < RECOVERY_LEN {
        let bytes = random_bytes::<32>().map_err(|e| Error::Internal(format!("random: {e}")))?;
        // Rejection sampling keeps every character equally likely: 248 = 8 × 31.
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if code.len() < RECOVERY_LEN {
                code.push(char::from(RECOVERY_ALPHABET[usize::from(b) % 31]));
            }
        }
    }
    Ok(SecretString::new(code))
}

fn format_recovery_code(code: &SecretString) -> SecretString {
    let groups: Vec<&str> = (0..RECOVERY_GROUPS)
        .map(|i| &code.expose()[i * GROUP..(i + 1) * GROUP])
        .collect();
    SecretString::new(groups.join("-"))
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(ARGON2_OUTPUT))
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

fn hash_recovery_code(code: &SecretString) -> Result<String> {
    let salt = random_bytes::<16>().map_err(|e| Error::Internal(format!("random: {e}")))?;
    argon2()?
        .hash_password_with_salt(code.expose().as_bytes(), salt.as_ref())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

/// Checks that a stored hash is argon2id with parameters under our caps.
pub fn check_recovery_hash(phc: &str) -> std::result::Result<(), String> {
    parse_capped(phc).map(|_| ())
}

fn parse_capped(phc: &str) -> std::result::Result<PasswordHash, String> {
    let hash = PasswordHash::new(phc).map_err(|_| "hash is not a PHC string".to_string())?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err("hash is not argon2id".into());
    }
    let params = Params::try_from(&hash).map_err(|_| "bad argon2 parameters".to_string())?;
    if params.m_cost() > MAX_M_KIB || params.t_cost() > MAX_T || params.p_cost() > MAX_P {
        return Err(format!(
            "argon2 cost above the cap (m ≤ {MAX_M_KIB} KiB, t ≤ {MAX_T}, p ≤ {MAX_P})"
        ));
    }
    let salt_ok = hash.salt.as_ref().is_some_and(|s| s.len() <= MAX_SALT);
    let output_ok = hash
        .hash
        .as_ref()
        .is_some_and(|h| (16..=MAX_OUTPUT).contains(&h.len()));
    if !salt_ok || !output_ok {
        return Err("argon2 salt or output length out of range".into());
    }
    Ok(hash)
}

/// The index of the stored recovery code that `code` (id + secret) matches. Exactly one
/// argon2 computation whether or not the id exists, so timing does not tell which ids do.
pub fn verify_recovery_code(
    stored: &[RecoveryCodeHash],
    id: &str,
    code: &SecretString,
) -> Result<Option<usize>> {
    let Some(index) = stored.iter().position(|c| c.id == id) else {
        // Unknown id: pay the same cost as a real check.
        let salt = [0u8; 16];
        let _ = argon2()?.hash_password_with_salt(code.expose().as_bytes(), &salt);
        return Ok(None);
    };
    let hash = parse_capped(&stored[index].hash).map_err(Error::Internal)?;
    let verified = Argon2::default()
        .verify_password(code.expose().as_bytes(), &hash)
        .is_ok();
    Ok(verified.then_some(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    /// RFC 6238 Appendix B: the seeds are the ASCII bytes "1234567890" repeated to 20, 32
    /// and 64 bytes; 8 digits.
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
            let base32 = Secret::new(seed.clone().into_boxed_slice()).to_base32();
            let state = State::new(SecretString::new(base32), algorithm, 8, 30, vec![]).unwrap();
            for vector in vectors {
                let expected = [vector.1, vector.2, vector.3][column - 1];
                let code = code_at(&state, vector.0).unwrap();
                assert_eq!(code.expose(), expected, "{algorithm:?} at {}", vector.0);
                let step = find_totp_step(&state, &code, vector.0, 0).unwrap();
                assert_eq!(step, TotpMatch::Fresh(vector.0 / 30));
            }
        }
    }

    fn state() -> State {
        State::new(new_secret().unwrap(), HashAlgorithm::SHA1, 6, 30, vec![]).unwrap()
    }

    #[test]
    fn window_edges() {
        let state = state();
        let now = 1_700_000_000;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let time = (now as i64 + offset * 30) as u64;
            let code = code_at(&state, time).unwrap();
            let found = find_totp_step(&state, &code, now, 1).unwrap();
            assert_eq!(
                matches!(found, TotpMatch::Fresh(_)),
                accepted,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn steps_up_to_the_last_accepted_one_are_refused() {
        let mut state = state();
        let now = 1_700_000_000;
        let code = code_at(&state, now).unwrap();
        state.last_step = Some(time_step(now, 30));
        assert_eq!(
            find_totp_step(&state, &code, now, 1).unwrap(),
            TotpMatch::Replayed
        );
        let next = code_at(&state, now + 30).unwrap();
        assert!(matches!(
            find_totp_step(&state, &next, now, 1).unwrap(),
            TotpMatch::Fresh(_)
        ));
    }

    #[test]
    fn classify_normalizes_recovery_codes() {
        let Entered::Recovery { id, code } = classify(" abcd-efgh jkmn-pqrs-tuvw ", 6) else {
            panic!("not a recovery code")
        };
        assert_eq!(id, "ABCD");
        assert_eq!(code.expose(), "ABCDEFGHJKMNPQRSTUVW");
        assert!(matches!(classify("123456", 6), Entered::Totp(_)));
        assert!(matches!(classify("123 456", 6), Entered::Totp(_)));
        assert!(matches!(classify("12345", 6), Entered::Malformed));
        assert!(matches!(classify("1234567", 6), Entered::Malformed));
        assert!(matches!(classify("   ", 6), Entered::Empty));
        assert!(matches!(
            classify("ABCD-EFGH-JKMN-PQRS-TUV0", 6),
            Entered::Malformed
        ));
    }

    #[test]
    fn recovery_codes_verify_once_each() {
        let (shown, stored) = new_recovery_codes(3).unwrap();
        assert_eq!(shown.len(), 3);
        for (i, code) in shown.iter().enumerate() {
            assert_eq!(code.expose().len(), 24);
            let Entered::Recovery { id, code } = classify(&code.expose().to_lowercase(), 6) else {
                panic!("generated code does not classify")
            };
            assert_eq!(verify_recovery_code(&stored, &id, &code).unwrap(), Some(i));
            assert!(!stored[i].hash.contains(code.expose()));
        }
        let Entered::Recovery { id, code } = classify(
            &shown[0].expose().replace(&shown[0].expose()[5..9], "2222"),
            6,
        ) else {
            panic!()
        };
        assert_eq!(verify_recovery_code(&stored, &id, &code).unwrap(), None);
    }

    #[test]
    fn hostile_argon2_parameters_are_refused() {
        let hostile = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(hostile).unwrap_err().contains("cap"));
        let slow = "$argon2id$v=19$m=1024,t=100000,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(slow).is_err());
        let argon2i = "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(argon2i).is_err());
    }

    #[test]
    fn secrets_are_normalized() {
        let secret = normalize_secret("jbsw y3dp-ehpk 3pxp").unwrap();
        assert_eq!(secret.expose(), "JBSWY3DPEHPK3PXP");
        assert!(normalize_secret("not base32!").is_none());
        assert!(normalize_secret("").is_none());
    }
}
