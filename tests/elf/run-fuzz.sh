#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the ELF reader and stripper for a bounded time; seeds are the test
# fixtures (tests/elf/make-fuzz-seeds.sh).
#   tests/elf/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_elf 131072 sh "$src/tests/elf/make-fuzz-seeds.sh"
