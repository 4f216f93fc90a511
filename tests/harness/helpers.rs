//! The C helper programs (`tests/harness/c/`), compiled once per build profile into
//! target/<profile>/pam-test-support.

use super::locations::target_profile_dir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    /// One login, its whole conversation printed (the tests).
    PamClient,
    /// LD_PRELOAD shim writing syslog traffic to a file (the tests).
    SyslogCapture,
    /// Many timed logins from a plan file (the benchmark).
    PamDriver,
    /// LD_PRELOAD shim that drops LOG_CONS from openlog (the benchmark).
    SyslogNoConsole,
    /// NSS module whose passwd lookups fail on demand, loaded by nss_wrapper (the tests).
    NssFailing,
}

const ALL: [Helper; 5] = [
    Helper::PamClient,
    Helper::SyslogCapture,
    Helper::PamDriver,
    Helper::SyslogNoConsole,
    Helper::NssFailing,
];

/// How one helper is compiled: `cc <COMMON_FLAGS> <pre> -o <out> <source> <libs>`.
struct Recipe {
    source: &'static str,
    output: &'static str,
    pre: &'static [&'static str],
    libs: &'static [&'static str],
}

/// Every helper gets these (the benchmark's driver too: it is measured with them).
const COMMON_FLAGS: &[&str] = &["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra"];

impl Helper {
    fn recipe(self) -> Recipe {
        match self {
            Helper::PamClient => Recipe {
                source: "pam_client.c",
                output: "pam_client",
                pre: &[],
                libs: &["-lpam"],
            },
            Helper::SyslogCapture => Recipe {
                source: "syslog_capture.c",
                output: "syslog_capture.so",
                pre: &["-shared", "-fPIC", "-pthread"],
                libs: &[],
            },
            Helper::PamDriver => Recipe {
                source: "pam_driver.c",
                output: "pam_driver",
                pre: &[],
                libs: &["-lpam", "-loath"],
            },
            Helper::SyslogNoConsole => Recipe {
                source: "syslog_no_console.c",
                output: "syslog_no_console.so",
                pre: &["-shared", "-fPIC"],
                libs: &["-ldl"],
            },
            Helper::NssFailing => Recipe {
                source: "nss_failing.c",
                // The name glibc's NSS would give a module called "failing".
                output: "libnss_failing.so.2",
                pre: &["-shared", "-fPIC"],
                libs: &[],
            },
        }
    }

    fn index(self) -> usize {
        ALL.iter()
            .position(|h| *h == self)
            .expect("every helper is in ALL")
    }
}

fn sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/c")
}

/// target/<profile>/pam-test-support: where the helpers are built.
pub fn output_dir() -> PathBuf {
    target_profile_dir().join("pam-test-support")
}

/// The helper's path, compiled first if its sources changed since the last build (once per
/// process). The error says which package is missing when that is why cc failed.
pub fn build(helper: Helper) -> Result<PathBuf, String> {
    static BUILT: [OnceLock<Result<PathBuf, String>>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    BUILT[helper.index()]
        .get_or_init(|| compile(helper.recipe()))
        .clone()
}

/// Skipped when the output is newer than the source, the shared header and this file (which
/// holds the flags). Builds to a temporary name and renames, so binaries running in parallel
/// (or a running helper) never see a half-written file.
fn compile(recipe: Recipe) -> Result<PathBuf, String> {
    let dir = output_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let src = sources_dir().join(recipe.source);
    let out = dir.join(recipe.output);
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let src_time = mtime(&src).ok_or_else(|| format!("{} is missing", src.display()))?;
    let inputs = [
        sources_dir().join("handshake.h"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/helpers.rs"),
    ];
    let newest_input: SystemTime = inputs
        .iter()
        .filter_map(|p| mtime(p))
        .fold(src_time, SystemTime::max);
    if mtime(&out).is_some_and(|t| t > newest_input) {
        return Ok(out);
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let result = Command::new("cc")
        .args(COMMON_FLAGS)
        .args(recipe.pre)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .args(recipe.libs)
        .output()
        .map_err(|e| format!("cannot run cc ({e}): install a C compiler (apt-get install gcc)"))?;
    if !result.status.success() {
        let _ = fs::remove_file(&tmp);
        let stderr = String::from_utf8_lossy(&result.stderr);
        return Err(format!(
            "compiling {} failed{}:\n{stderr}",
            src.display(),
            missing_package_hint(&stderr)
        ));
    }
    fs::rename(&tmp, &out)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), out.display()))?;
    Ok(out)
}

fn missing_package_hint(stderr: &str) -> &'static str {
    if stderr.contains("security/pam_appl.h") || stderr.contains("-lpam") {
        " (install libpam0g-dev)"
    } else if stderr.contains("liboath") || stderr.contains("-loath") {
        " (install liboath-dev)"
    } else if stderr.contains("valgrind/callgrind.h") {
        " (install valgrind)"
    } else {
        ""
    }
}
