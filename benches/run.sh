#!/usr/bin/env bash
# The benchmark, as the README gives it: pam_totp next to Debian's pam_google_authenticator
# and pam_oath, through the real libpam under pam_wrapper + nss_wrapper, on the same fake
# users and codes, in one run. Prints a Markdown report (also written to
# target/bench/report.md) and keeps the callgrind profiles in target/bench/callgrind/.
# BENCHMARKS.md says what each figure means. It reports; it never fails on a figure.
#
#   benches/run.sh            the full run (a few minutes)
#   benches/run.sh --quick    a smoke test of the benchmark itself; its figures mean little
#   benches/run.sh --counted-only   only the callgrind instruction counts (a minute or two)
#
# BENCH_DIR=/dev/shm puts the fake homes on tmpfs, where fsync costs nothing: the
# difference from a run on disk is what the fsyncs cost. BENCH_KEEP=1 keeps them.
#
# Installs what it needs with apt-get when it can (root, or sudo without a password);
# otherwise it names exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    gcc libc6-dev libpam0g-dev liboath-dev  # the driver: libpam, and liboath to compute codes
    libpam-wrapper libnss-wrapper           # real libpam with fake services and users
    libpam-google-authenticator libpam-oath # the modules compared
    valgrind                                # instruction counts (callgrind)
)

packaging/apt-ensure.sh benches/run.sh "${packages[@]}"
command -v cargo >/dev/null || { echo "benches/run.sh: cargo not found (install Rust >= 1.88 with rustup)" >&2; exit 1; }

echo "==> cargo build --release (the module measured)" >&2
cargo build --locked --release --lib >&2
# How much of the layout of benches/login-functions.txt this build got (see
# benches/order-functions.sh): none when the toolchain or Cargo.lock changed since it was made.
if [ -f benches/login-functions.txt ] && command -v nm >/dev/null; then
    listed=$(grep -vc '^#' benches/login-functions.txt || true)
    present=$(nm target/release/libpam_totp.so | awk '{print $NF}' | sort -u |
        grep -Fxc -f <(grep -v '^#' benches/login-functions.txt) || true)
    echo "==> functions of a login laid out together: $present of the $listed in benches/login-functions.txt" >&2
fi
mkdir -p target/bench
# The bench builds its C driver and syslog shim (tests/harness/c/) with the same harness
# the integration tests use, into target/release/pam-test-support.
echo "==> running (the report follows)" >&2
cargo bench --locked --bench pam_bench -- \
    --module target/release/libpam_totp.so \
    --out-dir target/bench \
    "$@"
