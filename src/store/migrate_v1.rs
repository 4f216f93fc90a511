//! Reading a user's state in either version, and converting version 1 to version 2.
//!
//! Version 2 is two files in the state file's directory: the enrollment file at the
//! configured path (`state.toml`, `version = 2`) and the counters file beside it
//! (`state.toml.counters`). The enrollment file decides the version; a counters file next
//! to a v1 file is a leftover of an interrupted conversion and is ignored.
//!
//! # Conversion order, and why a crash at any point is safe
//!
//! Under the store's lock, with the v1 state just read and validated:
//!
//! 1. Remove stale temp files (`state.toml.counters.tmp`, `state.toml.tmp`).
//! 2. Create `state.toml.counters.tmp`, write both blocks holding v1's counters (last step,
//!    throttle, last success; no burned ids) under a new random enrollment id; fsync it.
//! 3. Rename it to `state.toml.counters`; fsync the directory. From here the counters are
//!    durable under their final name, before anything refers to them.
//! 4. Write `state.toml.tmp`: the enrollment v2 (secret, parameters, v1's recovery code
//!    list as is, the same enrollment id); fsync it.
//! 5. Rename it over `state.toml`; fsync the directory. This rename is the commit point.
//!
//! Crash before the rename of step 5 reaches the disk: `state.toml` is still the v1 file,
//! complete and unchanged (it is only ever replaced by rename), so the reader takes v1 and
//! ignores any counters file and temp files; the next change converts again from scratch
//! with a new id. Crash after it: `state.toml` is v2, and its counters are already durable
//! (step 3 synced the directory before step 5 began), with the id it names.
//!
//! Nothing burned comes back: the counters copy v1's `last_step` exactly, so a step
//! accepted under v1 is still refused under v2; v1 deleted used recovery codes from its
//! list, and the list is carried as is, so a used code is in neither file. While v1 is
//! still the state, it is the v1 file, unchanged, that the next login reads.
//!
//! A counters file that is missing, damaged or of another enrollment next to a v2
//! enrollment is an error, never a fresh start (that would forget the replay guard).

use super::counters_file;
use crate::error::{Error, Result};
use crate::state::State;
use crate::state::counters_v2::{Counters, EnrollmentId, Picked, Record, Slot};
#[cfg(test)]
use crate::state::enrollment_v2;
use crate::state::enrollment_v2::Enrollment;
use nix::errno::Errno;
use nix::fcntl::renameat;
#[cfg(test)]
use nix::fcntl::{OFlag, openat};
#[cfg(test)]
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use std::ffi::{OsStr, OsString};
use std::fs::File;
#[cfg(test)]
use std::io::Read;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
#[cfg(test)]
use zeroize::Zeroizing;

/// The enrollment or v1 state file is never near this; a larger one is refused unread.
#[cfg(test)]
const MAX_STATE_SIZE: u64 = 64 * 1024;

/// The names, in the state file's directory, of the files state v2 uses.
#[derive(Debug, Clone)]
pub struct Names {
    /// The configured file: v1 state or v2 enrollment.
    pub state: OsString,
    pub counters: OsString,
    /// The counters file's full path, for messages: made once, not at each use (a login
    /// needed it five times).
    pub counters_path: PathBuf,
    state_temp: OsString,
    counters_temp: OsString,
    /// The state file's full path, for messages; siblings are derived from it.
    path: PathBuf,
}

impl Names {
    pub fn for_state_file(path: &Path) -> Option<Names> {
        let state = path.file_name()?.to_owned();
        let with = |suffix: &str| {
            let mut name = state.clone();
            name.push(suffix);
            name
        };
        let counters = with(".counters");
        Some(Names {
            counters_path: sibling_path(path, &state, &counters),
            counters,
            state_temp: with(".tmp"),
            counters_temp: with(".counters.tmp"),
            state,
            path: path.to_owned(),
        })
    }

    pub fn path_of(&self, name: &OsStr) -> PathBuf {
        sibling_path(&self.path, &self.state, name)
    }
}

