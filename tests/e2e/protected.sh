# Protected storage (issue 10): root-owned state, and self-service through the setuid helper
# pam-totp-helper, as real users, with the real setuid binary and the real sudo.
#
# Sourced by tests/e2e/run.sh (section 4b), which provides the framework (check, skip, …), the
# work dir, sudo_ok/sudo_refused, fresh_step/totp_at and the cleanup (CREATED_USERS,
# CREATED_FILES, CREATED_DIRS). The helper reads only /etc/security/pam_totp.conf, so this
# section owns that file for its duration: it writes it only when it does not exist (else every
# case is skipped, with the reason) and the cleanup removes it.
# shellcheck shell=bash

echo "## 4b. Protected storage (root-owned state, setuid helper)"

# shellcheck disable=SC2153 # U_PROT and U_OTHER are run.sh's
P_USER=$U_PROT   # enrolls and manages itself through the helper
# shellcheck disable=SC2153
P_OTHER=$U_OTHER # enrolled in its home by root, then moved with `protect`
P_CONF=/etc/security/pam_totp.conf
P_CASES=("enroll through the helper" "state file root-only" "status via helper" "sudo accepts code"
    "sudo replay refused" "changes refused and counted" "recovery-codes with a code"
    "another user" "hostile invocations" "no secret in ps, logs, files" "disable with a recovery code"
    "protect moves a home enrollment")

p_skip_all() {
    local c
    for c in "${P_CASES[@]}"; do skip "protected: $c" "$1"; done
}

p_setup() {
    local src="" plain
    if [[ -e $P_CONF ]] && head -n 1 "$P_CONF" | grep -q '^# pamtotp-e2e: written by tests/e2e/protected.sh'; then
        note "removing leftover $P_CONF from an earlier run"
        rm -f -- "$P_CONF"
    fi
    if [[ -e $P_CONF ]]; then
        P_SKIP="$P_CONF exists on this machine and is left alone (the helper reads only that path)"
        return 0
    fi
    # The setuid copy: next to the CLI under test (fresh build), or the installed one (package).
    if [[ -n ${PAM_TOTP_HELPER:-} ]]; then
        src=$PAM_TOTP_HELPER
    elif [[ -x $(dirname -- "$PAM_TOTP_CLI")/pam-totp-helper ]]; then
        src=$(dirname -- "$PAM_TOTP_CLI")/pam-totp-helper
    elif [[ -x /usr/lib/pam-totp/pam-totp-helper ]]; then
        src=/usr/lib/pam-totp/pam-totp-helper
    else
        P_SKIP="no pam-totp-helper next to $PAM_TOTP_CLI nor in /usr/lib/pam-totp"
        return 0
    fi
    # Traversable by the users (they run the helper and the CLI from here); store/ is root's.
    P_DIR=$(mktemp -d /tmp/pamtotp-e2e-protected.XXXXXX)
    CREATED_DIRS+=("$P_DIR")
    chmod 0755 "$P_DIR"
    if findmnt -no OPTIONS -T "$P_DIR" | tr ',' '\n' | grep -qx nosuid; then
        P_SKIP="$(findmnt -no TARGET -T "$P_DIR") is mounted nosuid: no setuid helper can run there"
        return 0
    fi
    install -d -m 0755 "$P_DIR/bin" "$P_DIR/plain"
    install -d -m 0700 "$P_DIR/store"
    install -m 0755 "$src" "$P_DIR/plain/pam-totp-helper" # the same program, not setuid
    if [[ $src == /usr/lib/pam-totp/pam-totp-helper ]]; then
        # The package's own: as installed (owner, mode), found by the CLI at its fixed path.
        [[ $(stat -c '%U:%G %a' "$src") == "root:root 4755" ]] ||
            harness_fail "$src is $(stat -c '%U:%G %a' "$src"), not root:root 4755"
        P_HELPER=$src
        P_CLI=$PAM_TOTP_CLI
    else
        install -m 4755 -o root -g root "$src" "$P_DIR/bin/pam-totp-helper"
        install -m 0755 "$PAM_TOTP_CLI" "$P_DIR/bin/pam-totp"
        P_HELPER=$P_DIR/bin/pam-totp-helper
        P_CLI=$P_DIR/bin/pam-totp
    fi
    plain=$P_DIR/plain/pam-totp-helper
    P_PLAIN=$plain
    # no_new_privs (a container run with it) or a nosuid mount: the bit does nothing here.
    if [[ $(echo | as_user "$P_USER" "$P_HELPER" 2>&1) == *"not installed setuid root"* ]]; then
        P_SKIP="a setuid program does not gain root here (no_new_privs or nosuid)"
        return 0
    fi
    CREATED_FILES+=("$P_CONF")
    # max_failures: this section counts 5 deliberate failures and must not lock itself out.
    printf '# pamtotp-e2e: written by tests/e2e/protected.sh; removed when it exits\nsecret = "%s/store/%%u.toml"\nmax_failures = 20\n' \
        "$P_DIR" >"$P_CONF"
    chmod 0644 "$P_CONF"
    printf '# pamtotp-e2e: home storage, for the protect case\n' >"$WORK/home.conf"
    cat >"$WORK/sudoers.protected" <<EOF
# pamtotp-e2e: written by tests/e2e/protected.sh; removed when it exits
Defaults:$P_USER pam_service=$SVC_SUDO
Defaults:$P_USER passwd_tries=1, timestamp_timeout=0, lecture=never
Defaults:$P_OTHER pam_service=$SVC_SUDO
Defaults:$P_OTHER passwd_tries=1, timestamp_timeout=0, lecture=never
$P_USER ALL=(root) /usr/bin/id
$P_OTHER ALL=(root) /usr/bin/id
EOF
    visudo -cf "$WORK/sudoers.protected" >/dev/null || harness_fail "visudo rejects the protected drop-in"
    CREATED_FILES+=("$SUDOERS_DROPIN-protected")
    install -m 0440 -o root -g root "$WORK/sudoers.protected" "$SUDOERS_DROPIN-protected"
    P_SKIP=""
}

