#!/bin/sh
# The benchmark: one command. Builds the release tree, sets up a two-namespace lab (client ->
# danted -> target), and measures socksify against proxychains4, Dante's socksify, torsocks,
# curl's own SOCKS client and the direct path, in ONE run. Prints a table of figures and ratios
# against the best anchor. Traffic stays inside the namespaces it creates.
#   bench/run.sh [--quick] [--udp | --gssapi | --parallel [--delay MS] | --supervisor | --stall |
#                 --http | --fakedns]
#   (only the UDP round trips / only GSSAPI / only the parallel connects, with MS of delay each
#   way / only the seccomp supervisor / only the pipelining stall against microsocks / only the
#   HTTP CONNECT upstreams: tinyproxy without and with Basic, squid with Basic, and an HTTPS
#   proxy made of stunnel in front of tinyproxy / only the fake-DNS table: instructions per
#   connect by address and by name, and per lookup)
#   SOCKSIFY_BENCH_BASELINE_TOOL=/path/to/other/socksify adds that build's supervisor and
#   preload rows to --supervisor and its rows to --fakedns, measured in the same run.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
missing=""
for p in proxychains4 torsocks dante-client valgrind time gcc tinyproxy squid stunnel4 openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
cmake --workflow --preset release >/dev/null
exec python3 bench/bench.py "$@"
