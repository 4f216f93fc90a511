//! Which logins each phase makes, and why every "success" login really is one.
//!
//! Replay protection lets a user succeed once per 30-second step in each module, and the
//! window (one step either side) admits three steps. A user therefore logs in at most
//! three times per module in the timed phase, in rounds that answer with the code of step
//! `now - 1`, then `now`, then `now + 1`, "now" read by the driver just before each login.
//! The steps a user presents thus strictly increase even if the clock crosses a step
//! boundary mid-run, and each one is inside the window: every success login is a fresh
//! code that each module accepts and records. Other phases use users of their own.

use crate::driver::Login;
use crate::world::{
    SERVICE_GA, SERVICE_GA_LOAD_ONLY, SERVICE_OATH, SERVICE_OATH_LOAD_ONLY, SERVICE_TOTP,
    SERVICE_TOTP_LOAD_ONLY, SERVICE_TOTP_NO_THROTTLE, User, World,
};

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_AUTH_ERR: i32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    pub key: &'static str,
    pub name: &'static str,
    pub service: &'static str,
    pub load_only: &'static str,
}

pub const TOTP: Module = Module {
    key: "totp",
    name: "pam_totp",
    service: SERVICE_TOTP,
    load_only: SERVICE_TOTP_LOAD_ONLY,
};
pub const GA: Module = Module {
    key: "ga",
    name: "pam_google_authenticator",
    service: SERVICE_GA,
    load_only: SERVICE_GA_LOAD_ONLY,
};
pub const OATH: Module = Module {
    key: "oath",
    name: "pam_oath",
    service: SERVICE_OATH,
    load_only: SERVICE_OATH_LOAD_ONLY,
};
pub const MODULES: [Module; 3] = [TOTP, GA, OATH];

/// What the person types.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The TOTP code of step now + offset.
    Totp(i64),
    /// The TOTP code of this absolute step.
    Step(u64),
    /// A code valid for no step near now.
    Wrong,
    /// Typed text: a recovery or scratch code.
    Text(String),
}

/// Case names, used as labels `module:case` in the driver's output.
pub const OK: &str = "totp-ok";
pub const WRONG: &str = "totp-wrong";
pub const SCRATCH: &str = "scratch-ok";
pub const LOAD_ONLY: &str = "load-only";
pub fn recovery_ok(stored: usize) -> String {
    format!("recovery-ok-{stored}")
}
pub const RECOVERY_WRONG: &str = "recovery-wrong";
pub const RECOVERY_UNKNOWN_ID: &str = "recovery-unknown-id";

pub fn label(module: Module, case: &str) -> String {
    format!("{}:{case}", module.key)
}

pub fn login(
    module: Module,
    case: &str,
    user: &User,
    answer: Answer,
    expect: Option<i32>,
) -> Login {
    let service = if case == LOAD_ONLY {
        module.load_only
    } else {
        module.service
    };
    login_on(service, &label(module, case), user, answer, expect)
}

fn login_on(
    service: &'static str,
    label: &str,
    user: &User,
    answer: Answer,
    expect: Option<i32>,
) -> Login {
    let answer = match answer {
        Answer::Totp(offset) => format!("totp:{offset}"),
        Answer::Step(step) => format!("step:{step}"),
        Answer::Wrong => "wrong".to_owned(),
        Answer::Text(text) => format!("text:{text}"),
    };
    Login {
        label: label.to_owned(),
        service,
        user: user.name.clone(),
        secret_hex: user.secret_hex.clone(),
        answer,
        expect,
    }
}

/// The users of each phase.
pub struct Pools {
    /// The timed phase: TOTP rounds, recovery codes, scratch codes. Like every pool not
    /// named for another number, they hold the CLI's default number of recovery codes.
    pub timed: Vec<User>,
    pub timed_5: Vec<User>,
    pub timed_20: Vec<User>,
    /// Four processes, each its own quarter.
    pub distinct: Vec<User>,
    /// Four processes at one user.
    pub same: User,
    /// Four processes sending the same code for the same user.
    pub race: Vec<User>,
    /// Callgrind: TOTP, wrong and scratch codes; one more for the cold first login.
    pub counted: Vec<User>,
    /// Callgrind: one user per number of stored recovery codes, two for wrong ones.
    pub counted_5: User,
    pub counted_10: User,
    pub counted_20: User,
    pub counted_wrong: Vec<User>,
}

pub struct Sizes {
    pub timed: usize,
    pub timed_small: usize,
    pub per_process: usize,
    pub race: usize,
    /// Counted logins per TOTP case under callgrind.
    pub counted: usize,
    /// Wrong codes per process for one user.
    pub same_user_logins: usize,
}

