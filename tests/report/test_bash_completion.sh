#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bash completion loads in a plain `bash -c` and completes subcommands, options (read from the
# binary's --help) and option values. usage: test_bash_completion.sh LAMBDAPACK SOURCE_ROOT
LP=$(readlink -f "$1") ROOT=$(readlink -f "$2")
exec bash -c '
LP=$1
source "$2/completions/lambdapack.bash" || exit 1
fails=0 passes=0
complete -p lambdapack | grep -q -- "-F _lambdapack" || { echo "FAIL: not registered"; exit 1; }
# expect WANT... when completing the last of WORDS
t() {
	local want=$1; shift
	COMP_WORDS=("$LP" "$@"); COMP_CWORD=$(($# ))
	COMPREPLY=()
	_lambdapack
	local got="${COMPREPLY[*]}"
	if [[ $got == "$want" ]]; then passes=$((passes + 1)); else echo "FAIL: $* -> [$got], want [$want]"; fails=$((fails + 1)); fi
}
t "pack" pa
t "container" cont
t "analyze" an
t "--output" pack --outp
t "--fail-on" analyze --fail-o
t "error" analyze --fail-on e
t "x86_64 arm64" container --arch ""
t "--compression" container --compr
t "--color=always" --color=al
t "analyze" help ana
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
' bash "$LP" "$ROOT"
