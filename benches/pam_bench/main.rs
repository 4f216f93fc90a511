//! The PAM benchmark: pam_totp next to Debian's pam_google_authenticator and pam_oath, on
//! the same users and codes, in one run. `benches/run.sh` builds everything and runs this;
//! see BENCHMARKS.md for what the figures mean.
//!
//! Phases:
//! 1. timed: one driver process, every case, latency of each login (pam_start to pam_end);
//! 2. concurrency: four driver processes at once, as distinct users and as one user, and
//!    four processes racing with the same code;
//! 3. counted: instructions per login under valgrind's callgrind, which does not care how
//!    busy the machine is.
//!
//! Usage: pam_bench --module PATH --out-dir DIR [--quick] [--counted-only]
//!
//! `--counted-only` runs phase 3 alone: the instruction counts do not depend on the load,
//! so they are what to compare while working on the module, in a fraction of the time.
//!
//! The C driver and its syslog shim are built by the harness shared with the integration
//! tests (tests/harness), into target/<profile>/pam-test-support.
#![allow(clippy::disallowed_methods)] // benches may read the clock; the library may not

mod driver;
#[path = "../../tests/harness/mod.rs"]
mod harness;
mod plans;
mod report;
mod stats;
mod world;

use driver::{Driver, Run};
use plans::{MODULES, Pools, Sizes};
use report::Report;
use stats::Summary;
use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use world::World;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Args {
    module: PathBuf,
    out_dir: PathBuf,
    quick: bool,
    counted_only: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pam_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Args> {
    let (mut module, mut out_dir) = (None, None);
    let (mut quick, mut counted_only) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--module" => module = args.next().map(PathBuf::from),
            "--out-dir" => out_dir = args.next().map(PathBuf::from),
            "--quick" => quick = true,
            "--counted-only" => counted_only = true,
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let usage = "usage: pam_bench --module PATH --out-dir DIR [--quick] [--counted-only]";
    Ok(Args {
        module: absolute(module.ok_or(usage)?)?,
        out_dir: out_dir.ok_or(usage)?,
        quick,
        counted_only,
    })
}

fn absolute(path: PathBuf) -> Result<PathBuf> {
    std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let began = Instant::now();
    let sizes = if args.quick {
        // A smoke test of the benchmark itself; its figures mean little.
        Sizes {
            timed: 16,
            timed_small: 8,
            per_process: 4,
            race: 4,
            counted: 2,
            same_user_logins: 8,
        }
    } else {
        Sizes {
            timed: 256,
            timed_small: 64,
            per_process: 32,
            race: 16,
            counted: 10,
            same_user_logins: 64,
        }
    };
    let parent = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut world = World::new(&parent, &args.module)?;
    let mut report = Report::new(world.root(), args.quick);
    eprintln!("==> setting up users in {}", world.root().display());
    let pools = Pools::create(&mut world, &sizes)?;
    report.users = world.user_count();
    let driver = Driver::new(&world)?;

    if !args.counted_only {
        timed_phase(&driver, &world, &pools, &args.out_dir, &mut report)?;
        concurrency_phase(&driver, &pools, &sizes, &mut report)?;
    }
    counted_phase(&driver, &world, &pools, &args.out_dir, &mut report)?;

    report.elapsed = began.elapsed();
    let text = report.render();
    print!("{text}");
    let path = args.out_dir.join("report.md");
    std::fs::write(&path, &text)?;
    eprintln!("==> report written to {}", path.display());
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("==> kept {} (BENCH_KEEP)", world.keep().display());
    }
    Ok(())
}

fn timed_phase(
    driver: &Driver,
    world: &World,
    pools: &Pools,
    out_dir: &Path,
    report: &mut Report,
) -> Result<()> {
    let plan = plans::timed(world, pools);
    eprintln!("==> timed phase: {} logins in one process", plan.len());
    let run = driver.run(&plan)?;
    check(&[&run])?;
    report.timed = by_label(&run.logins);
    write_logins(&out_dir.join("timed-logins.tsv"), &run)
}

