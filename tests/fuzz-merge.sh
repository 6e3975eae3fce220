#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fold what a fuzzer found into its committed corpus: libFuzzer -merge=1 adds
# only the inputs from the build-dir corpus (and the seeds) that reach new
# coverage, so fuzz/corpus/TARGET grows slowly and stays small.
#   tests/fuzz-merge.sh BUILD_DIR TARGET [MAX_LEN]
# Run tests/TARGET_DIR/run-fuzz.sh first; commit fuzz/corpus/TARGET after.
# With LP_FUZZ_REMINIMIZE=1 the corpus is rebuilt from scratch (minimized
# over everything: committed corpus, build-dir corpus, seeds).
set -eu
build=${1:?usage: fuzz-merge.sh BUILD_DIR TARGET [MAX_LEN]}
target=${2:?usage: fuzz-merge.sh BUILD_DIR TARGET [MAX_LEN]}
max_len=${3:-65536}
src=$(cd "$(dirname "$0")/.." && pwd)
committed=$src/fuzz/corpus/$target
exe=$build/fuzz/$target
[ -x "$exe" ] || { echo "fuzz-merge: no $exe; run the target's run-fuzz.sh first" >&2; exit 1; }
mkdir -p "$committed"
before=$(ls "$committed" | wc -l)
if [ "${LP_FUZZ_REMINIMIZE:-0}" = 1 ]; then
	fresh=$build/$target-minimized
	rm -rf "$fresh"
	mkdir -p "$fresh"
	"$exe" -merge=1 -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 "$fresh" "$committed" \
		"$build/$target-corpus" "$build/$target-seeds" >"$build/$target-merge.log" 2>&1
	rm -f "$committed"/*
	cp "$fresh"/* "$committed"/
else
	"$exe" -merge=1 -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 "$committed" \
		"$build/$target-corpus" "$build/$target-seeds" >"$build/$target-merge.log" 2>&1
fi
after=$(ls "$committed" | wc -l)
echo "fuzz-merge: $target: $before -> $after inputs, $(du -sh "$committed" | cut -f1) in fuzz/corpus/$target"