/// `path.with_file_name(name)`, where `file` is `path`'s file name. The store's paths end
/// in it as written (`…/state.toml`): then the sibling is that text with the name
/// replaced, which spares parsing the components again (a few times a login).
pub(crate) fn sibling_path(path: &Path, file: &OsStr, name: &OsStr) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    match path.as_os_str().as_bytes().strip_suffix(file.as_bytes()) {
        Some(dir) if dir.ends_with(b"/") => {
            let mut text = Vec::with_capacity(dir.len() + name.len());
            text.extend_from_slice(dir);
            text.extend_from_slice(name.as_bytes());
            PathBuf::from(OsString::from_vec(text))
        }
        _ => path.with_file_name(name),
    }
}

/// A user's state as found on disk (the tests' reader).
#[cfg(test)]
#[derive(Debug)]
pub enum OnDisk {
    NotEnrolled,
    V1(State),
    V2 {
        enrollment: Enrollment,
        /// Open read-write: the login's [`counters_file::update`] goes through it.
        counters: File,
        current: Picked,
    },
}

#[cfg(test)]
/// Reads the state in `dir` (the store's checked directory fd, under its lock for a
/// change). Files are opened with O_NOFOLLOW and must be regular files; the store adds
/// its owner and mode checks on the same descriptors.
pub fn read(dir: &OwnedFd, names: &Names) -> Result<OnDisk> {
    let Some(bytes) = read_small(dir, &names.state, &names.path)? else {
        return Ok(OnDisk::NotEnrolled);
    };
    if enrollment_v2::file_version(&bytes) != Some(enrollment_v2::VERSION) {
        // v1, or something no version reads: v1's parser says what is wrong with it.
        return State::parse(&bytes, &names.path).map(OnDisk::V1);
    }
    let enrollment = Enrollment::parse(&bytes, &names.path)?;
    let counters_path = &names.counters_path;
    let counters = match open_regular(dir, &names.counters, OFlag::O_RDWR, counters_path)? {
        Some(file) => file,
        None => {
            return Err(Error::corrupt(
                counters_path,
                "counters file is missing; logins are refused because the replay guard is \
                 lost: restore the file from a backup, or (as root) run `pam-totp --user NAME disable` and enroll again",
            ));
        }
    };
    let current =
        counters_file::load(&counters, &enrollment.id).map_err(|e| e.into_error(counters_path))?;
    Ok(OnDisk::V2 {
        enrollment,
        counters,
        current,
    })
}

/// The steps of [`replace_enrollment`], in order; a test stops after one to play a crash
/// there. With the counters written in place, the `CountersTemp*` steps are one pwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    StaleTempsRemoved,
    CountersTempCreated,
    CountersTempWritten,
    CountersRenamed,
    CountersDurable,
    EnrollmentTempCreated,
    EnrollmentTempWritten,
    EnrollmentRenamed,
    Done,
}

/// Where the first counters record of a new enrollment goes.
pub(crate) enum CountersTarget<'a> {
    /// The counters file of the current v2 enrollment, whose current record is in block
    /// `keep`: the new record goes in the other block (one pwrite + fdatasync), so until
    /// the enrollment file is replaced the old enrollment still finds its record.
    InPlace { file: &'a File, keep: Slot },
    /// A new counters file (v1, nothing enrolled, or damaged counters): written as a temp
    /// file, renamed over the counters name, directory synced.
    New,
}

/// Converts the v1 state `v1` (just read from `dir` under the store's lock) to v2, in the
/// crash-safe order of this module's documentation. Returns what [`read`] would now.
#[cfg(test)]
pub fn convert_v1(dir: &OwnedFd, names: &Names, v1: &State) -> Result<OnDisk> {
    replace_enrollment(dir, names, v1, CountersTarget::New, Step::Done)?;
    read(dir, names)
}

