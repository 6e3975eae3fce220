#!/usr/bin/env bash
# The whole test suite: install what is missing, build a normal and an
# ASan+UBSan build, run unit and integration tests in both, run the fuzzers
# for a bounded time, and print one closing line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }

fuzz_seconds=${LP_FUZZ_SECONDS:-60}
passed=0
failed=0
failures=()

step() {  # step NAME CMD...
    local name=$1; shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "*** FAILED: $name"
    fi
}

count_meson() {  # count_meson BUILDDIR: add meson's per-test results to the totals
    local log=$1/meson-logs/testlog.json ok bad
    [[ -f $log ]] || return 0
    ok=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(1 for t in r if t["result"] in ("OK","EXPECTEDFAIL")))' "$log")
    bad=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(1 for t in r if t["result"] not in ("OK","EXPECTEDFAIL","SKIP")))' "$log")
    passed=$((passed + ok)); failed=$((failed + bad))
    if ((bad)); then failures+=("$(basename "$1"): $bad meson test(s)"); fi
}

build() {  # build DIR [meson args]
    local dir=$1; shift
    if [[ -d $dir ]]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi && ninja -C "$dir"
}

step "build (release)" build build-test --buildtype=debugoptimized
if [[ -x build-test/cli/lambdapack ]]; then
    meson test -C build-test --print-errorlogs --num-processes 2 || true
    count_meson build-test
fi

step "build (asan+ubsan)" build build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
if [[ -x build-asan/cli/lambdapack ]]; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 || true
    count_meson build-asan
fi

if command -v clang >/dev/null && [[ -f fuzz/meson.build ]]; then
    step "build (fuzz)" env CC=clang bash -c 'if [[ -d build-fuzz ]]; then meson setup --reconfigure build-fuzz -Dfuzz=true -Db_lundef=false -Dtests=disabled >/dev/null; else meson setup build-fuzz -Dfuzz=true -Db_lundef=false -Dtests=disabled >/dev/null; fi && ninja -C build-fuzz'
    for f in tests/*/run-fuzz.sh; do
        [[ -f $f ]] || continue
        step "fuzz $(basename "$(dirname "$f")") ${fuzz_seconds}s" bash "$f" "$root/build-fuzz" "$fuzz_seconds"
    done
fi

echo
if ((failed)); then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
