//! The whole login, as `pam_sm_authenticate` runs it, minus libpam: the input picks the
//! options (grace_period and hotp_window among them), whether the user exists and is
//! enrolled (TOTP, or HOTP from a given counter), a run of logins one after another (each
//! with its own answers, clock step, store failures, PAM_RHOST and PAM_SERVICE), and the answers
//! themselves: the right code for a step near now (HOTP: of a counter near the stored
//! one, within the window or beyond it), a recovery code, arbitrary text, a password with
//! a code after it, no answer, a failing conversation. The store is a `MemoryStore`
//! (feature `testing`) that fails on demand at load, lock, read, write or remove; the
//! clock is fixed per login.
//!
//! Input layout: [flags][window][max_failures][enrolled/user/kind][grace/hotp window/
//! counter] then, per login, [store failures][seconds to add to the clock][answer count +
//! rhost + service + authtok] and per answer [kind][argument][text length][text…]; missing
//! bytes are zero.
//!
//! Asserts: never panics; a code never succeeds twice (an accepted TOTP step is after every
//! step accepted before; an accepted HOTP counter is above every counter accepted before
//! and within the window; a recovery code id succeeds once); a success is written down, so
//! a store that cannot lock, read or write never yields one; a refused login changes
//! neither the replay guard, the HOTP counter, the recovery codes nor the remembered
//! hosts; `Ignore` only with `nullok` and no enrollment; a login passes unasked
//! (`Remembered`) exactly when the same PAM_RHOST passed with a code less than
//! grace_period seconds before, the store can be read and the user is not throttled, never
//! with forward_pass (the options refuse it), and it writes nothing; no log line (and
//! nothing shown to the user) holds the secret, a code or recovery code that was typed, or
//! any of the arbitrary text typed.
#![no_main]

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use libfuzzer_sys::fuzz_target;
use nix::unistd::{Gid, Uid};
use pam_totp::config::{FirstPass, Options};
use pam_totp::error::Result;
use pam_totp::login::{self, Conversation, ConversationFailed, Env, Outcome};
use pam_totp::otp::{HashAlgorithm, Kind, hotp_code};
use pam_totp::privileges::{Account, Accounts};
use pam_totp::recovery::RecoveryCodeHash;
use pam_totp::secret::SecretString;
use pam_totp::state::{Method, RemoteHost, State};
use pam_totp::store::Store;
use pam_totp::store::memory::{MemoryStore, Step};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const START: u64 = 1_700_000_000;
const MAX_LOGINS: usize = 12;
/// Arbitrary text typed is marked with this, which no log line contains of its own.
const MARK: &str = "\u{1F511}";
/// Recovery codes as typed (the id is the first four characters).
/// PAM_RHOST per login (`None`: the service sets none), and whether a host is one to
/// remember: the empty one, the over-long one and this machine's (loopback, localhost)
/// never are. The others differ from each other by a byte or by case only, so a match
/// that is not byte for byte would show. (The table is the target's own, so that the
/// module's locality rule is checked, not copied.)
const RHOSTS: [(Option<&str>, bool); 16] = [
    (None, false),
    (Some(""), false),
    (Some("192.0.2.1"), true),
    (Some("192.0.2.10"), true),
    (Some("host.example"), true),
    (Some("HOST.example"), true),
    (Some("192.0.2.1 "), true),
    (Some(LONG_RHOST), false),
    (Some("127.0.0.1"), false),
    (Some("localhost"), false),
    (Some("::1"), false),
    (Some("[::1]"), false),
    (Some("::ffff:127.0.0.1"), false),
    (Some("127.1.2.3"), false),
    (Some("LocalHost."), false),
    (Some("2001:db8::1"), true),
];
/// 256 bytes, letters and dots only (no digits a code could be found in).
const LONG_RHOST: &str = concat!(
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz.",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz.",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz.",
    "abcdefghijklmnopqrs"
);
const _: () = assert!(LONG_RHOST.len() == 256);
/// PAM_SERVICE per login: a host that passed for one is asked again by the other.
const SERVICES: [&str; 2] = ["sshd", "sudo"];
const GRACE: [u32; 4] = [0, 30, 90, 600];
const HOTP_WINDOWS: [u32; 4] = [0, 1, 3, 10];
/// HOTP counters to start from: small ones, one past u32, and the end of u64 (a counter of
/// u64::MAX cannot be stored + 1, so it is never accepted).
const HOTP_STARTS: [u64; 8] = [
    0,
    1,
    5,
    99_990,
    1 << 32,
    u64::MAX - 12,
    u64::MAX - 2,
    u64::MAX - 1,
];
const RECOVERY: [&str; 3] = [
    "ABCDEFGHJKMNPQRSTUVW",
    "23456789ABCDEFGHJKMN",
    "WXYZ23456789ABCDEFGH",
];

