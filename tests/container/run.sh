#!/usr/bin/env bash
# Container tests: the Debian package installed in a clean Debian 12 container, with no image
# registry. Makes a Debian 12 base image when it has none (mmdebstrap from the mirror apt
# uses here, then podman import), builds the .deb (packaging/build-deb.sh), builds the test
# image from packaging/Containerfile with DEB_FROM=host, runs the end-to-end suite in it with
# --network none, then builds and runs the example of docs/containers.md. Needs root.
#
#   tests/container/run.sh [--deb FILE] [--base-image REF | --base-tar FILE] [--refresh-base]
#                          [--mirror URL] [--keep-work]
#
#   --deb FILE         test this .deb instead of building one (copied to target/debian/
#                      when it is elsewhere: the build context takes it only from there)
#   --base-image REF   use this Debian 12 image instead of making one: any reference
#                      `podman pull` takes (docker.io/library/debian:12, docker-archive:FILE,
#                      oci-archive:FILE, containers-storage:[overlay@ROOT+RUNROOT]NAME)
#   --base-tar FILE    the rootfs tarball to import (default, and cache, below)
#   --refresh-base     make the cached rootfs tarball anew
#   --mirror URL       the Debian mirror for mmdebstrap (default: the one apt uses here)
#   --keep-work        leave the work dir (logs, podman storage emptied) for a post-mortem
#
# Podman is configured only through this script's flags and the files it writes in its own
# work dir (CONTAINERS_CONF, a private --root/--runroot/--tmpdir): never /etc/containers, never
# the machine's images. Everything it creates is removed on exit, whatever the outcome. The
# one thing kept: the base rootfs tarball, target/container/debian-bookworm-minbase.tar
# (~160 MiB; --refresh-base or rm to renew it).
#
# Environment: PAM_TOTP_CONTAINER_TESTS=auto (default: skip with a "SKIPPED: container tests:
# <reason>" line, exit 77, when podman cannot work here), =require (then that is a failure),
# =skip (skip at once). PAM_TOTP_CT_STORAGE_DRIVER (default overlay; vfs where overlay
# cannot mount). Exit: 0 passed, 1 failed, 2 usage, 77 skipped.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
CT_DIR=$REPO/tests/container
cd "$REPO"

MODE=${PAM_TOTP_CONTAINER_TESTS:-auto}
DRIVER=${PAM_TOTP_CT_STORAGE_DRIVER:-overlay}
CACHE_DIR=$REPO/target/container
DEB="" BASE_IMAGE="" BASE_TAR=$CACHE_DIR/debian-bookworm-minbase.tar
REFRESH_BASE=0 MIRROR="" KEEP_WORK=0

die() {
    printf 'tests/container/run.sh: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '8,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
skip() { # reason: podman cannot work here (a failure when PAM_TOTP_CONTAINER_TESTS=require)
    if [[ $MODE == require ]]; then
        die "container tests required (PAM_TOTP_CONTAINER_TESTS=require) but: $*"
    fi
    echo "SKIPPED: container tests: $*"
    exit 77
}

while (($#)); do
    case $1 in
        --deb) DEB=${2:?--deb FILE}; shift 2 ;;
        --base-image) BASE_IMAGE=${2:?--base-image REF}; shift 2 ;;
        --base-tar) BASE_TAR=${2:?--base-tar FILE}; shift 2 ;;
        --refresh-base) REFRESH_BASE=1; shift ;;
        --mirror) MIRROR=${2:?--mirror URL}; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h | --help) usage ;;
        *) echo "tests/container/run.sh: unknown argument: $1" >&2; usage ;;
    esac
done
case $MODE in
    auto | require) ;;
    skip) skip "PAM_TOTP_CONTAINER_TESTS=skip" ;;
    *) die "PAM_TOTP_CONTAINER_TESTS must be auto, require or skip, not '$MODE'" ;;
esac

[[ $(id -u) -eq 0 ]] || skip "they need root (a private podman storage, mmdebstrap, root in the container)"
for tool in podman runc; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install podman runc)"
done
if [[ -z $BASE_IMAGE && ( $REFRESH_BASE == 1 || ! -f $BASE_TAR ) ]]; then
    command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (apt-get install mmdebstrap), and there is no base image"
