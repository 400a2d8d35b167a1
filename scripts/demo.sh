#!/bin/sh
# The README's first command: installs what is missing, builds, starts a local danted on
# loopback and a local web server, runs curl through socksify (and socksify check) to the
# server, and shows that the server saw the proxy's address and danted logged the session.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "== building socksify (release preset; about a minute on two cores the first time) =="
cmake --workflow --preset release
echo "== built: $PWD/build/release/tools/socksify =="
echo
socksify="$PWD/build/release/tools/socksify"

work=$(mktemp -d)
chmod 755 "$work"
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proxy_port=$(free_port)
web_port=$(free_port)

cat > "$work/danted.conf" <<CONF
logoutput: $work/danted.log
internal: 127.0.0.1 port = $proxy_port
external: 127.0.0.2
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 0/0 to: 0/0
}
socks pass {
  from: 0/0 to: 0/0
  command: connect
  log: connect
}
CONF
danted -f "$work/danted.conf" >"$work/danted.out" 2>&1 &
pids="$pids $!"
mkdir "$work/www" && echo "hello through the proxy" > "$work/www/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$web_port" >"$work/web.log" 2>&1 &
pids="$pids $!"

# Wait for both listeners (bounded: 10 s).
for _ in $(seq 1 100); do
  if python3 -c "import socket,sys; [socket.create_connection(('127.0.0.1',p),0.2).close() for p in ($proxy_port,$web_port)]" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

run() { echo "\$ $*"; "$@"; }
# Loopback is direct by default; the rule sends this one local address through the proxy.
run "$socksify" -x "socks5h://127.0.0.1:$proxy_port" -r "proxy 127.0.0.1/32" -v \
  curl -sS "http://127.0.0.1:$web_port/"
echo
run "$socksify" check --proxy "socks5://127.0.0.1:$proxy_port" "127.0.0.1:$web_port"
# The server logs after it answered: wait for the line (bounded: 5 s).
for _ in $(seq 1 50); do
  grep -q "^127.0.0.2 " "$work/web.log" && break
  sleep 0.1
done
echo
echo "The web server saw the proxy's egress address (127.0.0.2), not the client's:"
sed 's/^/  /' "$work/web.log"
echo "danted's log:"
grep "tcp/connect" "$work/danted.log" | sed 's/^/  /'
grep -q "^127.0.0.2 " "$work/web.log"
grep -q "127.0.0.1.$web_port" "$work/danted.log"
