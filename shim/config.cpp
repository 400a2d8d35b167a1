#include "config.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace socksify::shim {
namespace {

using socks5::unexpected;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<unsigned long> number(std::string_view s, unsigned long max) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max || s.empty()) return std::nullopt;
  return v;
}

std::optional<Action> parse_action(std::string_view s) {
  if (s == "direct") return Action::direct;
  if (s == "proxy") return Action::proxy;
  if (s == "reject") return Action::reject;
  return std::nullopt;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

ConfigError err(std::string m) {
  return ConfigError{std::move(m)};
}

}  // namespace

bool Cidr::contains(int fam, const std::uint8_t* addr) const noexcept {
  if (fam != family) return false;
  int bits = prefix;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xFF : (0xFF << (8 - bits)) & 0xFF);
    if ((addr[i] & mask) != (bytes[i] & mask)) return false;
  }
  return true;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  Cidr c;
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  if (inet_pton(AF_INET, host.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET;
    c.prefix = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET6;
    c.prefix = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    auto p = number(text.substr(slash + 1), static_cast<unsigned long>(c.prefix));
    if (!p) return std::nullopt;
    c.prefix = static_cast<int>(*p);
  }
  return c;
}

socks5::Result<void, ConfigError> parse_rules(std::string_view text, Config& config) {
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find_first_of(";\n", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = trim(text.substr(start, end - start));
    start = end + 1;
    if (entry.empty() || entry.front() == '#') continue;
    const auto space = entry.find_first_of(" \t");
    const std::string_view head = entry.substr(0, space);
    const std::string_view rest =
        space == std::string_view::npos ? std::string_view{} : trim(entry.substr(space));
    if (head == "default") {
      auto a = parse_action(rest);
      if (!a)
        return unexpected(
            err("rule '" + std::string(entry) + "': default needs direct, proxy or reject"));
      config.default_action = *a;
      continue;
    }
    auto action = parse_action(head);
    if (!action) {
      return unexpected(err("rule '" + std::string(entry) +
                            "': expected direct, proxy, reject or default first"));
    }
    if (rest.empty()) return unexpected(err("rule '" + std::string(entry) + "': nothing to match"));
    Rule r;
    r.action = *action;
    if (rest == "*") {
      r.kind = Rule::Kind::any;
    } else if (rest.substr(0, 5) == "port " || rest.substr(0, 5) == "port\t") {
      const std::string_view ports = trim(rest.substr(5));
      const auto dash = ports.find('-');
      auto lo = number(ports.substr(0, dash), 65535);
      auto hi = dash == std::string_view::npos ? lo : number(ports.substr(dash + 1), 65535);
      if (!lo || !hi || *lo > *hi || *lo == 0) {
        return unexpected(err("rule '" + std::string(entry) + "': bad port or port range"));
      }
      r.kind = Rule::Kind::port;
      r.port_lo = static_cast<std::uint16_t>(*lo);
      r.port_hi = static_cast<std::uint16_t>(*hi);
    } else if (auto c = parse_cidr(rest)) {
      r.kind = Rule::Kind::cidr;
      r.net = *c;
    } else if (rest.find('/') != std::string_view::npos ||
               rest.find(':') != std::string_view::npos) {
      return unexpected(err("rule '" + std::string(entry) + "': bad network (CIDR)"));
    } else {
      std::string_view s = rest;
      if (s.substr(0, 2) == "*.") s.remove_prefix(2);
      if (!s.empty() && s.front() == '.') s.remove_prefix(1);
      if (s.empty() || s.find_first_of(" \t") != std::string_view::npos) {
        return unexpected(err("rule '" + std::string(entry) + "': bad domain suffix"));
      }
      r.kind = Rule::Kind::domain;
      r.suffix = lower(s);
    }
    config.rules.push_back(std::move(r));
  }
  return {};
}

