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
    libpam-wrapper libnss-wrapper pamtester oathtool  # integration tests
    openssh-server openssh-client sudo passwd jq util-linux procps iproute2 xxd  # end-to-end tests
    dpkg-dev  # packaging
)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo)
    else
        echo "tests/run.sh: missing packages: ${missing[*]}" >&2
        echo "install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "==> installing test dependencies: ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
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
packaging/build-deb.sh
deb=$(ls -t target/debian/pam-totp_*.deb | head -n 1)
dpkg -i "$deb" >/dev/null
trap 'dpkg -r pam-totp >/dev/null 2>&1 || true' EXIT
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
PAM_TOTP_MODULE="/usr/lib/$multiarch/security/pam_totp.so" PAM_TOTP_CLI=/usr/bin/pam-totp \
    tests/e2e/run.sh
