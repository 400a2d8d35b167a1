#pragma once
// The configuration: parsed once per process from layered settings (file < environment <
// command line), then immutable. Pure (no I/O beyond the lookups it is given), so it is
// unit-tested without a process. Every name it reads comes from the option table
// (options.hpp).
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "socks5/dialer.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/result.hpp"
#include "socks5/uri.hpp"

namespace socksify::settings {

/// What to do with a destination (or a name).
enum class Action : std::uint8_t {
  direct,    ///< as without the library (connect directly, ask the local resolver)
  proxy,     ///< through the proxy (a name: a fake address, resolved by the proxy)
  reject,    ///< refused
  loopback,  ///< a name answered as loopback here (RFC 6761 localhost names)
};

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

/// quiet: nothing; error (the default): a line per failed proxied connection; info: also a
/// line per connection; debug: everything.
enum class LogLevel : std::uint8_t { quiet = 0, error = 1, info = 2, debug = 3 };

/// How the wrapper reaches a program's connections.
enum class RunMode : std::uint8_t {
  automatic,   ///< the supervisor for programs the preload cannot reach (static, Go), else it
  preload,     ///< LD_PRELOAD only (static and Go programs get a warning)
  supervisor,  ///< the seccomp supervisor (tools/supervisor.hpp)
};

/// Which listening sockets go through the proxy (SOCKS BIND).
enum class ListenMode : std::uint8_t {
  automatic,  ///< those bound to the local address of a proxied connection (active FTP)
  proxy,      ///< every one not bound to loopback
  local,      ///< none
};

/// Everything the library and the wrapper need to know.
struct Config {
  std::vector<socks5::ProxyUri> proxies;  ///< in order: failover candidates or chain hops
  socks5::ChainMode chain = socks5::ChainMode::failover;
  bool remote_dns = false;  ///< names become fake addresses, the proxy resolves
  std::vector<Rule> rules;
  Action default_action = Action::proxy;
  Cidr fake4;  ///< default 198.18.0.0/15
  Cidr fake6;  ///< default fd5f:636b:7366::/48
  LogLevel log_level = LogLevel::error;
  /// Refuse to start programs the library cannot reach (static, setuid, Go...).
  bool strict = false;
  std::string log_file;  ///< empty = standard error
  /// An extra CA (PEM file) for https:// proxies, besides the system store; empty: none.
  std::string proxy_cacert;
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds cooldown{30000};  ///< a failed proxy is tried last this long
  socks5::Pipelining pipelining = socks5::Pipelining::automatic;
  ListenMode listen = ListenMode::automatic;
  RunMode mode = RunMode::automatic;
  /// Set: authenticate with GSSAPI (SOCKSIFY_AUTH=gssapi) at this level and name.
  std::optional<socks5::GssapiOptions> gssapi;
};

/// Looks up an environment variable (nullptr when unset).
using EnvLookup = std::function<const char*(const char*)>;

/// A precise, one-line reason the configuration is unusable.
struct ConfigError {
  std::string message;
};

/// One setting's value and where it came from ("SOCKSIFY_DNS", "--dns", "FILE:3: dns"), so
/// that an error names what the user actually wrote.
struct Setting {
  std::string value;
  std::string origin;
};

/// Settings by variable name (SOCKSIFY_*).
using Settings = std::map<std::string, Setting, std::less<>>;

/// The table's variables that `env` has set to a non-empty value.
Settings from_environment(const EnvLookup& env);

/// The first line of a file, without its line end (a password file). False if unreadable.
bool read_first_line(const std::string& path, std::string& out);

/// The variable that hands a password file's path to socksified programs, and the origin
/// prefix the wrapper gives a password read from --password-file.
inline constexpr const char* kPasswordFileEnv = "SOCKSIFY_PASSWORD_FILE";
inline constexpr const char* kPasswordFileFlag = "--password-file ";

/// Puts every setting of `top` over `bottom`.
void overlay(Settings& bottom, const Settings& top);

/// Builds the configuration (see socksify(1), ENVIRONMENT).
socks5::Result<Config, ConfigError> parse_config(const Settings& settings);
/// The same, from the environment alone.
socks5::Result<Config, ConfigError> parse_config(const EnvLookup& env);

/// Parses "10.0.0.0/8", "::1/128", "192.168.1.1" (a /32).
std::optional<Cidr> parse_cidr(std::string_view text);

/// Parses a rule list: entries separated by ';' or newlines, each "ACTION MATCH" where MATCH is
/// a CIDR or address, "port N", "port N-M", a domain suffix, or "*"; "default ACTION" sets the
/// default.
socks5::Result<void, ConfigError> parse_rules(std::string_view text, Config& config);

/// The proxies as a route: "socks5h://a:1080 -> socks5://b:1080" (passwords masked).
std::string route_text(const Config& config);

/// "direct", "proxy", "reject", "loopback".
const char* action_name(Action a) noexcept;

}  // namespace socksify::settings
