#pragma once
// The shim's configuration: parsed once per process from the environment, then immutable.
// Pure (no I/O beyond the lookup function) so it is unit-tested without a process.
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "socks5/client.hpp"
#include "socks5/uri.hpp"

namespace socksify::shim {

/// What to do with a destination.
enum class Action : std::uint8_t { direct, proxy, reject };

/// An IPv4 or IPv6 network.
struct Cidr {
  int family = 0;  ///< AF_INET or AF_INET6
  std::array<std::uint8_t, 16> bytes{};
  int prefix = 0;
  /// True if the 4 or 16 octets `addr` of `family` lie inside.
  bool contains(int fam, const std::uint8_t* addr) const noexcept;
};

/// One policy rule; the first that matches wins.
struct Rule {
  enum class Kind : std::uint8_t { any, cidr, port, domain };
  Kind kind = Kind::any;
  Action action = Action::proxy;
  Cidr net;                   ///< Kind::cidr
  std::uint16_t port_lo = 0;  ///< Kind::port
  std::uint16_t port_hi = 0;
  std::string suffix;  ///< Kind::domain: lower-case, without leading dot
};

enum class LogLevel : std::uint8_t { quiet = 0, info = 1, debug = 2 };

/// Everything the shim needs to know.
struct Config {
  std::vector<socks5::ProxyUri> proxies;  ///< tried in order (failover)
  bool remote_dns = false;                ///< names become fake addresses, the proxy resolves
  std::vector<Rule> rules;
  Action default_action = Action::proxy;
  Cidr fake4;  ///< default 198.18.0.0/15
  Cidr fake6;  ///< default fd5f:636b:7366::/48
  LogLevel log_level = LogLevel::quiet;
  std::string log_file;  ///< empty = stderr
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds cooldown{30000};  ///< a failed proxy is skipped this long
  socks5::Pipelining pipelining = socks5::Pipelining::automatic;
};

/// Looks up an environment variable (nullptr when unset).
using EnvLookup = std::function<const char*(const char*)>;

/// A precise, one-line reason the configuration is unusable.
struct ConfigError {
  std::string message;
};

/// Builds the configuration from SOCKSIFY_* variables (see socksify(1), ENVIRONMENT).
socks5::Result<Config, ConfigError> parse_config(const EnvLookup& env);

/// Parses "10.0.0.0/8", "::1/128", "192.168.1.1" (a /32).
std::optional<Cidr> parse_cidr(std::string_view text);

/// Parses a rule list: entries separated by ';' or newlines, each "ACTION MATCH" where MATCH is
/// a CIDR or address, "port N", "port N-M", a domain suffix, or "*"; "default ACTION" sets the
/// default.
socks5::Result<void, ConfigError> parse_rules(std::string_view text, Config& config);

/// "direct", "proxy", "reject".
const char* action_name(Action a) noexcept;

}  // namespace socksify::shim
