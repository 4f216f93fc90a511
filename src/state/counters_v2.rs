//! State v2, the part every login changes: the counters, and their binary record.
//!
//! The counters file holds two of these records, each in its own 4 KiB block (see
//! [`crate::store::counters_file`]). A login rewrites the block that does not hold the current
//! record, so a torn write can only break a record that was never acknowledged; the reader
//! takes the valid record with the highest generation whose enrollment id matches the
//! enrollment file ([`pick`]). Both records invalid is an error, never a fresh state: a
//! fresh state would forget the replay guard and the burned recovery codes.
//!
//! Record layout (little-endian; the checksum covers bytes 0..80 and the slots in use, and
//! every other byte must be zero):
//!
//! | offset | size | field                                                           |
//! |-------:|-----:|-----------------------------------------------------------------|
//! |      0 |    8 | magic `PAMTOTPC`                                                |
//! |      8 |    2 | format version, 2                                               |
//! |     10 |    6 | reserved, zero                                                  |
//! |     16 |    8 | generation (u64): +1 per write, highest valid one wins          |
//! |     24 |   16 | enrollment id: must equal the enrollment file's                 |
//! |     40 |    1 | presence flags: 1 last step, 2 last success, 4 HOTP counter     |
//! |     41 |    1 | last success method: 0 none, 1 totp, 2 recovery, 3 hotp         |
//! |     42 |    1 | burned recovery ids in use (0..=100)                            |
//! |     43 |    1 | remembered hosts in use (0..=16)                                |
//! |     44 |    4 | consecutive failures (u32)                                      |
//! |     48 |    8 | last accepted time step (u64)                                   |
//! |     56 |    8 | locked until, Unix time (u64)                                   |
//! |     64 |    8 | last success, Unix time (u64)                                   |
//! |     72 |    8 | HOTP counter (u64): the next counter a code may come from       |
//! |     80 |  400 | burned recovery ids: 100 slots of 4 ASCII bytes                 |
//! |    480 |  640 | remembered hosts: 16 slots of (rhost tag, Unix time u64)        |
//! |   1120 | 2944 | reserved, zero                                                  |
//! |   4064 |   32 | SHA-256 of bytes 0..80, the burned ids and the hosts in use     |
//!
//! A remembered host's tag is HMAC-SHA-256 of its PAM_RHOST keyed with the enrollment's
//! secret ([`super::hosts`]), not a plain hash: the file does not tell where the user logs
//! in from, even for an IPv4 address (a plain hash of one is found by trying them all).
//!
//! The encoding is canonical: absent values, unused slots and reserved bytes must be zero,
//! so a record decodes only if encoding what it decodes to gives back the same bytes. The
//! checksum covers only what is in use (80 bytes for a user who never used a recovery
//! code, not 4064): hashing zeros adds nothing when the zeros are checked anyway, and a
//! login hashes three records. A torn or damaged block either fails the checksum or has
//! non-zero bytes where zeros must be; it decodes only if it is exactly a record written.

use crate::recovery::{self, MAX_RECOVERY_CODES};
use crate::state::model::{LastSuccess, Method, Throttle};
use sha2::{Digest, Sha256};
use std::fmt;

pub const RECORD_SIZE: usize = 4096;
pub const MAGIC: [u8; 8] = *b"PAMTOTPC";
pub const FORMAT_VERSION: u16 = 2;
/// As many burned ids as an enrollment can have recovery codes: the list never overflows
/// while the enrollment id changes whenever a new set of codes is made.
pub const MAX_BURNED: usize = MAX_RECOVERY_CODES;
pub use super::hosts::{MAX_HOSTS, RememberedHost};
const RECOVERY_ID_LEN: usize = 4;
const HOST_LEN: usize = 32 + 8;

const OFF_VERSION: usize = 8;
const OFF_GENERATION: usize = 16;
const OFF_ID: usize = 24;
const OFF_FLAGS: usize = 40;
const OFF_METHOD: usize = 41;
const OFF_BURNED_COUNT: usize = 42;
const OFF_HOST_COUNT: usize = 43;
const OFF_FAILURES: usize = 44;
const OFF_LAST_STEP: usize = 48;
const OFF_LOCKED_UNTIL: usize = 56;
const OFF_SUCCESS_TIME: usize = 64;
const OFF_HOTP: usize = 72;
const OFF_BURNED: usize = 80;
const OFF_HOSTS: usize = OFF_BURNED + MAX_BURNED * RECOVERY_ID_LEN;
const OFF_RESERVED: usize = OFF_HOSTS + MAX_HOSTS * HOST_LEN;
const OFF_CHECKSUM: usize = RECORD_SIZE - 32;