fn concurrency_phase(
    driver: &Driver,
    pools: &Pools,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<()> {
    eprintln!("==> concurrency: {} processes", plans::PROCESSES);
    for module in MODULES {
        let runs = driver.run_together(&plans::distinct_users(module, pools))?;
        report
            .concurrent
            .push((module, "distinct users", concurrent(&runs)?));
    }
    let one_user = plans::same_user(pools, sizes.same_user_logins);
    let alone = driver.run(&one_user)?;
    report.same_user_alone = Some(concurrent(&[alone])?);
    let together = driver.run_together(&vec![one_user; plans::PROCESSES])?;
    report.same_user = Some(concurrent(&together)?);
    // One step for all four processes: each sends the very same code.
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        / 30;
    for module in MODULES {
        let runs = driver.run_together(&plans::race(module, pools, step))?;
        report.races.push((module, accepted_per_user(&runs)));
    }
    Ok(())
}

fn counted_phase(
    driver: &Driver,
    world: &World,
    pools: &Pools,
    out_dir: &Path,
    report: &mut Report,
) -> Result<()> {
    let cg_dir = out_dir.join("callgrind");
    std::fs::create_dir_all(&cg_dir)?;
    for case in plans::counted_cases(world, pools) {
        eprintln!(
            "==> callgrind: {} ({} counted logins)",
            case.name,
            case.counted()
        );
        let out = cg_dir.join(format!("{}.out", case.name.replace(':', ".")));
        let instructions = driver.callgrind(&case.plan, case.warm_up, &out)?;
        report
            .instructions
            .insert(case.name.clone(), instructions / case.counted() as u64);
    }
    Ok(())
}

/// Every login must have had the result its plan expects: a "success" figure made of
/// failures would be worthless.
fn check(runs: &[&Run]) -> Result<()> {
    let bad: Vec<String> = runs
        .iter()
        .flat_map(|r| r.unexpected())
        .map(|l| {
            format!(
                "{} {}: result {} instead of {}",
                l.label,
                l.user,
                l.rc,
                l.expect.unwrap_or_default()
            )
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = bad.iter().take(10).map(String::as_str).collect();
    Err(format!(
        "{} logins did not have the expected result, so the figures would be wrong:\n  {}",
        bad.len(),
        shown.join("\n  ")
    )
    .into())
}

/// Every login of a run, in order, for looking past the medians (drift, outliers).
fn write_logins(path: &Path, run: &Run) -> Result<()> {
    let mut text = String::from("index\tlabel\tuser\tns\trc\n");
    for (i, l) in run.logins.iter().enumerate() {
        text.push_str(&format!(
            "{i}\t{}\t{}\t{}\t{}\n",
            l.label, l.user, l.ns, l.rc
        ));
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(path, text)?;
    Ok(())
}

fn by_label(logins: &[driver::LoginResult]) -> BTreeMap<String, Summary> {
    let mut samples: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for l in logins {
        samples.entry(l.label.clone()).or_default().push(l.ns);
    }
    samples
        .into_iter()
        .filter_map(|(label, ns)| Summary::of(&ns).map(|s| (label, s)))
        .collect()
}

/// Per-login latency over all processes, and their combined rate: all logins over the
/// time from the first process's start to the last one's end.
pub struct Concurrent {
    pub summary: Summary,
    pub processes: usize,
    /// Logins that should have succeeded but did not.
    pub wrongly_refused: usize,
    pub logins_per_second: f64,
}

/// Unlike the timed phase, a login that fails here is a finding, not a broken setup:
/// it is counted and reported.
fn concurrent(runs: &[Run]) -> Result<Concurrent> {
    let ns: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.logins.iter().map(|l| l.ns))
        .collect();
    let start = runs.iter().map(|r| r.start_ns).min().unwrap_or_default();
    let end = runs.iter().map(|r| r.end_ns).max().unwrap_or_default();
    Ok(Concurrent {
        summary: Summary::of(&ns).ok_or("no logins")?,
        processes: runs.len(),
        wrongly_refused: runs.iter().map(|r| r.unexpected().count()).sum(),
        logins_per_second: ns.len() as f64 / ((end - start) as f64 / 1e9),
    })
}

/// For each user, how many of the processes had the shared code accepted.
fn accepted_per_user(runs: &[Run]) -> Vec<usize> {
    let mut accepted: BTreeMap<&str, usize> = BTreeMap::new();
    for l in runs.iter().flat_map(|r| &r.logins) {
        *accepted.entry(l.user.as_str()).or_default() += usize::from(l.rc == 0);
    }
    accepted.into_values().collect()
}

/// Where the world lives decides what an fsync costs.
pub fn filesystem_of(path: &Path) -> String {
    // findmnt names ext4 as such; `stat -f` cannot tell it from ext2/ext3.
    std::process::Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "-T"])
        .arg(path)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
