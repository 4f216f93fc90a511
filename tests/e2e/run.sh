#!/usr/bin/env bash
# End-to-end tests for pam_totp.so and the pam-totp CLI, through the real OpenSSH sshd and ssh
# client and a real sudo, with real users. Needs root; see tests/e2e/README.md.
#
#   sudo tests/e2e/run.sh                          # the product (installed module, pam-totp on PATH)
#   PAM_TOTP_MODULE=/abs/libpam_totp.so PAM_TOTP_CLI=/abs/pam-totp tests/e2e/run.sh
#   E2E_PLUMBING_ONLY=1 tests/e2e/run.sh           # harness self-test with a stand-in second factor
#
# Everything it creates carries the prefix "pamtotp-e2e" (files, PAM services) or "pte2e_"
# (users), and is removed on exit, whatever the outcome. It never edits a system file.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

E2E_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: end-to-end tests need root"
    exit 0
fi

# shellcheck source=lib/framework.sh
. "$E2E_DIR/lib/framework.sh"

PLUMBING=${E2E_PLUMBING_ONLY:-0}
if [[ $PLUMBING != 0 && $PLUMBING != 1 ]]; then
    echo "E2E_PLUMBING_ONLY must be 0 or 1, not '$PLUMBING'" >&2
    exit 2
fi

# ------------------------------------------------------------------------------------------------
# Names. Everything this script creates on the system is one of these.
# ------------------------------------------------------------------------------------------------
U_ALICE=pte2e_alice # ssh, password + code: wrong password, wrong code, right code, replay
U_BOB=pte2e_bob     # ssh, public key + code (AuthenticationMethods publickey,keyboard-interactive)
U_CAROL=pte2e_carol # ssh, password + recovery code (single use)
U_DAVE=pte2e_dave   # sudo -S, password + code
U_PROT=pte2e_prot   # protected storage (protected.sh): self-service through the setuid helper
U_OTHER=pte2e_other # protected storage: a home enrollment moved by `protect`
U_ERIN=pte2e_erin   # the real passwd: a code before the password changes (pam_sm_chauthtok)
ALL_USERS=("$U_ALICE" "$U_BOB" "$U_CAROL" "$U_DAVE" "$U_PROT" "$U_OTHER" "$U_ERIN")

SVC_SSH_PW=pamtotp-e2e-sshd      # PAM service of the password(+code) sshd
SVC_SSH_KEY=pamtotp-e2e-sshd-key # PAM service of the key+code sshd
SVC_SUDO=pamtotp-e2e-sudo        # PAM service sudo uses for U_DAVE (sudoers pam_service)
ALL_SERVICES=("$SVC_SSH_PW" "$SVC_SSH_KEY" "$SVC_SUDO")
SUDOERS_DROPIN=/etc/sudoers.d/pamtotp-e2e
LOCK_FILE=/run/pamtotp-e2e.lock
SSHD_BIN=/usr/sbin/sshd
PRIVSEP_DIR=/run/sshd # Debian's compiled-in privilege-separation chroot; sshd refuses to run without it
PAM_DIRS=(/lib/x86_64-linux-gnu/security /usr/lib/x86_64-linux-gnu/security /usr/lib64/security)

# State for cleanup (filled as things are created).
WORK=""
CREATED_USERS=()
CREATED_FILES=()
CREATED_DIRS=()
SSHD_PIDS=()
CREATED_PRIVSEP_DIR=0
CLEANED=0
LOCK_HELD=0
declare -A SSHD_PORT=() PASSWORD=()

note() { printf '# %s\n' "$*"; }

find_pam_module() { # name -> absolute path of a system PAM module
    local d
    for d in "${PAM_DIRS[@]}"; do
        if [[ -f $d/$1 ]]; then
            echo "$d/$1"
            return 0
        fi
    done
    return 1
}

# ================================================================================================
# THE PRODUCT INTERFACE: the one place that knows how the second factor is wired in.
#
#   second_factor_line   the PAM auth line of the second factor (placed after the password module)
#   enroll_json USER     enrolls USER (as root) and prints the CLI's JSON object on stdout
#   CODE_PROMPT          (a substring of) the second factor's prompt, for the askpass helper
#   HAS_RECOVERY_CODES   whether the recovery-code cases apply
#
# Normal mode uses the real module and CLI. E2E_PLUMBING_ONLY=1 swaps in a stand-in that is
# NOT the product: pam_oath.so (Debian's libpam-oath, a real PAM module asking a second,
# TOTP, question) and an "enroll" that writes its users file. It exists only to prove the
# harness (sshd, ssh + askpass, sudo -S, users, cleanup); it has no recovery codes.
# ================================================================================================
if [[ $PLUMBING == 1 ]]; then
    STANDIN_MODULE=$(find_pam_module pam_oath.so) ||
        harness_fail "E2E_PLUMBING_ONLY=1 needs pam_oath.so: apt-get install libpam-oath"
    MODE_DESC="PLUMBING ONLY: stand-in second factor $STANDIN_MODULE (libpam-oath), not the product"
    CODE_PROMPT="One-time password (OATH) for"
    HAS_RECOVERY_CODES=0
    second_factor_line() {
        echo "auth     required   $STANDIN_MODULE usersfile=$WORK/users.oath window=0 digits=6"
    }
    enroll_json() { standin_enroll_json "$1"; }