const FLAG_LAST_STEP: u8 = 1;
const FLAG_LAST_SUCCESS: u8 = 2;
const FLAG_HOTP: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_LAST_STEP | FLAG_LAST_SUCCESS | FLAG_HOTP;

const _: () = assert!(OFF_RESERVED <= OFF_CHECKSUM, "fields overlap the checksum");

/// 16 random bytes naming one enrollment; the counters file and the enrollment file must
/// carry the same, so counters of an older enrollment are never applied to a newer one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnrollmentId(pub [u8; 16]);

impl EnrollmentId {
    pub fn random() -> crate::error::Result<Self> {
        let bytes = crate::secret::random_bytes::<16>()
            .map_err(|e| crate::error::Error::Internal(format!("random enrollment id: {e}")))?;
        Ok(EnrollmentId(*bytes))
    }

    /// 32 lowercase hex digits, as the enrollment file stores it.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            *byte = hex(pair[0])? << 4 | hex(pair[1])?;
        }
        Some(EnrollmentId(id))
    }
}

/// Not secret, but long: printed as hex so log lines and test failures can be compared.
impl fmt::Debug for EnrollmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnrollmentId({})", self.to_hex())
    }
}

/// A used recovery code's id (its first group), kept so the code is refused from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryId([u8; RECOVERY_ID_LEN]);

impl RecoveryId {
    pub fn parse(id: &str) -> Option<Self> {
        if !recovery::is_recovery_id(id) {
            return None;
        }
        id.as_bytes().try_into().ok().map(RecoveryId)
    }

    pub fn as_str(&self) -> &str {
        // Only constructed from recovery-alphabet ASCII (parse, decode).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Everything a login changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub last_step: Option<u64>,
    pub throttle: Throttle,
    pub last_success: Option<LastSuccess>,
    /// At most [`MAX_BURNED`], no repeats: [`Counters::burn`] keeps it so.
    burned: Vec<RecoveryId>,
    pub hotp_counter: Option<u64>,
    /// At most [`MAX_HOSTS`], no repeated hash: [`Counters::remember_host`] keeps it so.
    hosts: Vec<RememberedHost>,
}

/// Why a list in the counters cannot take one more entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnedListFull;

impl Counters {
    /// Counters with nothing burned, no HOTP counter and no remembered host: what a v1
    /// state converts to, or an enrollment starts with.
    pub fn new(
        last_step: Option<u64>,
        throttle: Throttle,
        last_success: Option<LastSuccess>,
    ) -> Counters {
        Counters {
            last_step,
            throttle,
            last_success,
            ..Counters::default()
        }
    }

    pub fn burned(&self) -> &[RecoveryId] {
        &self.burned
    }

    pub fn is_burned(&self, id: &RecoveryId) -> bool {
        self.burned.contains(id)
    }

    /// Marks a recovery code used. Refuses rather than forgets when the list is full: a
    /// forgotten id would be a recovery code that works twice.
    pub fn burn(&mut self, id: RecoveryId) -> Result<(), BurnedListFull> {
        if self.is_burned(&id) {
            return Ok(());
        }
        if self.burned.len() >= MAX_BURNED {
            return Err(BurnedListFull);
        }
        self.burned.push(id);
        Ok(())
    }

    pub fn hosts(&self) -> &[RememberedHost] {
        &self.hosts
    }

    /// Records a host's success; when full, the host seen longest ago is dropped (forgetting
    /// a host only costs that host a code prompt).
    pub fn remember_host(&mut self, host: RememberedHost) {
        super::hosts::remember(&mut self.hosts, host);
    }

    /// The remembered hosts become `hosts` (the model's list), bounded as always.
    pub fn replace_hosts(&mut self, hosts: &[RememberedHost]) {
        self.hosts.clear();
        for host in hosts {
            self.remember_host(*host);
        }
    }
}

/// One record: the counters of one enrollment at one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub generation: u64,
    pub enrollment_id: EnrollmentId,
    pub counters: Counters,
}

