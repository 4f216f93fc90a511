#!/usr/bin/env bash
# Builds pam-totp and installs it: the PAM module into the distribution's PAM module
# directory, the pam-totp CLI, the man pages and the example PAM stacks.
#
#   packaging/install.sh                      # as a normal user (sudo for the install) or root
#   PREFIX=/usr/local packaging/install.sh    # CLI, man pages and examples under /usr/local
#   DESTDIR=/tmp/stage packaging/install.sh   # stage the files instead (packagers)
#   PAM_MODULE_DIR=/usr/lib64/security packaging/install.sh   # when detection guesses wrong
#
# The build runs as the invoking user (cargo lives in their ~/.cargo), never as root unless
# root runs the script; only the install step uses sudo.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PREFIX:-/usr}
DESTDIR=${DESTDIR:-}
APT_PACKAGES=(libpam0g-dev gcc pkg-config)
DNF_PACKAGES=(pam-devel gcc pkgconf-pkg-config)

say() { printf '%s\n' "$*"; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

cd "$REPO"
[[ -f Cargo.toml && -f src/lib.rs ]] || die "$REPO does not look like the pam-totp source tree"

# ------------------------------------------------------------------------------------------
# Who does what: the build as the invoking user, the install as root.
# ------------------------------------------------------------------------------------------
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if have sudo; then
        SUDO=(sudo)
    fi
fi
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif [[ ${#SUDO[@]} -gt 0 ]]; then
        "${SUDO[@]}" "$@"
    else
        return 127
    fi
}

# Run as root through sudo by a normal user: build as that user, not as root, so that
# target/ stays theirs and their own Rust toolchain is used.
BUILD_USER=""
if [[ $(id -u) -eq 0 && -n ${SUDO_USER:-} && ${SUDO_USER} != root ]]; then
    BUILD_USER=$SUDO_USER
fi
as_builder() {
    if [[ -n $BUILD_USER ]]; then
        local home
        home=$(getent passwd "$BUILD_USER" | cut -d: -f6)
        sudo -u "$BUILD_USER" -H env "PATH=$home/.cargo/bin:$PATH" "$@"
    else
        "$@"
    fi
}

# ------------------------------------------------------------------------------------------
# Build dependencies: the PAM headers, a C compiler/linker, pkg-config.
# ------------------------------------------------------------------------------------------
missing_debian_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

check_build_dependencies() {
    if have dpkg-query && have apt-get; then
        local missing
        mapfile -t missing < <(missing_debian_packages)
        [[ ${#missing[@]} -eq 0 ]] && return 0
        say "==> Installing build dependencies: ${missing[*]}"
        if as_root true 2>/dev/null; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
            if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
                return 0
            fi
        fi
        die "missing build dependencies: ${missing[*]}
    install them as root:  apt-get install ${missing[*]}
    (or with sudo:         sudo apt-get install ${missing[*]})"
    fi
    # Elsewhere: check for the files themselves and name the packages.
    local problems=()
    [[ -f /usr/include/security/pam_appl.h ]] || problems+=("the PAM headers (/usr/include/security/pam_appl.h)")
    have cc || have gcc || problems+=("a C compiler and linker (gcc)")
    have pkg-config || have pkgconf || problems+=("pkg-config")
    [[ ${#problems[@]} -eq 0 ]] && return 0
    die "missing build dependencies:
$(printf '    - %s\n' "${problems[@]}")
    on RHEL, Rocky, AlmaLinux, Fedora:  dnf install ${DNF_PACKAGES[*]}
    on Debian, Ubuntu:                  apt-get install ${APT_PACKAGES[*]}"
}

# ------------------------------------------------------------------------------------------
# Rust: cargo and rustc at least the crate's rust-version.
# ------------------------------------------------------------------------------------------
RUSTUP_HINT="install Rust with rustup (as yourself, not root):
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
        . \"\$HOME/.cargo/env\"
    then run packaging/install.sh again. (Debian's and Ubuntu's own rustc packages are
    usually too old.)"

version_at_least() { # have want -> true if have >= want (dotted numbers)
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

check_rust() {
    local need have_cargo have_rustc
    need=$(sed -n 's/^rust-version[[:space:]]*=[[:space:]]*"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
    [[ -n $need ]] || die "cannot read rust-version from Cargo.toml"
    if [[ -z $BUILD_USER ]] && ! have cargo && [[ -x $HOME/.cargo/bin/cargo ]]; then
        # rustup installed, but this shell has not read ~/.cargo/env yet.
        PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! as_builder cargo --version >/dev/null 2>&1 || ! as_builder rustc --version >/dev/null 2>&1; then
        die "cargo and rustc $need or newer are needed, and were not found${BUILD_USER:+ for $BUILD_USER}.
    $RUSTUP_HINT"
    fi
    have_cargo=$(as_builder cargo --version | awk '{print $2}')
    have_rustc=$(as_builder rustc --version | awk '{print $2}')
    if ! version_at_least "${have_rustc%%-*}" "$need" || ! version_at_least "${have_cargo%%-*}" "$need"; then
        die "rustc $have_rustc / cargo $have_cargo is too old: pam-totp needs $need or newer.
    With rustup:  rustup update stable
    Without:      $RUSTUP_HINT"
    fi
    say "==> Rust: rustc $have_rustc, cargo $have_cargo (need $need)"
}

# ------------------------------------------------------------------------------------------
# Where libpam looks for modules.
# ------------------------------------------------------------------------------------------
pam_module_dir() {
    if [[ -n ${PAM_MODULE_DIR:-} ]]; then
        printf '%s\n' "$PAM_MODULE_DIR"
        return 0
    fi
    local multiarch="" dir found
    if have dpkg-architecture; then
        multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
    fi
    if [[ -z $multiarch ]] && have gcc; then
        multiarch=$(gcc -print-multiarch 2>/dev/null || true)
    fi
    local candidates=()
    if [[ -n $multiarch ]]; then
        candidates+=("/lib/$multiarch/security" "/usr/lib/$multiarch/security")
    fi
    candidates+=(/usr/lib64/security /lib64/security /usr/lib/security /lib/security)
    for dir in "${candidates[@]}"; do
        if [[ -f $dir/pam_unix.so ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    found=$(find /lib /lib64 /usr/lib /usr/lib64 -maxdepth 4 -name pam_unix.so -print -quit 2>/dev/null || true)
    if [[ -n $found ]]; then
        dirname -- "$found"
        return 0
    fi
    return 1
}

# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------
check_build_dependencies
check_rust

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
say "==> Building: cargo build --release --locked${BUILD_USER:+ (as $BUILD_USER)}"
as_builder cargo build --release --locked

MODULE_SRC=$TARGET_DIR/release/libpam_totp.so
CLI_SRC=$TARGET_DIR/release/pam-totp
HELPER_SRC=$TARGET_DIR/release/pam-totp-helper
MAN8_SRC=$REPO/man/pam_totp.8
MAN1_SRC=$REPO/man/pam-totp.1
EXAMPLES_SRC=$REPO/pam.d-examples

[[ -f $MODULE_SRC ]] || die "the build did not produce $MODULE_SRC"
[[ -f $CLI_SRC ]] || die "the build did not produce the pam-totp CLI ($CLI_SRC): is src/main.rs in this tree?"
[[ -f $HELPER_SRC ]] || die "the build did not produce the setuid helper ($HELPER_SRC)"
for f in "$MAN8_SRC" "$MAN1_SRC"; do
    [[ -f $f ]] || die "man page $f is missing from the source tree"
done
[[ -d $EXAMPLES_SRC ]] || die "$EXAMPLES_SRC is missing from the source tree"

MODULE_DIR=$(pam_module_dir) ||
    die "cannot find this system's PAM module directory (no pam_unix.so under /lib, /usr/lib, /lib64, /usr/lib64);
    set PAM_MODULE_DIR=/path/to/security and run again"
BIN_DIR=$PREFIX/bin
MAN_DIR=$PREFIX/share/man
DOC_DIR=$PREFIX/share/doc/pam-totp

# Root is needed unless everything goes to a DESTDIR we can write.
if [[ $(id -u) -ne 0 ]]; then
    if [[ -n $DESTDIR ]] && mkdir -p -- "$DESTDIR" 2>/dev/null && [[ -w $DESTDIR ]]; then
        SUDO=()
        as_root() { "$@"; }
    elif [[ ${#SUDO[@]} -eq 0 ]]; then
        die "installing needs root, and sudo is not installed: run packaging/install.sh as root"
    fi
fi

STAGE=$(mktemp -d)
trap 'rm -rf -- "$STAGE"' EXIT
gzip -9nc -- "$MAN8_SRC" >"$STAGE/pam_totp.8.gz"
gzip -9nc -- "$MAN1_SRC" >"$STAGE/pam-totp.1.gz"
chmod 0644 "$STAGE"/*.gz

INSTALLED=()
# Into place by rename: a running sshd that has the old module mapped keeps a valid file.
put() { # mode source destination
    local mode=$1 src=$2 dest=$DESTDIR$3 dir tmp
    dir=$(dirname -- "$dest")
    tmp=$dir/.$(basename -- "$dest").new.$$
    as_root install -d -m 0755 -- "$dir"
    as_root install -m "$mode" -- "$src" "$tmp"
    as_root mv -f -- "$tmp" "$dest"
    if [[ -z $DESTDIR ]] && have restorecon; then
        as_root restorecon -- "$dest" 2>/dev/null || true
    fi
    INSTALLED+=("$dest")
}

say "==> Installing${DESTDIR:+ into $DESTDIR}"
put 0644 "$MODULE_SRC" "$MODULE_DIR/pam_totp.so"
put 0755 "$CLI_SRC" "$BIN_DIR/pam-totp"
# Setuid root, at the path compiled into the CLI whatever PREFIX is (protected storage:
# pam-totp(1)). Harmless until secret= names root-owned storage: it refuses to run then.
put 4755 "$HELPER_SRC" /usr/lib/pam-totp/pam-totp-helper
put 0644 "$STAGE/pam_totp.8.gz" "$MAN_DIR/man8/pam_totp.8.gz"
put 0644 "$STAGE/pam-totp.1.gz" "$MAN_DIR/man1/pam-totp.1.gz"
while IFS= read -r -d '' f; do
    put 0644 "$f" "$DOC_DIR/examples/${f#"$EXAMPLES_SRC"/}"
done < <(find "$EXAMPLES_SRC" -type f -print0 | sort -z)
for f in README.md CHANGELOG.md; do
    if [[ -f $REPO/$f ]]; then
        put 0644 "$REPO/$f" "$DOC_DIR/$f"
    fi
done

say ""
say "Installed:"
printf '    %s\n' "${INSTALLED[@]}"
if [[ -n $DESTDIR ]]; then
    exit 0
fi
cat <<EOF

Next steps (keep a root shell open until a new login has worked):
  1. Each user enrolls, and keeps the recovery codes it prints:
         pam-totp enroll
     (root, for another user: pam-totp --user NAME enroll)
  2. Add pam_totp to a PAM stack, right after a *requisite* password module, e.g. in
     /etc/pam.d/sshd:
         auth  requisite  pam_unix.so
         auth  required   pam_totp.so
     Ready-made stacks: $DOC_DIR/examples/
  3. For sshd, in /etc/ssh/sshd_config.d/pam-totp.conf:
         UsePAM yes
         KbdInteractiveAuthentication yes
         PasswordAuthentication no
         AuthenticationMethods keyboard-interactive     (or publickey,keyboard-interactive)
     then: sshd -t && systemctl reload ssh   (sshd on RHEL-family systems)
  4. Options, return codes, troubleshooting: man pam_totp, man pam-totp
EOF