socks5::Result<Config, ConfigError> parse_config(const EnvLookup& env) {
  Config c;
  c.fake4 = *parse_cidr("198.18.0.0/15");
  c.fake6 = *parse_cidr("fd5f:636b:7366::/48");
  auto get = [&](const char* name) -> std::optional<std::string_view> {
    const char* v = env(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string_view(v);
  };
  // Proxies: SOCKSIFY_PROXY holds one or more URIs separated by spaces or commas.
  if (auto list = get("SOCKSIFY_PROXY")) {
    std::string_view s = *list;
    std::size_t i = 0;
    while (i < s.size()) {
      const auto j = s.find_first_of(" ,\t\n", i);
      const std::string_view one = s.substr(i, j == std::string_view::npos ? s.npos : j - i);
      i = j == std::string_view::npos ? s.size() : j + 1;
      if (one.empty()) continue;
      auto u = socks5::parse_proxy_uri(one);
      if (!u) {
        return unexpected(err("SOCKSIFY_PROXY: '" + std::string(one) + "': " + u.error().message));
      }
      c.proxies.push_back(std::move(*u));
    }
  }
  if (c.proxies.empty())
    return unexpected(err("no proxy: set SOCKSIFY_PROXY (or socksify -x URI)"));
  if (auto pw = get("SOCKSIFY_PASSWORD")) {
    for (auto& p : c.proxies) {
      if (p.user && !p.password) p.password = std::string(*pw);
    }
  }
  c.remote_dns = c.proxies.front().remote_dns;
  if (auto dns = get("SOCKSIFY_DNS")) {
    if (*dns == "remote") {
      c.remote_dns = true;
    } else if (*dns == "local") {
      c.remote_dns = false;
    } else {
      return unexpected(err("SOCKSIFY_DNS: '" + std::string(*dns) + "': expected remote or local"));
    }
  }
  if (auto rules = get("SOCKSIFY_RULES")) {
    auto r = parse_rules(*rules, c);
    if (!r) return unexpected(err("SOCKSIFY_RULES: " + r.error().message));
  }
  if (auto f = get("SOCKSIFY_FAKE_NET4")) {
    auto n = parse_cidr(*f);
    if (!n || n->family != AF_INET || n->prefix > 24 || n->prefix < 8) {
      return unexpected(err("SOCKSIFY_FAKE_NET4: '" + std::string(*f) +
                            "': expected an IPv4 network between /8 and /24"));
    }
    c.fake4 = *n;
  }
  if (auto f = get("SOCKSIFY_FAKE_NET6")) {
    auto n = parse_cidr(*f);
    if (!n || n->family != AF_INET6 || n->prefix > 64 || n->prefix < 16) {
      return unexpected(err("SOCKSIFY_FAKE_NET6: '" + std::string(*f) +
                            "': expected an IPv6 network between /16 and /64"));
    }
    c.fake6 = *n;
  }
  if (auto v = get("SOCKSIFY_LOG")) {
    if (*v == "0" || *v == "quiet") {
      c.log_level = LogLevel::quiet;
    } else if (*v == "1" || *v == "info") {
      c.log_level = LogLevel::info;
    } else if (*v == "2" || *v == "debug") {
      c.log_level = LogLevel::debug;
    } else {
      return unexpected(
          err("SOCKSIFY_LOG: '" + std::string(*v) + "': expected quiet, info or debug"));
    }
  }
  if (auto f = get("SOCKSIFY_LOG_FILE")) c.log_file = std::string(*f);
  if (auto t = get("SOCKSIFY_TIMEOUT")) {
    auto ms = number(*t, 3600000);
    if (!ms || *ms == 0) {
      return unexpected(
          err("SOCKSIFY_TIMEOUT: '" + std::string(*t) + "': expected milliseconds (1-3600000)"));
    }
    c.timeout = std::chrono::milliseconds(*ms);
  }
  if (auto p = get("SOCKSIFY_PIPELINING")) {
    if (*p == "auto") {
      c.pipelining = socks5::Pipelining::automatic;
    } else if (*p == "on") {
      c.pipelining = socks5::Pipelining::on;
    } else if (*p == "off") {
      c.pipelining = socks5::Pipelining::off;
    } else {
      return unexpected(
          err("SOCKSIFY_PIPELINING: '" + std::string(*p) + "': expected auto, on or off"));
    }
  }
  return c;
}

const char* action_name(Action a) noexcept {
  switch (a) {
    case Action::direct: return "direct";
    case Action::proxy: return "proxy";
    case Action::reject: return "reject";
  }
  return "?";
}

}  // namespace socksify::shim
