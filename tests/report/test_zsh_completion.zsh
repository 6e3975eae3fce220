#!/usr/bin/env zsh
# SPDX-License-Identifier: MIT
# The zsh completion, as a person uses it: an interactive zsh on a pseudo-terminal (zpty) with
# compinit and completions/_lambdapack on fpath; keys are typed, TAB pressed, and the command
# line read back through a widget. usage: test_zsh_completion.zsh LAMBDAPACK SOURCE_ROOT
emulate -L zsh
zmodload zsh/zpty || exit 77
LP=${1:A} ROOT=${2:A}
TMPD=$(mktemp -d) || exit 1
trap 'zpty -d z 2>/dev/null; rm -rf $TMPD' EXIT
mkdir $TMPD/bin && ln -s $LP $TMPD/bin/lambdapack
fails=0 passes=0

zpty z zsh -f -i
zpty -w z "PS1='%% '; fpath=($ROOT/completions \$fpath); path=($TMPD/bin \$path); autoload -Uz compinit; compinit -u -d $TMPD/zcd"
zpty -w z "dump() { print -rn -- \"\$BUFFER\" > $TMPD/buf; BUFFER=; zle -M DUMPED\$((++n)) }; n=0; zle -N dump; bindkey '^P' dump; print READY"
zpty -r z line '*READY*'

k=0
# complete TYPED (a TAB after it) and expect the line to read WANT
case_() {
	local typed=$1 want=$2 got
	zpty -w -n z "$typed"$'\t'
	# Let the completion finish before the line is read back: a second key is only read after it.
	zpty -w -n z $'\x10'
	zpty -r z line "*DUMPED$((++k))*"
	got=$(<$TMPD/buf)
	if [[ $got == $want ]]; then
		(( passes++ ))
	else
		print -r -- "FAIL: '$typed<TAB>' gave '$got', want '$want'"
		(( fails++ ))
	fi
}

case_ 'lambdapack pa' 'lambdapack pack '
case_ 'lambdapack cont' 'lambdapack container '
case_ 'lambdapack pack --outp' 'lambdapack pack --output '
case_ 'lambdapack analyze --fail-o' 'lambdapack analyze --fail-on '
case_ 'lambdapack analyze --fail-on e' 'lambdapack analyze --fail-on error '
case_ 'lambdapack container --compr' 'lambdapack container --compression '
case_ 'lambdapack help ana' 'lambdapack help analyze '
print "$passes passed, $fails failed"
(( fails == 0 ))
