#!/usr/bin/env bash
# Runs lintian on the Debian package built by packaging/build-deb.sh and fails on any error
# or warning (tests/run.sh runs it in CI). A tag that cannot be fixed goes, with its reason,
# into packaging/debian/lintian-overrides, which the package installs.
#
#   packaging/lintian.sh [target/debian/pam-totp_<version>_<arch>.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v lintian >/dev/null || { echo "packaging/lintian.sh: lintian not found: apt-get install lintian" >&2; exit 1; }
debs=("$@")
if ((${#debs[@]} == 0)); then
    shopt -s nullglob
    debs=(target/debian/pam-totp_*.deb)
    ((${#debs[@]})) || { echo "packaging/lintian.sh: no target/debian/pam-totp_*.deb: run packaging/build-deb.sh" >&2; exit 1; }
fi
echo "==> lintian ${debs[*]}"
# --info: show the informational tags too; --fail-on: errors and warnings fail (exit 2).
if ! lintian --info --fail-on error,warning "${debs[@]}" 2> >(grep -v '^running with root privileges is not recommended!$' >&2); then
    echo "packaging/lintian.sh: FAILED: lintian reports errors or warnings (above); fix them, or add an override with its reason to packaging/debian/lintian-overrides" >&2
    exit 1
fi
echo "ok: lintian: no errors or warnings"
