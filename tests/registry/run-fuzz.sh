#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the registry client's parsers (fuzz/fuzz_registry.c) for a bounded
# time; seeds from tests/registry/make-fuzz-seeds.py.
#   tests/registry/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_registry 512 python3 "$src/tests/registry/make-fuzz-seeds.py"
