//! Recovery codes: single-use codes that stand in for the app. Made from the OS generator,
//! stored only as argon2id hashes (with a non-secret id that picks the one hash to check).

use crate::error::{Error, Result};
use crate::secret::{SecretString, random_bytes};
use crate::sys::MappedBlocks;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Recovery-code alphabet: no 0/O, 1/I/L, so a code read off paper is typed right.
pub const RECOVERY_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters per group, and of the id (the first group).
pub const GROUP: usize = 4;
/// Five groups of four: the first is the id, the other sixteen characters (79 bits) exist
/// only as an argon2id hash.
const RECOVERY_GROUPS: usize = 5;
/// Characters of a code without its dashes.
pub const RECOVERY_LEN: usize = GROUP * RECOVERY_GROUPS;
/// Characters of a code as shown, with its dashes.
pub const RECOVERY_DASHED_LEN: usize = RECOVERY_LEN + RECOVERY_GROUPS - 1;
pub const MAX_RECOVERY_CODES: usize = 100;
/// Digits of a google-authenticator scratch code (imported as a recovery code).
pub const SCRATCH_CODE_LEN: usize = 8;
/// Stored codes that may share an id. Generated codes never do; two imported scratch
/// codes may (their ids are hashes, see [`scratch_code_id`]), and both must stay usable.
/// The cap keeps a hostile state file from making one check cost many argon2 runs.
pub(crate) const MAX_SHARED_ID: usize = 2;

/// Argon2id cost for new recovery codes (OWASP's 19 MiB, 2 passes, 1 lane). The codes carry
/// 79 random bits, so the hash guards against offline guessing with room to spare.
#[cfg(not(fuzzing))]
const ARGON2_M_KIB: u32 = 19 * 1024;
#[cfg(not(fuzzing))]
const ARGON2_T: u32 = 2;
/// Under cargo-fuzz only (`--cfg fuzzing`, never a product build): argon2's cheapest cost,
/// so the `login` target spends its time in the login, not in the decoy hash of an unknown
/// id. Same code path, only these numbers differ (fuzz/README.md).
#[cfg(fuzzing)]
const ARGON2_M_KIB: u32 = 8;
#[cfg(fuzzing)]
const ARGON2_T: u32 = 1;
const ARGON2_P: u32 = 1;
const ARGON2_OUTPUT: usize = 32;
const ARGON2_SALT: usize = 16;
/// How every hash this build writes begins: the PHC string of the parameters above (a
/// unit test holds the two together).
#[cfg(not(fuzzing))]
const WRITTEN_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";
#[cfg(fuzzing)]
const WRITTEN_PREFIX: &str = "$argon2id$v=19$m=8,t=1,p=1$";
/// The most a state file may ask for: a hostile file must not make a login allocate
/// gigabytes or spin for minutes.
const MAX_M_KIB: u32 = 64 * 1024;
const MAX_T: u32 = 8;
const MAX_P: u32 = 4;
const MAX_SALT: usize = 64;
const MAX_OUTPUT: usize = 64;

/// A recovery code as stored: only its argon2id hash, and the non-secret id (the code's
/// first group) that says which hash to check, so a check costs one argon2 verification.
/// Shared strings: a login builds its state from the enrollment twice (before the prompt,
/// then under the lock), and copying ten ids and hashes each time was 40 allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeHash {
    pub id: Arc<str>,
    pub hash: Arc<str>,
}

pub fn is_recovery_id(id: &str) -> bool {
    // A table, not a search of the alphabet per byte: every login checks every stored id.
    const IN_ALPHABET: [bool; 256] = {
        let mut table = [false; 256];
        let mut i = 0;
        while i < RECOVERY_ALPHABET.len() {
            table[RECOVERY_ALPHABET[i] as usize] = true;
            i += 1;
        }
        table
    };
    id.len() == GROUP && id.bytes().all(|b| IN_ALPHABET[usize::from(b)])
}

