#!/bin/bash
# The bash completion, run as bash-completion runs it: option names, option values, the
# subcommands, and the completion of the command being run handed to that command's own.
set -u
src=$1
[ -r /usr/share/bash-completion/bash_completion ] || {
  echo "bash-completion is not installed (apt-get install bash-completion)" >&2; exit 1; }
. /usr/share/bash-completion/bash_completion
. "$src/completions/socksify.bash"
complete -W "alpha beta" fakeprog
fails=0
expect() {  # expect "WORDS..." "EXPECTED REPLY"
  local want=$1; shift
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  _socksify
  local got=" ${COMPREPLY[*]} "
  for w in $want; do
    if [[ $got != *" $w "* ]]; then
      echo "FAIL: [$*] offered [${COMPREPLY[*]}], missing $w"; fails=1
    fi
  done
}
expect "--chain" socksify --ch
expect "failover strict" socksify --chain ""
expect "on off" socksify --pipelining o
expect "remote" socksify --dns r
expect "--quiet" socksify --qu
expect "check" socksify -x socks5h://a:1 ch
expect "socks4:// socks4a:// http://" socksify -x ""
expect "env" socksify -v en
expect "--timeout" socksify -v check --tim
expect "alpha" socksify -x socks5h://a:1 -r "direct 10.0.0.0/8" fakeprog al
expect "beta" socksify -vq -- fakeprog b
exit $fails