pub const PROCESSES: usize = 4;
/// What `pam-totp enroll` makes unless told otherwise.
pub const DEFAULT_CODES: usize = pam_totp::admin::DEFAULT_RECOVERY_CODES;
const ROUNDS: i64 = 3;

impl Pools {
    pub fn create(world: &mut World, sizes: &Sizes) -> Result<Pools, Box<dyn std::error::Error>> {
        let pools = Pools {
            timed: world.add_users("t", sizes.timed, DEFAULT_CODES)?,
            timed_5: world.add_users("f", sizes.timed_small, 5)?,
            timed_20: world.add_users("g", sizes.timed_small, 20)?,
            distinct: world.add_users("d", sizes.per_process * PROCESSES, DEFAULT_CODES)?,
            same: world.add_users("s", 1, DEFAULT_CODES)?.remove(0),
            race: world.add_users("x", sizes.race, DEFAULT_CODES)?,
            // A warm-up user, the counted ones, and one for the cold first login.
            counted: world.add_users("c", sizes.counted + 2, DEFAULT_CODES)?,
            counted_5: world.add_users("r5_", 1, 5)?.remove(0),
            counted_10: world.add_users("r10_", 1, 10)?.remove(0),
            counted_20: world.add_users("r20_", 1, 20)?.remove(0),
            counted_wrong: world.add_users("rw", 2, DEFAULT_CODES)?,
        };
        world.write_user_lists()?;
        Ok(pools)
    }
}

/// The timed single-process phase, in one plan (one process). Cases alternate in blocks,
/// and the order of the blocks rotates from round to round, so a slow patch of a shared
/// machine does not land on one module only.
pub fn timed(world: &World, pools: &Pools) -> Vec<Login> {
    let mut plan = Vec::new();
    let blocks = [
        (TOTP, OK),
        (GA, OK),
        (OATH, OK),
        (TOTP, WRONG),
        (GA, WRONG),
        (OATH, WRONG),
        (TOTP, LOAD_ONLY),
        (GA, LOAD_ONLY),
        (OATH, LOAD_ONLY),
    ];
    for round in 0..ROUNDS {
        let offset = round - 1;
        for b in 0..blocks.len() {
            let (module, case) = blocks[(b + 3 * round as usize) % blocks.len()];
            for user in &pools.timed {
                plan.push(match case {
                    WRONG => login(module, case, user, Answer::Wrong, Some(PAM_AUTH_ERR)),
                    // A load-only login is let in by pam_permit; the answer is never asked.
                    _ => login(module, case, user, Answer::Totp(offset), Some(PAM_SUCCESS)),
                });
            }
        }
    }
    // Recovery codes: the last stored one each time (the id lookup is a linear scan, so
    // the last is the worst case). 5, 10 and 20 stored interleaved, for a fair comparison.
    let recovery = |user: &User| {
        let code = world.recovery_code(user.recovery_codes - 1).to_owned();
        login(
            TOTP,
            &recovery_ok(user.recovery_codes),
            user,
            Answer::Text(code),
            Some(PAM_SUCCESS),
        )
    };
    for (i, user) in pools.timed.iter().enumerate() {
        if let (Some(five), Some(twenty)) = (pools.timed_5.get(i), pools.timed_20.get(i)) {
            plan.push(recovery(five));
            plan.push(recovery(twenty));
        }
        plan.push(recovery(user));
    }
    let half = pools.timed_5.len();
    for i in 0..half {
        let wrong = world.wrong_recovery_code();
        let unknown = world.unknown_id_recovery_code();
        let expect = Some(PAM_AUTH_ERR);
        plan.push(login(
            TOTP,
            RECOVERY_WRONG,
            &pools.timed[i],
            Answer::Text(wrong),
            expect,
        ));
        plan.push(login(
            TOTP,
            RECOVERY_UNKNOWN_ID,
            &pools.timed[half + i],
            Answer::Text(unknown),
            expect,
        ));
    }
    // GA's scratch codes, for contrast with recovery codes: plaintext in the file.
    for user in &pools.timed {
        let code = user.scratch[0].clone();
        plan.push(login(
            GA,
            SCRATCH,
            user,
            Answer::Text(code),
            Some(PAM_SUCCESS),
        ));
    }
    plan
}

/// Four plans, one per process, each with its own users: two fresh codes per user.
pub fn distinct_users(module: Module, pools: &Pools) -> Vec<Vec<Login>> {
    pools
        .distinct
        .chunks(pools.distinct.len() / PROCESSES)
        .map(|quarter| {
            let mut plan = Vec::new();
            for offset in [0, 1] {
                for user in quarter {
                    plan.push(login(
                        module,
                        OK,
                        user,
                        Answer::Totp(offset),
                        Some(PAM_SUCCESS),
                    ));
                }
            }
            plan
        })
        .collect()
}