/// A well-formed id ([`is_recovery_id`]) as a number, for comparing ids cheaply.
pub(crate) fn id_number(id: &str) -> Option<u32> {
    const _: () = assert!(GROUP == 4, "an id is four bytes");
    let bytes: [u8; GROUP] = id.as_bytes().try_into().ok()?;
    is_recovery_id(id).then(|| u32::from_le_bytes(bytes))
}

/// `count` new recovery codes: the readable codes (to show once) and their hashes (to store).
pub fn new_recovery_codes(count: usize) -> Result<(Vec<SecretString>, Vec<RecoveryCodeHash>)> {
    let mut shown = Vec::with_capacity(count);
    let mut stored: Vec<RecoveryCodeHash> = Vec::with_capacity(count);
    while stored.len() < count {
        let code = random_recovery_code()?;
        let id = code.expose()[..GROUP].to_owned();
        if stored.iter().any(|c| *c.id == *id) {
            continue; // ids pick the hash to check, so they must be unique
        }
        let hash = hash_recovery_code(&code)?;
        shown.push(format_recovery_code(&code));
        stored.push(RecoveryCodeHash {
            id: id.into(),
            hash: hash.into(),
        });
    }
    Ok((shown, stored))
}

/// The lookup id of a google-authenticator scratch code (8 digits), which unlike our codes
/// carries no id of its own. It is HMAC-SHA256 of the code keyed with the TOTP secret,
/// mapped to the recovery alphabet: without an id, a typed scratch code would have to be
/// checked against every stored hash (ten argon2 runs per login attempt). The id is no
/// oracle: it is stored beside the secret that keys it, so whoever can read it can compute
/// codes anyway; and the code itself is still checked by its argon2id hash.
pub(crate) fn scratch_code_id(secret: &SecretString, code: &SecretString) -> Result<String> {
    use hmac::{Hmac, KeyInit, Mac};
    let key = crate::otp::decode_secret(secret)
        .ok_or_else(|| Error::Internal("the TOTP secret is not base32".into()))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .map_err(|e| Error::Internal(format!("hmac: {e}")))?;
    mac.update(b"pam-totp scratch code id\0");
    mac.update(code.expose().as_bytes());
    // Not wiped: the digest only gives the id, which is stored in the clear anyway.
    let digest = mac.finalize().into_bytes();
    // 4 of 31 characters from 4 bytes: the slight bias of `% 31` is irrelevant for a
    // lookup id.
    Ok(digest[..GROUP]
        .iter()
        .map(|&b| char::from(RECOVERY_ALPHABET[usize::from(b) % RECOVERY_ALPHABET.len()]))
        .collect())
}

/// Imported scratch codes as stored recovery codes (argon2id hash, id from
/// [`scratch_code_id`]).
pub(crate) fn hash_scratch_codes(
    secret: &SecretString,
    codes: &[SecretString],
) -> Result<Vec<RecoveryCodeHash>> {
    codes
        .iter()
        .map(|code| {
            Ok(RecoveryCodeHash {
                id: scratch_code_id(secret, code)?.into(),
                hash: hash_recovery_code(code)?.into(),
            })
        })
        .collect()
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
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_recovery_code(code: &SecretString) -> Result<String> {
    let salt =
        random_bytes::<ARGON2_SALT>().map_err(|e| Error::Internal(format!("random: {e}")))?;
    let argon2 = argon2()?;
    let mut out = Zeroizing::new([0u8; ARGON2_OUTPUT]);
    if !hash_into(&argon2, code, salt.as_ref(), &mut out[..])? {
        return Err(Error::Internal("argon2: hashing failed".into()));
    }
    let phc = |e: argon2::password_hash::phc::Error| Error::Internal(format!("argon2: {e}"));
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?,
        salt: Some(Salt::new(salt.as_ref()).map_err(phc)?),
        hash: Some(Output::new(&out[..]).map_err(phc)?),
    };
    Ok(hash.to_string())
}

