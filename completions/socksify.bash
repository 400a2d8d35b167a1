# bash completion for socksify(1). Installed as
# /usr/share/bash-completion/completions/socksify (loaded on demand by bash-completion).

_socksify() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local flags="-x --proxy --proxy-cacert --chain --password-file --auth --gssapi-service --gssapi-protection
        --dns -r --rule --fake-net4 --fake-net6
        -v --verbose -q --quiet --log-file --timeout --pipelining --listen --mode -c --config
        --strict -h --help --version"
    local with_value="-x --proxy --proxy-cacert --chain --password-file --auth --gssapi-service
        --gssapi-protection --dns -r --rule --fake-net4
        --fake-net6 --log-file --timeout --pipelining --listen --mode -c --config"

    # The value of the option before the cursor.
    case $prev in
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
            COMPREPLY=($(compgen -W "socks5:// socks5h:// socks4:// socks4a:// http:// https://" -- "$cur")); compopt -o nospace 2>/dev/null
            return ;;
        -r | --rule)
            COMPREPLY=($(compgen -W "direct proxy reject default" -- "$cur")); return ;;
        --fake-net4 | --fake-net6 | --timeout | --gssapi-service) return ;;
    esac

    # Find the first word that is not an option or an option's value: a subcommand (check,
    # env, off) or the command to run, whose own completion takes over from there.
    local i=1 word
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        case $word in
            --) ((i++)); break ;;
            --*=*) ;;
            -*)
                if [[ " ${with_value//$'\n'/ } " == *" $word "* ]]; then ((i++)); fi ;;
            *) break ;;
        esac
        ((i++))
    done

    if ((i < COMP_CWORD)); then
        case ${COMP_WORDS[i]} in
            check)
                [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$flags" -- "$cur"))
                return ;;
            env)
                [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$flags" -- "$cur"))
                return ;;
            off) return ;;
        esac
        # The command being run: complete its arguments as bash would without socksify.
        if declare -F _command_offset >/dev/null; then
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
