#!/bin/sh
# Installs the build into a temporary prefix, then builds examples/consumer against it with
# find_package(socks5client) and with pkg-config, and runs both; and builds examples/gssapi.
# usage: package_test.sh BUILD_DIR CONSUMER_SRC CXX [CXXFLAGS]
set -eu
build=$1 src=$2 cxx=$3 flags=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
expected=050100030b$(printf example.org | od -An -tx1 | tr -d ' \n')01bb
cmake -S "$src" -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
got=$("$tmp/cmake/consumer")
[ "$got" = "$expected" ] || { echo "find_package consumer printed $got, expected $expected"; exit 1; }
pcfile=$(find "$tmp/prefix" -name socks5client.pc | head -n 1)
[ -n "$pcfile" ] || { echo "socks5client.pc was not installed"; exit 1; }
pc=$(dirname "$pcfile")
# shellcheck disable=SC2046,SC2086
"$cxx" $flags $(PKG_CONFIG_PATH="$pc" pkg-config --cflags socks5client) "$src/main.cpp" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --libs socks5client) -o "$tmp/pc-consumer"
got=$("$tmp/pc-consumer")
[ "$got" = "$expected" ] || { echo "pkg-config consumer printed $got, expected $expected"; exit 1; }
# The GSSAPI example builds against the installed headers alone (Kerberos is loaded at run
# time); the lab runs the in-tree build of it against a real realm.
cmake -S "$src/../gssapi" -B "$tmp/gssapi" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/gssapi" >/dev/null
"$tmp/gssapi/gssapi_get" 2>/dev/null && { echo "gssapi_get without arguments should fail"; exit 1; }
echo "package OK: find_package(socks5client) and pkg-config both build and run; so does the GSSAPI example"
