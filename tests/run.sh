#!/usr/bin/env bash
# The whole test suite, as the README gives it: lint, unit and integration tests through
# the real libpam (pam_wrapper + nss_wrapper), CLI tests, the Debian package (built and
# checked by lintian) and the RPM (built by rpmbuild), each fuzz target for FUZZ_SECONDS
# (default 20), and — as root — the end-to-end tests with real sshd and sudo, against the
# freshly built module and again against the Debian package, installed by dpkg into a
# throwaway root (tests/deb-e2e.sh): an existing pam-totp installation, packaged or from
# packaging/install.sh, is left exactly as it was.
#
# Installs its own test dependencies with apt-get when it can (root, or sudo without a
# password); otherwise it names exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    gcc libc6-dev pkg-config libpam0g-dev  # build: the module links libpam
    libpam-wrapper libnss-wrapper pamtester oathtool libpam-google-authenticator  # integration tests
    openssh-server openssh-client sudo passwd jq util-linux procps iproute2 xxd  # end-to-end tests
    dpkg-dev lintian rpm xz-utils  # packaging: the .deb, lintian, the RPM
)
# Container tests (tests/container/run.sh): root only, like them.
if [[ $(id -u) -eq 0 ]]; then packages+=(podman runc mmdebstrap catatonit); fi

packaging/apt-ensure.sh tests/run.sh "${packages[@]}"
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found (install Rust >= 1.88 with rustup)" >&2; exit 1; }

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "==> cargo test"
cargo test --locked

packaging/build-deb.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb="target/debian/pam-totp_${version}_$(dpkg --print-architecture).deb"
packaging/lintian.sh "$deb"
packaging/rpm/build-rpm.sh
fuzz/run-ci.sh

if [[ $(id -u) -ne 0 ]]; then
    echo
    echo "SKIPPED: the end-to-end tests (real sshd and sudo, real users), the Debian package's end-to-end run and the container tests need root; run tests/run.sh as root to include them."
    exit 0
fi

echo "==> end-to-end tests against the freshly built module and CLI"
cargo build --locked --release
PAM_TOTP_MODULE="$PWD/target/release/libpam_totp.so" PAM_TOTP_CLI="$PWD/target/release/pam-totp" \
    tests/e2e/run.sh

echo "==> end-to-end tests against the Debian package"
tests/deb-e2e.sh "$deb"

# Last: the package in a clean Debian 12 container, no image registry (tests/container/).
echo "==> container tests: the package and the e2e suite in a Debian 12 container"
container_rc=0
tests/container/run.sh </dev/null || container_rc=$?
# 77: it printed "SKIPPED: container tests: <reason>" (podman cannot work here).
((container_rc == 0 || container_rc == 77)) || exit "$container_rc"