# as_user USER CMD...: CMD as USER (real uid, groups), a clean environment, no terminal.
as_user() {
    local user=$1
    shift
    (cd / && setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="/home/$user" USER="$user" LANG=C \
        PAM_TOTP_HELPER="$P_HELPER" "$@")
}

# Waits until the TOTP step is past the one recorded in FILE (a burned code's), with at
# least 10 s left; sets NOW and STEP.
p_after_step() {
    local burned
    burned=$(cat "$1")
    while [[ $(step_now) -le $burned ]]; do sleep 1; done
    fresh_step 10
}

p_failures() { as_user "$P_USER" "$P_CLI" status --json | jq -r .throttle.failures; }

p_enroll() {
    local d=$WORK/protected-enroll pid s rc=0
    fresh_step 5
    mkdir -p "$d"
    rm -f "$d/in"
    mkfifo -m 0600 "$d/in"
    # The person: reads the key from the screen, types the app's code.
    as_user "$P_USER" "$P_CLI" enroll --qr none --recovery-codes 4 <"$d/in" >"$d/out" 2>"$d/err" &
    pid=$!
    exec 7>"$d/in"
    for _ in $(seq 100); do
        grep -q "otpauth URI" "$d/out" && break
        sleep 0.1
    done
    s=$(sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p' "$d/out" | head -n 1)
    [[ -n $s ]] || { exec 7>&-; cat "$d/out" "$d/err"; fail "no key shown"; }
    printf '%s' "$s" >"$WORK/enroll/$P_USER.secret"
    step_now >"$WORK/protected.burned"
    oathtool --totp -b "$s" >&7
    exec 7>&-
    wait "$pid" || rc=$?
    cat "$d/err"
    assert_eq 0 "$rc" "enroll exit status"
    assert_file_contains "$d/err" "The code matches." "enroll stderr"
    assert_file_contains "$d/out" "Two-factor authentication is set up for $P_USER" "enroll stdout"
    sed -n 's/^    \([A-Z0-9]\{4\}-.*\)$/\1/p' "$d/out" >"$WORK/enroll/$P_USER.recovery"
    assert_eq 4 "$(wc -l <"$WORK/enroll/$P_USER.recovery")" "recovery codes shown"
}

p_root_only() {
    local f=$P_DIR/store/$P_USER.toml
    [[ -f $f ]] || fail "$f does not exist"
    assert_eq "root:root 600" "$(stat -c '%U:%G %a' "$f")" "owner and mode of the state file"
    if as_user "$P_USER" cat "$f" >/dev/null 2>&1; then fail "the user read the state file"; fi
    if as_user "$P_USER" ls "$P_DIR/store" >/dev/null 2>&1; then fail "the user listed the store"; fi
    if as_user "$P_USER" mv "$f" "$f.moved" 2>/dev/null; then fail "the user renamed it"; fi
    if as_user "$P_USER" rm -f "$f" 2>/dev/null && [[ ! -e $f ]]; then fail "the user deleted it"; fi
    [[ -f $f ]] || fail "the state file is gone"
}

p_status() {
    local out
    out=$(as_user "$P_USER" "$P_CLI" status) || fail "status failed: $out"
    echo "$out"
    [[ $out == *"$P_USER is enrolled."* ]] || fail "status does not say enrolled"
    [[ $out == *"4 left"* ]] || fail "status does not count 4 recovery codes"
    [[ $out != *"$(cat "$WORK/enroll/$P_USER.secret")"* ]] || fail "status shows the secret"
    out=$(as_user "$P_USER" "$P_CLI" status --json)
    echo "$out"
    assert_eq "true" "$(jq -r .enrolled <<<"$out")" "status --json enrolled"
}

p_sudo_ok() {
    p_after_step "$WORK/protected.burned"
    C=$(totp_at "$P_USER" "$NOW")
    printf '%s' "$C" >"$WORK/protected.lastcode"
    step_now >"$WORK/protected.burned"
    sudo_ok "$P_USER" "${PASSWORD[$P_USER]}" "$C" yes
}

p_sudo_replay() { sudo_refused "$P_USER" "${PASSWORD[$P_USER]}" "$(cat "$WORK/protected.lastcode")" yes; }

p_changes_refused() {
    local before after replayed wrong cmd rc
    replayed=$(cat "$WORK/protected.lastcode")
    wrong=$(wrong_code_at "$P_USER" "$(date +%s)")
    for cmd in recovery-codes disable; do
        before=$(p_failures)
        rc=0
        printf '\n' | as_user "$P_USER" "$P_CLI" "$cmd" || rc=$?
        assert_eq 1 "$rc" "$cmd without a code"
        assert_eq "$before" "$(p_failures)" "failures after $cmd without a code (nothing was checked)"
        rc=0
        printf '%s\n' "$wrong" | as_user "$P_USER" "$P_CLI" "$cmd" || rc=$?
        assert_eq 1 "$rc" "$cmd with a wrong code"
        rc=0
        printf '%s\n' "$replayed" | as_user "$P_USER" "$P_CLI" "$cmd" 2>"$WORK/protected.replay.err" || rc=$?
        cat "$WORK/protected.replay.err"
        assert_eq 1 "$rc" "$cmd with a replayed code"
        assert_file_contains "$WORK/protected.replay.err" "replayed code" "$cmd stderr"
        after=$(p_failures)
        assert_eq $((before + 2)) "$after" "failures counted by $cmd (same counters as a login)"
    done
    [[ -f $P_DIR/store/$P_USER.toml ]] || fail "the enrollment is gone"
    # A caller's rlimits cannot stop a wrong code from being counted (no file size, SIGXFSZ
    # ignored: the write would fail with EFBIG, and the wrong code would be free).
    before=$(p_failures)
    out=$(printf 'hello version=1\nprove code=%s\n' "$wrong" |
        (trap '' XFSZ && ulimit -f 0 && as_user "$P_USER" "$P_HELPER")) || true
    echo "$out"
    after=$(p_failures)
    # Counted (the helper lifted the limit), or refused before judging (it could not: a
    # root without CAP_SYS_RESOURCE); never a verdict that was not written down.
    if [[ $after != $((before + 1)) ]]; then
        assert_eq "$before" "$after" "failures after a wrong code under ulimit -f 0"
        [[ $out != *"kind=proof"* ]] || fail "a wrong code was judged but not counted: $out"
    fi
}

p_recovery_codes() {
    local out rc=0 old
    # Output lost (issue 13 item 9): the helper sends the codes, the CLI cannot show them,
    # so it never commits; the old codes keep working.
    p_after_step "$WORK/protected.burned"
    old=$(sed -n 2p "$WORK/enroll/$P_USER.recovery")
    totp_at "$P_USER" "$NOW" | as_user "$P_USER" "$P_CLI" recovery-codes --count 3 \
        >/dev/full 2>"$WORK/protected.full.err" || rc=$?
    step_now >"$WORK/protected.burned"
    cat "$WORK/protected.full.err"
    assert_eq 1 "$rc" "recovery-codes >/dev/full exit status"
    assert_file_contains "$WORK/protected.full.err" "cannot write to standard output" "recovery-codes >/dev/full stderr"
    out=$(as_user "$P_USER" "$P_CLI" status) || fail "status failed: $out"
    [[ $out == *"4 left"* ]] || fail "the old recovery codes were replaced by unseen ones: $out"
    out=$(printf '%s\n' "$old" | as_user "$P_USER" "$P_CLI" verify 2>&1) ||
        fail "an old recovery code no longer works after recovery-codes >/dev/full: $out"
    rc=0
    p_after_step "$WORK/protected.burned"
    out=$(totp_at "$P_USER" "$NOW" | as_user "$P_USER" "$P_CLI" recovery-codes --count 3) || rc=$?
    step_now >"$WORK/protected.burned"
    echo "$out"
    assert_eq 0 "$rc" "recovery-codes exit status"
    printf '%s\n' "$out" | sed -n 's/^    \([A-Z0-9]\{4\}-.*\)$/\1/p' >"$WORK/enroll/$P_USER.recovery"
    assert_eq 3 "$(wc -l <"$WORK/enroll/$P_USER.recovery")" "new recovery codes shown"
    assert_eq 0 "$(p_failures)" "failures after a right code"
    out=$(as_user "$P_USER" "$P_CLI" status) || fail "status failed: $out"
    [[ $out == *"3 left"* ]] || fail "the new recovery codes were not saved: $out"
}

p_other_user() {
    local out rc=0
    out=$(as_user "$P_USER" "$P_CLI" --user "$P_OTHER" status 2>&1) || rc=$?
    echo "$out"
    assert_eq 1 "$rc" "--user another exit status"
    # The protocol has no user to name: a field for one is a bad request.
    out=$(printf 'hello version=1\nstatus user=%s\n' "$P_OTHER" | as_user "$P_USER" "$P_HELPER") || true
    echo "$out"
    [[ $out == *"user=$P_USER "* ]] || fail "the helper did not work for the caller"
    [[ $out == *"no kind=bad-request"* ]] || fail "a user field was not refused"
}

p_hostile() {
    local out rc
    # Unknown request.
    rc=0
    out=$(printf 'hello version=1\nshow-secret\n' | as_user "$P_USER" "$P_HELPER") || rc=$?
    assert_eq 1 "$rc" "unknown request exit status"
    [[ $out == *"no kind=bad-request" ]] || fail "unknown request: $out"
    # 1 MB of input, in one line and in many.
    rc=0
    out=$(head -c 1048576 /dev/zero | tr '\0' 'a' | timeout 20 setpriv --reuid="$P_USER" --regid="$P_USER" --init-groups "$P_HELPER") || rc=$?
    assert_eq 1 "$rc" "1 MB line exit status"
    assert_eq "no kind=bad-request" "$out" "1 MB line answer"
    rc=0
    out=$( (echo 'hello version=1'; yes status | head -c 1048576) | timeout 20 setpriv --reuid="$P_USER" --regid="$P_USER" --init-groups "$P_HELPER" | tail -n 1) || rc=$?
    assert_eq "no kind=bad-request" "$out" "many requests: the 17th is refused"
    # Closed standard input (and output): ends without serving, no crash.
    rc=0
    as_user "$P_USER" "$P_HELPER" <&- >/dev/null || rc=$?
    [[ $rc -lt 128 ]] || fail "closed stdin: killed by a signal ($rc)"
    rc=0
    printf 'hello version=1\n' | as_user "$P_USER" "$P_HELPER" >&- 2>/dev/null || rc=$?
    [[ $rc -lt 128 ]] || fail "closed stdout: killed by a signal ($rc)"
    # Odd argv[0] and extra arguments.
    rc=0
    # shellcheck disable=SC2016 # $0 is for the inner bash
    out=$(echo | as_user "$P_USER" bash -c 'exec -a /tmp/evil "$0"' "$P_HELPER" 2>&1) || rc=$?
    assert_eq 1 "$rc" "odd argv[0] exit status"
    [[ $out == *"takes no arguments"* ]] || fail "odd argv[0]: $out"
    rc=0
    out=$(echo | as_user "$P_USER" "$P_HELPER" --config /tmp/x 2>&1) || rc=$?
    assert_eq 1 "$rc" "extra arguments exit status"
    # LD_* and other variables: dropped (glibc's secure mode, then our own clean environment).
    rc=0
    out=$(printf 'hello version=1\nstatus\n' | (cd / && setpriv --reuid="$P_USER" --regid="$P_USER" --init-groups \
        env LD_PRELOAD=/nonexistent/evil.so LD_LIBRARY_PATH=/tmp MALLOC_CHECK_=3 \
        PAM_TOTP_CONFIG=/tmp/x LC_ALL=xx_XX.UTF-8 TZ=/tmp/x HOME=/tmp "$P_HELPER") 2>&1) || rc=$?
    echo "$out"
    assert_eq 0 "$rc" "hostile environment exit status"
    [[ $out == *"ok kind=status enrolled=yes"* ]] || fail "hostile environment: $out"
    [[ $out != *"evil"* ]] || fail "LD_PRELOAD reached the helper: $out"
    # Not setuid: refuses.
    rc=0
    out=$(echo | as_user "$P_USER" "$P_PLAIN" 2>&1) || rc=$?
    assert_eq 2 "$rc" "not setuid exit status"
    [[ $out == *"not installed setuid root"* ]] || fail "not setuid: $out"
    # Root: told to use the admin path.
    rc=0
    out=$(echo | "$P_HELPER" 2>&1) || rc=$?
    assert_eq 1 "$rc" "run by root exit status"
}

p_no_secret_visible() {
    local s fifo pid leaked=""
    s=$(cat "$WORK/enroll/$P_USER.secret")
    # ps, and the helper's memory and environment while it holds a new secret for confirm.
    fifo=$WORK/protected-hold
    rm -f "$fifo"
    mkfifo -m 0600 "$fifo"
    as_user "$P_USER" "$P_HELPER" <"$fifo" >"$WORK/protected-hold.out" &
    pid=$!
    exec 8>"$fifo"
    # Wait for the exec from setpriv: the process is the helper once its cmdline says so.
    for _ in $(seq 50); do
        [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "$P_HELPER "* ]] && break
        sleep 0.1
    done
    printf 'hello version=1\nprove code=000000\n' >&8
    sleep 0.5
    # shellcheck disable=SC2009 # every process's arguments, not a process by name
    ps -eo args | grep -F -- "$s" | grep -v grep && leaked="ps"
    if as_user "$P_USER" cat "/proc/$pid/environ" >/dev/null 2>&1; then leaked="$leaked environ"; fi
    if as_user "$P_USER" head -c 1 "/proc/$pid/mem" >/dev/null 2>&1; then leaked="$leaked mem"; fi
    exec 8>&-
    wait "$pid" || true
    # Files the user can read: their home, /tmp, the helper's directory.
    if as_user "$P_USER" grep -rlF -- "$s" "/home/$P_USER" /tmp "$P_DIR" /var/tmp 2>/dev/null; then
        leaked="$leaked files"
    fi
    # Logs (where a journal or syslog file exists).
    if command -v journalctl >/dev/null && journalctl -q --since "-15min" 2>/dev/null | grep -qF -- "$s"; then
        leaked="$leaked journal"
    fi
    for f in /var/log/auth.log /var/log/syslog; do
        if [[ -r $f ]] && grep -qF -- "$s" "$f"; then leaked="$leaked $f"; fi
    done
    [[ -z $leaked ]] || fail "the secret is visible in:$leaked"
}

