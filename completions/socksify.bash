# bash completion for socksify(1). Installed as
# /usr/share/bash-completion/completions/socksify (loaded on demand by bash-completion).
#
# bash splits words at ':' and '=' (COMP_WORDBREAKS), so a proxy URI would be several words:
# the words are taken whole (bash-completion's _init_completion -n :=), and before handing
# over to the command's own completion the whole words are what it sees.

_socksify() {
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s -n := || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=""
        ((cword > 0)) && prev=${words[cword - 1]}
    fi

    local flags="-x --proxy --proxy-cacert --chain --password-file --auth --gssapi-service
        --gssapi-protection --dns -r --rule --fake-net4 --fake-net6 -v --verbose -q --quiet
        --log-file --timeout --pipelining --listen --mode -c --config --strict -h --help
        --version"
    local with_value=" -x --proxy --proxy-cacert --chain --password-file --auth --gssapi-service
        --gssapi-protection --dns -r --rule --fake-net4 --fake-net6 --log-file --timeout
        --pipelining --listen --mode -c --config "
    with_value=${with_value//$'\n'/ }

    # The option whose value is at the cursor: "--chain" (also as --chain=...), or the last of
    # several short flags written together ("-vx" takes a value, as -x does).
    local opt=$prev
    if [[ $prev == -[a-zA-Z]* && $prev != --* && ${#prev} -gt 2 ]]; then
        opt=-${prev: -1}
    fi
    if [[ $split == false && $cur == --*=* ]]; then
        opt=${cur%%=*}
        cur=${cur#*=}
    fi
    case $opt in
        --chain) COMPREPLY=($(compgen -W "failover strict" -- "$cur")); return ;;
        --dns) COMPREPLY=($(compgen -W "remote local" -- "$cur")); return ;;
        --auth) COMPREPLY=($(compgen -W "auto gssapi" -- "$cur")); return ;;
        --gssapi-protection)
            COMPREPLY=($(compgen -W "integrity confidentiality clear" -- "$cur")); return ;;
        --pipelining) COMPREPLY=($(compgen -W "auto on off" -- "$cur")); return ;;
        --listen) COMPREPLY=($(compgen -W "auto proxy local" -- "$cur")); return ;;
        --mode) COMPREPLY=($(compgen -W "auto preload supervisor" -- "$cur")); return ;;
        --password-file | --proxy-cacert | --log-file | -c | --config)
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
        -x | --proxy)
            COMPREPLY=($(compgen -W "socks5:// socks5h:// socks4:// socks4a:// http:// https://" \
                -- "$cur"))
            compopt -o nospace 2>/dev/null
            # Readline replaces only the part after the last ':' of the word.
            if declare -F __ltrim_colon_completions >/dev/null; then
                __ltrim_colon_completions "$cur"
            fi
            return ;;
        -r | --rule)
            COMPREPLY=($(compgen -W "direct proxy reject default" -- "$cur")); return ;;
        --fake-net4 | --fake-net6 | --timeout | --gssapi-service) return ;;
    esac

    # Find the first word that is not an option or an option's value: a subcommand (check,
    # env, off) or the command to run, whose own completion takes over from there.
    local i=1 word
    while ((i < cword)); do
        word=${words[i]}
        case $word in
            --) ((i++)); break ;;
            --*=*) ;;
            --*) [[ $with_value == *" $word "* ]] && ((i++)) ;;
            -?*)
                # Short flags together: the last one may take the next word as its value.
                [[ $with_value == *" -${word: -1} "* ]] && ((i++)) ;;
            *) break ;;
        esac
        ((i++))
    done

    if ((i < cword)); then
        case ${words[i]} in
            check | env)
                [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$flags" -- "$cur"))
                return ;;
            off) return ;;
        esac
        # The command being run: complete its arguments as bash would without socksify, on
        # the whole words (so that its completion counts them as bash would).
        if declare -F _command_offset >/dev/null; then
            COMP_WORDS=("${words[@]}")
            COMP_CWORD=$cword
            _command_offset "$i"
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "check env off" -- "$cur") $(compgen -c -- "$cur"))
    fi
}
complete -F _socksify socksify
