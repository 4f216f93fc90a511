#!/usr/bin/env bash
# The end-to-end tests against the Debian package, without touching this machine's own
# pam-totp installation (packaged, from packaging/install.sh, or none). Needs root.
#
#   tests/deb-e2e.sh target/debian/pam-totp_<version>_<arch>.deb
#
# Why a throwaway root: installing the .deb over the real system replaced the files that
# packaging/install.sh had put there and `dpkg -r` then deleted them (once it also failed
# silently and left the package installed). Snapshotting and restoring those paths cannot be
# made safe against a kill at the wrong moment, and skipping whenever pam-totp is installed
# would test nothing on exactly the machines that use it. So the real dpkg installs the
# .deb with --root into a directory that is removed afterwards:
#   - its database is a copy of this system's (status, file lists, diversions, statoverrides),
#     so dpkg checks Depends against the versions really installed here and knows which
#     directories other packages own, as it would on the real system;
#   - the directories the package ships are mirrored with empty stand-ins for what this
#     system has in them and its /lib, /bin, /sbin symlinks (merged /usr), so a `dpkg -r`
#     that would warn here ("directory ... not empty so not removed") warns there too;
#   - tests/e2e/run.sh then drives the real sshd and sudo with the module and CLI exactly as
#     dpkg unpacked them (by absolute path), and `dpkg --purge` must leave nothing behind.
# What this cannot show, libpam finding `pam_totp.so` by its bare name in the system's module
# directory, is checked here as "the package's module directory is the one pam_unix.so is in"
# and exercised for real by the container stage (packaging/Containerfile).
#
# Every dpkg warning fails the run. Before and after, every path of the package on the real
# system (and everything under /usr/share/doc/pam-totp) is recorded with its type, owner,
# mode and checksum; any difference, or a failed cleanup, fails loudly.
set -euo pipefail

deb=${1:?usage: tests/deb-e2e.sh PATH/TO/pam-totp.deb}
cd "$(dirname "$0")/.."