p_disable() {
    local out rc=0 code
    code=$(sed -n 1p "$WORK/enroll/$P_USER.recovery")
    out=$(printf '%s\n' "$code" | as_user "$P_USER" "$P_CLI" disable) || rc=$?
    echo "$out"
    assert_eq 0 "$rc" "disable exit status"
    [[ ! -e $P_DIR/store/$P_USER.toml ]] || fail "the state file is still there"
}

p_protect() {
    local json out rc=0
    json=$("$PAM_TOTP_CLI" --config "$WORK/home.conf" --user "$P_OTHER" enroll --no-confirm --json) ||
        fail "home enrollment failed"
    jq -r .secret <<<"$json" >"$WORK/enroll/$P_OTHER.secret"
    [[ -f /home/$P_OTHER/.config/pam-totp/state.toml ]] || fail "no home enrollment"
    out=$("$PAM_TOTP_CLI" --user "$P_OTHER" protect) || rc=$?
    echo "$out"
    assert_eq 0 "$rc" "protect exit status"
    [[ ! -e /home/$P_OTHER/.config/pam-totp/state.toml ]] || fail "the home copy is still there"
    assert_eq "root:root 600" "$(stat -c '%U:%G %a' "$P_DIR/store/$P_OTHER.toml")" "the protected copy"
    # Section 3 enrolled the other test users in their homes: --all-users moves them all.
    out=$("$PAM_TOTP_CLI" protect --all-users) || fail "protect --all-users failed: $out"
    echo "$out"
    [[ $out == *"$U_ALICE: moved"* ]] || fail "protect --all-users did not move $U_ALICE"
    [[ $out == *"$P_OTHER: already in"* ]] || fail "protect --all-users does not see $P_OTHER's"
    [[ ! -e /home/$U_ALICE/.config/pam-totp/state.toml && -f $P_DIR/store/$U_ALICE.toml ]] ||
        fail "$U_ALICE's enrollment was not moved"
    out=$("$PAM_TOTP_CLI" protect --all-users) || fail "protect --all-users (again) failed: $out"
    [[ $out == *"0 enrollment(s) moved"* ]] || fail "protect --all-users moved something again: $out"
    fresh_step 10
    sudo_ok "$P_OTHER" "${PASSWORD[$P_OTHER]}" "$(totp_at "$P_OTHER" "$NOW")" yes
}

