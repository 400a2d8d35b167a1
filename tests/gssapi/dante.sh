#!/bin/sh
# Writes DIR/sockd.conf: a GSSAPI-enabled Dante server (sockd from
# scripts/build-dante-gssapi.sh) for the realm made by realm.sh, one port per server policy
# (gssapi.enctype in the client-rule):
#   PORT    Dante's default (integrity, confidentiality)
#   PORT+1  clear only          PORT+2  integrity only
#   PORT+3  confidentiality only  PORT+4  all three
#   usage: tests/gssapi/dante.sh DIR ADDR PORT EXTERNAL   (DIR holds realm.sh's files)
# Start it with `sockd -f DIR/sockd.conf` (foreground).
# Outgoing connections leave from EXTERNAL, so a destination sees the proxy's address.
# Log in DIR/sockd.log ("gssapi/<level>%alice@SOCKS.TEST" on each session).
set -eu
dir=$(cd "$1" && pwd)
addr=$2
port=$3
external=$4
conf="$dir/sockd.conf"
{
  echo "logoutput: $dir/sockd.log"
  echo "debug: 1"
  if [ "$(id -u)" -eq 0 ]; then
    echo "user.privileged: root"
    echo "user.unprivileged: nobody"
  fi
  for i in 0 1 2 3 4; do echo "internal: $addr port = $((port + i))"; done
  echo "external: $external"
  echo "clientmethod: none"
  echo "socksmethod: gssapi"
  echo "timeout.negotiate: 10"
  for i in 0 1 2 3 4; do
    case $i in
      0) enctype="" ;;
      1) enctype="clear" ;;
      2) enctype="integrity" ;;
      3) enctype="confidentiality" ;;
      4) enctype="clear integrity confidentiality" ;;
    esac
    echo "client pass {"
    echo "  from: 0/0 to: $addr/32 port = $((port + i))"
    echo "  gssapi.servicename: rcmd"
    echo "  gssapi.keytab: FILE:$dir/server.keytab"
    [ -n "$enctype" ] && echo "  gssapi.enctype: $enctype"
    echo "  log: connect disconnect error"
    echo "}"
  done
  echo "socks pass {"
  echo "  from: 0/0 to: 0/0"
  echo "  command: bind connect udpassociate"
  echo "  socksmethod: gssapi"
  echo "  log: connect disconnect error"
  echo "}"
  echo "socks pass {"
  echo "  from: 0/0 to: 0/0"
  echo "  command: bindreply udpreply"
  echo "  log: connect disconnect error"
  echo "}"
} >"$conf"
echo "$conf"
