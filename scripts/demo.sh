#!/bin/sh
# The README's first command: installs what is missing, builds, starts a local danted on
# loopback and a local web server, then runs `socksify check` through the proxy to the server
# and shows danted's own log line for that connection.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release >/dev/null
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

echo "\$ socksify check --proxy socks5://127.0.0.1:$proxy_port 127.0.0.1:$web_port"
"$socksify" check --proxy "socks5://127.0.0.1:$proxy_port" "127.0.0.1:$web_port"
sleep 0.2
echo
echo "danted's log (the proxy connected from its egress address 127.0.0.2 to the web server):"
grep "tcp/connect" "$work/danted.log" | sed 's/^/  /'
grep -q "127.0.0.1.$web_port" "$work/danted.log"