fi
if [[ -n $DEB ]]; then
    [[ -f $DEB ]] || die "--deb $DEB: no such file"
    DEB=$(cd -- "$(dirname -- "$DEB")" && pwd)/$(basename -- "$DEB")
fi

# ---------------------------------------------------------------------------------------------
# The work dir, podman's configuration and storage: all of it ours, all of it removed at exit.
# Outside the repository, so that no build context ever walks into the storage.
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/pam-totp-ct.XXXXXX")
RUN_ID=${WORK##*.}
RUN_ID=${RUN_ID,,}
NAME_PREFIX=pam-totp-ct-$RUN_ID
BASE_TAG=localhost/pam-totp-ct/base:$RUN_ID
E2E_TAG=localhost/pam-totp-ct/e2e:$RUN_ID
EXAMPLE_TAG=localhost/pam-totp-ct/example:$RUN_ID
CREATED_CONTAINERS=() CREATED_IMAGES=() BG_PID="" CLEANED=0 CLEAN_FAILED=0
mkdir -p "$WORK"/{storage,run,libpod,tmp,networks,logs}

# podman 4 reads only this file when CONTAINERS_CONF is set. runc, not crun: crun fails on
# hybrid cgroup hosts like these VMs; the default ulimits ask for more than such a VM allows;
# no systemd or journald to rely on.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/libpod/events.log"
tmp_dir = "$WORK/libpod"
[network]
network_config_dir = "$WORK/networks"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
# Temporary files of podman build (buildah) go here too, not to the machine's /var/tmp.
export TMPDIR=$WORK/tmp

# runc's state (its --root) in the work dir too, not in /run/runc.
pm() {
    podman --root "$WORK/storage" --runroot "$WORK/run" --tmpdir "$WORK/libpod" \
        --storage-driver "$DRIVER" --runtime runc --runtime-flag "root=$WORK/runc" \
        --cgroup-manager cgroupfs --events-backend file "$@"
}
# The containers' cgroups go below a parent of this run's own (cgroupfs), removed at exit.
CGROUP_PARENT=/pam-totp-ct-$RUN_ID
remove_cgroups() {
    local d
    for d in /sys/fs/cgroup/*"$CGROUP_PARENT" /sys/fs/cgroup/*/*"$CGROUP_PARENT"; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}
# What podman 4.3 makes outside its --root/--runroot/--tmpdir whatever it is told (the blob
# info cache, the short-name alias lock, netavark's run dir, runc's default state dir): what
# was not there before this run is removed after it, a directory only when it is empty.
SIDE_PATHS=(
    /var/lib/containers /var/lib/containers/cache /var/lib/containers/cache/blob-info-cache-v1.boltdb
    /var/cache/containers /var/cache/containers/short-name-aliases.conf.lock
    /run/containers /run/containers/networks /run/runc
)
SIDE_NEW=()
for p in "${SIDE_PATHS[@]}"; do [[ -e $p ]] || SIDE_NEW+=("$p"); done
remove_side_paths() {
    local i p
    for ((i = ${#SIDE_NEW[@]} - 1; i >= 0; i--)); do
        p=${SIDE_NEW[i]}
        if [[ -d $p && ! -L $p ]]; then rmdir -- "$p" 2>/dev/null; elif [[ -f $p ]]; then rm -f -- "$p"; fi
    done
}

# Runs a long command in the background and waits, so that a signal reaches the trap at once
# instead of after the command (bash defers traps while a foreground command runs).
bg_wait() {
    # <&0: an asynchronous command's stdin would otherwise be /dev/null.
    "$@" <&0 &
    BG_PID=$!
    local rc=0
    wait "$BG_PID" || rc=$?
    BG_PID=""
    return "$rc"
}
bg_wait_shown() { # log command...: bg_wait, the output going to log and shown as it comes
    local log=$1 rc=0 tail_pid
    shift
    "$@" >"$log" 2>&1 &
    BG_PID=$!
    tail -n +1 -f --pid="$BG_PID" "$log" &
    tail_pid=$!
    wait "$BG_PID" || rc=$?
    BG_PID=""
    wait "$tail_pid" || true
    return "$rc"
}

mounts_under_work() { # mount points below $WORK, deepest first
    awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cleanup() {
    ((CLEANED)) && return 0
    CLEANED=1
    set +e
    local t0=$SECONDS i left
    if [[ -n $BG_PID ]]; then
        kill -TERM "$BG_PID" 2>/dev/null
        wait "$BG_PID" 2>/dev/null
    fi
    if ((${#CREATED_CONTAINERS[@]})); then
        pm rm -f --ignore --time 5 "${CREATED_CONTAINERS[@]}" >/dev/null 2>&1
    fi
    # Images by ID, newest first (the test images are built on the base image).
    local ids=()
    for ((i = ${#CREATED_IMAGES[@]} - 1; i >= 0; i--)); do ids+=("${CREATED_IMAGES[i]}"); done
    if ((${#ids[@]})); then pm rmi -f --ignore "${ids[@]}" >/dev/null 2>&1; fi
    # The storage was made empty by this run (mktemp), so what is still in it is ours:
    # intermediate images of an interrupted build, buildah's working containers.
    left=$(pm ps -a --external --format '{{.ID}} {{.Names}}' 2>/dev/null)
    if [[ -n $left ]]; then
        echo "# cleanup: removing build containers left by an interrupted build: $left"
        pm rm -f --all --external >/dev/null 2>&1 || pm rm -f -a >/dev/null 2>&1
    fi
    left=$(pm images -a -q 2>/dev/null)
    if [[ -n $left ]]; then
        echo "# cleanup: removing intermediate images of this run: ${left//$'\n'/ }"
        # shellcheck disable=SC2086
        pm rmi -f $left >/dev/null 2>&1
    fi
    left=$(pm ps -a -q --external 2>/dev/null; pm images -a -q 2>/dev/null)
    if [[ -n $left ]]; then
        echo "# cleanup: FAILED to remove from this run's storage: ${left//$'\n'/ }" >&2
        CLEAN_FAILED=1
    fi
    remove_cgroups
    remove_side_paths
    while read -r m; do
        [[ -z $m ]] || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done < <(mounts_under_work)
    left=$(mounts_under_work)
    if [[ -n $left ]]; then
        echo "# cleanup: FAILED to unmount: $left; the work dir $WORK is left" >&2
        return 1
    fi
    ((CLEAN_FAILED == 0)) || return 1
    echo "# cleanup: no container, image or mount of this run is left"
    if ((KEEP_WORK)); then
        echo "# work dir kept: $WORK"
    else
        rm -rf --one-file-system -- "$WORK"
    fi
    TIMES+=("cleanup $((SECONDS - t0))s")
}
on_exit() {
    local rc=$?
    stage_end
    cleanup || rc=1
    if ((${#TIMES[@]})); then echo "# container tests: stage times: ${TIMES[*]}"; fi
    exit "$rc"
}
TIMES=() STAGE="" STAGE_T0=0
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stage() { # name: ends the previous stage's timer, starts this one
    stage_end
    STAGE=$1 STAGE_T0=$SECONDS
    echo "==> container tests: $1"
}
stage_end() {
    [[ -n $STAGE ]] && TIMES+=("$STAGE $((SECONDS - STAGE_T0))s")
    STAGE=""
}

# ---------------------------------------------------------------------------------------------
# Can podman work here at all?
# ---------------------------------------------------------------------------------------------
stage preflight
if ! pm info >"$WORK/logs/info.log" 2>&1; then
    skip "podman info fails: $(grep -m1 -i 'error' "$WORK/logs/info.log" || tail -n1 "$WORK/logs/info.log")"
fi

# ---------------------------------------------------------------------------------------------
# The base image: Debian 12, minbase, from the mirror apt uses on this machine.
# ---------------------------------------------------------------------------------------------
# "URI SUITE" of each enabled deb entry in the one-line and deb822 apt sources.
apt_entries() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk '$1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            print $i, $(i + 1)
        }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            types = ""; uris = ""; suites = ""; enabled = "yes"
            for (k = 1; k <= NF; k++) {
                if ($k ~ /^#/) continue
                key = tolower($k); sub(/:.*/, "", key)
                val = $k; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = tolower(val)
            }
            if (enabled == "no" || (" " types " ") !~ / deb /) next
            nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
            for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) print u[a], s[b]
        }' "$f"
    done
}
# The sources for the base image: bookworm and bookworm-updates from the host's Debian
# archive mirror, bookworm-security from its security mirror (whatever release the host runs).
base_sources() {
    local archive=$MIRROR security="" other="" uri suite
    # A URI on debian.org first, else one ending in /debian (third-party repositories for
    # Debian often end so too, hence second).
    while read -r uri suite; do
        case $suite in
            *-security) [[ -n $security ]] || security=$uri ;;
            *-updates | *-backports) ;;
            *) if [[ -z $archive && $uri == *debian.org/* ]]; then
                archive=$uri
            elif [[ -z $other && $uri =~ /debian/?$ ]]; then
                other=$uri
            fi ;;
        esac
    done < <(apt_entries)
    archive=${archive:-$other}
    [[ -n $archive ]] || die "no Debian mirror in /etc/apt/sources.list(.d); give one with --mirror URL"
    echo "deb $archive bookworm main"
    echo "deb $archive bookworm-updates main"
    [[ -z $security ]] || echo "deb $security bookworm-security main"
}

stage base-image
if [[ -n $BASE_IMAGE ]]; then
    bg_wait pm pull -q "$BASE_IMAGE" >"$WORK/base.id" || die "podman pull $BASE_IMAGE failed"
    base_id=$(tail -n1 "$WORK/base.id")
    CREATED_IMAGES+=("$base_id")
    pm tag "$base_id" "$BASE_TAG"
else
    if [[ $REFRESH_BASE == 1 || ! -f $BASE_TAR ]]; then
        mapfile -t sources < <(base_sources)
        includes=()
        if printf '%s\n' "${sources[@]}" | grep -q ' https://'; then includes=(--include=ca-certificates); fi
        echo "# making $BASE_TAR with mmdebstrap --variant=minbase from: ${sources[*]}"
        mkdir -p "$CACHE_DIR"
        # Written beside, then renamed: a half-made tarball is never taken for the cache.
        partial=$BASE_TAR.partial-$RUN_ID.tar
        bg_wait mmdebstrap --quiet --mode=root --variant=minbase --format=tar "${includes[@]}" \
            bookworm "$partial" "${sources[@]}" </dev/null >"$WORK/logs/mmdebstrap.log" 2>&1 ||
            { rm -f -- "$partial"; tail -n 20 "$WORK/logs/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
        mv -f -- "$partial" "$BASE_TAR"
    fi
    echo "# importing $BASE_TAR ($(du -m "$BASE_TAR" | cut -f1) MiB)"
    base_id=$(pm import -q --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_TAG") || die "podman import $BASE_TAR failed"
    CREATED_IMAGES+=("$base_id")
fi

# Can podman run a container here? (runtime, cgroups, mounts, namespaces)
smoke=$NAME_PREFIX-smoke
CREATED_CONTAINERS+=("$smoke")
if ! pm run --cgroup-parent "$CGROUP_PARENT" --rm --name "$smoke" --network none "$BASE_TAG" true >"$WORK/logs/smoke.log" 2>&1; then
    skip "podman cannot run a container here: $(grep -m1 -i 'error' "$WORK/logs/smoke.log" || tail -n1 "$WORK/logs/smoke.log")"
fi

# ---------------------------------------------------------------------------------------------
# The .deb: built here, or given. The build context is the repository, as the README's
# commands have it; the ignore file lets exactly target/debian/pam-totp_*.deb in.
# ---------------------------------------------------------------------------------------------
stage deb
if [[ -z $DEB ]]; then
    packaging/build-deb.sh >"$WORK/logs/build-deb.log" 2>&1 ||
        { tail -n 30 "$WORK/logs/build-deb.log" >&2; die "packaging/build-deb.sh failed"; }
    DEB=$(sed -n 's/^==> //p' "$WORK/logs/build-deb.log" | tail -n1)
    [[ -f $DEB ]] || die "packaging/build-deb.sh did not say which .deb it made"
fi
deb_name=$(basename -- "$DEB")
[[ $deb_name == pam-totp_*.deb ]] || die "--deb $DEB: the file must be named pam-totp_<version>_<arch>.deb"
if [[ $DEB != "$REPO/target/debian/$deb_name" ]]; then
    # A .deb from elsewhere goes where the ignore file lets it into the context.
    if [[ -e $REPO/target/debian/$deb_name ]] && ! cmp -s -- "$DEB" "$REPO/target/debian/$deb_name"; then
        die "target/debian/$deb_name exists and differs from $DEB: move one of them away"
    fi
    mkdir -p "$REPO/target/debian"
    cp -- "$DEB" "$REPO/target/debian/$deb_name"
fi
echo "# testing $DEB"

# ---------------------------------------------------------------------------------------------
# The test image and the end-to-end suite in it, without a network.
# ---------------------------------------------------------------------------------------------
# The build's RUN steps share the host's network: apt-get in them reaches the Debian mirror.
build() { # tag iidfile logfile podman-build-args...
    local tag=$1 iidfile=$2 log=$3 rc=0
    shift 3
    bg_wait pm build --pull=never --network host --runtime-flag "root=$WORK/runc" --iidfile "$iidfile" -t "$tag" "$@" \
        >"$log" 2>&1 || rc=$?
    # The stages' images ("--> ID"), then the image itself. (Not --layers=false: buildah 1.28
    # then fails removing the same intermediate image twice, for the alias stage "deb".)
    mapfile -t -O "${#CREATED_IMAGES[@]}" CREATED_IMAGES < <(sed -n 's/^--> \([0-9a-f]\{11,\}\)$/\1/p' "$log")
    if [[ -s $iidfile ]]; then CREATED_IMAGES+=("$(cat "$iidfile")"); fi
    if ((rc)); then
        tail -n 30 "$log" >&2
        die "podman build of $tag failed (log above)"
    fi
}

stage test-image
build "$E2E_TAG" "$WORK/e2e.iid" "$WORK/logs/build-e2e.log" \
    -f packaging/Containerfile --ignorefile packaging/Containerfile.dockerignore \
    --build-arg DEB_FROM=host --build-arg "DEB=target/debian/$deb_name" \
    --build-arg "DEBIAN_IMAGE=$BASE_TAG" "$REPO"

stage e2e
e2e=$NAME_PREFIX-e2e
CREATED_CONTAINERS+=("$e2e")
rc=0
bg_wait_shown "$WORK/logs/e2e.log" \
    pm run --cgroup-parent "$CGROUP_PARENT" --rm --init --network none --timeout 900 --name "$e2e" "$E2E_TAG" || rc=$?
last=$(tail -n1 "$WORK/logs/e2e.log")
if ((rc)) || [[ ! $last =~ ^[0-9]+\ passed,\ 0\ failed$ ]] || [[ $last == "0 passed, 0 failed" ]]; then
    die "the end-to-end suite failed in the container (exit $rc, last line: $last)"
fi
echo "# e2e in the container: $last"

# ---------------------------------------------------------------------------------------------
# The guide's example (docs/containers.md), built from the file the guide shows.
# ---------------------------------------------------------------------------------------------
stage example
# The guide must show exactly the file that is tested here.
awk '/^<!-- example Containerfile: tests\/container\/example\/Containerfile -->$/ { on = 1; next }
     on && /^```/ { if (fence++) exit; next }
     on { print }' docs/containers.md >"$WORK/guide-Containerfile"
cmp -s "$WORK/guide-Containerfile" "$CT_DIR/example/Containerfile" ||
    die "docs/containers.md does not show tests/container/example/Containerfile as it is: $(diff "$WORK/guide-Containerfile" "$CT_DIR/example/Containerfile" | head -n 5)"
mkdir -p "$WORK/example"
cp -- "$CT_DIR/example/Containerfile" "$REPO/target/debian/$deb_name" "$WORK/example/"
build "$EXAMPLE_TAG" "$WORK/example.iid" "$WORK/logs/build-example.log" \
    --build-arg "BASE_IMAGE=$BASE_TAG" "$WORK/example"
# The guide's own command: the image's default command logs alice in.
demo=$NAME_PREFIX-example
CREATED_CONTAINERS+=("$demo" "$demo-checks")
out=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none --timeout 120 --name "$demo" "$EXAMPLE_TAG" 2>&1) ||
    die "the guide's login failed: $out"
grep -q 'successfully authenticated' <<<"$out" || die "the guide's login did not say it succeeded: $out"
echo "ok - the guide's login: $(tail -n1 <<<"$out")"
bg_wait pm run --cgroup-parent "$CGROUP_PARENT" --rm -i --network none --timeout 120 --name "$demo-checks" "$EXAMPLE_TAG" \
    bash -s <"$CT_DIR/example/check-login.sh" || die "the guide's example failed its checks (above)"
stage_end
echo "container tests: passed"