/// The generation counter reached u64::MAX. At one login a second this takes longer than
/// the sun has left; refusing keeps "highest wins" a plain comparison with no wrap-around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationExhausted;

impl Record {
    /// The record a write replacing this one stores: same enrollment, next generation.
    pub fn successor(&self, counters: Counters) -> Result<Record, GenerationExhausted> {
        Ok(Record {
            generation: self.generation.checked_add(1).ok_or(GenerationExhausted)?,
            enrollment_id: self.enrollment_id,
            counters,
        })
    }

    pub fn encode(&self) -> Box<[u8; RECORD_SIZE]> {
        let mut block = Box::new([0u8; RECORD_SIZE]);
        self.encode_into(&mut block);
        block
    }

    /// The record into `block`, which must be all zeros (a login encodes into a buffer on
    /// its stack: a fresh zeroed 4 KiB from the heap each time cost more than the rest).
    pub fn encode_into(&self, block: &mut [u8; RECORD_SIZE]) {
        let c = &self.counters;
        block[..8].copy_from_slice(&MAGIC);
        put(&mut block[..], OFF_VERSION, &FORMAT_VERSION.to_le_bytes());
        put(
            &mut block[..],
            OFF_GENERATION,
            &self.generation.to_le_bytes(),
        );
        put(&mut block[..], OFF_ID, &self.enrollment_id.0);
        let mut flags = 0;
        if let Some(step) = c.last_step {
            flags |= FLAG_LAST_STEP;
            put(&mut block[..], OFF_LAST_STEP, &step.to_le_bytes());
        }
        if let Some(success) = c.last_success {
            flags |= FLAG_LAST_SUCCESS;
            block[OFF_METHOD] = match success.method {
                Method::Totp => 1,
                Method::Recovery => 2,
                Method::Hotp => 3,
            };
            put(
                &mut block[..],
                OFF_SUCCESS_TIME,
                &success.time.to_le_bytes(),
            );
        }
        if let Some(counter) = c.hotp_counter {
            flags |= FLAG_HOTP;
            put(&mut block[..], OFF_HOTP, &counter.to_le_bytes());
        }
        block[OFF_FLAGS] = flags;
        // The lists are bounded by construction (burn, remember_host, decode); the casts
        // cannot truncate.
        block[OFF_BURNED_COUNT] = c.burned.len() as u8;
        block[OFF_HOST_COUNT] = c.hosts.len() as u8;
        put(
            &mut block[..],
            OFF_FAILURES,
            &c.throttle.failures.to_le_bytes(),
        );
        put(
            &mut block[..],
            OFF_LOCKED_UNTIL,
            &c.throttle.locked_until.to_le_bytes(),
        );
        for (i, id) in c.burned.iter().enumerate() {
            put(&mut block[..], OFF_BURNED + i * RECOVERY_ID_LEN, &id.0);
        }
        for (i, host) in c.hosts.iter().enumerate() {
            let at = OFF_HOSTS + i * HOST_LEN;
            put(&mut block[..], at, &host.rhost_tag);
            put(&mut block[..], at + 32, &host.time.to_le_bytes());
        }
        let checksum = checksum_of(&block[..]);
        put(&mut block[..], OFF_CHECKSUM, &checksum);
    }