# HOTP with protected storage: the helper makes TOTP secrets only, so a user is sent to root
# for `enroll --hotp` and `resync`; root provisions the token from its seed, and then sudo
# (the module reading root's storage) and status through the helper work for it.
p_hotp() {
    local out rc=0 seed
    out=$(as_user "$P_USER" "$P_CLI" enroll --hotp </dev/null 2>&1) || rc=$?
    echo "$out"
    assert_eq 1 "$rc" "enroll --hotp through the helper"
    [[ $out == *"HOTP tokens are enrolled and resynchronised by an administrator"* ]] ||
        fail "enroll --hotp through the helper does not send the user to root"
    seed=$(head -c 20 /dev/urandom | base32 -w0 | tr -d '=')
    printf '%s' "$seed" | "$PAM_TOTP_CLI" --user "$P_USER" enroll --hotp --counter 7 --secret - \
        --no-confirm --json >/dev/null || fail "root could not provision the HOTP token"
    out=$(as_user "$P_USER" "$P_CLI" status) || fail "status failed: $out"
    echo "$out"
    [[ $out == *"HOTP (counter-based)"*"counter 7"* ]] || fail "status does not show the HOTP counter"
    sudo_ok "$P_USER" "${PASSWORD[$P_USER]}" "$(oathtool --hotp -b -c 8 "$seed")" yes
    sudo_refused "$P_USER" "${PASSWORD[$P_USER]}" "$(oathtool --hotp -b -c 8 "$seed")" yes
    rc=0
    out=$(printf '1\n2\n' | as_user "$P_USER" "$P_CLI" resync 2>&1) || rc=$?
    assert_eq 1 "$rc" "resync through the helper"
    [[ $out == *"by an administrator"* ]] || fail "resync through the helper does not send the user to root: $out"
}

