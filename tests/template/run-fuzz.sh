#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the template readers (YAML caps, SAM, serverless.yml, handler check)
# for a bounded time; seeds from tests/template/make-fuzz-seeds.sh.
#   tests/template/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_template 65536 sh "$src/tests/template/make-fuzz-seeds.sh"