/// argon2 of `code` with `salt` into `out`, its working memory (19 MiB at our cost) from a
/// mapping of its own ([`MappedBlocks`]) rather than the heap. `Ok(false)` when argon2
/// refuses the inputs (a stored salt too short, say): no hash, so no match.
fn hash_into(
    argon2: &Argon2<'_>,
    code: &SecretString,
    salt: &[u8],
    out: &mut [u8],
) -> Result<bool> {
    #[cfg(test)]
    argon2_count::add_one();
    let mut blocks = MappedBlocks::new(argon2.params().block_count())?;
    Ok(argon2
        .hash_password_into_with_memory(code.expose().as_bytes(), salt, out, &mut blocks)
        .is_ok())
}

/// Checks that a stored hash is argon2id with parameters under our caps, cheaply: every
/// login loads every hash, so this reads the PHC string's shape and numbers by hand; the
/// one hash a login verifies is parsed in full ([`parse_capped`]) first.
pub(crate) fn check_recovery_hash(phc: &str) -> std::result::Result<(), String> {
    if is_as_written(phc) {
        return Ok(());
    }
    check_phc_shape(phc)
}

/// The general form of [`check_recovery_hash`]: any argon2id PHC string under the caps.
fn check_phc_shape(phc: &str) -> std::result::Result<(), String> {
    let not_phc = || "hash is not a PHC string".to_string();
    let bad_parameters = || "bad argon2 parameters".to_string();
    let Some(rest) = phc.strip_prefix("$argon2id$") else {
        return Err(if phc.starts_with("$argon2") {
            "hash is not argon2id".into()
        } else {
            not_phc()
        });
    };
    // Split as bytes, not with `str::split`: its searcher's set-up per field cost more than
    // the checks themselves, ten hashes a login.
    let mut fields = rest.as_bytes().split(|&b| b == b'$');
    let (Some(version), Some(params), Some(salt), Some(output), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(not_phc());
    };
    if version != b"v=19" {
        return Err(bad_parameters());
    }
    let mut costs = params.split(|&b| b == b',');
    // `name=` and 1 to 10 decimal digits (no sign), within u32.
    let mut cost = |name: &[u8]| {
        let value = costs
            .next()
            .and_then(|kv| kv.strip_prefix(name)?.strip_prefix(b"="))
            .filter(|v| (1..=10).contains(&v.len()) && v.iter().all(u8::is_ascii_digit))
            .ok_or_else(bad_parameters)?;
        let n = value
            .iter()
            .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0'));
        u32::try_from(n).map_err(|_| bad_parameters())
    };
    let (m, t, p) = (cost(b"m")?, cost(b"t")?, cost(b"p")?);
    if costs.next().is_some() || m == 0 || t == 0 || p == 0 {
        return Err(bad_parameters());
    }
    if m > MAX_M_KIB || t > MAX_T || p > MAX_P {
        return Err(format!(
            "argon2 cost above the cap (m ≤ {MAX_M_KIB} KiB, t ≤ {MAX_T}, p ≤ {MAX_P})"
        ));
    }
    // Unpadded base64: 4 characters per 3 bytes.
    let b64 = |text: &[u8]| is_base64(text).then_some(text.len() * 3 / 4);
    // The salt is bounded in base64 characters, as the full parse bounds it (PHC's limit).
    let salt_ok = b64(salt).is_some() && (1..=MAX_SALT).contains(&salt.len());
    let output_ok = b64(output).is_some_and(|n| (16..=MAX_OUTPUT).contains(&n));
    if !salt_ok || !output_ok {
        return Err("argon2 salt or output length out of range".into());
    }
    Ok(())
}

