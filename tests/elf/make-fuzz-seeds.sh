#!/bin/sh
# SPDX-License-Identifier: MIT
# Seeds for fuzz/fuzz_elf.c: the test fixtures (make-fixtures.sh) of at most
# 128 KiB; big seeds slow every iteration, the small ones cover the formats.
#   tests/elf/make-fuzz-seeds.sh DIR
set -eu
dir=${1:?usage: make-fuzz-seeds.sh DIR}
fixtures=$dir.fixtures
sh "$(dirname "$0")/make-fixtures.sh" "$fixtures" >/dev/null
for f in "$fixtures"/*; do
	case $f in *.c|*.bin) continue ;; esac
	[ "$(wc -c < "$f")" -le 131072 ] && cp "$f" "$dir/"
done
exit 0
