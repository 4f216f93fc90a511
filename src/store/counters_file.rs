//! The counters file of state v2: two 4 KiB blocks, each holding one counters record
//! (`state/counters_v2.rs`), 8192 bytes in all, allocated and written once.
//!
//! Why this shape (issue 9): rewriting a whole file by temp + fsync + rename + fsync(dir)
//! costs two journal commits per login. Here a login overwrites one block that already
//! exists: the size and the block map never change, so `fdatasync` has only the data to
//! write back and no metadata to commit (the timestamps it may skip are not needed to read
//! the data). A crash during that write can tear only the block being written; its record
//! was never acknowledged (the login returns only after `fdatasync`), and the other block
//! still holds the previous one, which the reader then takes.
//!
//! Callers own the file descriptor: the store opens the file as the user with O_NOFOLLOW,
//! checks owner and mode, and holds its OFD lock around [`load`] + [`update`].

use crate::state::counters_v2::{
    Counters, GenerationExhausted, NoRecord, Picked, RECORD_SIZE, Record, Slot,
};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const FILE_SIZE: u64 = 2 * RECORD_SIZE as u64;

/// What went wrong with a counters file; the store adds the path to make it a log line.
#[derive(Debug)]
pub enum CountersError {
    Io {
        action: &'static str,
        source: io::Error,
    },
    /// Not [`FILE_SIZE`] bytes: truncated, or not a counters file.
    WrongSize(u64),
    /// No valid record of this enrollment. Never "no counters yet": refuse the login.
    NoRecord(NoRecord),
    GenerationExhausted,
}

impl From<GenerationExhausted> for CountersError {
    fn from(_: GenerationExhausted) -> Self {
        CountersError::GenerationExhausted
    }
}

fn io_error(action: &'static str) -> impl FnOnce(io::Error) -> CountersError {
    move |source| CountersError::Io { action, source }
}

/// Writes a new counters file's content into `file` (empty, just created): `first` in both
/// blocks (A at generation `first.generation`, B one below, so A is current), then fsync.
/// Two valid blocks from the start: damage to either one in the file's first life still
/// leaves a record to read. A full write rather than fallocate alone: an allocated but
/// unwritten extent would turn the first login's write into a metadata change.
pub fn write_initial(file: &File, first: &Record) -> Result<Picked, CountersError> {
    let mut older = first.clone();
    older.generation = first.generation.checked_sub(1).ok_or(GenerationExhausted)?;
    let mut both = vec![0u8; FILE_SIZE as usize];
    both[..RECORD_SIZE].copy_from_slice(&first.encode()[..]);
    both[RECORD_SIZE..].copy_from_slice(&older.encode()[..]);
    file.write_all_at(&both, 0).map_err(io_error("write"))?;
    file.sync_all().map_err(io_error("sync"))?;
    Ok(Picked {
        slot: Slot::A,
        record: first.clone(),
    })
}

/// Both blocks of the counters file, after checking its size (`size`: what the caller's
/// fstat of this descriptor said, so the login asks the kernel only once).
pub(crate) fn read_both(file: &File, size: u64) -> Result<Vec<u8>, CountersError> {
    if size != FILE_SIZE {
        return Err(CountersError::WrongSize(size));
    }
    crate::sys::pread_exact_uninit(file, FILE_SIZE as usize).map_err(io_error("read"))
}

/// The current record of enrollment `expected`: both blocks are read, the valid one with
/// the highest generation and this enrollment id is returned with its slot.
#[cfg(test)]
pub fn load(
    file: &File,
    expected: &crate::state::counters_v2::EnrollmentId,
) -> Result<Picked, CountersError> {
    let size = file.metadata().map_err(io_error("inspect"))?.len();
    let both = read_both(file, size)?;
    let (a, b) = both.split_at(RECORD_SIZE);
    crate::state::counters_v2::pick(a, b, expected).map_err(CountersError::NoRecord)
}

/// Records `counters` as the successor of `current` (from [`load`], under the caller's
/// lock): one pwrite of the 4096-byte record over the block NOT holding `current`, then
/// fdatasync. Returns only when the new record is on stable storage; the result is the new
/// current record, for a further update under the same lock.
pub fn update(file: &File, current: &Picked, counters: Counters) -> Result<Picked, CountersError> {
    let record = current.record.successor(counters)?;
    let slot = current.slot.other();
    let mut block = [0u8; RECORD_SIZE];
    record.encode_into(&mut block);
    let offset = (slot.index() * RECORD_SIZE) as u64;
    // A regular file on a local disk takes the 4096 bytes in one call; the loop only
    // finishes a short write, still before the sync.
    let mut written = 0;
    while written < RECORD_SIZE {
        match file.write_at(&block[written..], offset + written as u64) {
            Ok(0) => {
                return Err(CountersError::Io {
                    action: "write",
                    source: io::ErrorKind::WriteZero.into(),
                });
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(CountersError::Io {
                    action: "write",
                    source: e,
                });
            }
        }
    }
    file.sync_data().map_err(io_error("sync"))?;
    Ok(Picked { slot, record })
}

