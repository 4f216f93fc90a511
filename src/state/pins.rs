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
                id: format!("22{}{}", char::from(a), char::from(b)).into(),
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
    list[1].hash = HASH.replace("m=1024", "m=1048576").into();
    assert!(state(list).unwrap_err().starts_with("recovery code 2: "));
}

// Mutation testing of state v2 and the v1 format (session 3): survivors of
// `cargo mutants --file src/state/...` killed here.

use super::counters_v2::{
    Counters, EnrollmentId, Invalid, RECORD_SIZE, Record, RecoveryId, RememberedHost,
};
use std::path::Path;

/// A v1 file may leave out digits and period (the first release wrote them only when not
/// the default): they are 6 and 30, not anything a validation happens to accept.
#[test]
fn a_v1_file_without_digits_or_period_means_6_and_30() {
    let text = format!("version = 1\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\n");
    let state = State::parse(text.as_bytes(), Path::new("/x/state.toml")).unwrap();
    assert_eq!((state.digits, state.period), (6, 30));
}

/// Printed as hex in log lines and test failures, never as nothing.
#[test]
fn an_enrollment_id_prints_as_its_hex() {
    let id = EnrollmentId([0xA5; 16]);
    assert_eq!(
        format!("{id:?}"),
        format!("EnrollmentId({})", "a5".repeat(16))
    );
}

/// The checksum covers every burned id and every host in use, the last ones too (byte
/// offsets from the record layout: burned ids at 80, 4 bytes each; hosts at 480, 40 each).
#[test]
fn the_checksum_covers_the_last_burned_id_and_the_last_host() {
    let mut counters = Counters::default();
    for id in [
        "2222", "2223", "2224", "2225", "2226", "2227", "2228", "2229",
    ] {
        counters.burn(RecoveryId::parse(id).unwrap()).unwrap();
    }
    for i in 0..4u8 {
        counters.remember_host(RememberedHost {
            rhost_tag: [i + 1; 32],
            time: 1000 + u64::from(i),
        });
    }
    let record = Record {
        generation: 3,
        enrollment_id: EnrollmentId([1; 16]),
        counters,
    };
    let block = record.encode();
    assert_eq!(Record::decode(&block[..]), Ok(record));
    // Each edit still decodes field by field (an id of the alphabet, a host hash): only
    // the checksum can refuse it.
    let last_id_byte = 80 + 8 * 4 - 1;
    let last_host_byte = 480 + 4 * 40 - 9;
    for (at, to) in [(last_id_byte, b'A'), (last_host_byte, 0x77)] {
        let mut edited: [u8; RECORD_SIZE] = *block;
        edited[at] = to;
        assert_eq!(Record::decode(&edited), Err(Invalid::Checksum), "byte {at}");
    }
}
