#include "config.hpp"

#include "options.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace socksify::settings {
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

bool read_first_line(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[4096];
  const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!got) return false;
  out = buf;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return true;
}

Settings from_environment(const EnvLookup& env) {
  Settings out;
  for (const Option& o : options()) {
    if (o.env.empty()) continue;
    const std::string name(o.env);
    const char* v = env(name.c_str());
    if (v != nullptr && *v != '\0') out[name] = Setting{v, name};
  }
  // The password by the path of a file (what the wrapper hands its children for
  // --password-file): the secret itself stays out of every environment. It wins over
  // SOCKSIFY_PASSWORD. (Unreadable: no password, and the proxy's refusal says so.)
  if (const char* file = env("SOCKSIFY_PASSWORD_FILE"); file != nullptr && *file != '\0') {
    std::string line;
    if (read_first_line(file, line)) {
      out["SOCKSIFY_PASSWORD"] = Setting{line, std::string("SOCKSIFY_PASSWORD_FILE ") + file};
    }
  }
  return out;
}

void overlay(Settings& bottom, const Settings& top) {
  for (const auto& [k, v] : top) bottom[k] = v;
}

socks5::Result<Config, ConfigError> parse_config(const EnvLookup& env) {
  return parse_config(from_environment(env));
}

socks5::Result<Config, ConfigError> parse_config(const Settings& settings) {
  Config c;
  c.fake4 = *parse_cidr("198.18.0.0/15");
  c.fake6 = *parse_cidr("fd5f:636b:7366::/48");
  auto get = [&](std::string_view name) -> const Setting* {
    auto it = settings.find(name);
    return it == settings.end() || it->second.value.empty() ? nullptr : &it->second;
  };
  // "ORIGIN: 'VALUE': PROBLEM", where ORIGIN is what the user wrote: a variable, a flag or a
  // file position.
  auto bad = [](const Setting& s, const std::string& problem) {
    return unexpected(err(s.origin + ": '" + s.value + "': " + problem));
  };
  // A setting that must be one of the table's choices (or in its integer range).
  auto checked = [&](const char* name) -> socks5::Result<const Setting*, ConfigError> {
    const Setting* s = get(name);
    if (s == nullptr) return s;
    const Option* o = option_by_env(name);
    if (o != nullptr && !valid_value(*o, s->value)) return bad(*s, expected_text(*o));
    return s;
  };
  // Proxies: one or more URIs separated by spaces or commas.
  if (const Setting* list = get("SOCKSIFY_PROXY")) {
    std::string_view s = list->value;
    std::size_t i = 0;
    while (i < s.size()) {
      const auto j = s.find_first_of(" ,\t\n", i);
      const std::string_view one = s.substr(i, j == std::string_view::npos ? s.npos : j - i);
      i = j == std::string_view::npos ? s.size() : j + 1;
      if (one.empty()) continue;
      auto u = socks5::parse_proxy_uri(one);
      if (!u) {
        return bad(Setting{std::string(one), list->origin}, "invalid proxy URI at offset " +
                                                                std::to_string(u.error().position) +
                                                                ": " + u.error().message);
      }
      c.proxies.push_back(std::move(*u));
    }
  }
  if (c.proxies.empty())
    return unexpected(
        err("no proxy: give one with socksify -x URI, SOCKSIFY_PROXY=URI, or proxy = \"URI\" in "
            "a configuration file (-c FILE, SOCKSIFY_CONF, ~/.config/socksify/socksify.conf or "
            "/etc/socksify.conf)"));
  if (const Setting* pw = get("SOCKSIFY_PASSWORD")) {
    for (auto& p : c.proxies) {
      if (p.user && !p.password) p.password = pw->value;
    }
  }
  auto chain = checked("SOCKSIFY_CHAIN");
  if (!chain) return unexpected(chain.error());
  if (*chain != nullptr && (*chain)->value == "strict") c.chain = socks5::ChainMode::strict;
  // Remote DNS follows the proxy that resolves the destination: the first one in failover,
  // the last hop of a strict chain.
  c.remote_dns = c.chain == socks5::ChainMode::strict ? c.proxies.back().remote_dns()
                                                      : c.proxies.front().remote_dns();
  auto dns = checked("SOCKSIFY_DNS");
  if (!dns) return unexpected(dns.error());
  if (*dns != nullptr) c.remote_dns = (*dns)->value == "remote";
  if (const Setting* rules = get("SOCKSIFY_RULES")) {
    auto r = parse_rules(rules->value, c);
    if (!r) return unexpected(err(rules->origin + ": " + r.error().message));
  }
  if (const Setting* f = get("SOCKSIFY_FAKE_NET4")) {
    auto n = parse_cidr(f->value);
    if (!n || n->family != AF_INET || n->prefix > 24 || n->prefix < 8) {
      return bad(*f, "expected an IPv4 network between /8 and /24");
    }
    c.fake4 = *n;
  }
  if (const Setting* f = get("SOCKSIFY_FAKE_NET6")) {
    auto n = parse_cidr(f->value);
    if (!n || n->family != AF_INET6 || n->prefix > 64 || n->prefix < 16) {
      return bad(*f, "expected an IPv6 network between /16 and /64");
    }
    c.fake6 = *n;
  }
  if (const Setting* v = get("SOCKSIFY_LOG")) {
    if (v->value == "0" || v->value == "quiet") {
      c.log_level = LogLevel::quiet;
    } else if (v->value == "error") {
      c.log_level = LogLevel::error;
    } else if (v->value == "1" || v->value == "info") {
      c.log_level = LogLevel::info;
    } else if (v->value == "2" || v->value == "debug") {
      c.log_level = LogLevel::debug;
    } else {
      return bad(*v, "expected quiet, error, info or debug");
    }
  }
  if (const Setting* v = get("SOCKSIFY_STRICT")) {
    if (v->value == "1" || v->value == "true" || v->value == "on" || v->value == "yes") {
      c.strict = true;
    } else if (v->value != "0" && v->value != "false" && v->value != "off" && v->value != "no") {
      return bad(*v, "expected 1 or 0");
    }
  }
  if (const Setting* f = get("SOCKSIFY_LOG_FILE")) c.log_file = f->value;
  if (const Setting* f = get("SOCKSIFY_PROXY_CACERT")) c.proxy_cacert = f->value;
  auto timeout = checked("SOCKSIFY_TIMEOUT");
  if (!timeout) return unexpected(timeout.error());
  if (*timeout != nullptr)
    c.timeout = std::chrono::milliseconds(*number((*timeout)->value, 3600000));
  auto listen = checked("SOCKSIFY_LISTEN");
  if (!listen) return unexpected(listen.error());
  if (*listen != nullptr) {
    const std::string& l = (*listen)->value;
    c.listen = l == "proxy"   ? ListenMode::proxy
               : l == "local" ? ListenMode::local
                              : ListenMode::automatic;
  }
  auto mode = checked("SOCKSIFY_MODE");
  if (!mode) return unexpected(mode.error());
  if (*mode != nullptr) {
    const std::string& m = (*mode)->value;
    c.mode = m == "preload"      ? RunMode::preload
             : m == "supervisor" ? RunMode::supervisor
                                 : RunMode::automatic;
  }
  auto auth = checked("SOCKSIFY_AUTH");
  if (!auth) return unexpected(auth.error());
  auto level = checked("SOCKSIFY_GSSAPI_PROTECTION");
  if (!level) return unexpected(level.error());
  const Setting* service = get("SOCKSIFY_GSSAPI_SERVICE");
  if (*auth != nullptr && (*auth)->value == "gssapi") {
    socks5::GssapiOptions g;
    if (service != nullptr) g.service = service->value;
    if (*level != nullptr) {
      const std::string& l = (*level)->value;
      g.level = l == "clear"             ? socks5::GssLevel::clear
                : l == "confidentiality" ? socks5::GssLevel::confidentiality
                                         : socks5::GssLevel::integrity;
    }
    for (const auto& p : c.proxies) {
      if (p.user) {
        return unexpected(ConfigError{"proxy " + p.to_string() + " names user '" + *p.user +
                                      "', but with SOCKSIFY_AUTH=gssapi the user is the one "
                                      "of the Kerberos ticket: leave it out of the URI"});
      }
    }
    c.gssapi = std::move(g);
  } else {
    // Settings of a method that is not chosen would silently protect nothing.
    for (const Setting* s : {service, *level}) {
      if (s != nullptr) {
        return unexpected(ConfigError{s->origin + " is set, but SOCKSIFY_AUTH is not gssapi "
                                                  "(set SOCKSIFY_AUTH=gssapi, or --auth gssapi)"});
      }
    }
  }
  auto pipelining = checked("SOCKSIFY_PIPELINING");
  if (!pipelining) return unexpected(pipelining.error());
  if (*pipelining != nullptr) {
    const std::string& p = (*pipelining)->value;
    c.pipelining = p == "on"    ? socks5::Pipelining::on
                   : p == "off" ? socks5::Pipelining::off
                                : socks5::Pipelining::automatic;
  }
  return c;
}

std::string route_text(const Config& config) {
  std::string out;
  for (const auto& p : config.proxies) {
    if (!out.empty()) out += " -> ";
    out += p.to_string();
  }
  return out;
}

const char* action_name(Action a) noexcept {
  switch (a) {
    case Action::direct: return "direct";
    case Action::proxy: return "proxy";
    case Action::reject: return "reject";
    case Action::loopback: return "loopback";
  }
  return "?";
}

}  // namespace socksify::settings