else
    if [[ -z ${PAM_TOTP_MODULE:-} ]]; then
        PAM_TOTP_MODULE=$(find_pam_module pam_totp.so) ||
            harness_fail "pam_totp.so is not installed in ${PAM_DIRS[*]}; set PAM_TOTP_MODULE=/absolute/path/to/pam_totp.so"
    fi
    [[ $PAM_TOTP_MODULE == /* ]] || harness_fail "PAM_TOTP_MODULE must be an absolute path: $PAM_TOTP_MODULE"
    [[ -f $PAM_TOTP_MODULE && -r $PAM_TOTP_MODULE ]] || harness_fail "PAM_TOTP_MODULE is not a readable file: $PAM_TOTP_MODULE"
    PAM_TOTP_CLI=$(command -v -- "${PAM_TOTP_CLI:-pam-totp}") ||
        harness_fail "pam-totp CLI not found: put it on PATH or set PAM_TOTP_CLI=/path/to/pam-totp"
    MODE_DESC="product: module $PAM_TOTP_MODULE, CLI $PAM_TOTP_CLI"
    CODE_PROMPT="Verification code:"
    HAS_RECOVERY_CODES=1
    second_factor_line() {
        echo "auth     required   $PAM_TOTP_MODULE"
    }
    enroll_json() {
        "$PAM_TOTP_CLI" enroll --user "$1" --no-confirm --json
    }
fi

# The plumbing stand-in's enrollment: same JSON shape as the CLI's, secret registered with pam_oath.
standin_enroll_json() {
    local user=$1 hex b32 rc codes=()
    hex=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    b32=$(printf '%s' "$hex" | xxd -r -p | base32 -w0 | tr -d '=')
    (
        umask 077
        printf 'HOTP/T30/6\t%s\t-\t%s\n' "$user" "$hex" >>"$WORK/users.oath"
    )
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        rc=$(head -c 15 /dev/urandom | base32 -w0 | cut -c1-20)
        codes+=("${rc:0:4}-${rc:4:4}-${rc:8:4}-${rc:12:4}-${rc:16:4}")
    done
    jq -cn --arg user "$user" --arg secret "$b32" \
        --arg uri "otpauth://totp/pamtotp-e2e:$user?secret=$b32&issuer=pamtotp-e2e&algorithm=SHA1&digits=6&period=30" \
        '{user: $user, secret: $secret, otpauth_uri: $uri, recovery_codes: $ARGS.positional}' \
        --args "${codes[@]}"
}
# ================================================================================================

# ------------------------------------------------------------------------------------------------
# PAM stacks. Written to /etc/pam.d/<service> (our own service names only) and switched between
# phases: PAM reads the file again at every pam_start, so sshd needs no restart.
# ------------------------------------------------------------------------------------------------
# pam_exec needs seteuid: without it the probe runs with the caller's REAL uid, which under sudo
# is the invoking user's, who cannot write to the root-only work dir (and "quiet" hides that).
stack_probe() { # records which service name is really used, then denies everything
    cat <<EOF
# $1: written by tests/e2e/run.sh (service-name probe); removed when it exits
auth     optional   pam_exec.so quiet seteuid $WORK/probe.sh
auth     requisite  pam_deny.so
account  required   pam_deny.so
session  required   pam_deny.so
password required   pam_deny.so
EOF
}
stack_password_only() { # baseline: the harness without the second factor
    cat <<EOF
# $1: written by tests/e2e/run.sh (baseline, password only); removed when it exits
auth     requisite  pam_unix.so
account  required   pam_unix.so
session  required   pam_unix.so
password required   pam_deny.so
EOF
}
stack_password_and_code() {
    cat <<EOF
# $1: written by tests/e2e/run.sh (password + second factor); removed when it exits
auth     requisite  pam_unix.so
$(second_factor_line)
account  required   pam_unix.so
session  required   pam_unix.so
password required   pam_deny.so
EOF
}
stack_code_only() { # for sshd's "publickey,keyboard-interactive": the key is the first factor
    cat <<EOF
# $1: written by tests/e2e/run.sh (second factor after a public key); removed when it exits
$(second_factor_line)
account  required   pam_unix.so
session  required   pam_unix.so
password required   pam_deny.so
EOF
}

install_pam_service() { # service stack-function
    local svc=$1 dest=/etc/pam.d/$1
    "$2" "$svc" >"$WORK/pam.$svc"
    if [[ ! " ${CREATED_FILES[*]} " == *" $dest "* ]]; then CREATED_FILES+=("$dest"); fi
    install -m 0644 -o root -g root "$WORK/pam.$svc" "$dest"
}

# ------------------------------------------------------------------------------------------------
# Cleanup: runs on every exit path (trap), stops by PID what we started, removes what we created.
# ------------------------------------------------------------------------------------------------
stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "# cleanup: pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup_all() {
    [[ $CLEANED == 1 ]] && return 0
    CLEANED=1
    local pid kid u f errexit=0
    if [[ $- == *e* ]]; then errexit=1; fi
    set +e
    # 1. our sshd listeners, and any per-connection sshd children they still have (by PID).
    for pid in "${SSHD_PIDS[@]}"; do
        for kid in $(pgrep -P "$pid" 2>/dev/null); do stop_pid "$kid"; done
        stop_pid "$pid"
        wait "$pid" 2>/dev/null
    done
    # 2. anything still running as one of our users (a lingering session), by PID.
    for u in "${CREATED_USERS[@]}"; do
        if id -u "$u" >/dev/null 2>&1; then
            for pid in $(pgrep -u "$u" 2>/dev/null); do stop_pid "$pid"; done
        fi
    done
    # 3. our files under /etc.
    for f in "${CREATED_FILES[@]}"; do rm -f -- "$f"; done
    for f in "${CREATED_DIRS[@]}"; do rm -rf -- "$f"; done
    # 4. our users, their homes, mail spools, groups, sudo timestamps.
    for u in "${CREATED_USERS[@]}"; do
        if id -u "$u" >/dev/null 2>&1; then
            userdel -r "$u" >/dev/null 2>&1 || userdel -r -f "$u" >/dev/null 2>&1
        fi
        if getent group "$u" >/dev/null; then groupdel "$u" >/dev/null 2>&1; fi
        rm -f -- "/run/sudo/ts/$u"
    done
    # 5. the privilege-separation directory, only if we made it (it is empty).
    if [[ $CREATED_PRIVSEP_DIR == 1 ]]; then rmdir -- "$PRIVSEP_DIR" 2>/dev/null; fi
    # 6. logs out (if asked), then the work dir (host key, sshd configs, symlinks, logs).
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ -n ${E2E_LOG_DIR:-} ]]; then
            mkdir -p -- "$E2E_LOG_DIR" && cp -r -- "$WORK"/*.log "$WORK"/cases "$WORK"/ssh "$WORK"/sudo \
                "$WORK"/*.conf "$WORK"/pam.* "$E2E_LOG_DIR"/ 2>/dev/null
        fi
        rm -rf -- "$WORK"
    fi
    if [[ $LOCK_HELD == 1 ]]; then
        rm -f -- "$LOCK_FILE"
        exec 9>&-
    fi
    if [[ $errexit == 1 ]]; then set -e; fi
    return 0
}

# What must be gone after cleanup. Prints what is left; fails if anything is.
verify_clean() {
    local left=0 u pid f
    for u in "${ALL_USERS[@]}"; do
        if getent passwd "$u" >/dev/null; then echo "user $u still exists"; left=1; fi
        if getent group "$u" >/dev/null; then echo "group $u still exists"; left=1; fi
        if [[ -e /home/$u ]]; then echo "/home/$u still exists"; left=1; fi
    done
    for f in /etc/pam.d/pamtotp-e2e* /etc/sudoers.d/pamtotp-e2e* "${CREATED_FILES[@]}" "${CREATED_DIRS[@]}"; do
        if [[ -e $f ]]; then echo "$f still exists"; left=1; fi
    done
    for pid in "${SSHD_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then echo "sshd pid $pid still running"; left=1; fi
    done
    if [[ -n $WORK && -e $WORK ]]; then echo "$WORK still exists"; left=1; fi
    if [[ $CREATED_PRIVSEP_DIR == 1 && -e $PRIVSEP_DIR ]]; then echo "$PRIVSEP_DIR still exists"; left=1; fi
    [[ $left == 0 ]] && echo "nothing left: users, homes, /etc/pam.d, /etc/sudoers.d, sshd, work dir"
    [[ $left == 0 ]]
}

# Cleanup + report, for harness_fail (framework) and for on_exit.
e2e_cleanup_hook() {
    local was_cleaned=$CLEANED
    cleanup_all
    if [[ $was_cleaned == 0 ]]; then verify_clean 2>&1 | sed 's/^/# cleanup: /' || true; fi
}

# Any exit that is not the normal end (set -e abort, signal) comes through here.
on_exit() {
    local rc=$?
    trap - EXIT INT TERM ERR
    set +e
    if [[ $E2E_SUMMARY_DONE != 1 ]]; then
        echo "# harness stopped early (exit $rc, near line ${E2E_ERR_LINE:-?}); cleaning up"
        e2e_cleanup_hook
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("harness aborted (exit $rc, near line ${E2E_ERR_LINE:-?})")
        summary || true
        [[ $rc -ne 0 ]] || rc=1
    fi
    exit "$rc"
}
E2E_ERR_LINE=""

# ------------------------------------------------------------------------------------------------
# Prerequisites (before anything is created)
# ------------------------------------------------------------------------------------------------
missing=()
for c in useradd userdel groupdel chpasswd ssh ssh-keygen sudo visudo oathtool jq setpriv setsid \
    timeout ss flock pgrep xxd base32 od install passwd unshare mount perl; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[[ -x $SSHD_BIN ]] || missing+=("$SSHD_BIN")
if [[ ${#missing[@]} -gt 0 ]]; then
    harness_fail "missing programs: ${missing[*]} (apt-get install openssh-server openssh-client sudo oathtool passwd jq util-linux procps iproute2 xxd)"
fi
for m in pam_unix.so pam_exec.so pam_deny.so; do
    find_pam_module "$m" >/dev/null || harness_fail "PAM module $m not found in ${PAM_DIRS[*]} (libpam-modules)"
done
getent passwd sshd >/dev/null || harness_fail "the sshd privilege-separation user 'sshd' does not exist (openssh-server not set up)"
grep -Eq '^[#@]includedir[[:space:]]+/etc/sudoers\.d' /etc/sudoers ||
    harness_fail "/etc/sudoers does not include /etc/sudoers.d, so the drop-in would be ignored"

exec 9>>"$LOCK_FILE"
flock -n 9 || harness_fail "another run holds $LOCK_FILE"
LOCK_HELD=1

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'E2E_ERR_LINE=$LINENO' ERR

note "mode: $MODE_DESC"
note "code prompt: '$CODE_PROMPT'"

WORK=$(mktemp -d /tmp/pamtotp-e2e.XXXXXX)
chmod 0700 "$WORK"
mkdir -p "$WORK/cases" "$WORK/ssh" "$WORK/sudo" "$WORK/enroll" "$WORK/sbin" "$WORK/hostkey"
E2E_CASE_LOG_DIR=$WORK/cases
ASKPASS=$WORK/askpass
install -m 0755 "$E2E_DIR/lib/askpass.sh" "$ASKPASS" # own copy: works even if git lost the x bit

# Leftovers of an earlier run that was killed hard (we hold the lock, so no run is active).
for u in "${ALL_USERS[@]}"; do
    if getent passwd "$u" >/dev/null; then
        note "removing leftover user $u from an earlier run"
        for pid in $(pgrep -u "$u" 2>/dev/null); do stop_pid "$pid"; done
        userdel -r "$u" >/dev/null 2>&1 || true
    fi
    if getent group "$u" >/dev/null; then groupdel "$u" >/dev/null 2>&1 || true; fi
done
for f in /etc/pam.d/pamtotp-e2e* /etc/sudoers.d/pamtotp-e2e*; do
    if [[ -e $f ]]; then
        note "removing leftover $f from an earlier run"
        rm -f -- "$f"
    fi
done

# ------------------------------------------------------------------------------------------------
# Users
# ------------------------------------------------------------------------------------------------
random_password() { printf 'E2e-%s' "$(head -c 12 /dev/urandom | base64 | tr '+/' 'xy')"; }

for u in "${ALL_USERS[@]}"; do
    CREATED_USERS+=("$u") # before useradd: cleanup checks existence itself
    useradd --create-home --shell /bin/bash --user-group --comment "pam-totp e2e test user" "$u" ||
        harness_fail "useradd $u"
    PASSWORD[$u]=$(random_password)
    printf '%s:%s\n' "$u" "${PASSWORD[$u]}" | chpasswd || harness_fail "chpasswd $u"
done
note "users: ${ALL_USERS[*]}"

# Bob logs in with a key first.
ssh-keygen -q -t ed25519 -N '' -C "pamtotp-e2e-$U_BOB" -f "$WORK/bob_id_ed25519"
install -d -m 0700 -o "$U_BOB" -g "$U_BOB" "/home/$U_BOB/.ssh"
install -m 0600 -o "$U_BOB" -g "$U_BOB" "$WORK/bob_id_ed25519.pub" "/home/$U_BOB/.ssh/authorized_keys"

# Service-name probe, run by pam_exec (as root) inside the PAM stack.
cat >"$WORK/probe.sh" <<EOF
#!/bin/sh
printf 'service=%s user=%s type=%s\n' "\$PAM_SERVICE" "\$PAM_USER" "\$PAM_TYPE" >>"$WORK/probe.log"
exit 0
EOF
chmod 0755 "$WORK/probe.sh"
: >"$WORK/probe.log"

# ------------------------------------------------------------------------------------------------
# sshd: the real daemon, run through a symlink named after our PAM service.
# OpenSSH <= 9.7 uses its program name (basename of argv[0]) as PAM service name, and re-execs
# itself with argv[0], which must be absolute; 9.8+ has PAMServiceName instead (used if accepted).
# ------------------------------------------------------------------------------------------------
if [[ ! -d $PRIVSEP_DIR ]]; then
    install -d -m 0755 -o root -g root "$PRIVSEP_DIR"
    CREATED_PRIVSEP_DIR=1
    note "created missing $PRIVSEP_DIR (removed at exit)"
fi
ssh-keygen -q -t ed25519 -N '' -C pamtotp-e2e-hostkey -f "$WORK/hostkey/ssh_host_ed25519_key"

SSHD_HAS_PAMSERVICENAME=0
{
    echo "HostKey $WORK/hostkey/ssh_host_ed25519_key"
    echo "PAMServiceName pamtotp-e2e-featuretest"
} >"$WORK/featuretest.conf"
if "$SSHD_BIN" -t -f "$WORK/featuretest.conf" >/dev/null 2>&1; then SSHD_HAS_PAMSERVICENAME=1; fi
rm -f "$WORK/featuretest.conf"
if [[ $SSHD_HAS_PAMSERVICENAME == 1 ]]; then
    note "sshd: PAM service set with PAMServiceName (OpenSSH >= 9.8)"
else
    note "sshd: PAM service = program name (no PAMServiceName in this OpenSSH): run via symlinks"
fi

write_sshd_config() { # service port methods pubkey(yes|no)
    cat <<EOF
# $1: sshd config written by tests/e2e/run.sh; only for its own test users
Port $2
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $WORK/hostkey/ssh_host_ed25519_key
PidFile $WORK/$1.pid
LogLevel VERBOSE
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PermitEmptyPasswords no
PubkeyAuthentication $4
AuthorizedKeysFile .ssh/authorized_keys
AuthenticationMethods $3
HostbasedAuthentication no
PermitRootLogin no
AllowUsers ${ALL_USERS[*]}
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
PermitTunnel no
PermitUserEnvironment no
LoginGraceTime 30
MaxAuthTries 6
MaxStartups 10:30:60
EOF
    if [[ $SSHD_HAS_PAMSERVICENAME == 1 ]]; then echo "PAMServiceName $1"; fi
}

pick_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Hltn "sport = :$p") ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

start_sshd() { # service methods pubkey(yes|no)
    local svc=$1 methods=$2 pubkey=$3
    local link=$WORK/sbin/$svc cfg=$WORK/$svc.conf log=$WORK/$svc.log
    local port pid
    ln -sf "$SSHD_BIN" "$link" # absolute path: sshd re-execs itself through argv[0]
    for _ in 1 2 3 4 5; do
        port=$(pick_port) || harness_fail "no free port on 127.0.0.1"
        write_sshd_config "$svc" "$port" "$methods" "$pubkey" >"$cfg"
        "$link" -t -f "$cfg" >"$log" 2>&1 || harness_fail "sshd -t rejects $cfg" "$log"
        "$link" -D -e -f "$cfg" >>"$log" 2>&1 &
        pid=$!
        SSHD_PIDS+=("$pid")
        for _ in $(seq 100); do
            if grep -q "Server listening on 127.0.0.1 port $port" "$log"; then break; fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && grep -q "Server listening on 127.0.0.1 port $port" "$log"; then
            for _ in $(seq 50); do
                [[ -s $WORK/$svc.pid ]] && break
                sleep 0.1
            done
            [[ $(cat "$WORK/$svc.pid" 2>/dev/null) == "$pid" ]] ||
                harness_fail "sshd $svc: PidFile $WORK/$svc.pid does not hold its pid $pid" "$log"
            SSHD_PORT[$svc]=$port
            note "sshd for PAM service $svc: pid $pid, 127.0.0.1:$port, AuthenticationMethods $methods"
            return 0
        fi
        wait "$pid" 2>/dev/null || true
        if grep -qi "address already in use" "$log"; then continue; fi
        harness_fail "sshd $svc did not start" "$log"
    done
    harness_fail "sshd $svc: no port after 5 tries" "$log"
}

# The PAM files must exist before the first connection: start with the deny-all probe stacks.
for svc in "${ALL_SERVICES[@]}"; do install_pam_service "$svc" stack_probe; done

start_sshd "$SVC_SSH_PW" keyboard-interactive no
start_sshd "$SVC_SSH_KEY" publickey,keyboard-interactive yes

# ------------------------------------------------------------------------------------------------
# sudo: a drop-in giving U_DAVE its own PAM service and /usr/bin/id as root.
# ------------------------------------------------------------------------------------------------
cat >"$WORK/sudoers" <<EOF
# pamtotp-e2e: written by tests/e2e/run.sh; removed when it exits
Defaults:$U_DAVE pam_service=$SVC_SUDO
Defaults:$U_DAVE passwd_tries=1, timestamp_timeout=0, lecture=never
$U_DAVE ALL=(root) /usr/bin/id
EOF
visudo -cf "$WORK/sudoers" >"$WORK/visudo.log" 2>&1 || harness_fail "visudo -cf rejects the drop-in" "$WORK/visudo.log"
CREATED_FILES+=("$SUDOERS_DROPIN")
install -m 0440 -o root -g root "$WORK/sudoers" "$SUDOERS_DROPIN"
visudo -c >"$WORK/visudo.log" 2>&1 || harness_fail "visudo -c fails with the drop-in installed" "$WORK/visudo.log"

# ------------------------------------------------------------------------------------------------
# Clients
# ------------------------------------------------------------------------------------------------

# ssh_try SERVER USER PASSWORD CODE TAG
#   SERVER: pw (keyboard-interactive only), key (publickey then keyboard-interactive, with Bob's
#   key), nokey (the key server, without offering a key). PASSWORD/CODE answer the prompts ("" =
#   no answer). Output in $WORK/ssh/TAG.{out,err,prompts}. Returns ssh's exit status.
ssh_try() {
    local server=$1 user=$2 password=$3 code=$4 tag=$5
    local base=$WORK/ssh/$tag port rc=0
    # shellcheck disable=SC2054 # the commas are inside option values
    local opts=(-F none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
        -o NumberOfPasswordPrompts=1 -o IdentitiesOnly=yes -o KbdInteractiveAuthentication=yes)
    # shellcheck disable=SC2054
    case $server in
    pw)
        port=${SSHD_PORT[$SVC_SSH_PW]}
        opts+=(-o PubkeyAuthentication=no -o PreferredAuthentications=keyboard-interactive)
        ;;
    key)
        port=${SSHD_PORT[$SVC_SSH_KEY]}
        opts+=(-o PubkeyAuthentication=yes -o PreferredAuthentications=publickey,keyboard-interactive
            -i "$WORK/bob_id_ed25519")
        ;;
    nokey)
        port=${SSHD_PORT[$SVC_SSH_KEY]}
        opts+=(-o PubkeyAuthentication=no -o PreferredAuthentications=publickey,keyboard-interactive)
        ;;
    *) fail "unknown server $server" ;;
    esac
    : >"$base.prompts"
    # shellcheck disable=SC2016 # expanded by the remote shell
    # SSH_TRY_SHELL=1: a pty and a login shell (ssh -tt, no command; the shell reads the
    # command from stdin), as an interactive user gets; otherwise `ssh host cmd`.
    local command=('echo "LOGIN-OK:$(id -un)"') input=/dev/null
    if [[ ${SSH_TRY_SHELL:-0} == 1 ]]; then
        opts+=(-tt)
        command=()
        # shellcheck disable=SC2016 # expanded by the remote shell
        printf '%s\n' 'echo "LOGIN-OK:$(id -un)"; exit' >"$base.in"
        input=$base.in
    fi
    # No terminal at all (setsid: no controlling tty): the askpass helper is the only way ssh
    # can get answers. BatchMode must stay off: it disables askpass.
    # shellcheck disable=SC2016 # the remote command is expanded by the remote shell
    timeout 60 setsid -w env -u SSH_AUTH_SOCK \
        SSH_ASKPASS="$ASKPASS" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        E2E_ASKPASS_LOG="$base.prompts" E2E_CODE_PROMPT="$CODE_PROMPT" \
        E2E_PASSWORD="$password" E2E_CODE="$code" \
        ssh "${opts[@]}" -p "$port" -l "$user" 127.0.0.1 "${command[@]}" \
        <"$input" >"$base.out" 2>"$base.err" || rc=$?
    echo "ssh $server $user -> exit $rc"
    echo "--- prompts seen:"
    cat "$base.prompts"
    echo "--- stdout:"
    cat "$base.out"
    echo "--- stderr:"
    cat "$base.err"
    return "$rc"
}

# Expectations about which prompts the askpass helper saw.
assert_prompts() { # prompts-file password(yes|no|any) code(yes|no|any)
    case $2 in
    yes) assert_file_contains "$1" "Password:" "prompts seen" ;;
    no) assert_file_lacks "$1" "Password:" "prompts seen" ;;
    esac
    case $3 in
    yes) assert_file_contains "$1" "$CODE_PROMPT" "prompts seen" ;;
    no) assert_file_lacks "$1" "$CODE_PROMPT" "prompts seen" ;;
    esac
}

# ssh_in SERVER USER PASSWORD CODE PW_PROMPT CODE_PROMPT: the login must succeed as USER.
ssh_in() {
    local tag=in-$RANDOM$RANDOM rc=0
    ssh_try "$1" "$2" "$3" "$4" "$tag" || rc=$?
    assert_eq 0 "$rc" "ssh exit status"
    assert_eq "LOGIN-OK:$2" "$(cat "$WORK/ssh/$tag.out")" "remote command output"
    assert_prompts "$WORK/ssh/$tag.prompts" "$5" "$6"
}

# ssh_recovery_notice SHELL(0|1) USER PASSWORD CODE EXPECTED: a login with a recovery code must
# succeed, and the module's "N left" notice must reach the client EXPECTED times (stdout and
# stderr together): SHELL=1 an interactive pty session, SHELL=0 `ssh host cmd`.
ssh_recovery_notice() {
    local tag=notice-$RANDOM$RANDOM rc=0 seen
    SSH_TRY_SHELL=$1 ssh_try pw "$2" "$3" "$4" "$tag" || rc=$?
    assert_eq 0 "$rc" "ssh exit status"
    assert_file_contains "$WORK/ssh/$tag.out" "LOGIN-OK:$2" "session output"
    seen=$(cat "$WORK/ssh/$tag.out" "$WORK/ssh/$tag.err" | grep -c "Recovery code accepted") || true
    assert_eq "$5" "$seen" "copies of the recovery notice"
}

# ssh_refused SERVER USER PASSWORD CODE PW_PROMPT CODE_PROMPT [STEP]: the login must be refused
# (and, with STEP, must have happened within that TOTP time step).
ssh_refused() {
    local tag=refused-$RANDOM$RANDOM rc=0
    ssh_try "$1" "$2" "$3" "$4" "$tag" || rc=$?
    assert_eq 255 "$rc" "ssh exit status"
    assert_file_lacks "$WORK/ssh/$tag.out" "LOGIN-OK" "remote command output"
    assert_file_contains "$WORK/ssh/$tag.err" "Permission denied" "ssh stderr"
    assert_prompts "$WORK/ssh/$tag.prompts" "$5" "$6"
    if [[ -n ${7:-} ]]; then
        assert_eq "$7" "$(step_now)" "TOTP step at the end of the attempt (crossed a boundary: inconclusive)"
    fi
}

# sudo_try USER PASSWORD CODE TAG: USER runs `sudo -S -k /usr/bin/id -un` with no terminal,
# PASSWORD and CODE as the two lines of its stdin (sudo -S reads every PAM prompt from stdin,
# one line each). Output in $WORK/sudo/TAG.{out,err}. No `-p PROMPT`: sudo would show it for
# EVERY PAM prompt (the module's included) instead of the module's own text. Without -p, sudo
# replaces only pam_unix's "Password: " with "[sudo] password for USER: ".
sudo_try() {
    local user=$1 password=$2 code=$3 base=$WORK/sudo/$4 rc=0
    (
        cd /
        printf '%s\n%s\n' "$password" "$code" |
            timeout 60 setsid -w setpriv --reuid="$user" --regid="$user" --init-groups \
                env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="/home/$user" USER="$user" \
                LOGNAME="$user" LANG=C \
                sudo -S -k /usr/bin/id -un
    ) >"$base.out" 2>"$base.err" || rc=$?
    echo "sudo as $user -> exit $rc"
    echo "--- stdout:"
    cat "$base.out"
    echo "--- stderr (prompts included):"
    cat "$base.err"
    return "$rc"
}

sudo_ok() { # USER PASSWORD CODE CODE_PROMPT(yes|no)
    local tag=ok-$RANDOM$RANDOM rc=0
    sudo_try "$1" "$2" "$3" "$tag" || rc=$?
    assert_eq 0 "$rc" "sudo exit status"
    assert_eq root "$(cat "$WORK/sudo/$tag.out")" "output of sudo id -un"
    assert_file_contains "$WORK/sudo/$tag.err" "[sudo] password for $1:" "sudo stderr (password prompt)"
    if [[ $4 == yes ]]; then assert_file_contains "$WORK/sudo/$tag.err" "$CODE_PROMPT" "sudo stderr"; fi
    if [[ $4 == no ]]; then assert_file_lacks "$WORK/sudo/$tag.err" "$CODE_PROMPT" "sudo stderr"; fi
}

sudo_refused() { # USER PASSWORD CODE CODE_PROMPT(yes|no) [STEP]
    local tag=refused-$RANDOM$RANDOM rc=0
    sudo_try "$1" "$2" "$3" "$tag" || rc=$?
    [[ $rc -ne 0 ]] || fail "sudo succeeded"
    [[ $rc -ne 124 ]] || fail "sudo timed out (waiting for input?)"
    assert_file_lacks "$WORK/sudo/$tag.out" "root" "output of sudo id -un"
    assert_file_contains "$WORK/sudo/$tag.err" "incorrect password attempt" "sudo stderr"
    if [[ $4 == yes ]]; then assert_file_contains "$WORK/sudo/$tag.err" "$CODE_PROMPT" "sudo stderr"; fi
    if [[ $4 == no ]]; then assert_file_lacks "$WORK/sudo/$tag.err" "$CODE_PROMPT" "sudo stderr"; fi
    if [[ -n ${5:-} ]]; then
        assert_eq "$5" "$(step_now)" "TOTP step at the end of the attempt (crossed a boundary: inconclusive)"
    fi
}

probe_saw() { # service user: the probe recorded an auth call for this service and user
    assert_file_contains "$WORK/probe.log" "service=$1 user=$2 type=auth" "probe log"
    echo "--- probe log:"
    cat "$WORK/probe.log"
}

# ------------------------------------------------------------------------------------------------
# TOTP time
# ------------------------------------------------------------------------------------------------
step_now() { echo $(($(date +%s) / 30)); }

# Wait, if needed, until at least MIN seconds are left in the current 30 s step; then set
# NOW (the epoch second the codes are computed for) and STEP.
fresh_step() {
    local min=$1 now left
    while :; do
        now=$(date +%s)
        left=$((30 - now % 30))
        if [[ $left -ge $min ]]; then break; fi
        note "waiting ${left}s for the next TOTP step (need ${min}s left)"
        sleep "$left"
    done
    NOW=$now
    STEP=$((now / 30))
}

secret_of() {
    [[ -s $WORK/enroll/$1.secret ]] || {
        echo "$1 is not enrolled" >&2
        return 1
    }
    cat "$WORK/enroll/$1.secret"
}
totp_at() { oathtool --totp -b -N "@$2" "$(secret_of "$1")"; } # user epoch

# A 6-digit code that is none of the codes of the steps around EPOCH.
wrong_code_at() { # user epoch
    local c p n k w
    c=$(totp_at "$1" "$2")
    p=$(totp_at "$1" $(($2 - 30)))
    n=$(totp_at "$1" $(($2 + 30)))
    for k in 1 2 3 4 5; do
        w=$(printf '%06d' $(((10#$c + k * 111111) % 1000000)))
        if [[ $w != "$c" && $w != "$p" && $w != "$n" ]]; then
            echo "$w"
            return 0
        fi
    done
    return 1
}

recovery_code() { sed -n "${2}p" "$WORK/enroll/$1.recovery"; } # user index(1-based)

# ------------------------------------------------------------------------------------------------
# Enrollment (as root, through enroll_json), with the JSON checked.
# ------------------------------------------------------------------------------------------------
enroll_user() {
    local user=$1 json=$WORK/enroll/$1.json secret
    enroll_json "$user" >"$json" 2>"$WORK/enroll/$user.err" || {
        cat "$WORK/enroll/$user.err"
        fail "enroll exited non-zero"
    }
    echo "--- stdout (secrets redacted):"
    jq -c '(.secret |= "<\(length) chars>") | (.otpauth_uri |= sub("secret=[^&]*"; "secret=<redacted>"))
        | (.recovery_codes |= map("<\(length) chars>"))' "$json" 2>/dev/null || head -c 2000 "$json"
    echo
    echo "--- stderr:"
    cat "$WORK/enroll/$user.err"
    jq -e -s 'length == 1 and (.[0] | type == "object")' "$json" >/dev/null ||
        fail "stdout is not exactly one JSON object"
    assert_eq "$user" "$(jq -r '.user' "$json")" ".user"
    secret=$(jq -r '.secret' "$json")
    [[ $secret =~ ^[A-Z2-7]{16,}=*$ ]] || fail ".secret is not upper-case base32 of >= 80 bits"
    oathtool --totp -b "$secret" >/dev/null || fail "oathtool cannot use .secret"
    jq -e --arg s "$secret" '.otpauth_uri | type == "string" and startswith("otpauth://totp/")
        and contains("secret=" + $s)' "$json" >/dev/null ||
        fail ".otpauth_uri is not an otpauth://totp/ URI carrying the secret"
    jq -e '.recovery_codes | type == "array" and length >= 2 and
        all(.[]; type == "string" and test("^[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){4}$"))' "$json" >/dev/null ||
        fail ".recovery_codes is not a list (>= 2) of XXXX-XXXX-XXXX-XXXX-XXXX codes"
    jq -e '.recovery_codes | length == (unique | length)' "$json" >/dev/null ||
        fail ".recovery_codes has duplicates"
    printf '%s\n' "$secret" >"$WORK/enroll/$user.secret"
    jq -r '.recovery_codes[]' "$json" >"$WORK/enroll/$user.recovery"
}

# ================================================================================================
# The cases
# ================================================================================================
PW_A=${PASSWORD[$U_ALICE]} PW_B=${PASSWORD[$U_BOB]} PW_C=${PASSWORD[$U_CAROL]} PW_D=${PASSWORD[$U_DAVE]}

echo "## 1. PAM service names (deny-all stacks that record the service name)"
probe_ssh_pw() {
    ssh_refused pw "$U_ALICE" "$PW_A" "" no no
    probe_saw "$SVC_SSH_PW" "$U_ALICE"
}
probe_ssh_key() {
    ssh_refused key "$U_BOB" "" "" no no
    probe_saw "$SVC_SSH_KEY" "$U_BOB"
}
probe_sudo() {
    sudo_refused "$U_DAVE" "$PW_D" "" no
    probe_saw "$SVC_SUDO" "$U_DAVE"
}
check "ssh: sshd run as '$SVC_SSH_PW' authenticates with PAM service $SVC_SSH_PW" probe_ssh_pw
check "ssh: key sshd uses PAM service $SVC_SSH_KEY for keyboard-interactive after the key" probe_ssh_key
check "sudo: the sudoers drop-in makes sudo use PAM service $SVC_SUDO" probe_sudo

echo "## 2. Baseline: password-only stacks (the harness without the second factor)"
for svc in "${ALL_SERVICES[@]}"; do install_pam_service "$svc" stack_password_only; done
check "ssh baseline: right password -> in" ssh_in pw "$U_ALICE" "$PW_A" "" yes no
check "ssh baseline: wrong password -> refused" ssh_refused pw "$U_ALICE" "$PW_A-wrong" "" yes no
check "ssh baseline: key + password -> in" ssh_in key "$U_BOB" "$PW_B" "" yes no
check "ssh baseline: password without the key -> refused (publickey is required first)" \
    ssh_refused nokey "$U_BOB" "$PW_B" "" no no
check "sudo baseline: right password -> runs id as root" sudo_ok "$U_DAVE" "$PW_D" "" no
check "sudo baseline: wrong password -> refused" sudo_refused "$U_DAVE" "$PW_D-wrong" "" no

echo "## 3. Enrollment"
ENROLLER="pam-totp enroll"
[[ $PLUMBING == 1 ]] && ENROLLER="stand-in enroll (plumbing)"
for u in "${ALL_USERS[@]}"; do
    check "$ENROLLER --user $u --no-confirm --json -> one valid JSON object" enroll_user "$u"
done

echo "## 4. Second factor"
for svc in "$SVC_SSH_PW" "$SVC_SUDO"; do install_pam_service "$svc" stack_password_and_code; done
install_pam_service "$SVC_SSH_KEY" stack_code_only

# Alice: password + code over ssh.
fresh_step 10
C=$(totp_at "$U_ALICE" "$NOW") || C=""
W=$(wrong_code_at "$U_ALICE" "$NOW") || W=""
check "ssh: wrong password + right code -> refused, code never asked" \
    ssh_refused pw "$U_ALICE" "$PW_A-wrong" "$C" yes no
check "ssh: right password + wrong code -> refused" ssh_refused pw "$U_ALICE" "$PW_A" "$W" yes yes
check "ssh: right password + no code -> refused" ssh_refused pw "$U_ALICE" "$PW_A" "" yes yes
fresh_step 20 # a code burnt at step N must be replayed within step N
C=$(totp_at "$U_ALICE" "$NOW") || C=""
check "ssh: right password + right code -> in" ssh_in pw "$U_ALICE" "$PW_A" "$C" yes yes
check "ssh: same code again in the same 30 s step (replay) -> refused" \
    ssh_refused pw "$U_ALICE" "$PW_A" "$C" yes yes "$STEP"

# Bob: public key, then code (no password module in the stack).
fresh_step 10
W=$(wrong_code_at "$U_BOB" "$NOW") || W=""
check "ssh key: key + wrong code -> refused" ssh_refused key "$U_BOB" "" "$W" no yes
fresh_step 10
C=$(totp_at "$U_BOB" "$NOW") || C=""
check "ssh key: key + right code -> in (no password asked)" ssh_in key "$U_BOB" "" "$C" no yes
check "ssh key: right code without the key -> refused before any prompt" \
    ssh_refused nokey "$U_BOB" "$PW_B" "$C" no no

# Carol: recovery codes (single use).
if [[ $HAS_RECOVERY_CODES == 1 ]]; then
    R1=$(recovery_code "$U_CAROL" 1 2>/dev/null) || R1=""
    R2=$(recovery_code "$U_CAROL" 2 2>/dev/null) || R2=""
    check "ssh: password + recovery code -> in" ssh_in pw "$U_CAROL" "$PW_C" "$R1" yes yes
    check "ssh: the same recovery code again -> refused (single use)" \
        ssh_refused pw "$U_CAROL" "$PW_C" "$R1" yes yes
    check "ssh: password + another recovery code -> in" ssh_in pw "$U_CAROL" "$PW_C" "$R2" yes yes
    R3=$(recovery_code "$U_CAROL" 3 2>/dev/null) || R3=""
    R4=$(recovery_code "$U_CAROL" 4 2>/dev/null) || R4=""
    # sshd keeps a PAM_TEXT_INFO sent after the last prompt for the login messages, which it
    # prints for interactive (pty, no command) sessions only.
    check "ssh -tt (interactive): the recovery notice is shown once" \
        ssh_recovery_notice 1 "$U_CAROL" "$PW_C" "$R3" 1
    check "ssh host cmd: the recovery notice cannot reach the user (sshd drops it)" \
        ssh_recovery_notice 0 "$U_CAROL" "$PW_C" "$R4" 0
else
    for n in "ssh: password + recovery code -> in" \
        "ssh: the same recovery code again -> refused (single use)" \
        "ssh: password + another recovery code -> in" \
        "ssh -tt (interactive): the recovery notice is shown once" \
        "ssh host cmd: the recovery notice cannot reach the user (sshd drops it)"; do
        skip "$n" "the plumbing stand-in has no recovery codes"
    done
fi

# Dave: sudo -S with password and code on stdin.
fresh_step 10
C=$(totp_at "$U_DAVE" "$NOW") || C=""
W=$(wrong_code_at "$U_DAVE" "$NOW") || W=""
check "sudo: right password + wrong code -> refused" sudo_refused "$U_DAVE" "$PW_D" "$W" yes
check "sudo: wrong password + right code -> refused, code never asked" \
    sudo_refused "$U_DAVE" "$PW_D-wrong" "$C" no
fresh_step 20
C=$(totp_at "$U_DAVE" "$NOW") || C=""
check "sudo: right password + right code (both on stdin) -> runs id as root" \
    sudo_ok "$U_DAVE" "$PW_D" "$C" yes
check "sudo: same code again in the same 30 s step (replay) -> refused" \
    sudo_refused "$U_DAVE" "$PW_D" "$C" yes "$STEP"

# Erin: the real passwd (setuid root, run as Erin), whose PAM service "passwd" is our stack
# only inside a private mount namespace (a bind mount over /etc/pam.d/passwd that vanishes
# with the process): the system's file is never edited. stdin carries the code, the current
# password and the new one twice, one line per prompt.
passwd_stack() {
    cat <<EOF
# passwd for tests/e2e/run.sh (a code before the password change); bind-mounted, never installed
auth     required   pam_deny.so
account  required   pam_permit.so
session  required   pam_permit.so
password requisite  $PAM_TOTP_MODULE
password [success=1 default=ignore] pam_unix.so obscure yescrypt
password requisite  pam_deny.so
password required   pam_permit.so
EOF
}
shadow_hash() { getent shadow "$1" | cut -d: -f2; }
passwd_try() { # USER CODE CURRENT NEW TAG -> passwd's exit status
    local user=$1 base=$WORK/passwd-$5 rc=0
    passwd_stack >"$WORK/pam.passwd"
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's
    (
        cd /
        printf '%s\n%s\n%s\n%s\n' "$2" "$3" "$4" "$4" |
            timeout 60 setsid -w unshare -m sh -c \
                'mount --bind "$0" /etc/pam.d/passwd && exec setpriv --reuid="$1" --regid="$1" --init-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C passwd' \
                "$WORK/pam.passwd" "$user"
    ) >"$base.out" 2>"$base.err" || rc=$?
    echo "passwd as $user -> exit $rc"
    echo "--- stdout:"
    cat "$base.out"
    echo "--- stderr (prompts included):"
    cat "$base.err"
    return "$rc"
}
passwd_refused() { # USER CODE CURRENT NEW
    local before rc=0 tag=refused-$RANDOM
    before=$(shadow_hash "$1")
    passwd_try "$1" "$2" "$3" "$4" "$tag" || rc=$?
    [[ $rc -ne 0 ]] || fail "passwd succeeded"
    [[ $rc -ne 124 ]] || fail "passwd timed out (waiting for input?)"
    assert_eq "$before" "$(shadow_hash "$1")" "the shadow hash (must be unchanged)"
    # Refused by the code, before pam_unix asked for anything.
    cat "$WORK/passwd-$tag.out" "$WORK/passwd-$tag.err" >"$WORK/passwd-$tag.all"
    assert_file_contains "$WORK/passwd-$tag.all" "$CODE_PROMPT" "passwd output (the code prompt)"
    assert_file_lacks "$WORK/passwd-$tag.all" "password:" "passwd output (no password prompt)"
}
passwd_changed() { # USER CODE CURRENT NEW
    local before after rc=0 tag=ok-$RANDOM
    before=$(shadow_hash "$1")
    passwd_try "$1" "$2" "$3" "$4" "$tag" || rc=$?
    assert_eq 0 "$rc" "passwd exit status"
    cat "$WORK/passwd-$tag.out" "$WORK/passwd-$tag.err" >"$WORK/passwd-$tag.all"
    assert_file_contains "$WORK/passwd-$tag.all" "$CODE_PROMPT" "passwd output (the code prompt)"
    after=$(shadow_hash "$1")
    [[ $after != "$before" ]] || fail "the shadow hash did not change"
    # The new password is the one stored: libc's crypt of it with the stored salt.
    assert_eq "$after" "$(perl -e 'print crypt($ARGV[0], $ARGV[1])' "$4" "$after")" \
        "crypt(new password, stored hash)"
}
# The bind mount needs a private mount namespace, which a container without CAP_SYS_ADMIN
# (tests/container/run.sh) does not give: there the cases are skipped, never the system's
# /etc/pam.d/passwd edited; the run on the host covers them.
PASSWD_SKIP=""
if [[ $PLUMBING != 0 ]]; then
    PASSWD_SKIP="the plumbing stand-in has no password-change hook"
elif ! unshare -m true 2>/dev/null; then
    PASSWD_SKIP="no private mount namespace here (unshare -m is not permitted, as in a container without CAP_SYS_ADMIN)"
fi
if [[ -z $PASSWD_SKIP ]]; then
    PW_E=${PASSWORD[$U_ERIN]}
    PW_E_NEW=$(random_password)
    fresh_step 10
    W=$(wrong_code_at "$U_ERIN" "$NOW") || W=""
    check "passwd: wrong code -> refused before pam_unix, password unchanged" \
        passwd_refused "$U_ERIN" "$W" "$PW_E" "$PW_E_NEW"
    fresh_step 20
    C=$(totp_at "$U_ERIN" "$NOW") || C=""
    check "passwd: right code + current password -> the new password is stored" \
        passwd_changed "$U_ERIN" "$C" "$PW_E" "$PW_E_NEW"
    check "passwd: the same code again (replay) -> refused, password unchanged" \
        passwd_refused "$U_ERIN" "$C" "$PW_E_NEW" "$(random_password)"
    PASSWORD[$U_ERIN]=$PW_E_NEW
else
    for n in "passwd: wrong code -> refused before pam_unix, password unchanged" \
        "passwd: right code + current password -> the new password is stored" \
        "passwd: the same code again (replay) -> refused, password unchanged"; do
        skip "$n" "$PASSWD_SKIP"
    done
fi

if [[ $PLUMBING == 0 ]]; then
    echo "## 4b. HOTP tokens (RFC 4226), provisioned by root from a seed on stdin"
    # user counter: re-enrolled as an HOTP token with a new seed, checked with status --json.
    hotp_enroll() {
        local seed json
        seed=$(head -c 20 /dev/urandom | base32 -w0 | tr -d '=')
        printf '%s\n' "$seed" >"$WORK/enroll/$1.hotp"
        json=$(printf '%s' "$seed" | "$PAM_TOTP_CLI" --user "$1" enroll --hotp --counter "$2" \
            --secret - --no-confirm --json) || fail "enroll --hotp exited non-zero"
        jq -e --arg c "$2" '.otpauth_uri | startswith("otpauth://hotp/") and endswith("&counter=" + $c)' \
            <<<"$json" >/dev/null || fail ".otpauth_uri is not an otpauth://hotp/ URI with the counter"
        "$PAM_TOTP_CLI" --user "$1" status --json |
            jq -e --argjson c "$2" '.kind == "hotp" and .hotp_counter == $c' >/dev/null ||
            fail "status --json does not show the HOTP counter"
    }
    hotp_at() { oathtool --hotp -b -c "$2" "$(cat "$WORK/enroll/$1.hotp")"; } # user counter
    check "pam-totp --user $U_ALICE enroll --hotp --counter 3 --secret - -> an HOTP enrollment" \
        hotp_enroll "$U_ALICE" 3
    H=$(hotp_at "$U_ALICE" 5 2>/dev/null) || H=""
    check "ssh HOTP: password + the token's code two presses ahead -> in" \
        ssh_in pw "$U_ALICE" "$PW_A" "$H" yes yes
    check "ssh HOTP: the same code again (replay) -> refused" ssh_refused pw "$U_ALICE" "$PW_A" "$H" yes yes
    H=$(hotp_at "$U_ALICE" 4 2>/dev/null) || H=""
    check "ssh HOTP: a code behind the counter -> refused" ssh_refused pw "$U_ALICE" "$PW_A" "$H" yes yes
    H=$(hotp_at "$U_ALICE" 17 2>/dev/null) || H=""
    check "ssh HOTP: a code beyond hotp_window (10) -> refused" ssh_refused pw "$U_ALICE" "$PW_A" "$H" yes yes
    H=$(hotp_at "$U_ALICE" 6 2>/dev/null) || H=""
    check "ssh HOTP: the next code -> in" ssh_in pw "$U_ALICE" "$PW_A" "$H" yes yes
    check "pam-totp --user $U_DAVE enroll --hotp -> an HOTP enrollment" hotp_enroll "$U_DAVE" 0
    H=$(hotp_at "$U_DAVE" 0 2>/dev/null) || H=""
    check "sudo HOTP: password + the token's code -> runs id as root" sudo_ok "$U_DAVE" "$PW_D" "$H" yes
    check "sudo HOTP: the same code again (replay) -> refused" sudo_refused "$U_DAVE" "$PW_D" "$H" yes

    # shellcheck source=protected.sh
    . "$E2E_DIR/protected.sh"
fi

echo "## 5. Cleanup"
trap - ERR
cleanup_all
if VC=$(verify_clean 2>&1); then VC_RC=0; else VC_RC=1; fi
record "cleanup: every user, file, service and process is gone" "$VC_RC" "$VC"
trap - EXIT INT TERM
summary
