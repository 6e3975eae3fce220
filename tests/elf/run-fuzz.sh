#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run the ELF fuzzer for a bounded time; fail on any crash, leak or
# sanitizer report.
#   tests/elf/run-fuzz.sh BUILD_DIR SECONDS
# BUILD_DIR is configured (CC=clang, -Dfuzz=true) if it does not exist yet.
# The seed corpus is the test fixtures (tests/elf/make-fixtures.sh).
set -eu

build=${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}
secs=${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}
src=$(cd "$(dirname "$0")/../.." && pwd)

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true -Dtests=disabled >/dev/null
fi
ninja -C "$build" -j2 fuzz/fuzz_elf >/dev/null

seeds=$build/fuzz-seeds
corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts/
mkdir -p "$seeds" "$corpus" "$artifacts"
if [ ! -f "$seeds/.done" ]; then
	sh "$src/tests/elf/make-fixtures.sh" "$build/fuzz-fixtures" >/dev/null
	for f in "$build"/fuzz-fixtures/*; do
		case $f in *.c|*.bin) continue ;; esac
		# Big seeds slow every iteration; the small ones cover the formats.
		[ "$(wc -c < "$f")" -le 131072 ] && cp "$f" "$seeds/"
	done
	touch "$seeds/.done"
fi

log=$build/fuzz.log
set +e
"$build/fuzz/fuzz_elf" -max_total_time="$secs" -max_len=131072 -timeout=20 \
	-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
	"$corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
tail -n 15 "$log"
if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
	echo "run-fuzz: FAILED (exit $rc), see $log and $artifacts" >&2
	exit 1
fi
echo "run-fuzz: ok, no crashes in ${secs}s"
