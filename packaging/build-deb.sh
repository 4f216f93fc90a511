#!/usr/bin/env bash
# Builds the Debian/Ubuntu package: target/debian/pam-totp_<version>_<arch>.deb
#
#   packaging/build-deb.sh        # as any user; no root needed (files are root-owned in the .deb)
#   sudo dpkg -i target/debian/pam-totp_*.deb
#
# Contents: the PAM module in the directory where this system's libpam-modules keeps
# pam_unix.so (/lib/<multiarch>/security on Debian 12, /usr/lib/<multiarch>/security where
# the /usr merge is complete), the pam-totp CLI in /usr/bin, the man pages, and README,
# changelogs, copyright and the example PAM stacks in /usr/share/doc/pam-totp. Needs cargo
# (>= rust-version) and dpkg-dev. DEBFULLNAME and DEBEMAIL set the Maintainer field, as for
# other Debian tools. lintian (packaging/lintian.sh) checks the result in CI.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

die() {
    printf 'build-deb.sh: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

for tool in cargo dpkg-deb dpkg-architecture gzip; do
    have "$tool" || case $tool in
        cargo) die "cargo not found: install Rust (>= the rust-version in Cargo.toml) with rustup" ;;
        gzip) die "gzip not found: apt-get install gzip" ;;
        *) die "$tool not found: apt-get install dpkg-dev" ;;
    esac
done

# The [package] version of Cargo.toml.
VERSION=$(sed -n '/^\[package\]/,/^\[/{s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p}' Cargo.toml | head -n1)
[[ -n $VERSION ]] || die "cannot read the package version from Cargo.toml"
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# The project's address, the same as in the RPM spec's %changelog.
MAINTAINER="${DEBFULLNAME:-pam-totp developers} <${DEBEMAIL:-maintainers@pam-totp.org}>"
# The module goes into the directory libpam-modules owns: a directory that only this package
# shipped (e.g. /usr/lib/<multiarch>/security on Debian 12, where libpam-modules still uses
# /lib/<multiarch>/security) makes `dpkg -r pam-totp` warn that it is not empty. Both names
# are one directory on merged-/usr systems, so libpam finds the module either way.
if [[ -n ${PAM_MODULE_DIR:-} ]]; then
    SECURITY_DIR=$PAM_MODULE_DIR
elif unix=$(dpkg-query -L libpam-modules 2>/dev/null | grep '/security/pam_unix[.]so$'); then
    unix=${unix%%$'\n'*}
    SECURITY_DIR=${unix%/pam_unix.so}
else
    SECURITY_DIR=/usr/lib/$MULTIARCH/security
    echo "warning: libpam-modules is not installed here; the module goes to $SECURITY_DIR" >&2
fi
# Reproducible: file dates in the .deb come from the last commit unless told otherwise.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

echo "==> cargo build --release --locked"
cargo build --release --locked
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
MODULE=$TARGET_DIR/release/libpam_totp.so
CLI=$TARGET_DIR/release/pam-totp
HELPER=$TARGET_DIR/release/pam-totp-helper
for f in "$MODULE" "$CLI" "$HELPER" man/pam_totp.8 man/pam-totp.1; do
    [[ -f $f ]] || die "$f is missing (the package needs the module, the CLI and both man pages)"
done

OUT_DIR=$REPO/target/debian
WORK=$OUT_DIR/build
# dpkg-shlibdeps wants debian/control and the files under debian/<package>/.
ROOT=$WORK/debian/pam-totp
DEB=$OUT_DIR/pam-totp_${VERSION}_${ARCH}.deb
rm -rf -- "$WORK"
mkdir -p -- "$ROOT/DEBIAN" "$OUT_DIR"
umask 022

DOC=$ROOT/usr/share/doc/pam-totp
install -D -m 0644 "$MODULE" "$ROOT$SECURITY_DIR/pam_totp.so"
install -D -m 0755 "$CLI" "$ROOT/usr/bin/pam-totp"
# Protected storage's self-service (pam-totp(1), "Protected storage"): setuid root, like
# passwd and unix_chkpwd. dpkg-deb --root-owner-group makes it root:root.
install -D -m 0755 "$HELPER" "$ROOT/usr/lib/pam-totp/pam-totp-helper"
if have strip; then
    # As dh_strip does: the dynamic symbols (pam_sm_*) stay.
    strip --remove-section=.comment --remove-section=.note --strip-unneeded \
        "$ROOT$SECURITY_DIR/pam_totp.so"
    strip --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/pam-totp" \
        "$ROOT/usr/lib/pam-totp/pam-totp-helper"
