#pragma once
// The shim lab: two network namespaces joined by one veth pair.
//   proxy side (192.0.2.1): danted :1080 (none and username), microsocks :1082, ssh -D :1083,
//     sshd on target.lab:22, echo :7000 and HTTP :8080 on 198.51.100.1 (target.lab),
//     2001:db8::1 (target6.lab) and its own 127.0.0.1. Its /etc/hosts knows target.lab.
//   client side (192.0.2.2): only a route to 192.0.2.0/24, so a target is reachable ONLY
//     through a proxy (the servers also listen on 192.0.2.1, reachable directly as
//     direct.lab: the one name the client side's /etc/hosts knows); resolv.conf points at a DNS
//     sink on its own 127.0.0.1:53 that logs every query (any query there is a leak).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/peers.hpp"

namespace testing {

class Lab {
 public:
  Lab();
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  /// Runs `command` (a shell command line) in the client namespace. Output in `out`.
  int client(const std::string& command, std::string* out = nullptr) const;
  /// Log of the proxy-side servers ("echo PEER", "http PEER PATH").
  std::string server_log() const { return read_file(dir_.file("servers.log")); }
  /// Queries that reached the client-side DNS sink.
  std::string dns_log() const { return read_file(dir_.file("dns.log")); }
  std::string danted_log() const { return read_file(dir_.file("danted.log")); }
  /// The socksify wrapper with its environment prefix for the client side.
  std::string socksify() const;
  const std::string& dir() const { return dir_.path(); }
  /// Starts a long-running process in the proxy namespace (killed with the lab).
  void start_on_proxy_side(std::vector<std::string> argv, const std::string& log);
  /// Starts a UDP logger (lab_servers.py --udp-log) on ADDR:PORT in the client namespace
  /// (`client_side`) or the proxy namespace; waits until it is ready; returns its log's path.
  /// Each datagram is logged as "got <source> <length>".
  std::string start_udp_logger(bool client_side, const std::string& addr, int port);
  /// What a logger started with start_udp_logger() got, once everything sent to it before
  /// this call is in its log: a marker line over TCP and a marker datagram are sent after it
  /// and waited for (each kind is logged in arrival order).
  std::string synced_log(bool client_side, const std::string& addr, int port) const;
  /// Runs a shell command in the proxy namespace; REQUIREs success.
  void proxy_side(const std::string& command) const;
  /// Waits until host:port accepts connections inside the proxy namespace.
  bool wait_on_proxy_side(const std::string& host, int port) const;
  /// Makes sure every DNS query that reached the sink before this call is in dns_log(): sends
  /// the sink a marker query and waits (bounded) until it is logged after them.
  void sync_dns() const;
  /// Starts tests/integration/hostile_proxy.py MODE on the proxy side (log hostile.log) and
  /// waits until it is ready.
  void start_hostile(const std::string& mode, const std::string& addr, int port,
                     const std::vector<std::string>& args = {});
  std::string hostile_log() const { return read_file(dir_.file("hostile.log")); }
  /// tinyproxy (HTTP CONNECT) on the proxy side at 192.0.2.1:PORT, with Basic for
  /// kTestUser/kTestPassword if asked; started once per port. Its log: tinyproxy_log(PORT).
  void start_tinyproxy(int port, bool basic_auth);
  std::string tinyproxy_log(int port) const {
    return read_file(dir_.file("tinyproxy-" + std::to_string(port) + ".log"));
  }

  /// An https proxy: stunnel on the proxy side at 192.0.2.1:PORT (TLS), passing each
  /// connection to BACKEND_PORT on 192.0.2.1 (tinyproxy, or the hostile proxy). `cert`:
  /// "good" (the lab CA's certificate for IP 192.0.2.1 and proxy.socksify.test) or "elsewhere"
  /// (the lab CA's, for another name only). Started once per port; its log: stunnel_log(PORT).
  void start_stunnel(int port, int backend_port, const std::string& cert = "good");
  std::string stunnel_log(int port) const {
    return read_file(dir_.file("stunnel-" + std::to_string(port) + ".log"));
  }
  /// The lab CA (PEM), made on first use with openssl(1), and another CA that signed nothing
  /// the lab serves.
  std::string test_ca();
  std::string other_ca();

  /// GSSAPI on the proxy side: an MIT KDC for realm SOCKS.TEST on 192.0.2.1:88 and a
  /// GSSAPI-enabled Dante (built by scripts/build-dante-gssapi.sh) on 192.0.2.1, one port per
  /// server policy: 1190 Dante's default (integrity, confidentiality), 1191 clear only, 1192
  /// integrity only, 1193 confidentiality only, 1194 all three; egress 198.51.100.1. alice has
  /// a ticket. Returns the client side's Kerberos environment ("KRB5_CONFIG=... KRB5CCNAME=...").
  /// Started once per lab.
  std::string start_gssapi();
  /// squid on the proxy side at 192.0.2.1:PORT, asking for Negotiate (negotiate_kerberos_auth
  /// with the realm's HTTP/192.0.2.1 key); start_gssapi() first. Its access log names the
  /// user of each request: squid_log().
  void start_squid_negotiate(int port);
  std::string squid_log() const { return read_file(dir_.file("squid/access.log")); }
  /// The GSSAPI Dante's log ("gssapi/<level>%alice@SOCKS.TEST" on each session).
  std::string sockd_log() const { return read_file(dir_.file("krb/sockd.log")); }
  /// The realm's files (krb5.conf, alice.keytab, ...).
  std::string krb_dir() const { return dir_.file("krb"); }

 private:
  void sh(const std::string& command) const;
  TempDir dir_;
  std::string proxy_ns_, client_ns_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::string gssapi_env_;
};

/// How many times `text` occurs in `haystack`.
std::size_t count_of(const std::string& haystack, const std::string& text);

/// Waits until `read()` holds `text` at least `n` times (bounded); returns the count then.
std::size_t wait_for_count(const std::function<std::string()>& read, const std::string& text,
                           std::size_t n,
                           std::chrono::milliseconds bound = std::chrono::seconds(15));

/// Waits until `read()` contains `text`, polling with a bound (other processes write logs
/// when they get to it; a test never reads once and asserts). Returns the last content read.
std::string wait_for_text(const std::function<std::string()>& read, const std::string& text,
                          std::chrono::milliseconds bound = std::chrono::seconds(15));

}  // namespace testing