fail() {
    printf 'tests/deb-e2e.sh: FAILED: %s\n' "$*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || fail "needs root (it runs the end-to-end tests)"
[[ -f $deb ]] || fail "$deb: no such file"

# The package's paths, without the leading "./" and with the directories marked by "/".
mapfile -t deb_paths < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./||' -e '/^$/d')
module_rel=$(printf '%s\n' "${deb_paths[@]}" | grep '/security/pam_totp[.]so$') ||
    fail "$deb has no */security/pam_totp.so"
[[ $module_rel != *$'\n'* ]] || fail "$deb has more than one pam_totp.so: $module_rel"

# The real system's view of those paths: type, owner, mode, size and checksum of each (or
# "absent"), and everything below the package's own documentation directory.
system_manifest() {
    local rel p
    for rel in "${deb_paths[@]}" usr/share/doc/pam-totp/; do
        p=/${rel%/}
        if [[ ! -e $p && ! -L $p ]]; then
            printf '%s absent\n' "$p"
        elif [[ -d $p && ! -L $p && $rel != */ ]]; then
            printf '%s unexpected-directory\n' "$p"
        elif [[ -d $p && ! -L $p ]]; then
            stat -c '%n %F %U:%G %a' -- "$p"
        else
            printf '%s %s\n' "$(stat -c '%n %F %U:%G %a %s %Y' -- "$p")" \
                "$(if [[ -f $p ]]; then sha256sum <"$p" | cut -d' ' -f1; else readlink -- "$p"; fi)"
        fi
    done
    if [[ -d /usr/share/doc/pam-totp ]]; then
        find /usr/share/doc/pam-totp -mindepth 1 -printf '%p %y %u:%g %m %s %T@\n' | sort
        find /usr/share/doc/pam-totp -type f -exec sha256sum -- {} + | sort -k2
    fi
    dpkg-query -W -f='dpkg: ${db:Status-Abbrev} ${Version}\n' pam-totp 2>/dev/null || echo "dpkg: not installed"
}

work=$(mktemp -d /tmp/pam-totp-deb-e2e.XXXXXX)
root=$work/root
before=$work/system.before
system_manifest >"$before"

cleanup() {
    local rc=$? problems=()
    if [[ -d $root/var/lib/dpkg ]] &&
        dpkg-query --admindir="$root/var/lib/dpkg" -W pam-totp >/dev/null 2>&1 &&
        [[ $(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Abbrev}' pam-totp) != "un " ]]; then
        # Only after a failure before the purge below: the root goes away anyway.
        dpkg --root="$root" --purge pam-totp >/dev/null 2>&1 || true
    fi
    system_manifest >"$work/system.after" || problems+=("cannot read the system's pam-totp files")
    if ! diff -u "$before" "$work/system.after" >"$work/system.diff"; then
        cat "$work/system.diff" >&2
        problems+=("this system's pam-totp files changed during the run (diff above)")
    fi
    rm -rf -- "$work" || problems+=("cannot remove $work")
    if ((${#problems[@]})); then
        printf 'tests/deb-e2e.sh: CLEANUP FAILED: %s\n' "${problems[@]}" >&2
        exit 1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- The throwaway root ---------------------------------------------------------------------
chmod 0755 "$work" # the e2e users run the CLI from here
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
cp -p /var/lib/dpkg/status "$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
for f in diversions statoverride; do
    [[ -f /var/lib/dpkg/$f ]] && cp -p "/var/lib/dpkg/$f" "$root/var/lib/dpkg/$f"
done
# File lists only: no maintainer scripts, and no trigger interests (man-db's would try to run
# mandb inside a root that has no programs).
find /var/lib/dpkg/info -maxdepth 1 -name '*.list' -exec cp -p -t "$root/var/lib/dpkg/info" -- {} +
if dpkg-query --admindir="$root/var/lib/dpkg" -W pam-totp >/dev/null 2>&1; then
    # pam-totp is installed here as a package: test a fresh install, not an upgrade of
    # files that the throwaway root does not have.
    dpkg --root="$root" --force-all --purge pam-totp >/dev/null 2>&1 ||
        fail "cannot drop the copy of the installed pam-totp from the throwaway database"
fi
for link in bin sbin lib lib32 lib64 libx32; do
    if [[ -L /$link ]]; then
        target=$(readlink "/$link")
        [[ $target != /* ]] || fail "/$link is an absolute symlink ($target): not handled"
        mkdir -p -- "$root/$target"
        ln -s -- "$target" "$root/$link"
    fi
done
for rel in "${deb_paths[@]}"; do
    [[ $rel == */ ]] || continue
    [[ -L $root/${rel%/} ]] && continue
    mkdir -p -- "$root/$rel"
    # Stand-ins for what this system has in a directory that no other package owns (dpkg
    # tries to remove only those), so that dpkg meets the same "not empty" directories as
    # here; the package's own directories stay empty.
    if [[ -d /$rel && ! -L /${rel%/} && $rel != usr/share/doc/pam-totp/* ]] &&
        ! dpkg-query -S "/${rel%/}" >/dev/null 2>&1; then
        find "/$rel" -mindepth 1 -maxdepth 1 ! -type d -printf '%f\0' |
            while IFS= read -r -d '' name; do
                [[ -e $root/$rel$name ]] || : >"$root/$rel$name"
            done
    fi
done
find "$root" -mindepth 1 -type f ! -path "$root/var/lib/dpkg/*" -printf '%P\n' | sort >"$work/standins"

dpkg_quiet() { # runs dpkg --root; any warning or error fails the test
    local out
    if ! out=$(dpkg --root="$root" "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        fail "dpkg $* failed"
    fi
    if grep -qi 'warning\|error' <<<"$out"; then
        printf '%s\n' "$out" >&2
        fail "dpkg $* printed a warning"
    fi
}

echo "==> dpkg --root <throwaway> -i $deb"
dpkg_quiet -i "$deb"
[[ $(stat -c '%U:%G %a' "$root/$module_rel") == "root:root 644" ]] ||
    fail "$module_rel: $(stat -c '%U:%G %a' "$root/$module_rel"), expected root:root 644"
[[ $(stat -c '%U:%G %a' "$root/usr/bin/pam-totp") == "root:root 755" ]] ||
    fail "usr/bin/pam-totp: $(stat -c '%U:%G %a' "$root/usr/bin/pam-totp"), expected root:root 755"
# libpam looks for bare module names where pam_unix.so is.
unix=$(dpkg-query -L libpam-modules | grep '/security/pam_unix[.]so$') ||
    fail "libpam-modules (pam_unix.so) is not installed"
unix=${unix%%$'\n'*}
[[ $(realpath "$(dirname "$unix")") == $(realpath "/$(dirname "$module_rel")") ]] ||
    fail "the package puts the module in /$(dirname "$module_rel"), but libpam's modules are in $(dirname "$unix")"

echo "==> end-to-end tests against the module and CLI as the package installs them"
PAM_TOTP_MODULE="$root/$module_rel" PAM_TOTP_CLI="$root/usr/bin/pam-totp" tests/e2e/run.sh

echo "==> dpkg --root <throwaway> --purge pam-totp"
dpkg_quiet --purge pam-totp
find "$root" -mindepth 1 -type f ! -path "$root/var/lib/dpkg/*" -printf '%P\n' | sort >"$work/after-purge"
left=$(comm -13 "$work/standins" "$work/after-purge")
[[ -z $left ]] || fail "dpkg --purge left files behind: $left"
gone=$(comm -23 "$work/standins" "$work/after-purge")
[[ -z $gone ]] || fail "dpkg removed files that are not the package's: $gone"
[[ ! -e $root/usr/share/doc/pam-totp ]] || fail "dpkg --purge left /usr/share/doc/pam-totp behind"
echo "ok: the package installs, passes the end-to-end tests and purges cleanly; this system's pam-totp files are untouched"
