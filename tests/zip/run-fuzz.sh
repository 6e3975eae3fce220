#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the zip writer's name handling (fuzz/fuzz_zipnames.c) for a bounded
# time; seeds from tests/zip/make-fuzz-seeds.py.
#   tests/zip/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_zipnames 4096 python3 "$src/tests/zip/make-fuzz-seeds.py"
