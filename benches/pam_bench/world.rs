//! The benchmark's world: fake users with temporary homes, each enrolled in all three
//! modules with one secret, and the PAM services that use them. Everything lives in one
//! temporary directory, removed when the [`World`] is dropped.
//!
//! Each user has one 160-bit TOTP secret, written three ways:
//! - pam_totp: `~/.config/pam-totp/state.toml` (the default `secret=`), made with the
//!   library itself, with 5, 10 or 20 recovery-code hashes;
//! - Google Authenticator: `~/.google_authenticator`, mode 0400 as its CLI writes it, with
//!   `WINDOW_SIZE 3` (one step either side, like pam_totp's `window=1`), `DISALLOW_REUSE`,
//!   `TOTP_AUTH` and five scratch codes;
//! - pam_oath: a line `HOTP/T30 user - HEX` in one usersfile, as its README shows.

use pam_totp::otp::{self, HashAlgorithm};
use pam_totp::recovery::{self, RecoveryCodeHash};
use pam_totp::secret::random_bytes;
use pam_totp::state::State;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Fake uids start here when running as root; far from the test suite's 61000.
const FIRST_FAKE_ID: u32 = 62000;
/// The most recovery codes any user holds; every user gets a prefix of one shared set.
pub const MAX_RECOVERY: usize = 20;
const SCRATCH_CODES: usize = 5;

pub const SERVICE_TOTP: &str = "totp";
/// The same, with throttling out of reach: for hammering one user with wrong codes.
pub const SERVICE_TOTP_NO_THROTTLE: &str = "totp_nothrottle";
pub const SERVICE_GA: &str = "ga";
pub const SERVICE_OATH: &str = "oath";
/// `pam_permit.so sufficient` first, then the module: libpam loads the module at
/// pam_start and unloads it at pam_end, but never calls it. What loading alone costs.
pub const SERVICE_TOTP_LOAD_ONLY: &str = "totp_load_only";
pub const SERVICE_GA_LOAD_ONLY: &str = "ga_load_only";
pub const SERVICE_OATH_LOAD_ONLY: &str = "oath_load_only";

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub secret_hex: String,
    /// How many recovery codes the state file holds (the first ones of the shared set).
    pub recovery_codes: usize,
    pub scratch: Vec<String>,
}

pub struct World {
    dir: tempfile::TempDir,
    users: Vec<User>,
    next_id: u32,
    /// The recovery codes as a person types them, and their argon2id hashes. Shared by all
    /// users: hashing is the slow part of enrollment, and a check costs the same whichever
    /// code it is.
    recovery_shown: Vec<String>,
    recovery_hashes: Vec<RecoveryCodeHash>,
    module: PathBuf,
}

impl World {
    /// An empty world in a new directory under `parent`, with the services written.
    pub fn new(parent: &Path, module: &Path) -> Result<World> {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-bench.")
            .tempdir_in(parent)?;
        // Fake users (other uids when root) must reach their homes inside it.
        set_mode(dir.path(), 0o755)?;
        for sub in ["pam.d", "home"] {
            fs::create_dir(dir.path().join(sub))?;
            set_mode(&dir.path().join(sub), 0o755)?;
        }
        let (shown, hashes) = recovery::new_recovery_codes(MAX_RECOVERY)?;
        let world = World {
            dir,
            users: Vec::new(),
            next_id: FIRST_FAKE_ID,
            recovery_shown: shown.iter().map(|c| c.expose().to_owned()).collect(),
            recovery_hashes: hashes,
            module: module.to_owned(),
        };
        world.write_services()?;
        Ok(world)
    }

