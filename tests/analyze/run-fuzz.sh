#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz analyze's readers (zip, tar, docker-archive, oci-archive, layouts) for
# a bounded time; seeds from tests/analyze/make-seeds.py.
#   tests/analyze/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_analyze 65536 python3 "$src/tests/analyze/make-seeds.py"