/// Hashes at the cheapest cost the state accepts: the fuzzer should spend its time in the
/// login, not in argon2 (the cost is the state file's, not the code's).
fn recovery_hashes() -> &'static [RecoveryCodeHash] {
    static HASHES: OnceLock<Vec<RecoveryCodeHash>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let params = Params::new(8, 1, 1, Some(32)).expect("argon2 parameters");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        RECOVERY
            .iter()
            .map(|code| RecoveryCodeHash {
                id: code[..4].into(),
                hash: argon2
                    .hash_password_with_salt(code.as_bytes(), b"fuzzsaltfuzzsalt")
                    .expect("argon2")
                    .to_string()
                    .into(),
            })
            .collect()
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let len = len.min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct OneUser;

impl Accounts for OneUser {
    fn by_name(&self, name: &str) -> Result<Option<Account>> {
        Ok((name == "alice").then(|| Account {
            name: "alice".into(),
            uid: Uid::from_raw(1000),
            gid: Gid::from_raw(1000),
            home: PathBuf::from("/home/alice"),
        }))
    }

    fn by_uid(&self, _uid: Uid) -> Result<Option<Account>> {
        Ok(None)
    }
}

/// Answers from a queue (then no answer); remembers everything shown to the person.
struct FuzzConversation {
    answers: VecDeque<Option<String>>,
    authtok: Option<String>,
    rhost: Option<&'static str>,
    service: &'static str,
    shown: Vec<String>,
    prompts: usize,
}

impl Conversation for FuzzConversation {
    fn prompt(
        &mut self,
        _text: &str,
        _echo: bool,
    ) -> std::result::Result<Option<SecretString>, ConversationFailed> {
        self.prompts += 1;
        match self.answers.pop_front() {
            Some(Some(answer)) if answer == "\0fail" => Err(ConversationFailed),
            Some(answer) => Ok(answer.map(SecretString::new)),
            None => Ok(None),
        }
    }

    fn info(&mut self, text: &str) {
        self.shown.push(text.to_owned());
    }

    fn error(&mut self, text: &str) {
        self.shown.push(text.to_owned());
    }

    fn authtok(&mut self) -> Option<SecretString> {
        self.authtok.clone().map(SecretString::new)
    }

    fn set_authtok(&mut self, token: &SecretString) -> bool {
        self.authtok = Some(token.expose().to_owned());
        true
    }

    fn remote_host(&mut self) -> Option<String> {
        self.rhost.map(str::to_owned)
    }

    fn service(&mut self) -> Option<String> {
        Some(self.service.to_owned())
    }
}

/// Whether the module itself refuses forward_pass with grace_period (it does, at option
/// parsing): the login below trusts its options, so the target only runs what the module
/// would accept, and checks here that the combination is among what it does not.
fn module_refuses_forward_pass_with_grace() -> bool {
    static REFUSED: OnceLock<bool> = OnceLock::new();
    *REFUSED.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-fuzz-login.")
            .tempdir()
            .expect("temp dir")
            .keep();
        let path = dir.join("pam_totp.conf");
        std::fs::write(&path, b"").expect("create config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .expect("chmod config");
        let config = format!("config={}", path.display());
        Options::from_module_args(&[config.as_str(), "forward_pass", "grace_period=30"]).is_err()
    })
}

