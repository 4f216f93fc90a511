//! Links the unwinder statically: Rust's std on linux-gnu asks the linker for `-lgcc_s`,
//! which makes every process that loads pam_totp.so (sshd, sudo, at each pam_start) load
//! and relocate libgcc_s.so.1 too. A linker script named `libgcc_s.so` in OUT_DIR, found
//! before the system's, hands the linker the static unwinder (libgcc_eh.a) instead. Panics
//! still unwind (`panic = "unwind"`) to the catch at the FFI boundary.

use std::env;
use std::fs;
use std::path::PathBuf;

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
}
