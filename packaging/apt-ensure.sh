#!/usr/bin/env bash
# Usage: packaging/apt-ensure.sh WHO PACKAGE...
# Installs the Debian packages that are missing, with apt-get as root or through sudo
# without a password; otherwise names exactly what is missing and how to install it, and
# fails. WHO (the calling script) prefixes the messages. Used by tests/run.sh and
# benches/run.sh.
set -euo pipefail
who=$1
shift
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo)
else
    echo "$who: missing packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "==> $who: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
