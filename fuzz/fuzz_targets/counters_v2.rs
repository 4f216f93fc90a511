//! The counters record of state v2 (`Record::decode`, `pick`) on arbitrary bytes: the
//! counters file lives in the user's home, so its contents are hostile. Input layout:
//! `[mode][expected enrollment id: 16][block A: up to 4096][block B: the rest]`, short
//! parts zero-padded where the mode asks for it. Mode bits: 1/2 seal block A/B (write
//! magic, version and a correct SHA-256), so the field checks behind the checksum are
//! reached, not only the checksum. Asserts:
//! - nothing panics;
//! - a block that decodes is canonical: encoding the record gives back the same bytes;
//! - `pick` returns a record that one of the blocks decodes to, with the expected id, at a
//!   generation no lower than the other block's if that one is valid for this id too; an
//!   error only when neither block is (or both are, at one generation, and differ).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::state::counters_v2::{
    EnrollmentId, NoRecord, RECORD_SIZE, Record, Slot, checksum_of, pick,
};

fn seal(block: &mut Vec<u8>) {
    block.resize(RECORD_SIZE, 0);
    block[..8].copy_from_slice(b"PAMTOTPC");
    block[8..10].copy_from_slice(&2u16.to_le_bytes());
    let sum = checksum_of(block);
    block[RECORD_SIZE - 32..].copy_from_slice(&sum);
}

fn valid_for(block: &[u8], id: &EnrollmentId) -> Option<Record> {
    Record::decode(block)
        .ok()
        .filter(|record| record.enrollment_id == *id)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut id = [0u8; 16];
    let id_len = rest.len().min(16);
    id[..id_len].copy_from_slice(&rest[..id_len]);
    let id = EnrollmentId(id);
    let rest = &rest[id_len..];
    let (a, b) = rest.split_at(rest.len().min(RECORD_SIZE));
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    if mode & 1 != 0 {
        seal(&mut a);
    }
    if mode & 2 != 0 {
        seal(&mut b);
    }

    for block in [&a, &b] {
        if let Ok(record) = Record::decode(block) {
            assert_eq!(&record.encode()[..], &block[..], "decoding is not canonical");
        }
    }

    let (valid_a, valid_b) = (valid_for(&a, &id), valid_for(&b, &id));
    match pick(&a, &b, &id) {
        Ok(picked) => {
            let (chosen, other) = match picked.slot {
                Slot::A => (&valid_a, &valid_b),
                Slot::B => (&valid_b, &valid_a),
            };
            assert_eq!(chosen.as_ref(), Some(&picked.record), "picked a block that is not valid");
            if let Some(other) = other {
                assert!(other.generation <= picked.record.generation, "picked the older record");
            }
        }
        Err(NoRecord::Neither { .. }) => {
            assert!(valid_a.is_none() && valid_b.is_none(), "refused a valid record");
        }
        Err(NoRecord::Ambiguous { generation }) => {
            let (Some(ra), Some(rb)) = (&valid_a, &valid_b) else {
                panic!("ambiguous without two valid records");
            };
            assert!(ra.generation == generation && rb.generation == generation && ra != rb);
        }
    }
});
