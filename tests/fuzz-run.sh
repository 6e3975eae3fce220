#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run one libFuzzer target for a bounded time; fail on any crash, leak or
# sanitizer report. The tests/*/run-fuzz.sh scripts call this with their
# target and seed generator.
#   tests/fuzz-run.sh BUILD_DIR SECONDS TARGET MAX_LEN SEED_CMD...
# BUILD_DIR is configured (CC=clang, -Dfuzz=true) if it does not exist yet.
# SEED_CMD is run once, with the seed directory appended as its last argument.
#
# Inputs: the committed corpus fuzz/corpus/TARGET (read only here), the
# build-dir corpus BUILD_DIR/TARGET-corpus (where libFuzzer writes new finds,
# the first directory it is given) and the seeds. Merge finds back into the
# committed corpus with tests/fuzz-merge.sh (see docs/fuzzing.md).
set -eu

build=${1:?usage: fuzz-run.sh BUILD_DIR SECONDS TARGET MAX_LEN SEED_CMD...}
secs=${2:?usage: fuzz-run.sh BUILD_DIR SECONDS TARGET MAX_LEN SEED_CMD...}
target=${3:?usage: fuzz-run.sh BUILD_DIR SECONDS TARGET MAX_LEN SEED_CMD...}
max_len=${4:?usage: fuzz-run.sh BUILD_DIR SECONDS TARGET MAX_LEN SEED_CMD...}
shift 4
src=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true -Dtests=disabled >/dev/null
fi
ninja -C "$build" -j2 "fuzz/$target" >/dev/null

seeds=$build/$target-seeds
corpus=$build/$target-corpus
committed=$src/fuzz/corpus/$target
artifacts=$build/$target-artifacts/
mkdir -p "$seeds" "$corpus" "$artifacts"
[ -d "$committed" ] || committed=
if [ ! -f "$seeds/.done" ]; then
	"$@" "$seeds"
	touch "$seeds/.done"
fi

log=$build/$target.log
set +e
"$build/fuzz/$target" -max_total_time="$secs" -max_len="$max_len" -timeout=20 \
	-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
	"$corpus" ${committed:+"$committed"} "$seeds" >"$log" 2>&1
rc=$?
set -e
tail -n 15 "$log"
if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
	echo "run-fuzz: FAILED (exit $rc), see $log and $artifacts" >&2
	exit 1
fi
echo "run-fuzz: ok, no crashes in ${secs}s"
