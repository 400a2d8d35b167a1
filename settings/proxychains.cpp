#include "proxychains.hpp"

#include <arpa/inet.h>

#include <bit>
#include <charconv>
#include <cstdint>
#include <vector>

namespace socksify::settings {
namespace {

using socks5::unexpected;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    s = trim(s);
    if (s.empty()) return out;
    const auto end = s.find_first_of(" \t=");
    out.push_back(s.substr(0, end));
    if (end == std::string_view::npos) return out;
    s.remove_prefix(end + 1);
  }
}

bool number(std::string_view s, long& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// user and password go into the URI; characters with a meaning there are percent-encoded.
std::string uri_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// "10.0.0.0/255.0.0.0" or "10.0.0.0/8" or "::1/128" as "ADDR/PREFIX"; "" if invalid.
std::string localnet_cidr(std::string_view net, std::string& error) {
  const auto slash = net.find('/');
  if (slash == std::string_view::npos) {
    error = "expected ADDRESS/NETMASK";
    return "";
  }
  std::string_view addr = net.substr(0, slash);
  const std::string_view mask = net.substr(slash + 1);
  // proxychains allows "ADDRESS:PORT/NETMASK" for IPv4: socksify's rules match an address or
  // a port, not both.
  if (addr.find(':') != std::string_view::npos && addr.find('.') != std::string_view::npos) {
    error = "a port in localnet is not supported: write a rule for the network instead";
    return "";
  }
  long prefix = 0;
  if (!number(mask, prefix)) {
    in_addr m{};
    const std::string mask_text(mask);
    if (inet_pton(AF_INET, mask_text.c_str(), &m) != 1) {
      error = "invalid netmask '" + mask_text + "'";
      return "";
    }
    const std::uint32_t bits = ntohl(m.s_addr);
    prefix = std::popcount(bits);
    if (bits != 0 && (~bits & (~bits + 1)) != 0) {
      error = "netmask '" + mask_text + "' is not contiguous";
      return "";
    }
  }
  return std::string(addr) + "/" + std::to_string(prefix);
}

}  // namespace

bool looks_like_proxychains(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    if (line == "[ProxyList]" || line == "[proxylist]") return true;
    start = end + 1;
  }
  return false;
}