/// Whether `phc` has exactly the shape of the hashes this build writes: our parameters
/// (under the caps), then a salt and an output of our sizes in unpadded base64. A tenth of
/// the general check's cost; anything else (an imported or older hash) takes that check.
fn is_as_written(phc: &str) -> bool {
    // Unpadded base64 lengths of the salt and the output.
    const SALT_B64: usize = (ARGON2_SALT * 4).div_ceil(3);
    const OUTPUT_B64: usize = (ARGON2_OUTPUT * 4).div_ceil(3);
    let Some(rest) = phc.strip_prefix(WRITTEN_PREFIX) else {
        return false;
    };
    let rest = rest.as_bytes();
    rest.len() == SALT_B64 + 1 + OUTPUT_B64
        && rest[SALT_B64] == b'$'
        && is_base64(&rest[..SALT_B64])
        && is_base64(&rest[SALT_B64 + 1..])
        // The last character's unused low bits are zero, as the full parse requires.
        && canonical_end(rest[SALT_B64 - 1], ARGON2_SALT)
        && canonical_end(rest[rest.len() - 1], ARGON2_OUTPUT)
}

/// Whether `last`, the final character of `bytes` bytes in unpadded base64, leaves the
/// bits past the data zero (canonical encoding).
fn canonical_end(last: u8, bytes: usize) -> bool {
    let value = match last {
        b'A'..=b'Z' => last - b'A',
        b'a'..=b'z' => last - b'a' + 26,
        b'0'..=b'9' => last - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return false,
    };
    // 1 or 2 bytes left over use 2 or 4 bits of the last character's 6.
    let unused = match bytes % 3 {
        1 => 4,
        2 => 2,
        _ => 0,
    };
    value & ((1 << unused) - 1) == 0
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

/// Whether every byte is in the base64 alphabet (`A-Z a-z 0-9 + /`, no padding). Range
/// tests and no early exit, so that the compiler checks 32 bytes at a time (a table lookup
/// per byte cannot be vectorised): a login checks the ten stored hashes' 650 characters.
fn is_base64(text: &[u8]) -> bool {
    text.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10)
            | (b.wrapping_sub(b'A') < 26)
            | (b.wrapping_sub(b'a') < 26)
            | (b == b'+')
            | (b == b'/'))
    })
}