/// Writes `state` as a new v2 enrollment (new enrollment id, nothing burned: `state`'s
/// recovery code list holds only unused codes) under the store's lock, in the order of this
/// module's documentation: counters first, durable under their final name, then the
/// enrollment file renamed over the state (the commit point). Used for the conversion of
/// v1, for enroll and for new recovery codes. `stop`: [`Step::Done`] but in tests.
pub(crate) fn replace_enrollment(
    dir: &OwnedFd,
    names: &Names,
    state: &State,
    target: CountersTarget<'_>,
    stop: Step,
) -> Result<()> {
    let id = EnrollmentId::random()?;
    let counters_path = &names.counters_path;
    let mut counters = Counters::new(state.last_step, state.throttle.clone(), state.last_success);
    // HOTP: the counter goes with the first record; the enrollment file only says "hotp".
    counters.hotp_counter = (state.kind == crate::otp::Kind::Hotp).then_some(state.hotp_counter);
    // The model decides which hosts are remembered (a new enrollment or new recovery codes
    // have none); a login that rewrites the enrollment keeps them.
    counters.replace_hosts(&state.remembered_hosts);
    let first = Record {
        generation: 2,
        enrollment_id: id,
        counters,
    };
    let state_tmp = remove_stale(dir, names, &names.state_temp)?;
    match target {
        CountersTarget::InPlace { file, keep } => {
            if stop == Step::StaleTempsRemoved {
                return Ok(());
            }
            let old = Picked {
                slot: keep,
                record: Record {
                    generation: 1,
                    ..first.clone()
                },
            };
            counters_file::update(file, &old, first.counters.clone())
                .map_err(|e| e.into_error(counters_path))?;
            if stop < Step::EnrollmentTempCreated {
                return Ok(());
            }
        }
        CountersTarget::New => {
            let counters_tmp = remove_stale(dir, names, &names.counters_temp)?;
            if stop == Step::StaleTempsRemoved {
                return Ok(());
            }
            let counters_tmp_path = names.path_of(&counters_tmp);
            let file = create_exclusive(dir, &counters_tmp, &counters_tmp_path)?;
            if stop == Step::CountersTempCreated {
                return Ok(());
            }
            counters_file::write_initial(&file, &first)
                .map_err(|e| e.into_error(&counters_tmp_path))?;
            drop(file);
            if stop == Step::CountersTempWritten {
                return Ok(());
            }
            rename(dir, &counters_tmp, &names.counters, counters_path)?;
            if stop == Step::CountersRenamed {
                return Ok(());
            }
            sync_dir(dir, names)?;
            if stop == Step::CountersDurable {
                return Ok(());
            }
        }
    }

    let text = Enrollment::from_v1(state, id).to_toml()?;
    let state_tmp_path = names.path_of(&state_tmp);
    let mut file = create_exclusive(dir, &state_tmp, &state_tmp_path)?;
    if stop == Step::EnrollmentTempCreated {
        return Ok(());
    }
    let written = file
        .write_all(text.as_bytes())
        .map_err(|e| Error::io(&state_tmp_path, "write", e))
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| Error::io(&state_tmp_path, "sync", e))
        });
    drop(file);
    if let Err(e) = written {
        // Disk full or read-only: the old state is intact; leave no half file behind.
        let _ = unlinkat(dir, state_tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    if stop == Step::EnrollmentTempWritten {
        return Ok(());
    }
    rename(dir, &state_tmp, &names.state, &names.path)?;
    if stop == Step::EnrollmentRenamed {
        return Ok(());
    }
    sync_dir(dir, names)
}

/// Removes a crash's leftover at `name` and returns the temp name to use. A leftover
/// directory that cannot be removed (not empty) must not block the user's logins: a
/// random name beside it is used instead.
fn remove_stale(dir: &OwnedFd, names: &Names, name: &OsStr) -> Result<OsString> {
    let path = names.path_of(name);
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(name.to_owned()),
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(e) => return Err(Error::io(&path, "remove stale", e)),
    }
    if unlinkat(dir, name, UnlinkatFlags::RemoveDir).is_ok() {
        return Ok(name.to_owned());
    }
    let suffix = crate::secret::random_bytes::<4>()
        .map_err(|e| Error::Internal(format!("random temp name: {e}")))?;
    let mut other = name.to_owned();
    other.push(format!(
        ".{:02x}{:02x}{:02x}{:02x}",
        suffix[0], suffix[1], suffix[2], suffix[3]
    ));
    Ok(other)
}

fn create_exclusive(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<File> {
    crate::safe_fs::create_new_in(dir, name)
        .map(File::from)
        .map_err(|e| Error::io(path, "create", e))
}

fn rename(dir: &OwnedFd, from: &OsStr, to: &OsStr, to_path: &Path) -> Result<()> {
    renameat(dir, from, dir, to).map_err(|e| Error::io(to_path, "replace", e))
}

fn sync_dir(dir: &OwnedFd, names: &Names) -> Result<()> {
    let dir_path = names.path.parent().unwrap_or(Path::new("/"));
    fsync(dir).map_err(|e| Error::io(dir_path, "sync", e))
}

#[cfg(test)]
/// Opens `name` without following a link; `None` if it does not exist.
fn open_regular(dir: &OwnedFd, name: &OsStr, mode: OFlag, path: &Path) -> Result<Option<File>> {
    let fd = match openat(
        dir,
        name,
        mode | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::io(path, "open", e)),
    };
    let stat = fstat(&fd).map_err(|e| Error::io(path, "inspect", e))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::Unsafe {
            path: path.to_owned(),
            problem: "not a regular file".into(),
            fix: format!("remove {} and enroll again", path.display()),
        });
    }
    Ok(Some(File::from(fd)))
}