    /// Decodes one block. Any byte string is accepted as input; anything but a valid,
    /// canonical record is refused with the first reason found.
    pub fn decode(block: &[u8]) -> Result<Record, Invalid> {
        if block.len() != RECORD_SIZE {
            return Err(Invalid::Size);
        }
        if block[..8] != MAGIC {
            return Err(Invalid::Magic);
        }
        // The checksum first: a damaged record's fields mean nothing, and the reasons below
        // are then about a record someone wrote on purpose.
        if checksum_of(block)[..] != block[OFF_CHECKSUM..] {
            return Err(Invalid::Checksum);
        }
        let version = u16::from_le_bytes(array(block, OFF_VERSION));
        if version != FORMAT_VERSION {
            return Err(Invalid::Version(version));
        }
        let reserved_zero = all_zero(&block[OFF_VERSION + 2..OFF_GENERATION])
            && all_zero(&block[OFF_RESERVED..OFF_CHECKSUM]);
        if !reserved_zero {
            return Err(Invalid::ReservedNotZero);
        }
        let flags = block[OFF_FLAGS];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Invalid::UnknownFlags);
        }
        let optional = |flag: u8, at: usize| -> Result<Option<u64>, Invalid> {
            let value = u64::from_le_bytes(array(block, at));
            match (flags & flag != 0, value) {
                (true, value) => Ok(Some(value)),
                (false, 0) => Ok(None),
                (false, _) => Err(Invalid::AbsentValueNotZero),
            }
        };
        let last_step = optional(FLAG_LAST_STEP, OFF_LAST_STEP)?;
        let hotp_counter = optional(FLAG_HOTP, OFF_HOTP)?;
        let success_time = optional(FLAG_LAST_SUCCESS, OFF_SUCCESS_TIME)?;
        let last_success = match (success_time, block[OFF_METHOD]) {
            (None, 0) => None,
            (Some(time), 1) => Some(LastSuccess {
                time,
                method: Method::Totp,
            }),
            (Some(time), 2) => Some(LastSuccess {
                time,
                method: Method::Recovery,
            }),
            (Some(time), 3) => Some(LastSuccess {
                time,
                method: Method::Hotp,
            }),
            _ => return Err(Invalid::Method),
        };
        let burned = decode_burned(block)?;
        let hosts = decode_hosts(block)?;
        Ok(Record {
            generation: u64::from_le_bytes(array(block, OFF_GENERATION)),
            enrollment_id: EnrollmentId(array(block, OFF_ID)),
            counters: Counters {
                last_step,
                throttle: Throttle {
                    failures: u32::from_le_bytes(array(block, OFF_FAILURES)),
                    locked_until: u64::from_le_bytes(array(block, OFF_LOCKED_UNTIL)),
                },
                last_success,
                burned,
                hotp_counter,
                hosts,
            },
        })
    }
}

fn decode_burned(block: &[u8]) -> Result<Vec<RecoveryId>, Invalid> {
    let count = usize::from(block[OFF_BURNED_COUNT]);
    if count > MAX_BURNED {
        return Err(Invalid::TooManyBurned);
    }
    let (used, unused) = block[OFF_BURNED..OFF_HOSTS].split_at(count * RECOVERY_ID_LEN);
    if !all_zero(unused) {
        return Err(Invalid::UnusedSlotNotZero);
    }
    let mut burned = Vec::with_capacity(count);
    for slot in used.chunks_exact(RECOVERY_ID_LEN) {
        let id = std::str::from_utf8(slot)
            .ok()
            .and_then(RecoveryId::parse)
            .ok_or(Invalid::BurnedId)?;
        if burned.contains(&id) {
            return Err(Invalid::RepeatedBurnedId);
        }
        burned.push(id);
    }
    Ok(burned)
}

fn decode_hosts(block: &[u8]) -> Result<Vec<RememberedHost>, Invalid> {
    let count = usize::from(block[OFF_HOST_COUNT]);
    if count > MAX_HOSTS {
        return Err(Invalid::TooManyHosts);
    }
    let (used, unused) = block[OFF_HOSTS..OFF_RESERVED].split_at(count * HOST_LEN);
    if !all_zero(unused) {
        return Err(Invalid::UnusedSlotNotZero);
    }
    let mut hosts: Vec<RememberedHost> = Vec::with_capacity(count);
    for slot in used.chunks_exact(HOST_LEN) {
        let host = RememberedHost {
            rhost_tag: array(slot, 0),
            time: u64::from_le_bytes(array(slot, 32)),
        };
        if hosts.iter().any(|h| h.rhost_tag == host.rhost_tag) {
            return Err(Invalid::RepeatedHost);
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// Whether every byte is zero. OR-ing them all, without stopping at the first non-zero one,
/// lets the compiler do it 32 bytes at a time: a record is mostly zeros that must be
/// checked (4 KiB, twice per read), and a byte-at-a-time loop was most of a decode.
fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc | b) == 0
}

fn put(block: &mut [u8], at: usize, bytes: &[u8]) {
    block[at..at + bytes.len()].copy_from_slice(bytes);
}

/// `N` bytes at `at`; only called with offsets of the fixed layout, inside the block.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// The checksum a [`RECORD_SIZE`] block must carry: SHA-256 of the fixed fields (bytes
/// 0..80) and of the burned-id and host slots its counts say are in use (counts above the
/// maximum count as the maximum; [`Record::decode`] refuses them after this check).
pub fn checksum_of(block: &[u8]) -> [u8; 32] {
    let burned = usize::from(block[OFF_BURNED_COUNT]).min(MAX_BURNED);
    let hosts = usize::from(block[OFF_HOST_COUNT]).min(MAX_HOSTS);
    let mut hash = Sha256::new();
    hash.update(&block[..OFF_BURNED]);
    hash.update(&block[OFF_BURNED..OFF_BURNED + burned * RECOVERY_ID_LEN]);
    hash.update(&block[OFF_HOSTS..OFF_HOSTS + hosts * HOST_LEN]);
    hash.finalize().into()
}

/// Why a block is not a usable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not exactly [`RECORD_SIZE`] bytes (a short file).
    Size,
    /// Not a counters record at all (never written, or another file).
    Magic,
    /// Torn write, media damage or tampering.
    Checksum,
    /// A format version this build does not read.
    Version(u16),
    ReservedNotZero,
    UnknownFlags,
    AbsentValueNotZero,
    Method,
    TooManyBurned,
    BurnedId,
    RepeatedBurnedId,
    TooManyHosts,
    RepeatedHost,
    UnusedSlotNotZero,
}

