//! Where things are: the cargo build dir of the running test or bench binary, the module
//! built there, and pam_wrapper's and nss_wrapper's libraries on this system.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// target/<profile>, derived from the running binary (target/<profile>/deps/<name>-<hash>),
/// which is where cargo puts test and bench binaries alike.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the binary has a parent dir");
    assert!(
        deps.file_name().is_some_and(|n| n == "deps"),
        "{} is not in target/<profile>/deps; cannot find the build dir",
        exe.display()
    );
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// Absolute path of the PAM module built with this binary.
///
/// `cargo test` compiles the cdylib too, but leaves it in target/<profile>/deps; only
/// `cargo build` copies it up to target/<profile>. The newer of the two is the one matching
/// the sources this binary was built from.
pub fn module_path() -> PathBuf {
    let profile = target_profile_dir();
    let candidates = [
        profile.join("deps").join("libpam_totp.so"),
        profile.join("libpam_totp.so"),
    ];
    candidates
        .iter()
        .filter_map(|p| {
            let modified = fs::metadata(p).and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "libpam_totp.so not found in {} or its deps/: build the cdylib first \
                 (`cargo build`; `cargo test` builds it into deps/ too)",
                profile.display()
            )
        })
}

/// pam_wrapper's and nss_wrapper's libraries (nss_wrapper's is looked for beside
/// pam_wrapper's; who needs it checks with [`require_file`]).
#[derive(Debug)]
pub struct WrapperLibs {
    /// The directory holding libpam_wrapper.so (and pam_wrapper/, its test modules).
    pub dir: PathBuf,
    pub libpam_wrapper: PathBuf,
    pub libnss_wrapper: PathBuf,
}

impl WrapperLibs {
    /// Directory of pam_wrapper's test modules (pam_matrix.so, pam_get_items.so, ...).
    pub fn modules_dir(&self) -> PathBuf {
        self.dir.join("pam_wrapper")
    }
}

/// Finds pam_wrapper (looked up once per process), or says which package to install.
pub fn wrapper_libs() -> Result<&'static WrapperLibs, String> {
    static LIBS: OnceLock<Result<WrapperLibs, String>> = OnceLock::new();
    LIBS.get_or_init(find_wrapper_libs)
        .as_ref()
        .map_err(Clone::clone)
}

fn find_wrapper_libs() -> Result<WrapperLibs, String> {
    let multiarch = PathBuf::from(format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH));
    let dir = [
        multiarch,
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/usr/lib"),
    ]
    .into_iter()
    .find(|d| d.join("libpam_wrapper.so").is_file())
    .ok_or(
        "libpam_wrapper.so not found under /usr/lib: install the Debian package \
         libpam-wrapper (apt-get install libpam-wrapper)",
    )?;
    Ok(WrapperLibs {
        libpam_wrapper: dir.join("libpam_wrapper.so"),
        libnss_wrapper: dir.join("libnss_wrapper.so"),
        dir,
    })
}

/// `Ok` if `path` exists; otherwise an error naming the Debian package that provides it.
pub fn require_file(path: &Path, package: &str) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    Err(format!(
        "{} is missing: install the Debian package {package} (apt-get install {package})",
        path.display()
    ))
}
