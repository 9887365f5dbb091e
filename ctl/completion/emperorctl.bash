# bash completion for emperorctl (installed by `make install` into
# share/bash-completion/completions/). Vassal names come from `emperorctl status`.

_emperorctl_vassals()
{
	local opts=()
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--control=* | --dir=*) opts+=("${COMP_WORDS[i]}") ;;
		--control | --dir) opts+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
		esac
	done
	emperorctl "${opts[@]}" --timeout 2 status 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_emperorctl()
{
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="status reload chain-reload stop start reopen-logs metrics top logs"
	local options="--json --control --dir --timeout --iterations --all --follow --lines --help --version"

	case $prev in
	--control) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--timeout | --iterations | --lines | -n) return ;;
	esac
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--control | --dir | --timeout | --iterations | --lines | -n) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$options -f -n" -- "$cur"))
	elif [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
	else
		case $cmd in
		status | reload | chain-reload | stop | start | logs)
			COMPREPLY=($(compgen -W "$(_emperorctl_vassals)" -- "$cur")) ;;
		esac
	fi
}
complete -F _emperorctl emperorctl
