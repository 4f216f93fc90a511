//! Pins for the recovery-code rules that no other test holds (issue 13, item 18): each test
//! fails when the check it names is removed or loosened.

use super::*;
use std::collections::BTreeSet;

/// A PHC string with the given parameters and base64 (unpadded) salt and hash lengths.
fn phc(m: u32, t: u32, p: u32, salt_b64_len: usize, hash_b64_len: usize) -> String {
    format!(
        "$argon2id$v=19$m={m},t={t},p={p}${}${}",
        "A".repeat(salt_b64_len),
        "A".repeat(hash_b64_len)
    )
}

/// Base64 characters (unpadded) for `bytes` bytes.
fn b64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

#[test]
fn codes_use_the_whole_31_symbol_alphabet_and_nothing_else() {
    assert_eq!(RECOVERY_ALPHABET, b"23456789ABCDEFGHJKMNPQRSTUVWXYZ");
    let mut seen = BTreeSet::new();
    // 200 codes × 20 characters: the chance that a fair draw misses one of 31 symbols is
    // 31 × (30/31)^4000, below 10^-55.
    for _ in 0..200 {
        let code = random_recovery_code().unwrap();
        assert_eq!(code.expose().len(), RECOVERY_LEN);
        for b in code.expose().bytes() {
            assert!(RECOVERY_ALPHABET.contains(&b), "{:?}", char::from(b));
            seen.insert(b);
        }
    }
    assert_eq!(seen.len(), 31, "codes drawn from too few symbols");
}

#[test]
fn a_code_is_five_dashed_groups_of_four() {
    assert_eq!((GROUP, RECOVERY_LEN, RECOVERY_DASHED_LEN), (4, 20, 24));
    let code = random_recovery_code().unwrap();
    let shown = format_recovery_code(&code);
    let groups: Vec<&str> = shown.expose().split('-').collect();
    assert_eq!(groups.len(), 5, "{}", shown.expose());
    assert!(groups.iter().all(|g| g.len() == GROUP));
    assert_eq!(groups.concat(), code.expose());
}

#[test]
fn ids_are_four_alphabet_characters() {
    assert!(is_recovery_id("AB2Z"));
    assert!(!is_recovery_id("AB2"));
    assert!(!is_recovery_id("AB2ZZ"));
    assert!(!is_recovery_id("AB0Z"), "0 is not in the alphabet");
    assert!(!is_recovery_id("ab2z"), "ids are stored upper case");
    assert!(!is_recovery_id(""));
}

#[test]
fn new_codes_have_unique_ids_and_verify() {
    let (shown, stored) = new_recovery_codes(2).unwrap();
    assert_eq!((shown.len(), stored.len()), (2, 2));
    assert_ne!(stored[0].id, stored[1].id);
    for (code, hash) in shown.iter().zip(&stored) {
        assert_eq!(code.expose()[..GROUP], *hash.id);
        assert!(check_recovery_hash(&hash.hash).is_ok(), "{}", hash.hash);
    }
    assert!(new_recovery_codes(0).unwrap().0.is_empty());
}

#[test]
fn argon2_cost_caps_are_inclusive() {
    let ok = |m, t, p| check_recovery_hash(&phc(m, t, p, 22, 43));
    assert_eq!(ok(MAX_M_KIB, MAX_T, MAX_P), Ok(()));
    assert!(ok(MAX_M_KIB + 1, 1, 1).unwrap_err().contains("cap"));
    assert!(ok(1024, MAX_T + 1, 1).unwrap_err().contains("cap"));
    assert!(ok(1024, 1, MAX_P + 1).unwrap_err().contains("cap"));
    assert_eq!((MAX_M_KIB, MAX_T, MAX_P), (64 * 1024, 8, 4));
}

#[test]
fn salt_and_hash_lengths_are_bounded() {
    let with = |salt, hash| check_recovery_hash(&phc(1024, 1, 1, salt, hash));
    let out_of_range = "argon2 salt or output length out of range";
    // The hash: 16 to 64 bytes. (The PHC parser, phc 0.6, already refuses more than 64
    // bytes of hash and more than 48 bytes of salt: our upper bounds back it up, and these
    // lines hold the result whichever of the two does the refusing.)
    assert_eq!(with(22, b64_len(16)), Ok(()));
    assert_eq!(with(22, b64_len(15)).unwrap_err(), out_of_range);
    assert_eq!(with(22, b64_len(MAX_OUTPUT)), Ok(()));
    assert!(with(22, b64_len(MAX_OUTPUT + 1)).is_err());
    // The salt: at most 64 base64 characters (48 bytes).
    assert_eq!(with(MAX_SALT, 43), Ok(()));
    assert!(with(MAX_SALT + 1, 43).is_err());
    // No salt or no hash at all.
    assert!(check_recovery_hash("$argon2id$v=19$m=1024,t=1,p=1").is_err());
    assert!(
        check_recovery_hash(&format!("$argon2id$v=19$m=1024,t=1,p=1${}", "c".repeat(22))).is_err()
    );
}

#[test]
fn the_hash_of_a_new_code_is_argon2id_with_our_costs() {
    let (_, stored) = new_recovery_codes(1).unwrap();
    let hash = &stored[0].hash;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let parsed = parse_capped(hash).unwrap();
    assert_eq!(parsed.hash.unwrap().len(), ARGON2_OUTPUT);
}

#[test]
fn a_code_verifies_against_its_own_hash_only() {
    let (shown, stored) = new_recovery_codes(2).unwrap();
    let code = |i: usize| SecretString::new(shown[i].expose().replace('-', ""));
    assert_eq!(
        verify_recovery_code(&stored, &stored[1].id, &code(1)).unwrap(),
        Some(1)
    );
    // The right id with the other code's secret, and an id that is not stored.
    assert_eq!(
        verify_recovery_code(&stored, &stored[1].id, &code(0)).unwrap(),
        None
    );
    assert_eq!(
        verify_recovery_code(&stored[..1], &stored[1].id, &code(1)).unwrap(),
        None
    );
    // A stored hash over the caps is an error, not a silent "wrong code".
    let hostile = [RecoveryCodeHash {
        id: stored[0].id.clone(),
        hash: phc(MAX_M_KIB * 2, 1, 1, 22, 43).into(),
    }];
    assert!(verify_recovery_code(&hostile, &stored[0].id, &code(0)).is_err());
}
