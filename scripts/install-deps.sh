#!/bin/sh
# Installs every Debian 12 package the build, the tests and the demo need. Idempotent and
# non-interactive; does nothing when everything is already there.
set -eu
packages="g++ cmake ninja-build pkg-config clang-14 libclang-rt-14-dev catch2
  libtomlplusplus-dev
  clang-format dante-server microsocks tinyproxy socat squid openssh-server openssh-client curl wget git python3 iproute2
  passwd procps libcap2-bin golang-go bash-completion zsh man-db dpkg-dev file bind9-dnsutils python3-pyftpdlib
  libkrb5-dev krb5-kdc krb5-user krb5-admin-server faketime
  libssl-dev openssl stunnel4 chromium firefox-esr groff mandoc tmux
  autoconf automake libtool libtool-bin flex bison make gcc"
missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing (run as root)" >&2
    exit 1
  fi
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # krb5-admin-server's and krb5-kdc's install scripts try to start daemons for a realm that
  # does not exist; the tests run their own. A policy-rc.d that says "no" keeps them off (only
  # if the machine has none of its own).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
  fi
  status=0
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing || status=$?
  if [ -n "$policy" ]; then rm -f "$policy"; fi
  exit "$status"
fi
