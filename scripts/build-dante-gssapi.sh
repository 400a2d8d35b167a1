#!/bin/sh
# Builds a GSSAPI-capable Dante (server sockd, client library and socksify) from Debian 12's own
# `dante` source package. Debian configures it --without-gssapi; this is the same source with
# --with-gssapi. The result is cached: a second run with the prefix in place does nothing.
#   usage: scripts/build-dante-gssapi.sh DIR     (prefix DIR/prefix, work in DIR/src)
# Prints the prefix on success. Needs the packages install-deps.sh installs (libkrb5-dev,
# dpkg-dev, autoconf, automake, libtool, flex, bison).
set -eu
dir=$(mkdir -p "$1" && cd "$1" && pwd)
prefix="$dir/prefix"
if [ -x "$prefix/sbin/sockd" ] && [ -f "$prefix/.gssapi-enabled" ]; then
  echo "$prefix"
  exit 0
fi
log="$dir/build.log"
: >"$log"
say() { echo "build-dante-gssapi: $*" >&2; }
fail() { say "$*; see $log"; tail -20 "$log" >&2; exit 1; }
# apt state of our own, under DIR/apt, so /etc/apt is left alone: one deb-src entry for the
# suite the machine already uses.
apt="$dir/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts"
echo "deb-src http://deb.debian.org/debian bookworm main" >"$apt/sources.list"
aptopts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=$apt/parts
  -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache"
src="$dir/src"
rm -rf "$src"
mkdir -p "$src"
say "fetching Debian's dante source"
# shellcheck disable=SC2086
apt-get $aptopts update >>"$log" 2>&1 || fail "apt-get update (deb-src) failed"
# shellcheck disable=SC2086
(cd "$src" && apt-get $aptopts source --download-only dante) >>"$log" 2>&1 ||
  fail "apt-get source dante failed"
dsc=$(ls "$src"/dante_*.dsc | head -1)
# The .dsc signature cannot be checked without debian-keyring; apt already checked the hashes
# against the signed Release file.
(cd "$src" && dpkg-source -x "$dsc" tree) >>"$log" 2>&1 || fail "dpkg-source -x failed"
say "configuring with --with-gssapi (about 1.5 minutes on 2 cores)"
cd "$src/tree"
autoreconf -fi >>"$log" 2>&1 || fail "autoreconf failed"
./configure --prefix="$prefix" --with-gssapi --without-pam --without-libwrap --without-upnp \
  --without-ldap --without-sasl --without-bsdauth >>"$log" 2>&1 || fail "configure failed"
grep -q 'GSSAPI:.*Enabled' "$log" || fail "configure did not enable GSSAPI (is libkrb5-dev installed?)"
make -j"$(nproc)" >>"$log" 2>&1 || fail "make failed"
make install >>"$log" 2>&1 || fail "make install failed"
ldd "$prefix/sbin/sockd" | grep -q libgssapi_krb5 || fail "sockd does not link libgssapi_krb5"
touch "$prefix/.gssapi-enabled"
rm -rf "$src"
echo "$prefix"