fi
# After strip (which may drop the setuid bit) and after the chmod of directories below.
chmod 4755 "$ROOT/usr/lib/pam-totp/pam-totp-helper"
install -d -m 0755 "$ROOT/usr/share/man/man8" "$ROOT/usr/share/man/man1" "$DOC"
gzip -9nc man/pam_totp.8 >"$ROOT/usr/share/man/man8/pam_totp.8.gz"
gzip -9nc man/pam-totp.1 >"$ROOT/usr/share/man/man1/pam-totp.1.gz"
cp -R pam.d-examples "$DOC/examples"
install -D -m 0644 packaging/debian/lintian-overrides "$ROOT/usr/share/lintian/overrides/pam-totp"
for f in README.md CHANGELOG.md; do
    if [[ -f $f ]]; then
        install -m 0644 "$f" "$DOC/$f"
    fi
done
if [[ -f CHANGELOG.md ]]; then
    gzip -9nc CHANGELOG.md >"$DOC/CHANGELOG.md.gz"
    rm -f "$DOC/CHANGELOG.md"
fi
# The version has no Debian revision, so this is a native package, and its changelog.gz
# must be in debian/changelog syntax (lintian: syntax-error-in-debian-changelog): one entry
# for this version that points to the release notes, dated like the files in the .deb.
{
    printf 'pam-totp (%s) unstable; urgency=medium\n\n' "$VERSION"
    printf '  * Release %s. The changes are listed in\n' "$VERSION"
    printf '    /usr/share/doc/pam-totp/CHANGELOG.md.gz.\n\n'
    printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$DOC/changelog.gz"

# copyright (machine-readable, DEP-5), naming the Rust crates compiled into the binaries.
# The notice is LICENSE's ("Copyright (c) YEAR HOLDER"), in DEP-5's "YEAR HOLDER" form.
COPYRIGHT=$(sed -n 's/^Copyright ([cC]) //p' LICENSE | head -n1)
[[ -n $COPYRIGHT ]] || die "LICENSE has no 'Copyright (c) YEAR HOLDER' line for the copyright file"
CRATES=$(cargo tree --locked --offline -e normal --prefix none -f '{p} {l}') ||
    die "cargo tree failed: cannot list the crates for the copyright file"
CRATES=$(printf '%s\n' "$CRATES" | sed -e 's/ (\*)$//' -e 's/ (proc-macro)//' |
    grep -v '^pam-totp ' | sort -u | sed 's/^/ /')
{
    cat <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pam-totp
Comment: The module and the CLI are statically linked with these Rust crates
 (name, version, license as declared in the crate's Cargo.toml; the derive
 macros among them run only at build time):
EOF
    printf '%s\n' "$CRATES"
    printf '\nFiles: *\nCopyright: %s\nLicense: MIT\n' "$COPYRIGHT"
    cat <<'EOF'

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
EOF
} >"$DOC/copyright"

# Depends from the libraries the binaries link (libc6, libgcc-s1, libpam0g).
DEPENDS=""
if have dpkg-shlibdeps; then
    printf 'Source: pam-totp\n\nPackage: pam-totp\nArchitecture: any\n' >"$WORK/debian/control"
    DEPENDS=$(cd "$WORK" && dpkg-shlibdeps -O \
        "debian/pam-totp$SECURITY_DIR/pam_totp.so" \
        debian/pam-totp/usr/bin/pam-totp debian/pam-totp/usr/lib/pam-totp/pam-totp-helper | sed -n 's/^shlibs:Depends=//p')
fi
DEPENDS=${DEPENDS:-libc6, libpam0g}

INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: pam-totp
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: $DEPENDS
Section: admin
Priority: optional
Description: TOTP two-factor authentication for PAM (sshd, sudo, login)
 pam_totp.so asks for a time-based one-time code (RFC 6238) from an
 authenticator app, or a single-use recovery code, after the password or an
 SSH key. Used codes are burned atomically; failed codes are throttled; state
 files are checked for owner, mode and symlinks and read as the user.
 .
 The pam-totp command enrolls users (QR code, recovery codes), shows their
 status, makes new recovery codes and disables TOTP; root can act for any user.
 .
 Nothing is enabled on installation: add pam_totp.so to a PAM stack, see
 /usr/share/doc/pam-totp/examples and pam_totp(8).
EOF

(cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"
find "$ROOT" -type d -exec chmod 0755 {} +

rm -f -- "$DEB"
dpkg-deb --root-owner-group --build "$ROOT" "$DEB" >/dev/null
echo "==> $DEB"
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\):/  \1:/p'
if [[ ! -L /lib && -f /lib/$MULTIARCH/security/pam_unix.so ]]; then
    echo "warning: /lib is not merged with /usr/lib here; libpam looks in /lib/$MULTIARCH/security," >&2
    echo "         so refer to the module by its full path: /usr/lib/$MULTIARCH/security/pam_totp.so" >&2
fi