/// `logins` wrong codes for one user, on the service that never throttles: every login
/// takes the user's lock and writes the failure count, as a success would.
pub fn same_user(pools: &Pools, logins: usize) -> Vec<Login> {
    let label = label(TOTP, "same-user-wrong");
    (0..logins)
        .map(|_| {
            login_on(
                SERVICE_TOTP_NO_THROTTLE,
                &label,
                &pools.same,
                Answer::Wrong,
                Some(PAM_AUTH_ERR),
            )
        })
        .collect()
}

/// Every process sends the same fresh code for the same users, in the same order: only
/// one of the four may be accepted per user.
pub fn race(module: Module, pools: &Pools, step: u64) -> Vec<Vec<Login>> {
    let plan: Vec<Login> = pools
        .race
        .iter()
        .map(|user| login(module, "race", user, Answer::Step(step), None))
        .collect();
    vec![plan; PROCESSES]
}

/// A callgrind case: warm-up logins (not counted) and counted ones.
pub struct Counted {
    pub name: String,
    pub plan: Vec<Login>,
    pub warm_up: usize,
}

impl Counted {
    pub fn counted(&self) -> usize {
        self.plan.len() - self.warm_up
    }
}

pub fn counted_cases(world: &World, pools: &Pools) -> Vec<Counted> {
    let mut cases = Vec::new();
    let (first, rest) = pools
        .counted
        .split_first()
        .expect("counted pool is not empty");
    let (cold, rest) = rest.split_last().expect("counted pool has a cold user");
    for module in MODULES {
        let ok = |u: &User| login(module, OK, u, Answer::Totp(0), Some(PAM_SUCCESS));
        let wrong = |u: &User| login(module, WRONG, u, Answer::Wrong, Some(PAM_AUTH_ERR));
        let mut plan = vec![ok(first)];
        plan.extend(rest.iter().map(ok));
        cases.push(Counted {
            name: label(module, OK),
            plan,
            warm_up: 1,
        });
        let mut plan = vec![wrong(first)];
        plan.extend(rest.iter().map(wrong));
        cases.push(Counted {
            name: label(module, WRONG),
            plan,
            warm_up: 1,
        });
        let load = |u: &User| login(module, LOAD_ONLY, u, Answer::Wrong, Some(PAM_SUCCESS));
        let mut plan = vec![load(first)];
        plan.extend(rest.iter().map(load));
        cases.push(Counted {
            name: label(module, LOAD_ONLY),
            plan,
            warm_up: 1,
        });
        // The first login of a process: what sshd pays, forking per connection.
        cases.push(Counted {
            name: label(module, "cold-first-login"),
            plan: vec![ok(cold)],
            warm_up: 0,
        });
    }
    let mut plan = vec![login(GA, WRONG, first, Answer::Wrong, Some(PAM_AUTH_ERR))];
    plan.extend(rest.iter().map(|u| {
        let code = u.scratch[0].clone();
        login(GA, SCRATCH, u, Answer::Text(code), Some(PAM_SUCCESS))
    }));
    cases.push(Counted {
        name: label(GA, SCRATCH),
        plan,
        warm_up: 1,
    });
    // Recovery codes: argon2 dominates, and its instruction count does not vary, so one
    // counted login per case is enough (each under callgrind takes seconds).
    let warm = |u: &User| login(TOTP, WRONG, u, Answer::Wrong, Some(PAM_AUTH_ERR));
    for user in [&pools.counted_5, &pools.counted_10, &pools.counted_20] {
        let code = world.recovery_code(user.recovery_codes - 1).to_owned();
        let case = recovery_ok(user.recovery_codes);
        cases.push(Counted {
            name: label(TOTP, &case),
            plan: vec![
                warm(user),
                login(TOTP, &case, user, Answer::Text(code), Some(PAM_SUCCESS)),
            ],
            warm_up: 1,
        });
    }
    let wrong_cases = [
        (RECOVERY_WRONG, world.wrong_recovery_code()),
        (RECOVERY_UNKNOWN_ID, world.unknown_id_recovery_code()),
    ];
    for ((case, code), user) in wrong_cases.into_iter().zip(&pools.counted_wrong) {
        cases.push(Counted {
            name: label(TOTP, case),
            plan: vec![
                warm(user),
                login(TOTP, case, user, Answer::Text(code), Some(PAM_AUTH_ERR)),
            ],
            warm_up: 1,
        });
    }
    cases
}