#[cfg(test)]
fn read_small(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let Some(file) = open_regular(dir, name, OFlag::O_RDONLY, path)? else {
        return Ok(None);
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_STATE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "read", e))?;
    if bytes.len() as u64 > MAX_STATE_SIZE {
        return Err(Error::corrupt(
            path,
            format!("larger than {MAX_STATE_SIZE} bytes"),
        ));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input as codes_input;
    use crate::otp::HashAlgorithm;
    use crate::recovery as codes;
    use crate::secret::SecretString;
    use crate::state::{LastSuccess, Method, Throttle};

    const ALL_STEPS: [Step; 9] = [
        Step::StaleTempsRemoved,
        Step::CountersTempCreated,
        Step::CountersTempWritten,
        Step::CountersRenamed,
        Step::CountersDurable,
        Step::EnrollmentTempCreated,
        Step::EnrollmentTempWritten,
        Step::EnrollmentRenamed,
        Step::Done,
    ];

    struct Home {
        _dir: tempfile::TempDir,
        fd: OwnedFd,
        names: Names,
    }

    /// A directory holding a v1 state as the current release writes it: three recovery
    /// codes made, one of them used (so deleted from the list), a step accepted, a failure
    /// counted.
    /// Also returns the unused codes and the used one.
    fn v1_home() -> (Home, State, Vec<SecretString>, SecretString) {
        let dir = tempfile::tempdir().unwrap();
        let (mut codes, hashes) = codes::new_recovery_codes(3).unwrap();
        let mut state = State::new(
            SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            HashAlgorithm::SHA1,
            6,
            30,
            hashes,
        )
        .unwrap();
        state.recovery_codes.remove(1);
        let used = codes.remove(1);
        state.last_step = Some(58_000_000);
        state.throttle = Throttle {
            failures: 2,
            locked_until: 0,
        };
        state.last_success = Some(LastSuccess {
            time: 1_740_000_000,
            method: Method::Recovery,
        });
        let path = dir.path().join("state.toml");
        std::fs::write(&path, state.to_toml().unwrap().as_bytes()).unwrap();
        let fd = File::open(dir.path()).unwrap().into();
        let names = Names::for_state_file(&path).unwrap();
        (
            Home {
                _dir: dir,
                fd,
                names,
            },
            state,
            codes,
            used,
        )
    }

    /// What a reader after a crash must see: v1 exactly as it was, or a v2 that refuses
    /// every step and recovery code v1 refused and keeps the rest.
    fn assert_same_state(on_disk: &OnDisk, v1: &State, step: Step) {
        match on_disk {
            OnDisk::V1(read) => assert_eq!(read, v1, "{step:?}"),
            OnDisk::V2 {
                enrollment,
                current,
                ..
            } => {
                assert_eq!(enrollment.secret, v1.secret, "{step:?}");
                assert_eq!(enrollment.recovery_codes, v1.recovery_codes, "{step:?}");
                let counters = &current.record.counters;
                assert_eq!(counters.last_step, v1.last_step, "{step:?}");
                assert_eq!(counters.throttle, v1.throttle, "{step:?}");
                assert_eq!(counters.last_success, v1.last_success, "{step:?}");
                assert!(counters.burned().is_empty(), "{step:?}");
            }
            OnDisk::NotEnrolled => panic!("{step:?}: state vanished"),
        }
    }

    #[test]
    fn sibling_paths_are_what_with_file_name_gives() {
        for (path, file) in [
            ("/home/u/.config/pam-totp/state.toml", "state.toml"),
            ("state.toml", "state.toml"),
            ("/srv/totp/u.toml", "u.toml"),
            // Not as written: a trailing "." (file_name() skips it) takes with_file_name.
            ("/srv/totp/u/.", "u"),
            ("/srv/xu.toml", "u.toml"),
        ] {
            let path = Path::new(path);
            for name in ["state.toml.counters", "x"] {
                let name = OsStr::new(name);
                assert_eq!(
                    sibling_path(path, OsStr::new(file), name),
                    path.with_file_name(name),
                    "{path:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn a_crash_after_any_step_leaves_v1_or_v2_with_nothing_burned_coming_back() {
        for step in ALL_STEPS {
            let (home, v1, ..) = v1_home();
            replace_enrollment(&home.fd, &home.names, &v1, CountersTarget::New, step).unwrap();
            let after_crash = read(&home.fd, &home.names).unwrap();
            let expect_v2 = step >= Step::EnrollmentRenamed;
            assert_eq!(
                matches!(after_crash, OnDisk::V2 { .. }),
                expect_v2,
                "{step:?}"
            );
            assert_same_state(&after_crash, &v1, step);

            // The next change converts again, over whatever the crash left.
            let v1_again = match after_crash {
                OnDisk::V1(state) => state,
                _ => continue,
            };
            let converted = convert_v1(&home.fd, &home.names, &v1_again).unwrap();
            assert!(matches!(converted, OnDisk::V2 { .. }), "{step:?}");
            assert_same_state(&converted, &v1, step);
            assert_same_state(&read(&home.fd, &home.names).unwrap(), &v1, step);
        }
    }

    /// A v2 home (v1 converted), and a new state to enroll over it with another secret.
    fn v2_home_and_new_state() -> (Home, State) {
        let (home, v1, ..) = v1_home();
        convert_v1(&home.fd, &home.names, &v1).unwrap();
        let (_, hashes) = codes::new_recovery_codes(1).unwrap();
        let mut new = State::new(
            SecretString::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
            HashAlgorithm::SHA256,
            8,
            60,
            hashes,
        )
        .unwrap();
        new.last_step = Some(7);
        (home, new)
    }

    #[test]
    fn a_crash_after_any_in_place_step_leaves_the_old_enrollment_or_the_new_one() {
        for step in ALL_STEPS {
            let (home, new) = v2_home_and_new_state();
            let OnDisk::V2 {
                enrollment: old,
                counters,
                current: old_current,
            } = read(&home.fd, &home.names).unwrap()
            else {
                panic!("not v2");
            };
            let target = CountersTarget::InPlace {
                file: &counters,
                keep: old_current.slot,
            };
            replace_enrollment(&home.fd, &home.names, &new, target, step).unwrap();
            // The step is where the crash is played: the enrollment's temp file exists
            // exactly between its creation and its rename.
            let temp = home.names.path_of(&home.names.state_temp);
            let temp_expected = matches!(
                step,
                Step::EnrollmentTempCreated | Step::EnrollmentTempWritten
            );
            assert_eq!(temp.exists(), temp_expected, "{step:?}");
            let OnDisk::V2 {
                enrollment,
                current,
                ..
            } = read(&home.fd, &home.names).unwrap()
            else {
                panic!("{step:?}: not v2");
            };
            if step < Step::EnrollmentRenamed {
                assert_eq!(enrollment, old, "{step:?}");
                assert_eq!(current, old_current, "{step:?}");
            } else {
                assert_eq!(enrollment.secret, new.secret, "{step:?}");
                assert_ne!(enrollment.id, old.id, "{step:?}");
                assert_eq!(current.record.enrollment_id, enrollment.id, "{step:?}");
                assert_eq!(current.record.counters.last_step, Some(7), "{step:?}");
                assert_ne!(current.slot, old_current.slot, "{step:?}");
            }
        }
    }

    #[test]
    fn a_torn_counters_temp_file_does_not_matter() {
        let (home, v1, ..) = v1_home();
        replace_enrollment(
            &home.fd,
            &home.names,
            &v1,
            CountersTarget::New,
            Step::CountersTempCreated,
        )
        .unwrap();
        let temp = home.names.path_of(&home.names.counters_temp);
        std::fs::write(&temp, [0xA5; 3000]).unwrap();
        assert_same_state(&read(&home.fd, &home.names).unwrap(), &v1, Step::Done);
        let converted = convert_v1(&home.fd, &home.names, &v1).unwrap();
        assert_same_state(&converted, &v1, Step::Done);
        assert!(!temp.exists());
    }

    #[test]
    fn a_used_recovery_code_stays_used_and_unused_ones_still_verify() {
        let (home, v1, codes, used) = v1_home();
        let OnDisk::V2 { enrollment, .. } = convert_v1(&home.fd, &home.names, &v1).unwrap() else {
            panic!("not converted");
        };
        assert_eq!(enrollment.recovery_codes.len(), 2);
        let verify = |typed: &SecretString| {
            let codes_input::Entered::Recovery { id, code } =
                codes_input::classify(typed.expose(), 6)
            else {
                panic!("not a recovery code");
            };
            codes::verify_recovery_code(&enrollment.recovery_codes, &id, &code).unwrap()
        };
        for code in &codes {
            assert!(verify(code).is_some(), "an unused code must still work");
        }
        assert_eq!(verify(&used), None, "a used code must not come back");
    }

    #[test]
    fn a_state_file_is_read_up_to_64_kib_and_refused_above() {
        let (home, v1, ..) = v1_home();
        let text = v1.to_toml().unwrap();
        let padded = |size: usize| {
            let mut bytes = text.as_bytes().to_vec();
            bytes.extend_from_slice(b"\n#");
            bytes.resize(size - 1, b'x');
            bytes.push(b'\n');
            std::fs::write(&home.names.path, &bytes).unwrap();
        };
        padded(64 * 1024);
        assert!(matches!(read(&home.fd, &home.names).unwrap(), OnDisk::V1(ref s) if *s == v1));
        padded(64 * 1024 + 1);
        let err = read(&home.fd, &home.names).unwrap_err().to_string();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }

    #[test]
    fn v2_without_its_counters_is_refused_not_fresh() {
        let (home, v1, ..) = v1_home();
        convert_v1(&home.fd, &home.names, &v1).unwrap();
        std::fs::remove_file(home.names.path_of(&home.names.counters)).unwrap();
        let err = read(&home.fd, &home.names).unwrap_err().to_string();
        assert!(err.contains("counters file is missing"), "{err}");
    }

    #[test]
    fn v2_with_counters_of_another_enrollment_is_refused() {
        let (home, v1, ..) = v1_home();
        convert_v1(&home.fd, &home.names, &v1).unwrap();
        let counters = home.names.path_of(&home.names.counters);
        let of_first_id = std::fs::read(&counters).unwrap();
        // Converting again gives a new id; then the first id's counters come back.
        convert_v1(&home.fd, &home.names, &v1).unwrap();
        std::fs::write(&counters, of_first_id).unwrap();
        let err = read(&home.fd, &home.names).unwrap_err().to_string();
        assert!(err.contains("no valid counters record"), "{err}");
        assert!(err.contains("OtherEnrollment"), "{err}");
    }

    #[test]
    fn both_counters_records_damaged_is_refused() {
        let (home, v1, ..) = v1_home();
        convert_v1(&home.fd, &home.names, &v1).unwrap();
        let path = home.names.path_of(&home.names.counters);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read(&home.fd, &home.names).unwrap(),
            OnDisk::V2 { .. }
        ));
        bytes[4096 + 100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&home.fd, &home.names).unwrap_err().to_string();
        assert!(err.contains("replay guard"), "{err}");
    }

    #[test]
    fn leftover_temp_directories_do_not_block_the_conversion() {
        let (home, v1, ..) = v1_home();
        let empty = home.names.path_of(&home.names.counters_temp);
        std::fs::create_dir(&empty).unwrap();
        let full = home.names.path_of(&home.names.state_temp);
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("junk"), b"x").unwrap();
        let converted = convert_v1(&home.fd, &home.names, &v1).unwrap();
        assert_same_state(&converted, &v1, Step::Done);
        assert!(!empty.exists());
    }

    #[test]
    fn a_login_after_the_conversion_updates_the_counters_in_place() {
        let (home, v1, ..) = v1_home();
        let OnDisk::V2 {
            counters, current, ..
        } = convert_v1(&home.fd, &home.names, &v1).unwrap()
        else {
            panic!("not converted");
        };
        let mut next = current.record.counters.clone();
        next.last_step = Some(58_000_001);
        next.burn(crate::state::counters_v2::RecoveryId::parse("K7QF").unwrap())
            .unwrap();
        counters_file::update(&counters, &current, next.clone()).unwrap();
        let OnDisk::V2 { current, .. } = read(&home.fd, &home.names).unwrap() else {
            panic!("not v2");
        };
        assert_eq!(current.record.counters, next);
    }
}
