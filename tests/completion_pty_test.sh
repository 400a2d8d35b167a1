#!/bin/bash
# The completions in a real interactive shell on a pseudo-terminal (tmux): keys are typed, Tab
# is pressed, and what the terminal shows is read back. Checks the cases bash's word
# splitting at ':' and '=' used to break (a proxy URI before the command or an option,
# --chain=, -vx).
#   completion_pty_test.sh SOURCE_DIR BUILD_TOOLS_DIR bash|zsh
set -u
src=$1 tools=$2 shell=$3
command -v tmux >/dev/null || { echo "tmux is not installed (apt-get install tmux)" >&2; exit 1; }
command -v "$shell" >/dev/null || { echo "$shell is not installed" >&2; exit 1; }
command -v git >/dev/null || { echo "git is not installed" >&2; exit 1; }
work=$(mktemp -d)
sock="sfy-completion-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$work"' EXIT

if [ "$shell" = bash ]; then
  [ -r /usr/share/bash-completion/bash_completion ] || {
    echo "bash-completion is not installed (apt-get install bash-completion)" >&2; exit 1; }
  cat >"$work/rc" <<EOF
PS1='PROMPT\$ '
. /usr/share/bash-completion/bash_completion
. $src/completions/socksify.bash
PATH=$tools:\$PATH
bind 'set bell-style none'
EOF
  start="bash --noprofile --rcfile $work/rc -i"
else
  mkdir -p "$work/zdot"
  cat >"$work/zdot/.zshrc" <<EOF
PS1='PROMPT\$ '
fpath=($src/completions \$fpath)
autoload -U compinit && compinit -u -d $work/zcompdump
PATH=$tools:\$PATH
unsetopt beep
EOF
  start="env ZDOTDIR=$work/zdot zsh -i"
fi
tmux -L "$sock" -f /dev/null new-session -d -x 250 -y 50 -c "$work" "$start"

# The screen's text, once it shows TEXT (polled, at most 10 s); otherwise what it showed.
screen_with() {
  local text=$1 n=0 got
  while :; do
    got=$(tmux -L "$sock" capture-pane -p -J)
    [[ $got == *"$text"* ]] && { printf '%s' "$got"; return 0; }
    ((n++ >= 100)) && { printf '%s' "$got"; return 1; }
    sleep 0.1
  done
}

screen_with 'PROMPT$' >/dev/null || { echo "FAIL: $shell did not start"; exit 1; }
fails=0
# expect KEYS EXPECTED [TABS]: types KEYS (literally), presses Tab (TABS times: 2 where
# bash shows a list only on the second), and waits for EXPECTED on the screen; then clears
# the line and the screen.
expect() {
  local keys=$1 want=$2 tabs=${3:-1} got
  tmux -L "$sock" send-keys -l "$keys"
  tmux -L "$sock" send-keys Tab
  ((tabs > 1)) && tmux -L "$sock" send-keys Tab
  if ! got=$(screen_with "$want"); then
    echo "FAIL ($shell): [$keys<Tab>] did not show [$want]; the screen:"
    printf '%s\n' "$got" | grep -v '^$' | tail -5
    fails=1
  fi
  tmux -L "$sock" send-keys C-u
  tmux -L "$sock" send-keys -l 'clear'
  tmux -L "$sock" send-keys Enter
  local n=0
  while tmux -L "$sock" capture-pane -p | grep -qF "$keys" && ((n++ < 100)); do sleep 0.1; done
}

expect 'socksify -x socks5h://127.0.0.1:1 git checko' 'git checkout'
expect 'socksify -x socks5h://127.0.0.1:1 --ch' '--chain'
expect 'socksify --chain=fa' '--chain=failover'
expect 'socksify --chain ' 'strict' 2
expect 'socksify -vx socks5' 'socks5h://' 2
expect 'socksify -x socks5h://127.0.0.1:1 -r direct env --tim' '--timeout'
expect 'socksify -x socks5h://127.0.0.1:1 ch' 'check' 2
exit $fails
