//! Pins for the state model's caps (issue 13, item 18): at most 100 recovery codes, each
//! with a well-formed, unique id and a capped hash.

use super::State;
use crate::error::Error;
use crate::otp::HashAlgorithm;
use crate::recovery::{MAX_RECOVERY_CODES, RECOVERY_ALPHABET, RecoveryCodeHash};
use crate::secret::SecretString;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const HASH: &str =
    "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";

/// `count` codes with distinct ids "22AB", "22AC", ….
fn codes(count: usize) -> Vec<RecoveryCodeHash> {
    (0..count)
        .map(|i| {
            let a = RECOVERY_ALPHABET[i / 31];
            let b = RECOVERY_ALPHABET[i % 31];
            RecoveryCodeHash {
                id: format!("22{}{}", char::from(a), char::from(b)),
                hash: HASH.into(),
            }
        })
        .collect()
}

fn state(recovery: Vec<RecoveryCodeHash>) -> Result<State, String> {
    State::new(
        SecretString::new(SECRET.into()),
        HashAlgorithm::SHA1,
        6,
        30,
        recovery,
    )
    .map_err(|e| match e {
        Error::BadOption(why) => why,
        other => other.to_string(),
    })
}

#[test]
fn at_most_100_recovery_codes() {
    assert_eq!(MAX_RECOVERY_CODES, 100);
    assert_eq!(
        state(codes(100)).unwrap().enrolled().recovery_codes_left,
        100
    );
    assert_eq!(
        state(codes(101)).unwrap_err(),
        "more than 100 recovery codes"
    );
    assert!(state(Vec::new()).is_ok());
}

#[test]
fn recovery_ids_must_be_well_formed_and_unique() {
    // Imported codes may share an id up to MAX_SHARED_ID times (main after the adopt2 merge).
    let shared = crate::recovery::MAX_SHARED_ID;
    let mut list = codes(shared + 1);
    for code in &mut list[1..shared] {
        code.id = "2222".into();
    }
    list[0].id = "2222".into();
    assert!(state(list.clone()).is_ok());
    list[shared].id = "2222".into();
    assert_eq!(
        state(list).unwrap_err(),
        format!("recovery code {} repeats an id", shared + 1)
    );
    let mut list = codes(2);
    list[1].id = "22A".into();
    assert_eq!(
        state(list).unwrap_err(),
        "recovery code 2 has a malformed id"
    );
    let mut list = codes(2);
    list[1].hash = HASH.replace("m=1024", "m=1048576");
    assert!(state(list).unwrap_err().starts_with("recovery code 2: "));
}
