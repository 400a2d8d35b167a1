#!/bin/sh
# A throwaway MIT Kerberos realm, made with environment variables only (no change to /etc).
#   tests/gssapi/realm.sh create DIR KDC_ADDR KDC_PORT [HOST...]
#       the KDC database, principals, keytabs and DIR/env.sh (KRB5_CONFIG, KRB5_KDC_PROFILE,
#       KRB5CCNAME, KRB5_KTNAME for the server's keytab, ALICE_KEYTAB for a client keytab).
#       The caller starts the KDC: `. DIR/env.sh; krb5kdc -n -r SOCKS.TEST` (foreground).
#   tests/gssapi/realm.sh kinit DIR
#       gets alice a ticket, retrying while the KDC starts (bounded: 10 s).
# Principals:
#   alice@SOCKS.TEST            the user (password in DIR/alice.pw, keys in DIR/alice.keytab)
#   rcmd/localhost, rcmd/127.0.0.1, rcmd/<the first name of 127.0.0.1 in /etc/hosts> and
#   rcmd/HOST for each HOST given: the proxy's service, keys in DIR/server.keytab
#   HTTP/localhost, HTTP/127.0.0.1 and HTTP/HOST for each HOST given: an HTTP proxy's service
#   (Negotiate), keys in DIR/http.keytab
#   notinkeytab/localhost       known to the KDC but not in the server's keytab
#   nokey/localhost is NOT created: the KDC does not know it.
set -eu
realm=SOCKS.TEST
if [ "$1" = kinit ]; then
  dir=$(cd "$2" && pwd)
  . "$dir/env.sh"
  i=0
  until kinit "alice@$realm" <"$dir/alice.pw" >>"$dir/setup.log" 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then
      echo "realm.sh: no ticket from the KDC" >&2
      cat "$dir/setup.log" "$dir/kdc.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.1  # polling the KDC while it starts, bounded above
  done
  exit 0
fi
[ "$1" = create ] || { echo "usage: realm.sh create DIR KDC_ADDR KDC_PORT [HOST...] | kinit DIR" >&2; exit 2; }
dir=$(mkdir -p "$2" && cd "$2" && pwd)
kdc=$3
port=$4
shift 4
pw=alice-pw-$$
mkdir -p "$dir/kdc"
cat >"$dir/krb5.conf" <<CONF
[libdefaults]
  default_realm = $realm
  dns_lookup_realm = false
  dns_lookup_kdc = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  forwardable = false
  default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
  $realm = {
    kdc = $kdc:$port
  }
[domain_realm]
  localhost = $realm
  127.0.0.1 = $realm
  $kdc = $realm
CONF
cat >"$dir/kdc.conf" <<CONF
[kdcdefaults]
  kdc_listen = $kdc:$port
  kdc_tcp_listen = $kdc:$port
[realms]
  $realm = {
    database_name = $dir/kdc/principal
    key_stash_file = $dir/kdc/stash
    acl_file = $dir/kdc/kadm5.acl
    master_key_type = aes256-cts-hmac-sha1-96
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    max_life = 1d
  }
[logging]
  kdc = FILE:$dir/kdc.log
CONF
: >"$dir/kdc/kadm5.acl"
cat >"$dir/env.sh" <<ENV
export KRB5_CONFIG=$dir/krb5.conf
export KRB5_KDC_PROFILE=$dir/kdc.conf
export KRB5CCNAME=FILE:$dir/alice.ccache
export KRB5_KTNAME=FILE:$dir/server.keytab
export ALICE_KEYTAB=FILE:$dir/alice.keytab
ENV
. "$dir/env.sh"
printf '%s\n' "$pw" >"$dir/alice.pw"
kdb5_util -r "$realm" -P "master-$$" create -s >"$dir/setup.log" 2>&1
hostname=$(awk '$1 == "127.0.0.1" { print $2; exit }' /etc/hosts)
{
  echo "addprinc -pw $pw alice@$realm"
  echo "addprinc -randkey rcmd/localhost@$realm"
  echo "addprinc -randkey rcmd/127.0.0.1@$realm"
  echo "addprinc -randkey notinkeytab/localhost@$realm"
  services="rcmd/localhost rcmd/127.0.0.1"
  if [ -n "$hostname" ] && [ "$hostname" != localhost ]; then
    echo "addprinc -randkey rcmd/$hostname@$realm"
    services="$services rcmd/$hostname"
  fi
  http="HTTP/localhost HTTP/127.0.0.1"
  echo "addprinc -randkey HTTP/localhost@$realm"
  echo "addprinc -randkey HTTP/127.0.0.1@$realm"
  for host in "$@"; do
    echo "addprinc -randkey rcmd/$host@$realm"
    services="$services rcmd/$host"
    echo "addprinc -randkey HTTP/$host@$realm"
    http="$http HTTP/$host"
  done
  echo "ktadd -k $dir/server.keytab $services"
  echo "ktadd -k $dir/http.keytab $http"
  echo "ktadd -k $dir/alice.keytab -norandkey alice@$realm"
} | while read -r q; do
  kadmin.local -r "$realm" -q "$q" >>"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; exit 1; }
done
echo "$dir/env.sh"