/// Why one of the two blocks was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Invalid(Invalid),
    /// A valid record of another enrollment (left over from before a re-enrollment).
    OtherEnrollment,
}

/// Which of the two blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

/// The current record and where it is: the next write goes to `slot.other()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub slot: Slot,
    pub record: Record,
}

/// No current record. Never to be read as "no counters yet": that would reopen replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRecord {
    /// Neither block holds a valid record of this enrollment.
    Neither { a: Rejected, b: Rejected },
    /// Both hold valid records of this enrollment at the same generation, with different
    /// counters: no write of ours does that, so which one is current is unknown.
    Ambiguous { generation: u64 },
}

/// The current record of the enrollment `expected`: the valid one with the highest
/// generation whose enrollment id matches.
pub fn pick(a: &[u8], b: &[u8], expected: &EnrollmentId) -> Result<Picked, NoRecord> {
    find(a, b, expected).map(|found| found.picked)
}

/// What [`find`] found: the current record, and why the other block was not a record of
/// any enrollment, if it was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub picked: Picked,
    /// The other block is torn or damaged. Which is unknown: a torn write was never
    /// acknowledged (the picked record is the newest), but damage after the fact may have
    /// taken the newest acknowledged record, so the picked one may be one write behind.
    /// (A valid record of another enrollment is normal after a re-enrollment: not this.)
    pub other_damaged: Option<Invalid>,
}

