#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lambdapack(1) renders with man -l without a groff warning, has a section per subcommand, and
# names every long option each subcommand's --help lists. usage: test_man.sh LAMBDAPACK SOURCE_ROOT
set -u
LP=$1 PAGE=$2/docs/lambdapack.1
fails=0
err=$(LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings=all -E UTF-8 -l "$PAGE" 2>&1 >/dev/null)
if [ -n "$err" ]; then echo "FAIL: man -l warns: $err"; fails=$((fails + 1)); fi
text=$(LC_ALL=C.UTF-8 MANWIDTH=100 man -E UTF-8 -l "$PAGE" 2>/dev/null | col -b)
for s in NAME SYNOPSIS COMMANDS "   pack" "   analyze" "   container" "JSON REPORT" "EXIT STATUS" ENVIRONMENT; do
	grep -q "^$s\$" <<<"$text" || { echo "FAIL: no section '$s'"; fails=$((fails + 1)); }
done
for c in pack analyze container; do
	for o in $("$LP" "$c" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -q -- "$o" <<<"$text" || { echo "FAIL: $c's $o is not in the man page"; fails=$((fails + 1)); }
	done
done
for v in NO_COLOR FORCE_COLOR SOURCE_DATE_EPOCH --color; do
	grep -q -- "$v" <<<"$text" || { echo "FAIL: $v is not in the man page"; fails=$((fails + 1)); }
done
echo "man page: $fails problems"
[ $fails -eq 0 ]
