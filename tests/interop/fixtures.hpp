#pragma once
// Real SOCKS5 servers started on loopback ports with generated configs, stopped on destruction.
#include <memory>
#include <string>
#include <vector>

#include "socks5/client.hpp"
#include "support/peers.hpp"

namespace testing {

/// Throwaway system account for RFC 1929 against danted (which checks passwd/shadow).
inline constexpr const char* kTestUser = "socksify-test";
inline constexpr const char* kTestPassword = "s0cks-pw";

/// Makes kTestUser (a system account without a home) with kTestPassword, once; needs root.
void ensure_test_user();

/// socks5://127.0.0.1:PORT, with the test account's credentials if asked.
socks5::ProxyUri loopback_proxy(std::uint16_t port, bool with_user);

/// A host name that only the Danted fixture's server resolves (to 127.0.0.1): it runs in a
/// mount namespace of its own whose /etc/hosts adds it. A connection to it that works proves
/// that the NAME crossed to the proxy (the client cannot resolve it).
inline constexpr const char* kProxyOnlyName = "proxy-only.socksify.test";

/// Starts `argv` in a mount namespace of its own whose /etc/hosts adds kProxyOnlyName
/// (hosts file in `dir`), output appended to `output`.
std::unique_ptr<Process> with_proxy_only_name(const TempDir& dir,
                                              const std::vector<std::string>& argv,
                                              const std::string& output);

/// Dante's danted; egress (external) address 127.0.0.2 for IPv4 and ::1 for IPv6.
class Danted {
 public:
  explicit Danted(bool username_method);
  std::uint16_t port() const { return port_; }
  std::string log() const { return read_file(dir_.file("danted.log")); }
  socks5::ProxyUri uri(bool with_user = false) const;

 private:
  TempDir dir_;
  std::uint16_t port_;
  std::unique_ptr<Process> proc_;
};

/// microsocks on 127.0.0.1. Its outgoing connections leave from 127.0.0.3 (`-b`), so a target
/// that sees 127.0.0.3 was reached by it; with `ipv6_egress` from ::1 instead (microsocks binds
/// every outgoing socket to the one -b address, so one instance serves one family).
class Microsocks {
 public:
  explicit Microsocks(bool with_auth, bool ipv6_egress = false);
  std::uint16_t port() const { return port_; }
  socks5::ProxyUri uri() const;

 private:
  TempDir dir_;
  bool auth_;
  std::uint16_t port_;
  std::unique_ptr<Process> proc_;
};

/// tinyproxy (HTTP CONNECT) on 127.0.0.1, with Basic authentication for the test account if
/// asked. Its outgoing connections leave from 127.0.0.4 (`Bind`), so a target that sees
/// 127.0.0.4 was reached through it. Like Danted, it resolves kProxyOnlyName (a mount
/// namespace of its own).
class Tinyproxy {
 public:
  /// `bind_egress` false: no Bind (outgoing IPv6 works then).
  explicit Tinyproxy(bool basic_auth, bool bind_egress = true);
  std::uint16_t port() const { return port_; }
  /// Its log (LogLevel Connect: each client and each CONNECT request line).
  std::string log() const { return read_file(dir_.file("tinyproxy.log")); }
  /// http://127.0.0.1:PORT, with the test account's credentials if asked.
  socks5::ProxyUri uri(bool with_user = false) const;

 private:
  TempDir dir_;
  std::uint16_t port_;
  std::unique_ptr<Process> proc_;
};

/// OpenSSH: sshd on a loopback port with throwaway keys, and `ssh -N -D` in front of it
/// (SOCKS5, SOCKS4 and SOCKS4a). sshd resolves kProxyOnlyName, as Danted does.
class SshDynamic {
 public:
  SshDynamic();
  std::uint16_t port() const { return socks_port_; }
  std::string sshd_log() const { return read_file(dir_.file("sshd.log")); }
  socks5::ProxyUri uri() const;

 private:
  TempDir dir_;
  std::uint16_t sshd_port_;
  std::uint16_t socks_port_;
  std::unique_ptr<Process> sshd_;
  std::unique_ptr<Process> ssh_;
};

/// Runs a command through /bin/sh, returning its exit status; output goes to `out`.
int run_command(const std::string& command, std::string* out = nullptr);

}  // namespace testing
