#!/bin/sh
# The Debian package, as a user gets it: built from the tree, installed with apt-get on this
# machine, then used. Checks the installed layout, `man socksify`, the pkg-config and CMake
# files, the bash completion, and a real curl through microsocks whose egress address
# (127.0.0.3) the web server's log shows. Removes the package again at the end.
# Loopback only; every wait is bounded.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "package-test: needs root (apt-get install)" >&2; exit 1; }
for p in curl microsocks python3 man pkg-config; do
  command -v "$p" >/dev/null || { echo "package-test: $p is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

deb=$(scripts/package.sh | tail -n 1)
echo "package-test: built $deb"
work=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q socksify >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$work/apt.log" 2>&1 ||
  { cat "$work/apt.log"; fail "apt-get install $deb"; }
dpkg -s socksify | grep -q '^Status: install ok installed' || fail "dpkg does not list it"
# Dante's client, if installed, keeps its command as socksify.dante (diverted, not replaced).
if dpkg-query -W -f='${Status}' dante-client 2>/dev/null | grep -q "install ok installed"; then
  [ -x /usr/bin/socksify.dante ] || fail "dante-client's socksify was not diverted"
fi

# The layout.
[ "$(command -v socksify)" = /usr/bin/socksify ] || fail "socksify is not /usr/bin/socksify"
lib=/usr/lib/x86_64-linux-gnu/socksify/libsocksify.so
for f in $lib /usr/lib/x86_64-linux-gnu/socksify/socksify-relay /usr/include/socks5/gssapi.hpp \
    /usr/share/man/man1/socksify.1.gz /usr/share/man/man5/socksify.conf.5.gz \
    /usr/share/bash-completion/completions/socksify /usr/share/zsh/vendor-completions/_socksify \
    /usr/include/socks5/dialer.hpp /usr/lib/x86_64-linux-gnu/pkgconfig/socks5client.pc \
    /usr/lib/x86_64-linux-gnu/cmake/socks5client/socks5clientConfig.cmake; do
  [ -e "$f" ] || fail "$f is not installed"
done
socksify --version | grep -q '^socksify ' || fail "socksify --version"
[ "$(pkg-config --modversion socks5client)" = "$(socksify --version | cut -d' ' -f2)" ] ||
  fail "pkg-config --modversion socks5client"

# man socksify opens (and finds the page in the Debian location).
[ "$(man -w socksify)" = /usr/share/man/man1/socksify.1.gz ] || fail "man -w socksify: $(man -w socksify)"
man -P cat socksify 2>/dev/null | grep -q 'run programs through a proxy' || fail "man socksify"
man -P cat 5 socksify.conf 2>/dev/null | grep -q 'proxychains' || fail "man 5 socksify.conf"

# The bash completion loads on demand and completes.
bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader socksify;
  COMP_WORDS=(socksify --pipel); COMP_CWORD=1; COMP_LINE="socksify --pipel";
  COMP_POINT=${#COMP_LINE}; _socksify; [ "${COMPREPLY[*]}" = --pipelining ]' ||
  fail "bash completion"

# socksify env points at the installed library.
eval "$(socksify -x socks5://127.0.0.1:1 env)"
[ "$LD_PRELOAD" = "$lib" ] || fail "socksify env: LD_PRELOAD=$LD_PRELOAD"
eval "$(socksify off)"
[ -z "${LD_PRELOAD:-}" ] || fail "socksify off"

# A real program through a real proxy: curl via microsocks, whose connections leave from
# 127.0.0.3; the web server on 127.0.0.2 logs who connected.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proxy_port=$(free_port)
web_port=$(free_port)
microsocks -i 127.0.0.1 -p "$proxy_port" -b 127.0.0.3 >"$work/microsocks.log" 2>&1 &
pids="$pids $!"
mkdir -p "$work/www" && echo "hello from the package test" >"$work/www/index.html"
python3 -m http.server -b 127.0.0.2 -d "$work/www" "$web_port" >"$work/web.log" 2>&1 &
pids="$pids $!"
i=0
until curl -s -o /dev/null "http://127.0.0.2:$web_port/" &&
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$proxy_port),1)" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "servers did not start"; sleep 0.1
done
: >"$work/web.log.before" && cp "$work/web.log" "$work/web.log.before"
out=$(XDG_RUNTIME_DIR=$work socksify -x "socks5://127.0.0.1:$proxy_port" -r 'proxy 127.0.0.2/32' \
  curl -sS -m 10 "http://127.0.0.2:$web_port/")
[ "$out" = "hello from the package test" ] || fail "curl through socksify: $out"
i=0
until grep -q '^127\.0\.0\.3 ' "$work/web.log"; do
  i=$((i + 1)); [ $i -lt 50 ] || { cat "$work/web.log"; fail "the web server never saw the proxy's address"; }
  sleep 0.1
done
grep '^127\.0\.0\.3 ' "$work/web.log" | tail -n 1
# Removing the package puts Dante's command back.
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q socksify >/dev/null 2>&1 || fail "apt-get remove"
if dpkg-query -W -f='${Status}' dante-client 2>/dev/null | grep -q "install ok installed"; then
  [ -x /usr/bin/socksify ] && [ ! -e /usr/bin/socksify.dante ] ||
    fail "dante-client's socksify was not put back"
  grep -q dsocks /usr/bin/socksify || fail "/usr/bin/socksify is not Dante's after removal"
fi
echo "package-test: OK ($deb installed with apt-get, curl went through microsocks)"
