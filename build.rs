//! Links the unwinder statically: Rust's std on linux-gnu asks the linker for `-lgcc_s`,
//! which makes every process that loads pam_totp.so (sshd, sudo, at each pam_start) load
//! and relocate libgcc_s.so.1 too. A linker script named `libgcc_s.so` in OUT_DIR, found
//! before the system's, hands the linker the static unwinder (libgcc_eh.a) instead. Panics
//! still unwind (`panic = "unwind"`) to the catch at the FFI boundary.
//!
//! Also packs the module's relative relocations (DT_RELR, `-z pack-relative-relocs`) when
//! the toolchain and the C library support it: the loader applies ~1,700 of them at every
//! pam_start, and the packed table is a few hundred bytes instead of 40 KB of RELA entries.
//!
//! And lays out the functions a login runs together (`benches/login-functions.txt`, LLD's
//! `--symbol-ordering-file`) when the linker rustc uses takes that option: libpam maps the
//! module afresh at every pam_start, and each 64 KiB window of code a login touches costs a
//! page fault (benches/order-functions.sh says more, and makes the list).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    if !(target.contains("linux") && target.ends_with("-gnu")) {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = out.join("static-unwinder");
    fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwinder");
    // libgcc_eh.a is found on gcc's own library path, which the linker searches too.
    fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("write libgcc_s.so");
    println!("cargo:rustc-link-search=native={}", dir.display());
    if relr_supported(&out) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    }
    let order = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("benches/login-functions.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if order.is_file() && symbol_ordering_supported(&out) {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names missing from this build (another toolchain or Cargo.lock) are not errors.
        println!("cargo:rustc-cdylib-link-arg=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the linker rustc uses for this target takes `--symbol-ordering-file` (LLD, which
/// rustc brings and uses on x86_64 Linux since 1.90; GNU ld and gold do not): probed by
/// having rustc itself link a tiny shared library with it, as it will link the module.
fn symbol_ordering_supported(out: &Path) -> bool {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let source = out.join("order-probe.rs");
    let list = out.join("order-probe.txt");
    if fs::write(
        &source,
        "#[no_mangle]\npub extern \"C\" fn order_probe() {}\n",
    )
    .is_err()
        || fs::write(&list, "order_probe\n").is_err()
    {
        return false;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut probe = Command::new(rustc);
    probe
        .args([
            "--crate-type",
            "cdylib",
            "--crate-name",
            "order_probe",
            "--target",
        ])
        .arg(env::var("TARGET").unwrap_or_default())
        .arg("-C")
        .arg(format!(
            "link-arg=-Wl,--symbol-ordering-file={}",
            list.display()
        ))
        .args(["-C", "link-arg=-Wl,--no-warn-symbol-ordering"])
        .arg("--out-dir")
        .arg(out)
        .arg(&source);
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        probe.arg("-C").arg({
            let mut arg = std::ffi::OsString::from("linker=");
            arg.push(linker);
            arg
        });
    }
    probe.output().is_ok_and(|o| o.status.success())
}

/// Whether a shared object linked with `-z pack-relative-relocs` loads here: the linker
/// must know the option (binutils 2.38, or rustc's own LLD; an older GNU ld only warns,
/// made fatal below) and the C library must apply DT_RELR (glibc 2.36, which the linker
/// then records as a version the module needs, so an older one refuses to load it rather
/// than misread it). Only for a native build, probed through the C compiler; anything
/// unclear: no.
fn relr_supported(out: &Path) -> bool {
    println!("cargo:rerun-if-env-changed=CC");
    // The C library checked below is this machine's: only for a module built for it.
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return false;
    }
    let glibc_ok = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            let (major, minor) = v.trim().strip_prefix("glibc ")?.split_once('.')?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        })
        .is_some_and(|version| version >= (2, 36));
    if !glibc_ok {
        return false;
    }
    let source = out.join("relr-probe.c");
    if fs::write(&source, "int relr_probe(void) { return 0; }\n").is_err() {
        return false;
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    Command::new(cc)
        .args([
            "-shared",
            "-fPIC",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
        ])
        .arg("-o")
        .arg(out.join("relr-probe.so"))
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success())
}
