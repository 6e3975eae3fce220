#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz `container --base` import (docker-archive, index.json, manifest) for a
# bounded time; seeds from tests/oci/make-base-seeds.py.
#   tests/oci/run-fuzz.sh BUILD_DIR SECONDS
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
exec sh "$src/tests/fuzz-run.sh" "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" "${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}" \
	fuzz_base 65536 python3 "$src/tests/oci/make-base-seeds.py"