    /// Leaves the directory in place, for looking at what the modules wrote.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn services_dir(&self) -> PathBuf {
        self.root().join("pam.d")
    }
    pub fn passwd_path(&self) -> PathBuf {
        self.root().join("passwd")
    }
    pub fn group_path(&self) -> PathBuf {
        self.root().join("group")
    }
    fn oath_path(&self) -> PathBuf {
        self.root().join("users.oath")
    }

    fn write_services(&self) -> Result<()> {
        let config = self.root().join("pam_totp.conf");
        // An explicit empty config: /etc/security/pam_totp.conf of this machine stays out.
        write(&config, "", 0o644)?;
        // fail_delay=0: measure the module's work, not the wait libpam adds after a failure.
        let totp = format!(
            "auth required {} config={} window=1 fail_delay=0",
            self.module.display(),
            config.display()
        );
        // Defaults otherwise, as admins deploy it: secret in ~, strict owner, 0600 max,
        // time-skew detection on.
        let ga = "auth required pam_google_authenticator.so".to_owned();
        let oath = format!(
            "auth required pam_oath.so usersfile={} window=1 digits=6",
            self.oath_path().display()
        );
        let permit = "auth sufficient pam_permit.so";
        let services = [
            (SERVICE_TOTP, totp.clone()),
            (
                SERVICE_TOTP_NO_THROTTLE,
                format!("{totp} max_failures=1000"),
            ),
            (SERVICE_GA, ga.clone()),
            (SERVICE_OATH, oath.clone()),
            (SERVICE_TOTP_LOAD_ONLY, format!("{permit}\n{totp}")),
            (SERVICE_GA_LOAD_ONLY, format!("{permit}\n{ga}")),
            (SERVICE_OATH_LOAD_ONLY, format!("{permit}\n{oath}")),
            ("other", "auth required pam_deny.so".into()),
        ];
        for (name, body) in services {
            write(&self.services_dir().join(name), &format!("{body}\n"), 0o644)?;
        }
        Ok(())
    }

    /// Adds `count` users named `{prefix}{i:03}` holding `recovery_codes` recovery codes.
    pub fn add_users(
        &mut self,
        prefix: &str,
        count: usize,
        recovery_codes: usize,
    ) -> Result<Vec<User>> {
        let mut added = Vec::with_capacity(count);
        for i in 0..count {
            let user = self.add_user(&format!("{prefix}{i:03}"), recovery_codes)?;
            added.push(user);
        }
        Ok(added)
    }

    fn add_user(&mut self, name: &str, recovery_codes: usize) -> Result<User> {
        let uid = if is_root() {
            self.next_id += 1;
            self.next_id - 1
        } else {
            // SAFETY: getuid has no preconditions and cannot fail.
            unsafe { libc::getuid() }
        };
        let secret = otp::new_secret()?;
        let raw = otp::decode_secret(&secret).ok_or("new_secret gave bad base32")?;
        let secret_hex: String = raw.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let scratch = (0..SCRATCH_CODES)
            .map(|_| scratch_code())
            .collect::<Result<Vec<_>>>()?;

        let home = self.root().join("home").join(name);
        make_dir(&home, 0o755, uid)?;
        let config = home.join(".config");
        make_dir(&config, 0o755, uid)?;
        make_dir(&config.join("pam-totp"), 0o700, uid)?;
        let state = State::new(
            secret.clone(),
            HashAlgorithm::SHA1,
            6,
            30,
            self.recovery_hashes[..recovery_codes].to_vec(),
        )?;
        let state_path = config.join("pam-totp/state.toml");
        // Through the store, as `pam-totp enroll` writes it (state v2): a v1 file would make
        // every measured first login a conversion.
        let account = pam_totp::privileges::Account {
            name: name.to_owned(),
            uid: nix::unistd::Uid::from_raw(uid),
            gid: nix::unistd::Gid::from_raw(uid),
            home: home.clone(),
        };
        let store = pam_totp::store::fs::FsStore::for_account(
            &pam_totp::config::Options::default(),
            &account,
        )?;
        pam_totp::store::Store::enroll(&store, &state, &mut pam_totp::store::NothingBefore)
            .map_err(|e| format!("enrolling {name}: {e:?}"))?;
        debug_assert_eq!(store.path(), state_path);

        let mut ga = format!(
            "{}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
            secret.expose()
        );
        for code in &scratch {
            writeln!(ga, "{code}")?;
        }
        let ga_path = home.join(".google_authenticator");
        write(&ga_path, &ga, 0o400)?;
        chown(&ga_path, uid)?;

        let user = User {
            name: name.to_owned(),
            uid,
            secret_hex,
            recovery_codes,
            scratch,
        };
        self.users.push(user.clone());
        Ok(user)
    }

    /// Writes the files that list every user: passwd and group for nss_wrapper, and
    /// pam_oath's usersfile. Call once all users are added.
    pub fn write_user_lists(&self) -> Result<()> {
        let (mut passwd, mut group, mut oath) = (String::new(), String::new(), String::new());
        for u in &self.users {
            let home = self.root().join("home").join(&u.name);
            writeln!(
                passwd,
                "{0}:x:{1}:{1}:{0}:{2}:/bin/sh",
                u.name,
                u.uid,
                home.display()
            )?;
            writeln!(group, "{}:x:{}:", u.name, u.uid)?;
            writeln!(oath, "HOTP/T30\t{}\t-\t{}", u.name, u.secret_hex)?;
        }
        write(&self.passwd_path(), &passwd, 0o644)?;
        write(&self.group_path(), &group, 0o644)?;
        // pam_oath runs as root and rewrites this file on every success.
        write(&self.oath_path(), &oath, 0o600)?;
        Ok(())
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Recovery code number `index` (0-based) as typed.
    pub fn recovery_code(&self, index: usize) -> &str {
        &self.recovery_shown[index]
    }

    /// A well-formed recovery code whose id is held, but whose secret part is wrong.
    pub fn wrong_recovery_code(&self) -> String {
        let right = &self.recovery_shown[0];
        let last_group = &right[right.len() - 4..];
        let other = if last_group == "2222" { "3333" } else { "2222" };
        format!("{}{other}", &right[..right.len() - 4])
    }

    /// A well-formed recovery code whose id (first group) no user holds.
    pub fn unknown_id_recovery_code(&self) -> String {
        let taken: Vec<&str> = self.recovery_shown.iter().map(|c| &c[..4]).collect();
        let id = ["ZZZZ", "YYYY", "XXXX"]
            .into_iter()
            .find(|id| !taken.contains(id))
            .expect("at most 20 ids are taken, so one of three is free");
        format!("{id}{}", &self.recovery_shown[0][4..])
    }
}

fn scratch_code() -> Result<String> {
    // Eight digits, not starting with 0: GA's scratch-code shape.
    let bytes = random_bytes::<4>()?;
    let n = u32::from_le_bytes(*bytes) % 90_000_000 + 10_000_000;
    Ok(n.to_string())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()).into())
}

fn chown(path: &Path, uid: u32) -> Result<()> {
    if is_root() {
        std::os::unix::fs::chown(path, Some(uid), Some(uid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

fn make_dir(path: &Path, mode: u32, uid: u32) -> Result<()> {
    fs::create_dir(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
    set_mode(path, mode)?;
    chown(path, uid)
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<()> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))?;
    set_mode(path, mode)
}
