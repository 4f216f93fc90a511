//! The whole login, as `pam_sm_authenticate` runs it, minus libpam: the input picks the
//! options, whether the user exists and is enrolled, a run of logins one after another
//! (each with its own answers, clock step and store failures), and the answers themselves:
//! the right code for a step near now, a recovery code, arbitrary text, a password with a
//! code after it, no answer, a failing conversation. The store is a `MemoryStore` (feature
//! `testing`) that fails on demand at load, lock, read, write or remove; the clock is fixed
//! per login.
//!
//! Input layout: [flags][window][max_failures][enrolled/user] then, per login,
//! [store failures][seconds to add to the clock][answer count + authtok] and per answer
//! [kind][argument][text length][text…]; missing bytes are zero.
//!
//! Asserts: never panics; a code never succeeds twice (an accepted TOTP step is after every
//! step accepted before; a recovery code id succeeds once); a success is written down, so
//! a store that cannot lock, read or write never yields one; a refused login changes
//! neither the replay guard nor the recovery codes; `Ignore` only with `nullok` and no
//! enrollment; no log line (and nothing shown to the user) holds the secret, a code or
//! recovery code that was typed, or any of the arbitrary text typed.
#![no_main]

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use libfuzzer_sys::fuzz_target;
use nix::unistd::{Gid, Uid};
use pam_totp::config::{FirstPass, Options};
use pam_totp::error::Result;
use pam_totp::login::{self, Conversation, ConversationFailed, Env, Outcome};
use pam_totp::otp::HashAlgorithm;
use pam_totp::privileges::{Account, Accounts};
use pam_totp::recovery::RecoveryCodeHash;
use pam_totp::secret::SecretString;
use pam_totp::state::{Method, State};
use pam_totp::store::Store;
use pam_totp::store::memory::{MemoryStore, Step};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::OnceLock;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const START: u64 = 1_700_000_000;
const MAX_LOGINS: usize = 12;
/// Arbitrary text typed is marked with this, which no log line contains of its own.
const MARK: &str = "\u{1F511}";
/// Recovery codes as typed (the id is the first four characters).
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
                id: code[..4].to_owned(),
                hash: argon2
                    .hash_password_with_salt(code.as_bytes(), b"fuzzsaltfuzzsalt")
                    .expect("argon2")
                    .to_string(),
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
    shown: Vec<String>,
}

impl Conversation for FuzzConversation {
    fn prompt(
        &mut self,
        _text: &str,
        _echo: bool,
    ) -> std::result::Result<Option<SecretString>, ConversationFailed> {
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
}

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

/// One answer, and the codes it holds (which must never reach a log line).
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
        let offset = i64::from(argument % 7) - 3;
        let time = (now as i64 + offset * state.period as i64).max(0) as u64;
        let code = state.code_at(time).expect("code_at").expose().to_owned();
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
    let options = options(&mut input);
    let setup = input.byte();
    let user = if setup & 1 == 0 { "alice" } else { "mallory" };
    let enrolled = State::new(
        SecretString::new(SECRET.to_owned()),
        HashAlgorithm::SHA1,
        6 + (setup >> 1) % 3,
        [10, 30, 60][usize::from(setup >> 3) % 3],
        recovery_hashes().to_vec(),
    )
    .expect("a valid state");
    let store = MemoryStore::new((setup & 0x40 == 0).then(|| enrolled.clone()));

    let mut now = START;
    let mut last_accepted: Option<u64> = None;
    let mut used_recovery: HashSet<String> = HashSet::new();
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
        let mut typed = Vec::new();
        let authtok = if counts & 0x80 != 0 {
            answer(&mut input, &enrolled, now, &mut typed)
        } else {
            None
        };
        let answers = (0..counts % 4)
            .map(|_| answer(&mut input, &enrolled, now, &mut typed))
            .collect();
        let mut conv = FuzzConversation {
            answers,
            authtok,
            shown: Vec::new(),
        };

        let before = store.state();
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

        // Nothing typed, and not the secret, reaches the log or the screen.
        for line in std::iter::once(&decision.message).chain(&conv.shown) {
            assert!(!line.contains(SECRET), "the secret in {line:?}");
            assert!(!line.contains(MARK), "typed text in {line:?}");
            for code in &typed {
                assert!(!line.contains(code.as_str()), "code {code:?} in {line:?}");
            }
        }

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
                    }
                    // The fuzzed states are TOTP; an HOTP success would be a wrong kind.
                    Method::Hotp => {
                        assert!(
                            after.hotp_counter > before.hotp_counter,
                            "an HOTP code accepted without moving the counter"
                        );
                    }
                }
            }
            other => {
                let guard =
                    |s: &Option<State>| s.as_ref().map(|s| (s.last_step, s.recovery_codes.clone()));
                assert_eq!(
                    guard(&after),
                    guard(&before),
                    "{other:?} changed what codes are left"
                );
                if other == Outcome::Ignore {
                    assert!(options.nullok && before.is_none() && user == "alice");
                }
            }
        }
    }
});
