#include "options.hpp"

#include <charconv>

namespace socksify::settings {
namespace {

// clang-format off
constexpr Option kOptions[] = {
    {"proxy", "SOCKSIFY_PROXY", "proxy", "proxies", "-x,--proxy", ValueKind::list, "", 0, 0, ' ',
     "URI", "proxy URI, socks5[h]://, socks4[a]://, http:// or https://[user@]host[:port], or "
     "socks5h://localhost/PATH (a Unix socket); repeat for several (failover, or a strict chain)"},
    {"proxy_cacert", "SOCKSIFY_PROXY_CACERT", "proxy_cacert", "", "--proxy-cacert",
     ValueKind::path, "", 0, 0, ' ', "FILE", "a CA (PEM) to trust for https:// proxies, besides "
     "the system's"},
    {"chain", "SOCKSIFY_CHAIN", "chain", "", "--chain", ValueKind::choice, "failover|strict", 0, 0,
     ' ', "MODE", "failover: try the proxies in order; strict: through each of them in turn"},
    {"password", "SOCKSIFY_PASSWORD", "password_file", "", "--password-file", ValueKind::secret, "",
     0, 0, ' ', "FILE", "password for the proxy URIs' user, from the first line of FILE"},
    {"auth", "SOCKSIFY_AUTH", "auth", "", "--auth", ValueKind::choice, "auto|gssapi", 0, 0, ' ',
     "METHOD", "auto: none, or username/password when the URI names a user; gssapi: Kerberos "
     "(RFC 1961) with the ticket from kinit"},
    {"gssapi_service", "SOCKSIFY_GSSAPI_SERVICE", "gssapi_service", "", "--gssapi-service",
     ValueKind::text, "", 0, 0, ' ', "NAME", "the proxy's GSSAPI name: service@host, a service "
     "(with @proxy-host), or a principal with '/'; default rcmd@proxy-host"},
    {"gssapi_protection", "SOCKSIFY_GSSAPI_PROTECTION", "gssapi_protection", "",
     "--gssapi-protection", ValueKind::choice, "integrity|confidentiality|clear", 0, 0, ' ',
     "LEVEL", "GSSAPI protection after authentication: integrity (the default), confidentiality "
     "(encrypted) or clear (a Dante extension: none)"},
    {"dns", "SOCKSIFY_DNS", "dns", "", "--dns", ValueKind::choice, "remote|local", 0, 0, ' ',
     "WHERE", "remote (names go to the proxy) or local; default: the first proxy's scheme"},
    {"rules", "SOCKSIFY_RULES", "", "rules", "-r,--rule", ValueKind::list, "", 0, 0, ';', "RULE",
     "policy rule, first match wins: 'direct 10.0.0.0/8', 'reject port 25', "
     "'proxy .example.org', 'default direct'"},
    {"fake_net4", "SOCKSIFY_FAKE_NET4", "fake_net4", "", "--fake-net4", ValueKind::text, "", 0, 0,
     ' ', "CIDR", "IPv4 range for remote-DNS fake addresses (198.18.0.0/15)"},
    {"fake_net6", "SOCKSIFY_FAKE_NET6", "fake_net6", "", "--fake-net6", ValueKind::text, "", 0, 0,
     ' ', "CIDR", "IPv6 range for remote-DNS fake addresses (fd5f:636b:7366::/48)"},
    {"log", "SOCKSIFY_LOG", "log", "", "-v,--verbose", ValueKind::count, "info|debug", 0, 0, ' ',
     "", "-v: also a line per proxied and direct connection, with the reason; -vv: debug "
     "(variable and key: quiet, error, info, debug; default error: a line per failure)"},
    {"quiet", "", "", "", "-q,--quiet", ValueKind::preset, "SOCKSIFY_LOG=quiet", 0, 0, ' ', "",
     "no lines at all, not even for a failed connection"},
    {"log_file", "SOCKSIFY_LOG_FILE", "log_file", "", "--log-file", ValueKind::path, "", 0, 0, ' ',
     "FILE", "append log lines to FILE instead of standard error"},
    {"timeout", "SOCKSIFY_TIMEOUT", "timeout_ms", "", "--timeout", ValueKind::integer, "", 1,
     3600000, ' ', "MS", "deadline of each connect through the proxy, in milliseconds (10000)"},
    {"listen", "SOCKSIFY_LISTEN", "listen", "", "--listen", ValueKind::choice, "auto|proxy|local", 0,
     0, ' ', "MODE",
     "listening sockets through the proxy (SOCKS BIND): auto: those bound to the local address "
     "of a proxied connection (active FTP); proxy: all but loopback ones; local: none"},
    {"pipelining", "SOCKSIFY_PIPELINING", "pipelining", "", "--pipelining", ValueKind::choice,
     "auto|on|off", 0, 0, ' ', "MODE", "send greeting, credentials and request in one write"},
    {"config", "SOCKSIFY_CONF", "", "", "-c,--config", ValueKind::path, "", 0, 0, ' ', "FILE",
     "configuration file (socksify.conf(5)); default: $XDG_CONFIG_HOME/socksify/socksify.conf, "
     "then /etc/socksify.conf"},
    {"mode", "SOCKSIFY_MODE", "mode", "", "--mode", ValueKind::choice, "auto|preload|supervisor",
     0, 0, ' ', "MODE", "how programs are reached: auto (the supervisor for static and Go "
     "programs, the preload for the rest), preload (LD_PRELOAD only) or supervisor (seccomp "
     "user notification)"},
    {"strict", "SOCKSIFY_STRICT", "strict", "", "--strict", ValueKind::flag, "", 0, 0, ' ', "",
     "refuse to run programs the library cannot reach (static, setuid, setcap, Go), here and "
     "when a socksified program starts one"},
};
// clang-format on

bool flag_listed(std::string_view flags, std::string_view flag) {
  while (!flags.empty()) {
    const auto comma = flags.find(',');
    if (flags.substr(0, comma) == flag) return true;
    if (comma == std::string_view::npos) break;
    flags.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::span<const Option> options() noexcept {
  return kOptions;
}

const Option* option_by_env(std::string_view env) noexcept {
  for (const auto& o : kOptions) {
    if (!o.env.empty() && o.env == env) return &o;
  }
  return nullptr;
}

const Option* option_by_key(std::string_view key) noexcept {
  for (const auto& o : kOptions) {
    if ((!o.key.empty() && o.key == key) || (!o.list_key.empty() && o.list_key == key)) return &o;
  }
  return nullptr;
}

const Option* option_by_flag(std::string_view flag) noexcept {
  if (flag.empty()) return nullptr;
  for (const auto& o : kOptions) {
    if (flag_listed(o.flags, flag)) return &o;
  }
  return nullptr;
}

std::string_view long_flag(const Option& o) noexcept {
  const auto at = o.flags.find("--");
  return at == std::string_view::npos ? std::string_view{} : o.flags.substr(at);
}

bool valid_value(const Option& o, std::string_view value) noexcept {
  switch (o.kind) {
    case ValueKind::choice: {
      std::string_view c = o.choices;
      while (!c.empty()) {
        const auto bar = c.find('|');
        if (c.substr(0, bar) == value) return true;
        if (bar == std::string_view::npos) break;
        c.remove_prefix(bar + 1);
      }
      return false;
    }
    case ValueKind::integer: {
      long v = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      return ec == std::errc() && p == value.data() + value.size() && !value.empty() &&
             v >= o.min && v <= o.max;
    }
    default: return true;
  }
}

std::string expected_text(const Option& o) {
  if (o.kind == ValueKind::integer) {
    return "expected an integer from " + std::to_string(o.min) + " to " + std::to_string(o.max);
  }
  std::string out = "expected ";
  std::string_view c = o.choices;
  bool first = true;
  while (!c.empty()) {
    const auto bar = c.find('|');
    const std::string_view one = c.substr(0, bar);
    c = bar == std::string_view::npos ? std::string_view{} : c.substr(bar + 1);
    if (!first) out += c.empty() ? " or " : ", ";
    out += one;
    first = false;
  }
  return out;
}

}  // namespace socksify::settings
