#!/usr/bin/env bash
# The whole test suite, as the README gives it: lint, unit and integration tests through
# the real libpam (pam_wrapper + nss_wrapper), CLI tests, and — as root — the end-to-end
# tests with real sshd and sudo, against the freshly built module and again against the
# installed Debian package.
#
# Installs its own test dependencies with apt-get when it can (root, or sudo without a
# password); otherwise it names exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    gcc libc6-dev pkg-config libpam0g-dev  # build: the module links libpam
    libpam-wrapper libnss-wrapper pamtester oathtool libpam-google-authenticator  # integration tests
    openssh-server openssh-client sudo passwd jq util-linux procps iproute2 xxd  # end-to-end tests
    dpkg-dev  # packaging
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

if [[ $(id -u) -ne 0 ]]; then
    echo
    echo "SKIPPED: the end-to-end tests (real sshd and sudo, real users) need root; run tests/run.sh as root to include them."
    exit 0
fi

echo "==> end-to-end tests against the freshly built module and CLI"
cargo build --locked --release
PAM_TOTP_MODULE="$PWD/target/release/libpam_totp.so" PAM_TOTP_CLI="$PWD/target/release/pam-totp" \
    tests/e2e/run.sh

echo "==> end-to-end tests against the installed Debian package"
if dpkg-query -W -f='${Status}' pam-totp 2>/dev/null | grep -q "install ok installed"; then
    # Never replace (and then remove) a pam-totp this machine really uses.
    echo "SKIPPED: the package e2e run: pam-totp is already installed here and is left alone."
    exit 0
fi
packaging/build-deb.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb="target/debian/pam-totp_${version}_$(dpkg --print-architecture).deb"
trap 'dpkg -r pam-totp >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
PAM_TOTP_MODULE="/usr/lib/$multiarch/security/pam_totp.so" PAM_TOTP_CLI=/usr/bin/pam-totp \
    tests/e2e/run.sh

# Last: the package in a clean Debian 12 container, no image registry (tests/container/).
echo "==> container tests: the package and the e2e suite in a Debian 12 container"
container_rc=0
tests/container/run.sh </dev/null || container_rc=$?
# 77: it printed "SKIPPED: container tests: <reason>" (podman cannot work here).
((container_rc == 0 || container_rc == 77)) || exit "$container_rc"