/// The index of the stored recovery code that `code` (id + secret) matches. One argon2
/// computation whether or not the id exists, so timing does not tell which ids do (two
/// for the rare id shared by two imported scratch codes, [`MAX_SHARED_ID`]).
pub(crate) fn verify_recovery_code(
    stored: &[RecoveryCodeHash],
    id: &str,
    code: &SecretString,
) -> Result<Option<usize>> {
    let mut candidates = stored
        .iter()
        .enumerate()
        .filter(|(_, c)| *c.id == *id)
        .take(MAX_SHARED_ID)
        .peekable();
    if candidates.peek().is_none() {
        // Unknown id: pay the same cost as a real check.
        let mut out = Zeroizing::new([0u8; ARGON2_OUTPUT]);
        // Its result means nothing; only a failure to map the memory is an error.
        let _ = hash_into(&argon2()?, code, &[0u8; 16], &mut out[..])?;
        return Ok(None);
    }
    for (index, stored) in candidates {
        let hash = parse_capped(&stored.hash).map_err(Error::Internal)?;
        if matches_hash(code, &hash)? {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Whether `code` hashes to `hash` (argon2id, capped by [`parse_capped`]), compared in
/// constant time.
fn matches_hash(code: &SecretString, hash: &PasswordHash) -> Result<bool> {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(false);
    };
    // As argon2's own verification reads them: no version is 0x13; one it does not know,
    // or parameters it refuses, hash to nothing, so match nothing.
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return Ok(false),
    };
    let Ok(params) = Params::try_from(hash) else {
        return Ok(false);
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    Ok(hash_into(&argon2, code, &salt[..], &mut out)?
        && constant_time_eq::constant_time_eq(&out, expected.as_bytes()))
}

// Test builds count the argon2 runs each thread makes, so that what a check (or the
// login's decoy) costs is asserted by count, as the HMACs are (`otp::hmac_count`).
#[cfg(test)]
crate::test_counter::per_thread_counter!(argon2_count);

#[cfg(test)]
mod pins;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Entered, classify};

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
    fn scratch_codes_are_found_by_their_keyed_id_and_share_ids_safely() {
        let secret = SecretString::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into());
        let codes: Vec<SecretString> = ["12345678", "87654321"]
            .iter()
            .map(|c| SecretString::new((*c).into()))
            .collect();
        let mut stored = hash_scratch_codes(&secret, &codes).unwrap();
        for (i, code) in codes.iter().enumerate() {
            let id = scratch_code_id(&secret, code).unwrap();
            assert!(is_recovery_id(&id));
            assert_eq!(verify_recovery_code(&stored, &id, code).unwrap(), Some(i));
        }
        // Another secret gives other ids: the id is keyed, not a plain hash of 8 digits.
        let other = SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
        assert_ne!(
            scratch_code_id(&secret, &codes[0]).unwrap(),
            scratch_code_id(&other, &codes[0]).unwrap()
        );
        // Two codes under one id (a collision): both stay checkable.
        stored[1].id = stored[0].id.clone();
        let id = stored[0].id.clone();
        assert_eq!(
            verify_recovery_code(&stored, &id, &codes[0]).unwrap(),
            Some(0)
        );
        assert_eq!(
            verify_recovery_code(&stored, &id, &codes[1]).unwrap(),
            Some(1)
        );
        let wrong = SecretString::new("11111111".into());
        assert_eq!(verify_recovery_code(&stored, &id, &wrong).unwrap(), None);
    }

    /// The cost of new hashes and of the unknown-id decoy, as a product build has it (the
    /// fuzz build alone, `--cfg fuzzing`, lowers it; unit tests never build with that).
    #[test]
    fn argon2_cost_is_owasps_19_mib_two_passes_one_lane() {
        assert_eq!(
            (ARGON2_M_KIB, ARGON2_T, ARGON2_P, ARGON2_OUTPUT),
            (19 * 1024, 2, 1, 32)
        );
        let params = argon2().unwrap().params().clone();
        assert_eq!(
            (
                params.m_cost(),
                params.t_cost(),
                params.p_cost(),
                params.output_len()
            ),
            (19 * 1024, 2, 1, Some(32))
        );
    }

    /// The hash in our own mapping is argon2's: the same bytes as the library's heap
    /// path, a PHC string the library verifies, and the library's strings verify here.
    #[test]
    fn hashes_in_the_mapped_memory_are_the_librarys() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let code = SecretString::new("ABCDEFGHJKMNPQRSTUVW".into());
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, Some(32)).unwrap(),
        );
        let (mut ours, mut theirs) = ([0u8; 32], [0u8; 32]);
        assert!(hash_into(&cheap, &code, b"saltsaltsaltsalt", &mut ours).unwrap());
        cheap
            .hash_password_into(code.expose().as_bytes(), b"saltsaltsaltsalt", &mut theirs)
            .unwrap();
        assert_eq!(ours, theirs);
        // A salt argon2 refuses: no hash, so no match (as the library's verification).
        assert!(!hash_into(&cheap, &code, b"short", &mut ours).unwrap());

        let ours = hash_recovery_code(&code).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(code.expose().as_bytes(), &parsed)
                .is_ok()
        );
        let theirs = cheap
            .hash_password_with_salt(code.expose().as_bytes(), b"saltsaltsaltsalt")
            .unwrap();
        assert!(matches_hash(&code, &theirs).unwrap());
        let wrong = SecretString::new("ABCDEFGHJKMNPQRSTUVX".into());
        assert!(!matches_hash(&wrong, &theirs).unwrap());
        assert!(!matches_hash(&wrong, &parsed).unwrap());
        // A hash without a version field is argon2 0x13, as the library reads it.
        let unversioned = theirs.to_string().replace("$v=19", "");
        let unversioned = PasswordHash::new(&unversioned).unwrap();
        assert_eq!(unversioned.version, None);
        assert!(matches_hash(&code, &unversioned).unwrap());
    }

    #[test]
    fn argon2_memory_is_a_zeroed_writable_mapping_of_the_size_asked() {
        assert!(MappedBlocks::new(0).is_err());
        assert!(MappedBlocks::new(usize::MAX).is_err());
        let mut blocks = MappedBlocks::new(19 * 1024).unwrap();
        let slice = blocks.as_mut();
        assert_eq!(slice.len(), 19 * 1024);
        assert!(slice.iter().all(|b| b.as_ref().iter().all(|&w| w == 0)));
        slice[19 * 1024 - 1].as_mut()[127] = u64::MAX;
        assert_eq!(blocks.as_mut()[19 * 1024 - 1].as_ref()[127], u64::MAX);
    }

    #[test]
    fn the_written_shape_is_what_this_build_writes_and_never_more_than_the_general_check() {
        assert_eq!(
            WRITTEN_PREFIX,
            format!("$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p={ARGON2_P}$")
        );
        let (_, made) = new_recovery_codes(2).unwrap();
        let mut accepted = 0;
        for code in &made {
            assert!(is_as_written(&code.hash), "{}", code.hash);
            let bytes = code.hash.as_bytes();
            let mut mutants = Vec::new();
            for i in 0..bytes.len() {
                let mut deleted = bytes.to_vec();
                deleted.remove(i);
                mutants.push(deleted);
                for c in *b"$=,+/0Aa!-" {
                    let mut replaced = bytes.to_vec();
                    replaced[i] = c;
                    mutants.push(replaced);
                    let mut inserted = bytes.to_vec();
                    inserted.insert(i, c);
                    mutants.push(inserted);
                }
            }
            for mutant in mutants
                .into_iter()
                .filter_map(|m| String::from_utf8(m).ok())
            {
                if is_as_written(&mutant) {
                    accepted += 1;
                    assert_eq!(check_phc_shape(&mutant), Ok(()), "{mutant}");
                    assert!(parse_capped(&mutant).is_ok(), "{mutant}");
                }
            }
        }
        assert!(
            accepted > 0,
            "no mutant took the fast path: the test tests nothing"
        );
    }

    #[test]
    fn a_canonical_last_character_leaves_the_unused_bits_zero() {
        // 16 bytes (a salt): 4 unused bits; 32 bytes (an output): 2; 3n bytes: none.
        for (last, bytes, canonical) in [
            (b'A', 16, true),
            (b'Q', 16, true),
            (b'g', 16, true),
            (b'w', 16, true),
            (b'B', 16, false),
            (b'R', 16, false),
            (b'h', 16, false),
            (b'+', 16, false),
            (b'/', 16, false),
            (b'A', 32, true),
            (b'E', 32, true),
            (b'0', 32, true),
            (b'8', 32, true),
            (b'F', 32, false),
            (b'9', 32, false),
            (b'+', 32, false),
            (b'/', 32, false),
            (b'+', 33, true),
            (b'/', 33, true),
            (b'Z', 33, true),
            (b'z', 33, true),
            (b'!', 33, false),
            (b'=', 32, false),
        ] {
            assert_eq!(
                canonical_end(last, bytes),
                canonical,
                "{} with {bytes} bytes",
                char::from(last)
            );
        }
    }

    #[test]
    fn hostile_argon2_parameters_are_refused() {
        let hostile = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(hostile).unwrap_err().contains("cap"));
        let slow = "$argon2id$v=19$m=1024,t=100000,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(slow).is_err());
        let argon2i = "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        assert!(check_recovery_hash(argon2i).is_err());
        // What the cheap check accepts, the full parse accepts too.
        let (_, made) = new_recovery_codes(1).unwrap();
        assert_eq!(check_recovery_hash(&made[0].hash), Ok(()));
        assert!(parse_capped(&made[0].hash).is_ok());
        for bad in [
            "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
            "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$m=19456,t=2,p=1$c2Fs!HNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJj",
            // A sign, a number past u32, a missing value, a key out of order.
            "$argon2id$v=19$m=+19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$m=4294967296,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$m=,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$argon2id$v=19$t=2,m=19456,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
        ] {
            assert!(check_recovery_hash(bad).is_err(), "{bad}");
        }
    }
}
