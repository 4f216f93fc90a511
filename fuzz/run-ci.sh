#!/usr/bin/env bash
# Runs every fuzz target that `cargo +nightly fuzz list` reports (new targets are included
# without editing this file) for FUZZ_SECONDS each (default 20), starting from a fresh
# corpus and the seeds in fuzz/seeds/<target>/, and fails on the first crash, panic,
# sanitizer report, leak, timeout (one input taking over 10 s) or out-of-memory. tests/run.sh
# runs it, so CI does.
#
#   fuzz/run-ci.sh                 # 20 s per target
#   FUZZ_SECONDS=60 fuzz/run-ci.sh
#   FUZZ_SECONDS=0 fuzz/run-ci.sh  # skip
#
# Needs the nightly toolchain and cargo-fuzz (.ci/run installs cargo-fuzz); where either is
# missing it says SKIPPED and why, and succeeds. A dictionary is used when
# fuzz/dicts/<target>.dict exists, or as listed in dict_for below.
set -euo pipefail
cd "$(dirname "$0")"

die() {
    printf 'fuzz/run-ci.sh: %s\n' "$*" >&2
    exit 1
}
seconds=${FUZZ_SECONDS:-20}
[[ $seconds =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS must be a number of seconds, not '$seconds'"
if ((seconds == 0)); then
    echo "SKIPPED: fuzzing (FUZZ_SECONDS=0)"
    exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIPPED: fuzzing: no nightly Rust toolchain here (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "SKIPPED: fuzzing: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

dict_for() { # target -> the dictionary file, if any
    if [[ -f dicts/$1.dict ]]; then
        echo "dicts/$1.dict"
        return
    fi
    case $1 in
        state_parse) echo dicts/state.dict ;;
        enrollment_parse) echo dicts/enrollment.dict ;;
        config_parse | module_args) echo dicts/options.dict ;;
    esac
}

mapfile -t targets < <(cargo +nightly fuzz list)
((${#targets[@]})) || die "cargo +nightly fuzz list reports no target"

start=$SECONDS
echo "==> cargo +nightly fuzz build (${#targets[@]} targets: ${targets[*]})"
cargo +nightly fuzz build
echo "    built in $((SECONDS - start)) s"

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
summary=()
for target in "${targets[@]}"; do
    corpus=$work/corpus/$target
    mkdir -p -- "$corpus" "artifacts/$target"
    inputs=("$corpus")
    [[ -d seeds/$target ]] && inputs+=("seeds/$target")
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    dict=$(dict_for "$target")
    [[ -n $dict ]] && flags+=(-dict="$dict")
    log=$work/$target.log
    echo "==> fuzz $target for $seconds s"
    if ! cargo +nightly fuzz run "$target" "${inputs[@]}" -- "${flags[@]}" >"$log" 2>&1; then
        tail -n 60 -- "$log" >&2
        crash=$(grep -o "artifacts/$target/[^ ]*" "$log" | tail -n 1 || true)
        die "FAILED: fuzz target $target found a problem (output above)${crash:+; the input is fuzz/$crash
    reproduce: (cd fuzz && cargo +nightly fuzz run $target $crash)}"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    summary+=("$(printf '%-14s %10s executions, %7s exec/s, no crash' "$target" "${execs:-?}" "${rate:-?}")")
done
echo "==> fuzzing: ${#targets[@]} targets x $seconds s, $((SECONDS - start)) s in all (build included)"
printf '    %s\n' "${summary[@]}"
