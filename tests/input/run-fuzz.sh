#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the input layer (archives staged to disk, directory trees with links)
# for a bounded time; seeds from tests/input/make-fuzz-seeds.py.
#   tests/input/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_input 65536 python3 "$src/tests/input/make-fuzz-seeds.py"
