# SPDX-License-Identifier: MIT
# bash completion for lambdapack (installed by meson into bash-completion's completions directory).
# Options are read from `lambdapack COMMAND --help`, so they follow the binary that is installed.

_lambdapack()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmds="pack analyze container version help" cmd="" i opts

	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version --color=auto --color=always --color=never" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return
	fi
	case $cmd in
	help) COMPREPLY=($(compgen -W "pack analyze container version" -- "$cur")); return ;;
	version) return ;;
	esac
	case $prev in
	--arch) COMPREPLY=($(compgen -W "x86_64 arm64" -- "$cur")); return ;;
	--fail-on) COMPREPLY=($(compgen -W "error warning" -- "$cur")); return ;;
	--compression) COMPREPLY=($(compgen -W "gzip zstd none" -- "$cur")); return ;;
	--dedupe) COMPREPLY=($(compgen -W "off binaries all" -- "$cur")); return ;;
	--links) COMPREPLY=($(compgen -W "materialize refuse materialize-all" -- "$cur")); return ;;
	--fallback) COMPREPLY=($(compgen -W "container none" -- "$cur")); return ;;
	--color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
	--runtime|--top|--level|-l|--threads|-j|--tag|--handler|--env|--image|--max-unzipped|--max-zipped|--min-efficiency|--layer-max|--max-expand|--exclude|--prune-pattern)
		return ;;
	esac
	if [[ $cur == -* ]]; then
		opts=$("${COMP_WORDS[0]}" "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
		COMPREPLY=($(compgen -W "$opts --color" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _lambdapack lambdapack
