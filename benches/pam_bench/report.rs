//! The report: Markdown tables, the machine, and the conditions of the run.

use crate::Concurrent;
use crate::plans::{self, GA, MODULES, Module, OATH, TOTP};
use crate::stats::Summary;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Report {
    pub users: usize,
    pub timed: BTreeMap<String, Summary>,
    pub concurrent: Vec<(Module, &'static str, Concurrent)>,
    pub same_user_alone: Option<Concurrent>,
    pub same_user: Option<Concurrent>,
    pub races: Vec<(Module, Vec<usize>)>,
    /// Instructions per counted login, by case name.
    pub instructions: BTreeMap<String, u64>,
    pub elapsed: Duration,
    world: PathBuf,
    quick: bool,
    date: String,
    load_before: String,
}

impl Report {
    pub fn new(world: &Path, quick: bool) -> Report {
        Report {
            users: 0,
            timed: BTreeMap::new(),
            concurrent: Vec::new(),
            same_user_alone: None,
            same_user: None,
            races: Vec::new(),
            instructions: BTreeMap::new(),
            elapsed: Duration::ZERO,
            world: world.to_owned(),
            quick,
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load_before: load_average(),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        if self.quick {
            writeln!(out, "**QUICK RUN (--quick): too few logins to quote.**\n")?;
        }
        self.write_conditions(out)?;
        self.write_timed(out)?;
        self.write_instructions(out)?;
        self.write_recovery(out)?;
        self.write_concurrency(out)?;
        Ok(())
    }

    fn write_conditions(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "## Run of {}\n", self.date)?;
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        writeln!(out, "- machine: {cores} cores (`nproc`), CPU `{cpu}`")?;
        writeln!(
            out,
            "- kernel {}, homes and state on {} ({})",
            output("uname", &["-r"]),
            crate::filesystem_of(&self.world),
            self.world.display()
        )?;
        writeln!(
            out,
            "- load average before / after: {} / {}",
            self.load_before,
            load_average()
        )?;
        writeln!(
            out,
            "- pam-totp {}",
            output("git", &["describe", "--always", "--dirty"])
        )?;
        let packages = [
            "libpam-google-authenticator",
            "libpam-oath",
            "libpam0g",
            "libpam-wrapper",
            "libnss-wrapper",
            "valgrind",
        ];
        let versions: Vec<String> = packages
            .iter()
            .map(|p| format!("{p} {}", output("dpkg-query", &["-W", "-f=${Version}", p])))
            .collect();
        writeln!(out, "- {}", versions.join(", "))?;
        writeln!(
            out,
            "- {} fake users; each holds {} pam_totp recovery codes (the enrollment default) \
             unless a row says otherwise, and 5 GA scratch codes; whole run {:.0} s\n",
            self.users,
            plans::DEFAULT_CODES,
            self.elapsed.as_secs_f64()
        )?;
        Ok(())
    }

    fn timed(&self, module: Module, case: &str) -> Option<&Summary> {
        self.timed.get(&plans::label(module, case))
    }

    fn write_timed(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "### Latency per login, one process\n\n\
             pam_start → pam_authenticate → pam_end, back to back; logins/s = 1 / mean.\n"
        )?;
        writeln!(
            out,
            "| Case | Module | Logins | Median | p99 | Logins/s | pam_totp ÷ this (median) |"
        )?;
        writeln!(out, "|---|---|--:|--:|--:|--:|--:|")?;
        let rows: [(&str, &str, &[Module]); 3] = [
            ("TOTP code, success", plans::OK, &MODULES),
            ("TOTP code, wrong", plans::WRONG, &MODULES),
            ("Module loaded, not called", plans::LOAD_ONLY, &MODULES),
        ];
        for (title, case, modules) in rows {
            let ours = self.timed(TOTP, case).map(|s| s.median_ns);
            for &module in modules {
                let Some(s) = self.timed(module, case) else {
                    continue;
                };
                let ratio = match ours {
                    Some(ours) if module != TOTP => {
                        format!("{:.2}", ours as f64 / s.median_ns as f64)
                    }
                    _ => "—".into(),
                };
                row(out, title, module.name, s, &ratio)?;
            }
        }
        let extra = [
            (
                "Recovery code, success (10 stored, the default)",
                TOTP,
                plans::recovery_ok(plans::DEFAULT_CODES),
            ),
            (
                "Recovery code, wrong (id held)",
                TOTP,
                plans::RECOVERY_WRONG.into(),
            ),
            (
                "Recovery code, wrong (id unknown)",
                TOTP,
                plans::RECOVERY_UNKNOWN_ID.into(),
            ),
            (
                "Scratch code (plaintext), success",
                GA,
                plans::SCRATCH.into(),
            ),
        ];
        for (title, module, case) in extra {
            if let Some(s) = self.timed(module, &case) {
                row(out, title, module.name, s, "—")?;
            }
        }
        writeln!(out)
    }

    fn write_instructions(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "### Instructions per login (callgrind)\n\n\
             Counted from pam_start to pam_end only (callgrind toggles in the driver), after \
             one uncounted warm-up login, except the cold first login of a fresh process.\n"
        )?;
        writeln!(
            out,
            "| Case | pam_totp | pam_google_authenticator | pam_oath | pam_totp ÷ GA | pam_totp ÷ oath |"
        )?;
        writeln!(out, "|---|--:|--:|--:|--:|--:|")?;
        let cases = [
            ("TOTP code, success", plans::OK),
            ("TOTP code, wrong", plans::WRONG),
            ("Module loaded, not called", plans::LOAD_ONLY),
            (
                "Cold first login in a process (success)",
                "cold-first-login",
            ),
        ];
        for (title, case) in cases {
            let ir = |m: Module| self.instructions.get(&plans::label(m, case)).copied();
            let cell = |v: Option<u64>| v.map_or("—".into(), thousands);
            let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
                _ => "—".into(),
            };
            writeln!(
                out,
                "| {title} | {} | {} | {} | {} | {} |",
                cell(ir(TOTP)),
                cell(ir(GA)),
                cell(ir(OATH)),
                ratio(ir(TOTP), ir(GA)),
                ratio(ir(TOTP), ir(OATH))
            )?;
        }
        writeln!(out)
    }

    fn write_recovery(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "### Recovery codes: cost by number stored\n\n\
             The code typed is always the last one stored (the worst case for the id \
             lookup). Each check is one argon2id verification (m=19 MiB, t=2, p=1).\n"
        )?;
        writeln!(out, "| Case | Instructions per login | Median | p99 |")?;
        writeln!(out, "|---|--:|--:|--:|")?;
        let cases = [
            ("5 stored, success", TOTP, plans::recovery_ok(5)),
            (
                "10 stored (the default), success",
                TOTP,
                plans::recovery_ok(10),
            ),
            ("20 stored, success", TOTP, plans::recovery_ok(20)),
            (
                "10 stored, wrong code (id held)",
                TOTP,
                plans::RECOVERY_WRONG.into(),
            ),
            (
                "10 stored, wrong code (id unknown)",
                TOTP,
                plans::RECOVERY_UNKNOWN_ID.into(),
            ),
            (
                "GA scratch code, success (for contrast)",
                GA,
                plans::SCRATCH.into(),
            ),
        ];
        for (title, module, case) in cases {
            let label = plans::label(module, &case);
            let ir = self
                .instructions
                .get(&label)
                .map_or("—".into(), |&v| thousands(v));
            let (median, p99) = self
                .timed
                .get(&label)
                .map_or(("—".into(), "—".into()), |s| {
                    (ms(s.median_ns), ms(s.p99_ns))
                });
            writeln!(out, "| {title} | {ir} | {median} | {p99} |")?;
        }
        writeln!(out)
    }

    fn write_concurrency(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "### Concurrency: {} processes at once\n\n\
             Latency per login over all processes; logins/s = all logins / (last end − first \
             start). \"Alone\" rows are the same plan in one process.\n",
            plans::PROCESSES
        )?;
        writeln!(
            out,
            "| Scenario | Module | Processes | Logins | Refused wrongly | Median | p99 | Logins/s (all processes) |"
        )?;
        writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|")?;
        for (module, scenario, c) in &self.concurrent {
            let s = &c.summary;
            let alone = self.timed(*module, plans::OK).map_or(String::new(), |t| {
                format!(" (alone: {:.0})", t.logins_per_second())
            });
            writeln!(
                out,
                "| TOTP success, {scenario} | {} | {} | {} | {} | {} | {} | {:.0}{alone} |",
                module.name,
                c.processes,
                s.n,
                c.wrongly_refused,
                ms(s.median_ns),
                ms(s.p99_ns),
                c.logins_per_second
            )?;
        }
        for (scenario, c) in [
            (
                "one user, wrong codes (each writes), alone",
                &self.same_user_alone,
            ),
            (
                "one user, wrong codes (each writes), together",
                &self.same_user,
            ),
        ] {
            if let Some(c) = c {
                let s = &c.summary;
                writeln!(
                    out,
                    "| {scenario} | pam_totp | {} | {} | {} | {} | {} | {:.0} |",
                    c.processes,
                    s.n,
                    c.wrongly_refused,
                    ms(s.median_ns),
                    ms(s.p99_ns),
                    c.logins_per_second
                )?;
            }
        }
        writeln!(
            out,
            "\n### Race: {} processes send the same fresh code for the same user\n\n\
             How many of the processes were let in, per user (a one-time code should let in \
             exactly one).\n",
            plans::PROCESSES
        )?;
        writeln!(
            out,
            "| Module | Users | Let in once | Twice or more | Never |"
        )?;
        writeln!(out, "|---|--:|--:|--:|--:|")?;
        for (module, accepted) in &self.races {
            let count = |f: &dyn Fn(usize) -> bool| accepted.iter().filter(|&&a| f(a)).count();
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                module.name,
                accepted.len(),
                count(&|a| a == 1),
                count(&|a| a >= 2),
                count(&|a| a == 0)
            )?;
        }
        writeln!(out)
    }
}

fn row(out: &mut String, title: &str, module: &str, s: &Summary, ratio: &str) -> std::fmt::Result {
    writeln!(
        out,
        "| {title} | {module} | {} | {} | {} | {:.0} | {ratio} |",
        s.n,
        ms(s.median_ns),
        ms(s.p99_ns),
        s.logins_per_second()
    )
}

/// Milliseconds, three decimals below 10 ms (TOTP), one above (argon2).
fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