P_SKIP=""
p_setup
if [[ -n $P_SKIP ]]; then
    note "protected storage: skipped: $P_SKIP"
    p_skip_all "$P_SKIP"
else
    note "protected storage: $P_CONF -> $P_DIR/store, setuid helper $P_HELPER"
    check "protected: enroll through the setuid helper with a code from oathtool" p_enroll
    check "protected: the state file is root's; the user cannot read, list, rename or delete it" p_root_only
    check "protected: status through the helper, never the secret" p_status
    check "protected: sudo asks for the code and accepts it" p_sudo_ok
    check "protected: sudo refuses the same code again" p_sudo_replay
    check "protected: recovery-codes and disable without, with a wrong, with a replayed code: refused and counted" \
        p_changes_refused
    check "protected: recovery-codes with a current code works" p_recovery_codes
    check "protected: the user cannot act for another user" p_other_user
    check "protected: hostile invocations of the helper are refused cleanly" p_hostile
    check "protected: nothing of the secret in ps, /proc, logs or user-readable files" p_no_secret_visible
    check "protected: disable with a recovery code works" p_disable
    check "protected: protect moves a home enrollment and the same app code still works" p_protect
    check "protected: HOTP: root provisions the token, sudo and status work, enroll --hotp and resync are root's" p_hotp
fi