impl CountersError {
    /// The library error for the file at `path`: a line for syslog that says what is wrong
    /// and the way out, and never suggests that the file be deleted to get in.
    pub fn into_error(self, path: &std::path::Path) -> crate::Error {
        use crate::Error;
        let damaged = |problem: String| {
            Error::corrupt(
                path,
                format!(
                    "{problem}; logins are refused because the replay guard is lost: \
                     restore the file from a backup, or (as root) run \
                     `pam-totp --user NAME disable` and enroll again"
                ),
            )
        };
        match self {
            CountersError::Io { action, source } => Error::io(path, action, source),
            CountersError::WrongSize(size) => {
                damaged(format!("counters file is {size} bytes, not {FILE_SIZE}"))
            }
            CountersError::NoRecord(NoRecord::Neither { a, b }) => damaged(format!(
                "no valid counters record of this enrollment (block A: {a:?}, block B: {b:?})"
            )),
            CountersError::NoRecord(NoRecord::Ambiguous { generation }) => damaged(format!(
                "both counters records claim generation {generation}"
            )),
            CountersError::GenerationExhausted => {
                damaged("counters generation is at its maximum".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{LastSuccess, Method, Throttle};
    use std::fs::OpenOptions;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::state::counters_v2::EnrollmentId;
    use nix::errno::Errno;
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    use std::ffi::OsStr;
    use std::os::fd::OwnedFd;

    /// Creates `name` in `dir` (O_EXCL, O_NOFOLLOW, mode 0600), writes both blocks, fsyncs the
    /// file and then the directory, so the file exists durably before anyone relies on it.
    pub fn create_in(
        dir: &OwnedFd,
        name: &OsStr,
        first: &Record,
    ) -> Result<(File, Picked), CountersError> {
        let fd = openat(
            dir,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e: Errno| CountersError::Io {
            action: "create",
            source: e.into(),
        })?;
        let file = File::from(fd);
        let picked = write_initial(&file, first)?;
        nix::unistd::fsync(dir).map_err(|e| CountersError::Io {
            action: "sync the directory of",
            source: e.into(),
        })?;
        Ok((file, picked))
    }

    const ID: EnrollmentId = EnrollmentId([0x42; 16]);

    fn first() -> Record {
        Record {
            generation: 1,
            enrollment_id: ID,
            counters: Counters::new(Some(1000), Throttle::default(), None),
        }
    }

    fn new_file(dir: &tempfile::TempDir) -> (File, Picked) {
        let dir_fd: OwnedFd = File::open(dir.path()).unwrap().into();
        create_in(&dir_fd, OsStr::new("counters"), &first()).unwrap()
    }

    fn step(n: u64) -> Counters {
        Counters::new(
            Some(n),
            Throttle::default(),
            Some(LastSuccess {
                time: n * 30,
                method: Method::Totp,
            }),
        )
    }

    #[test]
    fn a_new_file_has_two_valid_blocks_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (file, picked) = new_file(&dir);
        assert_eq!(picked.slot, Slot::A);
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), FILE_SIZE);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&file, &ID).unwrap(), picked);
        // Block B alone is a valid record too (one below), so losing A still leaves one.
        file.write_all_at(&[0u8; RECORD_SIZE], 0).unwrap();
        let b = load(&file, &ID).unwrap();
        assert_eq!((b.slot, b.record.generation), (Slot::B, 0));
    }

    #[test]
    fn creating_over_an_existing_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _ = new_file(&dir);
        let dir_fd: OwnedFd = File::open(dir.path()).unwrap().into();
        let err = create_in(&dir_fd, OsStr::new("counters"), &first()).unwrap_err();
        assert!(
            matches!(
                err,
                CountersError::Io {
                    action: "create",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn updates_alternate_blocks_and_never_change_size_or_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let (file, mut current) = new_file(&dir);
        let before = file.metadata().unwrap();
        for n in 1..=5 {
            let slot_before = current.slot;
            current = update(&file, &current, step(1000 + n)).unwrap();
            assert_eq!(current.slot, slot_before.other());
            assert_eq!(current.record.generation, 1 + n);
            let loaded = load(&file, &ID).unwrap();
            assert_eq!(loaded, current);
            assert_eq!(loaded.record.counters.last_step, Some(1000 + n));
        }
        let after = file.metadata().unwrap();
        assert_eq!(
            (after.len(), after.blocks(), after.ino()),
            (before.len(), before.blocks(), before.ino())
        );
    }

    #[test]
    fn a_torn_update_leaves_the_acknowledged_record() {
        let dir = tempfile::tempdir().unwrap();
        let (file, current) = new_file(&dir);
        let acknowledged = update(&file, &current, step(2000)).unwrap();
        // The next update is torn: only its first sector reached the disk.
        let next = acknowledged.record.successor(step(2001)).unwrap().encode();
        let offset = (acknowledged.slot.other().index() * RECORD_SIZE) as u64;
        file.write_all_at(&next[..512], offset).unwrap();
        assert_eq!(load(&file, &ID).unwrap(), acknowledged);
    }

    #[test]
    fn one_corrupt_block_leaves_the_other_and_both_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (file, current) = new_file(&dir);
        let newest = update(&file, &current, step(3000)).unwrap();
        // Flip a byte in the newest record: the previous one is used.
        let at = (newest.slot.index() * RECORD_SIZE + 700) as u64;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x10], at).unwrap();
        let used = load(&file, &ID).unwrap();
        assert_eq!(used.slot, newest.slot.other());
        assert_eq!(used.record.counters.last_step, Some(1000));
        // Then the other: nothing valid is left, and that is an error.
        let at = (used.slot.index() * RECORD_SIZE + 9) as u64;
        file.write_all_at(&[0xFF], at).unwrap();
        assert!(matches!(
            load(&file, &ID),
            Err(CountersError::NoRecord(NoRecord::Neither { .. }))
        ));
    }

    #[test]
    fn a_file_of_another_enrollment_or_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = new_file(&dir);
        assert!(matches!(
            load(&file, &EnrollmentId([1; 16])),
            Err(CountersError::NoRecord(_))
        ));
        file.set_len(FILE_SIZE - 1).unwrap();
        assert!(matches!(
            load(&file, &ID),
            Err(CountersError::WrongSize(8191))
        ));
        let empty = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("empty"))
            .unwrap();
        assert!(matches!(
            load(&empty, &ID),
            Err(CountersError::WrongSize(0))
        ));
    }

    #[test]
    fn an_update_at_the_last_generation_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = new_file(&dir);
        let last = Record {
            generation: u64::MAX,
            ..first()
        };
        let picked = write_initial(&file, &last).unwrap();
        assert!(matches!(
            update(&file, &picked, step(1)),
            Err(CountersError::GenerationExhausted)
        ));
        assert_eq!(load(&file, &ID).unwrap(), picked);
    }

    /// Not a test: the micro-measurement for BENCHMARKS.md (issue 9). Run with
    /// `PAMTOTP_MEASURE_DIR=/some/dir cargo test --release --lib measure_ -- --ignored
    /// --nocapture`; the directory (default: the system temp dir) decides the file system.
    #[test]
    #[ignore]
    fn measure_counter_update_vs_whole_file_replace() {
        use std::io::Write;
        use std::time::Instant;
        const ROUNDS: usize = 1000;
        let base = std::env::var_os("PAMTOTP_MEASURE_DIR")
            .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
        let dir = tempfile::tempdir_in(base).unwrap();
        let dir_fd: OwnedFd = File::open(dir.path()).unwrap().into();
        let median = |mut micros: Vec<f64>| {
            micros.sort_by(f64::total_cmp);
            micros[micros.len() / 2]
        };

        let (file, mut current) = create_in(&dir_fd, OsStr::new("counters"), &first()).unwrap();
        let mut update_us = Vec::with_capacity(ROUNDS);
        for n in 0..ROUNDS as u64 {
            let start = Instant::now();
            current = update(&file, &current, step(n)).unwrap();
            update_us.push(start.elapsed().as_secs_f64() * 1e6);
        }

        // Today's write: a ~700-byte TOML state, temp + fsync + rename + fsync(dir).
        let text = vec![b'x'; 700];
        let dir_file = File::open(dir.path()).unwrap();
        let mut replace_us = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let temp = dir.path().join("state.toml.tmp");
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .unwrap();
            out.write_all(&text).unwrap();
            out.sync_all().unwrap();
            std::fs::rename(&temp, dir.path().join("state.toml")).unwrap();
            dir_file.sync_all().unwrap();
            replace_us.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let (update_median, replace_median) = (median(update_us), median(replace_us));
        println!(
            "median of {ROUNDS}: pwrite+fdatasync {update_median:.1} µs, \
             temp+fsync+rename+fsync(dir) {replace_median:.1} µs, ratio {:.2}",
            update_median / replace_median
        );
    }
}