/// [`pick`], telling also whether the other block is damaged.
pub fn find(a: &[u8], b: &[u8], expected: &EnrollmentId) -> Result<Found, NoRecord> {
    let damaged = |rejected: Rejected| match rejected {
        Rejected::Invalid(invalid) => Some(invalid),
        Rejected::OtherEnrollment => None,
    };
    let found = |slot, record, other_damaged| Found {
        picked: Picked { slot, record },
        other_damaged,
    };
    let check = |block: &[u8]| -> Result<Record, Rejected> {
        let record = Record::decode(block).map_err(Rejected::Invalid)?;
        if record.enrollment_id != *expected {
            return Err(Rejected::OtherEnrollment);
        }
        Ok(record)
    };
    match (check(a), check(b)) {
        (Ok(ra), Ok(rb)) => {
            if ra.generation == rb.generation && ra != rb {
                return Err(NoRecord::Ambiguous {
                    generation: ra.generation,
                });
            }
            if rb.generation > ra.generation {
                Ok(found(Slot::B, rb, None))
            } else {
                Ok(found(Slot::A, ra, None))
            }
        }
        (Ok(record), Err(b)) => Ok(found(Slot::A, record, damaged(b))),
        (Err(a), Ok(record)) => Ok(found(Slot::B, record, damaged(a))),
        (Err(a), Err(b)) => Err(NoRecord::Neither { a, b }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: EnrollmentId = EnrollmentId([7; 16]);

    fn full_counters() -> Counters {
        let mut counters = Counters {
            last_step: Some(u64::MAX),
            throttle: Throttle {
                failures: u32::MAX,
                locked_until: u64::MAX,
            },
            last_success: Some(LastSuccess {
                time: u64::MAX,
                method: Method::Recovery,
            }),
            hotp_counter: Some(u64::MAX),
            ..Counters::default()
        };
        for i in 0..MAX_BURNED {
            let a = crate::recovery::RECOVERY_ALPHABET[i % 31];
            let b = crate::recovery::RECOVERY_ALPHABET[i / 31];
            let id = String::from_utf8(vec![a, b, b'Z', b'Z']).unwrap();
            counters.burn(RecoveryId::parse(&id).unwrap()).unwrap();
        }
        for i in 0..MAX_HOSTS {
            counters.remember_host(RememberedHost {
                rhost_tag: [i as u8 + 1; 32],
                time: u64::MAX - i as u64,
            });
        }
        counters
    }

    fn record(generation: u64, counters: Counters) -> Record {
        Record {
            generation,
            enrollment_id: ID,
            counters,
        }
    }

    /// Re-signs a block after a test edited its fields, so the check under test is the one
    /// that refuses it, not the checksum.
    fn resign(block: &mut [u8; RECORD_SIZE]) {
        let sum = checksum_of(&block[..]);
        block[OFF_CHECKSUM..].copy_from_slice(&sum);
    }

    #[test]
    fn an_empty_and_a_full_record_round_trip() {
        for counters in [Counters::default(), full_counters()] {
            let original = record(42, counters);
            let block = original.encode();
            assert_eq!(Record::decode(&block[..]), Ok(original.clone()));
            assert_eq!(Record::decode(&block[..]).unwrap().encode(), block);
        }
    }

    #[test]
    fn each_optional_value_round_trips_alone() {
        let alone = [
            Counters {
                last_step: Some(0),
                ..Counters::default()
            },
            Counters {
                hotp_counter: Some(0),
                ..Counters::default()
            },
            Counters {
                last_success: Some(LastSuccess {
                    time: 0,
                    method: Method::Totp,
                }),
                ..Counters::default()
            },
        ];
        for counters in alone {
            let original = record(0, counters);
            assert_eq!(Record::decode(&original.encode()[..]), Ok(original));
        }
    }

    #[test]
    fn the_burned_list_is_bounded_and_never_forgets() {
        let mut counters = full_counters();
        let next = RecoveryId::parse("ZZZ2").unwrap();
        assert_eq!(counters.burn(next), Err(BurnedListFull));
        assert_eq!(counters.burned().len(), MAX_BURNED);
        // Burning an id already burned is not an error, and adds nothing.
        let first = counters.burned()[0];
        assert_eq!(counters.burn(first), Ok(()));
        assert_eq!(counters.burned().len(), MAX_BURNED);
    }

    #[test]
    fn recovery_ids_are_checked_for_shape() {
        for bad in ["", "ABC", "ABCDE", "abcd", "0OIL", "AB C"] {
            assert_eq!(RecoveryId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(RecoveryId::parse("K7QF").unwrap().as_str(), "K7QF");
    }

    #[test]
    fn remembered_hosts_are_bounded_and_drop_the_oldest() {
        let mut counters = full_counters();
        // Host 16 (time MAX-15) is the oldest.
        counters.remember_host(RememberedHost {
            rhost_tag: [0xEE; 32],
            time: 5,
        });
        assert_eq!(counters.hosts().len(), MAX_HOSTS);
        assert!(!counters.hosts().iter().any(|h| h.rhost_tag == [16; 32]));
        // A host seen again is updated in place, not added twice.
        counters.remember_host(RememberedHost {
            rhost_tag: [0xEE; 32],
            time: 6,
        });
        let again: Vec<_> = counters
            .hosts()
            .iter()
            .filter(|h| h.rhost_tag == [0xEE; 32])
            .collect();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].time, 6);
    }

    #[test]
    fn every_bound_and_canonical_rule_is_enforced() {
        let good = record(1, full_counters()).encode();
        let empty = record(1, Counters::default()).encode();
        type Edit = fn(&mut [u8; RECORD_SIZE]);
        let cases: [(Edit, &[u8; RECORD_SIZE], Invalid); 15] = [
            (|b| b[OFF_VERSION] = 3, &good, Invalid::Version(3)),
            (|b| b[OFF_VERSION + 2] = 1, &good, Invalid::ReservedNotZero),
            (|b| b[OFF_RESERVED] = 1, &good, Invalid::ReservedNotZero),
            (|b| b[OFF_CHECKSUM - 1] = 1, &good, Invalid::ReservedNotZero),
            (|b| b[OFF_FLAGS] |= 8, &good, Invalid::UnknownFlags),
            (
                |b| b[OFF_LAST_STEP] = 1,
                &empty,
                Invalid::AbsentValueNotZero,
            ),
            (|b| b[OFF_HOTP + 7] = 1, &empty, Invalid::AbsentValueNotZero),
            (|b| b[OFF_METHOD] = 4, &good, Invalid::Method),
            (|b| b[OFF_METHOD] = 1, &empty, Invalid::Method),
            (|b| b[OFF_METHOD] = 0, &good, Invalid::Method),
            (|b| b[OFF_BURNED_COUNT] = 101, &good, Invalid::TooManyBurned),
            (|b| b[OFF_BURNED + 5] = b'0', &good, Invalid::BurnedId),
            (|b| b[OFF_HOST_COUNT] = 17, &good, Invalid::TooManyHosts),
            (|b| b[OFF_HOSTS + 3] = 1, &empty, Invalid::UnusedSlotNotZero),
            (|b| b[OFF_BURNED] = b'2', &empty, Invalid::UnusedSlotNotZero),
        ];
        for (i, (edit, base, expected)) in cases.into_iter().enumerate() {
            let mut block = *base;
            edit(&mut block);
            resign(&mut block);
            assert_eq!(Record::decode(&block), Err(expected), "case {i}");
        }
    }

    #[test]
    fn repeated_entries_are_refused() {
        let mut block = record(1, full_counters()).encode();
        let first: [u8; 4] = array(&block[..], OFF_BURNED);
        put(&mut block[..], OFF_BURNED + 4, &first);
        resign(&mut block);
        assert_eq!(Record::decode(&block[..]), Err(Invalid::RepeatedBurnedId));

        let mut block = record(1, full_counters()).encode();
        let first: [u8; 32] = array(&block[..], OFF_HOSTS);
        put(&mut block[..], OFF_HOSTS + HOST_LEN, &first);
        resign(&mut block);
        assert_eq!(Record::decode(&block[..]), Err(Invalid::RepeatedHost));
    }

    #[test]
    fn a_damaged_short_or_foreign_block_is_refused() {
        let block = record(9, full_counters()).encode();
        for at in [
            OFF_GENERATION,
            OFF_ID,
            OFF_FAILURES,
            OFF_BURNED + 1,
            OFF_CHECKSUM + 31,
        ] {
            let mut damaged = *block;
            damaged[at] ^= 0x01;
            assert_eq!(
                Record::decode(&damaged),
                Err(Invalid::Checksum),
                "byte {at}"
            );
        }
        // Bytes the checksum does not cover must be zero.
        let mut damaged = *block;
        damaged[2000] ^= 0x01;
        assert_eq!(Record::decode(&damaged), Err(Invalid::ReservedNotZero));
        assert_eq!(Record::decode(&block[..4095]), Err(Invalid::Size));
        assert_eq!(Record::decode(&[]), Err(Invalid::Size));
        assert_eq!(Record::decode(&[0; RECORD_SIZE]), Err(Invalid::Magic));
    }

    #[test]
    fn pick_takes_the_highest_valid_generation_of_this_enrollment() {
        let old = record(5, Counters::default()).encode();
        let new = record(
            6,
            Counters {
                last_step: Some(100),
                ..Counters::default()
            },
        )
        .encode();
        let picked = pick(&old[..], &new[..], &ID).unwrap();
        assert_eq!((picked.slot, picked.record.generation), (Slot::B, 6));
        let picked = pick(&new[..], &old[..], &ID).unwrap();
        assert_eq!((picked.slot, picked.record.generation), (Slot::A, 6));
    }

    #[test]
    fn a_torn_or_corrupt_record_leaves_the_other_in_use() {
        let current = record(5, Counters::default()).encode();
        let newer = record(6, full_counters()).encode();
        // Torn: only the first 512 bytes of the new record reached the disk.
        let mut torn = *current;
        torn[..512].copy_from_slice(&newer[..512]);
        let picked = pick(&current[..], &torn, &ID).unwrap();
        assert_eq!((picked.slot, picked.record.generation), (Slot::A, 5));
        // Media damage in the newer record: the older one is used.
        let mut corrupt = *newer;
        corrupt[3000] ^= 0x80;
        let picked = pick(&corrupt, &current[..], &ID).unwrap();
        assert_eq!((picked.slot, picked.record.generation), (Slot::B, 5));
    }

    #[test]
    fn find_tells_a_damaged_other_block_from_another_enrollment() {
        let current = record(5, Counters::default()).encode();
        let mut damaged = *record(6, Counters::default()).encode();
        damaged[OFF_FAILURES] ^= 1;
        let found = find(&damaged, &current[..], &ID).unwrap();
        assert_eq!(found.other_damaged, Some(Invalid::Checksum));
        assert_eq!(found.picked.slot, Slot::B);
        let found = find(&current[..], &damaged, &ID).unwrap();
        assert_eq!(found.other_damaged, Some(Invalid::Checksum));
        // Left over from before a re-enrollment, or both valid: nothing is lost.
        let theirs = Record {
            enrollment_id: EnrollmentId([8; 16]),
            ..record(9, Counters::default())
        }
        .encode();
        assert_eq!(
            find(&theirs[..], &current[..], &ID).unwrap().other_damaged,
            None
        );
        assert_eq!(
            find(&current[..], &theirs[..], &ID).unwrap().other_damaged,
            None
        );
        let older = record(4, Counters::default()).encode();
        assert_eq!(
            find(&older[..], &current[..], &ID).unwrap().other_damaged,
            None
        );
    }

    #[test]
    fn both_records_invalid_is_an_error_never_fresh_state() {
        let mut a = *record(5, Counters::default()).encode();
        let mut b = *record(6, Counters::default()).encode();
        a[OFF_FAILURES] ^= 1;
        b[..8].copy_from_slice(b"NOTMAGIC");
        assert_eq!(
            pick(&a, &b, &ID),
            Err(NoRecord::Neither {
                a: Rejected::Invalid(Invalid::Checksum),
                b: Rejected::Invalid(Invalid::Magic),
            })
        );
        assert!(pick(&[], &[0; 8192], &ID).is_err());
    }

    #[test]
    fn records_of_another_enrollment_are_refused() {
        let other = EnrollmentId([8; 16]);
        let mine = record(1, Counters::default()).encode();
        let theirs = Record {
            generation: 99,
            enrollment_id: other,
            counters: Counters::default(),
        }
        .encode();
        // A higher generation of another enrollment never wins...
        let picked = pick(&theirs[..], &mine[..], &ID).unwrap();
        assert_eq!((picked.slot, picked.record.generation), (Slot::B, 1));
        // ...and two of them are no record at all.
        assert_eq!(
            pick(&theirs[..], &theirs[..], &ID),
            Err(NoRecord::Neither {
                a: Rejected::OtherEnrollment,
                b: Rejected::OtherEnrollment,
            })
        );
    }

    #[test]
    fn generations_order_up_to_the_last_and_then_refuse_to_wrap() {
        let last = record(u64::MAX, Counters::default());
        let before = record(u64::MAX - 1, Counters::default());
        let picked = pick(&last.encode()[..], &before.encode()[..], &ID).unwrap();
        assert_eq!(picked.record.generation, u64::MAX);
        assert_eq!(
            last.successor(Counters::default()),
            Err(GenerationExhausted)
        );
        let zero = record(0, Counters::default());
        assert_eq!(zero.successor(Counters::default()).unwrap().generation, 1);
    }

    #[test]
    fn equal_generations_with_different_counters_are_ambiguous() {
        let a = record(3, Counters::default()).encode();
        let b = record(
            3,
            Counters {
                last_step: Some(1),
                ..Counters::default()
            },
        )
        .encode();
        assert_eq!(
            pick(&a[..], &b[..], &ID),
            Err(NoRecord::Ambiguous { generation: 3 })
        );
        assert_eq!(pick(&a[..], &a[..], &ID).unwrap().slot, Slot::A);
    }

    #[test]
    fn enrollment_ids_round_trip_through_hex() {
        let id = EnrollmentId([0xA5; 16]);
        assert_eq!(EnrollmentId::from_hex(&id.to_hex()), Some(id));
        for bad in [
            "",
            "a5",
            &"A5".repeat(16),
            &"g5".repeat(16),
            &"a5".repeat(17),
        ] {
            assert_eq!(EnrollmentId::from_hex(bad), None, "{bad:?}");
        }
        assert_ne!(
            EnrollmentId::random().unwrap(),
            EnrollmentId::random().unwrap()
        );
    }
}
