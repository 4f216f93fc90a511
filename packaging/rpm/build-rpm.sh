#!/usr/bin/env bash
# Builds the RPM from packaging/rpm/pam-totp.spec with plain rpmbuild, as the spec's header
# describes, in a scratch _topdir: the source tarball (the files git knows in this work
# tree, so uncommitted changes are included), the vendored crates, rpmbuild -ba. The
# packages land in target/rpm/. tests/run.sh runs it, so CI builds the RPM on Debian.
#
#   packaging/rpm/build-rpm.sh
#
# On Debian the build dependencies come from apt and rustup, which the rpm database does
# not know, so rpmbuild runs with --nodeps (no BuildRequires check) and this script checks
# the same things itself: cargo and rustc, gcc, the PAM headers. Set RPM_NODEPS=0 where the
# BuildRequires are installed as RPMs and rpmbuild should check them.
set -euo pipefail
REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
SPEC=packaging/rpm/pam-totp.spec

die() {
    printf 'build-rpm.sh: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

have rpmbuild || die "rpmbuild not found: apt-get install rpm (Debian) or dnf install rpm-build"
{ have cargo && have rustc; } || die "cargo and rustc not found: install Rust with rustup"
have gcc || die "gcc not found (the BuildRequires: gcc)"
[[ -f /usr/include/security/pam_appl.h ]] ||
    die "the PAM headers are missing (BuildRequires: pam-devel): apt-get install libpam0g-dev"
have xz || die "xz not found: apt-get install xz-utils"

version=$(sed -n '/^\[package\]/,/^\[/{s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p}' Cargo.toml)
spec_version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
[[ -n $version && $version == "$spec_version" ]] ||
    die "$SPEC has Version: $spec_version, Cargo.toml has version $version: make them the same"

top=$(mktemp -d)
trap 'rm -rf -- "$top"' EXIT
mkdir -p "$top/SOURCES"
echo "==> RPM sources: $version from the work tree, crates vendored"
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - --transform "s,^,pam-totp-$version/," --owner=0 --group=0 \
        -czf "$top/SOURCES/pam-totp-$version.tar.gz"
(cd "$top" && cargo vendor --quiet --locked --manifest-path "$REPO/Cargo.toml" vendor >/dev/null) ||
    die "cargo vendor failed"
tar -C "$top" -cf - vendor | xz -1 -T0 >"$top/SOURCES/pam-totp-$version-vendor.tar.xz"

nodeps=(--nodeps)
[[ ${RPM_NODEPS:-1} == 0 ]] && nodeps=()
echo "==> rpmbuild -ba ${nodeps[*]} $SPEC"
start=$SECONDS
if ! rpmbuild --define "_topdir $top" "${nodeps[@]}" -ba "$SPEC" >"$top/rpmbuild.log" 2>&1; then
    tail -n 40 "$top/rpmbuild.log" >&2
    die "rpmbuild failed (the end of its output is above)"
fi
# The %check section's unit tests.
grep '^test result:' "$top/rpmbuild.log" | sed 's/^/    %check: /' || die "rpmbuild ran no %check tests"
mkdir -p target/rpm
rm -f target/rpm/*.rpm
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -exec cp -t target/rpm -- {} +
rpm=$(find target/rpm -name "pam-totp-$version-*.rpm" ! -name '*.src.rpm' ! -name '*debug*' | head -n 1)
[[ -n $rpm ]] || die "rpmbuild made no binary pam-totp RPM"

# What the package must contain.
files=$(rpm -qpl "$rpm" 2>/dev/null)
for want in /usr/bin/pam-totp '/security/pam_totp.so$' '/licenses/pam-totp/LICENSE$' \
    '/licenses/pam-totp/LICENSE.dependencies$' '/man8/pam_totp.8' '/man1/pam-totp.1'; do
    grep -q -- "$want" <<<"$files" || die "$rpm lacks $want; it has:
$files"
done
echo "==> $(find target/rpm -name '*.rpm' -printf '%p ')(rpmbuild: $((SECONDS - start)) s)"