/// The options from the header's first three bytes (grace_period and hotp_window come
/// from the fifth, see [`extra`]).
fn options(input: &mut Input<'_>) -> Options {
    let flags = input.byte();
    let mut options = Options {
        nullok: flags & 1 != 0,
        echo: flags & 2 != 0,
        forward_pass: flags & 4 != 0,
        window: u32::from(input.byte() % 11),
        max_failures: 1 + u32::from(input.byte() % 8),
        ..Options::default()
    };
    if !options.forward_pass {
        options.first_pass = match (flags >> 3) % 3 {
            0 => FirstPass::Prompt,
            1 => FirstPass::Try,
            _ => FirstPass::Use,
        };
    }
    options
}

/// One answer, and the codes it holds (which must never reach a log line). `state` is the
/// enrollment as it stands before the login (HOTP: its counter picks the codes).
fn answer(
    input: &mut Input<'_>,
    state: &State,
    now: u64,
    typed: &mut Vec<String>,
) -> Option<String> {
    let kind = input.byte();
    let argument = input.byte();
    let len = usize::from(input.byte() % 48);
    let text = String::from_utf8_lossy(input.bytes(len)).into_owned();
    let code_near_now = |typed: &mut Vec<String>| {
        let code = match state.kind {
            Kind::Totp => {
                let offset = i64::from(argument % 7) - 3;
                let time = (now as i64 + offset * state.period as i64).max(0) as u64;
                state.code_at(time).expect("code_at").expose().to_owned()
            }
            // The code of a counter from three used ones before the stored counter to two
            // beyond the widest window.
            Kind::Hotp => {
                let offset = i64::from(argument % 16) - 3;
                let counter = state.hotp_counter.saturating_add_signed(offset);
                hotp_code(&state.secret, state.params(), counter)
                    .expect("hotp_code")
                    .expose()
                    .to_owned()
            }
        };
        typed.push(code.clone());
        code
    };
    match kind % 7 {
        0 | 1 => Some(code_near_now(typed)),
        2 => {
            let code = RECOVERY[usize::from(argument) % RECOVERY.len()];
            typed.push(code.to_owned());
            // As people type it: dashes, spaces, lower case.
            Some(match argument / 3 % 3 {
                0 => code.to_owned(),
                1 => code.to_lowercase(),
                _ => code
                    .as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("-"),
            })
        }
        3 => Some(format!("{MARK}{text}")),
        // A password, then the code (forward_pass, or a token tried first).
        4 => Some(format!("{MARK}{text}{}", code_near_now(typed))),
        5 => None,
        _ => Some("\0fail".to_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut options = options(&mut input);
    let setup = input.byte();
    let extra = input.byte();
    let user = if setup & 1 == 0 { "alice" } else { "mallory" };
    options.grace_period = GRACE[usize::from(extra & 3)];
    options.hotp_window = HOTP_WINDOWS[usize::from(extra >> 2 & 3)];
    if options.forward_pass && options.grace_period > 0 {
        // Not a configuration the module runs: it refuses it when parsing its arguments.
        assert!(
            module_refuses_forward_pass_with_grace(),
            "the module accepts forward_pass with grace_period"
        );
        options.grace_period = 0;
    }
    let totp = State::new(
        SecretString::new(SECRET.to_owned()),
        HashAlgorithm::SHA1,
        6 + (setup >> 1) % 3,
        [10, 30, 60][usize::from(setup >> 3) % 3],
        recovery_hashes().to_vec(),
    )
    .expect("a valid state");
    let enrolled = if setup & 0x80 == 0 {
        totp
    } else {
        totp.into_hotp(HOTP_STARTS[usize::from(extra >> 4 & 7)])
    };
    let store = MemoryStore::new((setup & 0x40 == 0).then(|| enrolled.clone()));
    // The tag a host is stored under for a service (keyed with the secret), if it is one
    // to remember.
    let tag = |rhost: &str, service: &str| {
        RemoteHost::new(rhost, service).map(|host| host.tag(&enrolled.secret).expect("tag"))
    };

    let mut now = START;
    let mut last_accepted: Option<u64> = None;
    let mut last_hotp: Option<u64> = None;
    let mut used_recovery: HashSet<Arc<str>> = HashSet::new();
    // When each PAM_RHOST last passed with a code for each service, grace_period on.
    let mut passed: HashMap<(&str, &str), u64> = HashMap::new();
    for _ in 0..MAX_LOGINS {
        if input.is_empty() {
            break;
        }
        let failures = input.byte();
        store.heal();
        let mut failing = Vec::new();
        if failures < 0x40 {
            for (bit, step) in [
                Step::Load,
                Step::Lock,
                Step::Read,
                Step::Write,
                Step::Remove,
            ]
            .into_iter()
            .enumerate()
            {
                if failures & (1 << bit) != 0 {
                    store.fail_at(step);
                    failing.push(step);
                }
            }
        }
        now += u64::from(input.byte());
        let counts = input.byte();
        let (rhost, remote) = RHOSTS[usize::from(counts >> 2 & 15)];
        let service = SERVICES[usize::from(counts >> 6 & 1)];
        if let Some(rhost) = rhost {
            assert_eq!(
                RemoteHost::new(rhost, service).is_some(),
                remote,
                "{rhost:?} taken for a host to remember, or not"
            );
        }
        let before = store.state();
        let current = before.as_ref().unwrap_or(&enrolled);
        let mut typed = Vec::new();
        let authtok = if counts & 0x80 != 0 {
            answer(&mut input, current, now, &mut typed)
        } else {
            None
        };
        let answers = (0..counts % 4)
            .map(|_| answer(&mut input, current, now, &mut typed))
            .collect();
        let mut conv = FuzzConversation {
            answers,
            authtok,
            rhost,
            service,
            shown: Vec::new(),
            prompts: 0,
        };

        let writes = store.writes();
        let clock = || Ok(now);
        let store_for = |_: &Account| -> Result<Box<dyn Store + '_>> { Ok(Box::new(&store)) };
        let env = Env {
            accounts: &OneUser,
            store_for: &store_for,
            clock: &clock,
        };
        let decision = login::authenticate(user, &options, &env, &mut conv);
        let after = store.state();

        // Nothing typed, and not the secret, reaches the log or the screen. The counter an
        // HOTP success names is no secret, and its digits may hold a code by chance.
        let counter_note = match (decision.outcome, &after) {
            (Outcome::Success(Method::Hotp), Some(after)) => {
                format!("(counter {})", after.hotp_counter.wrapping_sub(1))
            }
            _ => String::new(),
        };
        for line in std::iter::once(&decision.message).chain(&conv.shown) {
            let line = if counter_note.is_empty() {
                line.clone()
            } else {
                line.replace(&counter_note, "")
            };
            assert!(!line.contains(SECRET), "the secret in {line:?}");
            assert!(!line.contains(MARK), "typed text in {line:?}");
            for code in &typed {
                assert!(!line.contains(code.as_str()), "code {code:?} in {line:?}");
            }
        }

        // A login passes unasked exactly when its host passed with a code within the grace
        // period, the store can be read and the user is not throttled.
        let remembered_host = rhost.filter(|h| {
            remote
                && passed
                    .get(&(*h, service))
                    .is_some_and(|&t| now >= t && now - t < u64::from(options.grace_period))
        });
        let should_pass_unasked = options.grace_period > 0
            && user == "alice"
            && remembered_host.is_some()
            && before
                .as_ref()
                .is_some_and(|b| b.throttled_for(now).is_none())
            && !failing
                .iter()
                .any(|s| matches!(s, Step::Load | Step::Lock | Step::Read));
        assert_eq!(
            decision.outcome == Outcome::Remembered,
            should_pass_unasked,
            "{:?} for rhost {rhost:?} {service} (passed {passed:?}, now {now}, grace {}, failing {failing:?})",
            decision.outcome,
            options.grace_period
        );

        match decision.outcome {
            Outcome::Success(method) => {
                assert!(
                    !failing
                        .iter()
                        .any(|s| matches!(s, Step::Load | Step::Lock | Step::Read | Step::Write)),
                    "success although the store fails at {failing:?}"
                );
                assert_eq!(store.writes(), writes + 1, "a success that was not written");
                let (before, after) = (before.expect("enrolled"), after.expect("still enrolled"));
                match method {
                    Method::Totp => {
                        assert_eq!(
                            before.kind,
                            Kind::Totp,
                            "a TOTP code for an HOTP enrollment"
                        );
                        let step = after.last_step.expect("an accepted step");
                        assert!(
                            last_accepted.is_none_or(|last| step > last),
                            "step {step} accepted again (last {last_accepted:?})"
                        );
                        last_accepted = Some(step);
                        assert_eq!(after.recovery_codes, before.recovery_codes);
                    }
                    Method::Recovery => {
                        assert_eq!(after.recovery_codes.len() + 1, before.recovery_codes.len());
                        let gone: Vec<_> = before
                            .recovery_codes
                            .iter()
                            .filter(|c| !after.recovery_codes.contains(c))
                            .collect();
                        assert_eq!(gone.len(), 1);
                        assert!(
                            used_recovery.insert(gone[0].id.clone()),
                            "recovery code {} accepted twice",
                            gone[0].id
                        );
                        assert_eq!(after.last_step, before.last_step);
                        assert_eq!(after.hotp_counter, before.hotp_counter);
                    }
                    Method::Hotp => {
                        assert_eq!(
                            before.kind,
                            Kind::Hotp,
                            "an HOTP code for a TOTP enrollment"
                        );
                        // The counter stored is the one after the code's.
                        let counter = after
                            .hotp_counter
                            .checked_sub(1)
                            .expect("a counter after the accepted one");
                        assert!(
                            counter >= before.hotp_counter
                                && counter - before.hotp_counter <= u64::from(options.hotp_window),
                            "counter {counter} accepted outside {} + {}",
                            before.hotp_counter,
                            options.hotp_window
                        );
                        assert!(
                            last_hotp.is_none_or(|last| counter > last),
                            "HOTP counter {counter} accepted again (last {last_hotp:?})"
                        );
                        last_hotp = Some(counter);
                        let code =
                            hotp_code(&before.secret, before.params(), counter).expect("hotp_code");
                        assert!(
                            typed.iter().any(|t| t == code.expose()),
                            "counter {counter} accepted, but its code was not typed"
                        );
                        assert_eq!(after.recovery_codes, before.recovery_codes);
                        assert_eq!(after.last_step, None);
                    }
                }
                // A success remembers its host (when grace_period is on and the host is
                // one to remember), and changes no other host.
                let mut expected = before.remembered_hosts.clone();
                if let Some((host, tag)) = rhost
                    .and_then(|h| Some((h, tag(h, service)?)))
                    .filter(|_| options.grace_period > 0)
                {
                    passed.insert((host, service), now);
                    expected.retain(|h| h.rhost_tag != tag);
                    assert!(
                        after
                            .remembered_hosts
                            .iter()
                            .any(|h| h.rhost_tag == tag && h.time == now),
                        "host {host:?} not remembered after a success"
                    );
                }
                for host in &expected {
                    assert!(
                        after.remembered_hosts.contains(host),
                        "a success forgot or changed another host"
                    );
                }
            }
            Outcome::Remembered => {
                assert!(!options.forward_pass, "a remembered host with forward_pass");
                assert_eq!(conv.prompts, 0, "asked for a code, then passed unasked");
                assert_eq!(store.writes(), writes, "a pass unasked wrote the state");
                assert_eq!(after, before, "a pass unasked changed the state");
            }
            other => {
                let guard = |s: &Option<State>| {
                    s.as_ref().map(|s| {
                        (
                            s.last_step,
                            s.hotp_counter,
                            s.recovery_codes.clone(),
                            s.remembered_hosts.clone(),
                        )
                    })
                };
                assert_eq!(
                    guard(&after),
                    guard(&before),
                    "{other:?} changed what codes or hosts are left"
                );
                if other == Outcome::Ignore {
                    assert!(options.nullok && before.is_none() && user == "alice");
                }
            }
        }
    }
});