socks5::Result<Settings, ConfigError> read_proxychains(const std::string& path,
                                                       std::string_view text) {
  Settings out;
  std::string proxies, rules;
  bool remote_dns = false;
  bool in_list = false;
  std::size_t dns_line = 0;
  int line_no = 0;
  std::size_t start = 0;
  auto at = [&](const std::string& what) {
    return ConfigError{path + ":" + std::to_string(line_no) + ": " + what};
  };
  auto origin = [&](std::string_view key) {
    return path + ":" + std::to_string(line_no) + ": " + std::string(key);
  };
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      in_list = line == "[ProxyList]" || line == "[proxylist]";
      if (!in_list) return unexpected(at("unknown section " + std::string(line)));
      continue;
    }
    const auto w = words(line);
    const std::string_view key = w[0];
    if (in_list) {
      // TYPE HOST PORT [USER PASS]
      if (key != "socks5" && key != "socks4" && key != "http") {
        return unexpected(at(std::string(key) +
                             " proxies are not supported: socksify speaks socks5, socks4 and "
                             "http"));
      }
      long port = 0;
      if (w.size() != 3 && w.size() != 5) {
        return unexpected(at("expected: " + std::string(key) + " HOST PORT [USER PASSWORD]"));
      }
      if (!number(w[2], port) || port < 1 || port > 65535) {
        return unexpected(at("invalid port '" + std::string(w[2]) + "'"));
      }
      std::string uri = "://";
      if (w.size() == 5) {
        // SOCKS4 has a user id and no password: proxychains sends the user name alone.
        uri += uri_escape(w[3]);
        if (key != "socks4") uri += ":" + uri_escape(w[4]);
        uri += "@";
      }
      const std::string host(w[1]);
      uri += host.find(':') != std::string::npos ? "[" + host + "]" : host;
      uri += ":" + std::to_string(port);
      if (!proxies.empty()) proxies += ' ';
      proxies += std::string(key) + uri;  // the scheme follows proxy_dns, known at the end
      out["SOCKSIFY_PROXY"].origin = origin("[ProxyList]");
      continue;
    }
    if (key == "strict_chain" || key == "dynamic_chain") {
      out["SOCKSIFY_CHAIN"] = {key == "strict_chain" ? "strict" : "failover", origin(key)};
    } else if (key == "random_chain" || key == "round_robin_chain") {
      return unexpected(at(std::string(key) +
                           " is not supported: use dynamic_chain (socksify's failover) or "
                           "strict_chain"));
    } else if (key == "chain_len") {
      // Only random and round-robin chains use it.
    } else if (key == "quiet_mode") {
      out["SOCKSIFY_LOG"] = {"quiet", origin(key)};
    } else if (key == "proxy_dns" || key == "proxy_dns_old" || key == "proxy_dns_daemon") {
      remote_dns = true;
      dns_line = static_cast<std::size_t>(line_no);
    } else if (key == "remote_dns_subnet") {
      long n = 0;
      if (w.size() != 2 || !number(w[1], n) || n < 0 || n > 255) {
        return unexpected(at("remote_dns_subnet: expected a number from 0 to 255"));
      }
      out["SOCKSIFY_FAKE_NET4"] = {std::to_string(n) + ".0.0.0/8", origin(key)};
    } else if (key == "tcp_connect_time_out") {
      long ms = 0;
      if (w.size() != 2 || !number(w[1], ms) || ms < 1 || ms > 3600000) {
        return unexpected(at("tcp_connect_time_out: expected milliseconds from 1 to 3600000"));
      }
      out["SOCKSIFY_TIMEOUT"] = {std::to_string(ms), origin(key)};
    } else if (key == "tcp_read_time_out") {
      // socksify's one deadline (tcp_connect_time_out) bounds the handshake's reads too.
    } else if (key == "localnet") {
      if (w.size() != 2) return unexpected(at("localnet: expected ADDRESS/NETMASK"));
      std::string error;
      const std::string cidr = localnet_cidr(w[1], error);
      if (cidr.empty()) return unexpected(at("localnet: " + error));
      if (!rules.empty()) rules += ';';
      rules += "direct " + cidr;
      out["SOCKSIFY_RULES"].origin = origin(key);
    } else if (key == "dnat") {
      return unexpected(at("dnat is not supported: socksify does not rewrite destinations"));
    } else {
      return unexpected(at("unknown proxychains keyword '" + std::string(key) + "'"));
    }
  }
  if (proxies.empty()) {
    return unexpected(ConfigError{path + ": no proxy in its [ProxyList]"});
  }
  // proxy_dns: names go to the proxy (socks5h://, socks4a://; HTTP CONNECT always carries
  // names); without it they are resolved locally.
  std::string uris;
  std::size_t pos = 0;
  while (pos < proxies.size()) {
    auto sp = proxies.find(' ', pos);
    if (sp == std::string::npos) sp = proxies.size();
    std::string one = proxies.substr(pos, sp - pos);
    if (remote_dns && one.rfind("socks5://", 0) == 0) one.insert(6, "h");
    if (remote_dns && one.rfind("socks4://", 0) == 0) one.insert(6, "a");
    if (!uris.empty()) uris += ' ';
    uris += one;
    pos = sp + 1;
  }
  out["SOCKSIFY_PROXY"].value = uris;
  out["SOCKSIFY_DNS"] = {remote_dns ? "remote" : "local",
                         remote_dns ? path + ":" + std::to_string(dns_line) + ": proxy_dns"
                                    : path + ": (no proxy_dns)"};
  if (!rules.empty()) out["SOCKSIFY_RULES"].value = rules;
  return out;
}

}  // namespace socksify::settings
