# shellcheck shell=bash
# A very small test framework for tests/e2e/run.sh.
#
#   check "name" cmd args...   run one case; "ok N - name" or "FAIL N - name" (+ its output)
#   record "name" rc [details] record a result the caller computed itself
#   skip  "name" "reason"      record a case that does not apply in this mode
#   harness_fail "what"        a setup step failed: counts as a failure, prints the summary, exits 1
#   summary                    prints the closing line "N passed, M failed"; returns 1 if any failed
#
# A case runs in a subshell with `set -e` in force (the subshell is deliberately NOT part of an
# `if`/`||` condition: bash ignores errexit inside anything that is), so a case is a plain
# function whose first failing command fails it. Its stdout+stderr go to its own log file,
# shown (last E2E_FAIL_TAIL lines) only when it fails, or always with E2E_VERBOSE=1.
# Cases run in subshells, so they cannot change the main script's variables.

E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_CASE_NO=0
E2E_FAILED_NAMES=()
: "${E2E_FAIL_TAIL:=40}"
: "${E2E_VERBOSE:=0}"

# Where the per-case logs go; run.sh points this at its temp dir.
: "${E2E_CASE_LOG_DIR:=/tmp}"

_e2e_show_log() {
    local log=$1 n=${2:-$E2E_FAIL_TAIL}
    [[ -s $log ]] || return 0
    tail -n "$n" -- "$log" | sed 's/^/    | /'
}

check() {
    local name=$1
    shift
    E2E_CASE_NO=$((E2E_CASE_NO + 1))
    local log
    log=$(printf '%s/case-%03d.log' "$E2E_CASE_LOG_DIR" "$E2E_CASE_NO")
    printf '# case %d: %s\n# cmd: %s\n' "$E2E_CASE_NO" "$name" "$*" >"$log"
    local rc=0
    set +e
    (
        set -e
        "$@"
    ) >>"$log" 2>&1 </dev/null
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        printf 'ok %d - %s\n' "$E2E_CASE_NO" "$name"
        if [[ $E2E_VERBOSE == 1 ]]; then _e2e_show_log "$log" 1000; fi
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("$name")
        printf 'FAIL %d - %s (exit %d; %s)\n' "$E2E_CASE_NO" "$name" "$rc" "${log##*/}"
        _e2e_show_log "$log"
    fi
    return 0
}

# record "name" rc [details]: a result computed by the caller (for checks that cannot use a
# log file, e.g. the one verifying that the work dir holding the logs is gone).
record() {
    E2E_CASE_NO=$((E2E_CASE_NO + 1))
    if [[ $2 -eq 0 ]]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        printf 'ok %d - %s\n' "$E2E_CASE_NO" "$1"
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("$1")
        printf 'FAIL %d - %s\n' "$E2E_CASE_NO" "$1"
    fi
    if [[ -n ${3:-} && ($2 -ne 0 || $E2E_VERBOSE == 1) ]]; then printf '%s\n' "$3" | sed 's/^/    | /'; fi
    return 0
}

skip() {
    E2E_CASE_NO=$((E2E_CASE_NO + 1))
    E2E_SKIPPED=$((E2E_SKIPPED + 1))
    printf 'skip %d - %s (%s)\n' "$E2E_CASE_NO" "$1" "$2"
}

# Something the cases depend on could not be set up: no point going on. Runs the caller's
# e2e_cleanup_hook (if defined) first, so that the closing line stays the last line printed.
harness_fail() {
    E2E_CASE_NO=$((E2E_CASE_NO + 1))
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILED_NAMES+=("setup: $1")
    printf 'FAIL %d - setup: %s\n' "$E2E_CASE_NO" "$1"
    if [[ -n ${2:-} ]]; then _e2e_show_log "$2"; fi
    if declare -F e2e_cleanup_hook >/dev/null; then e2e_cleanup_hook || true; fi
    summary || true
    exit 1
}

# shellcheck disable=SC2034 # read by the caller's exit trap
E2E_SUMMARY_DONE=0
summary() {
    # shellcheck disable=SC2034
    E2E_SUMMARY_DONE=1
    echo
    if [[ $E2E_SKIPPED -gt 0 ]]; then
        printf '%d case(s) skipped (not applicable in this mode)\n' "$E2E_SKIPPED"
    fi
    if [[ $E2E_FAILED -gt 0 ]]; then
        if [[ -z ${E2E_LOG_DIR:-} ]]; then
            printf '(set E2E_LOG_DIR=/some/dir to keep the case logs, sshd logs and PAM files)\n'
        fi
        printf 'failed:\n'
        printf '  - %s\n' "${E2E_FAILED_NAMES[@]}"
    fi
    # The closing line, exactly "N passed, M failed", is what CI reads: keep it last.
    printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
    [[ $E2E_FAILED -eq 0 ]]
}

# --- assertion helpers (for use inside cases; each fails the case with a message) ---

fail() {
    echo "ASSERTION FAILED: $*" >&2
    return 1
}

assert_eq() { # expected actual what
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_file_contains() { # file fixed-string what
    grep -qF -- "$2" "$1" || fail "${3:-$1} does not contain '$2'"
}

assert_file_lacks() { # file fixed-string what
    if grep -qF -- "$2" "$1"; then fail "${3:-$1} unexpectedly contains '$2'"; fi
}
