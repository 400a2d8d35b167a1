#include "policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace socksify::shim {

bool is_loopback(int family, const std::uint8_t* ip) noexcept {
  if (family == AF_INET) return ip[0] == 127;
  static const std::uint8_t kLo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return family == AF_INET6 && std::memcmp(ip, kLo6, 16) == 0;
}

bool domain_matches(std::string_view name, std::string_view suffix) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // absolute form
  if (name.size() < suffix.size()) return false;
  const std::size_t off = name.size() - suffix.size();
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = name[off + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return off == 0 || name[off - 1] == '.';
}

bool destination_from(const sockaddr* sa, socklen_t len, Destination& dst) noexcept {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    dst.family = AF_INET;
    std::memcpy(dst.ip.data(), &in.sin_addr, 4);
    dst.port = ntohs(in.sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof in6);
    dst.port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      dst.family = AF_INET;
      std::memcpy(dst.ip.data(), &in6.sin6_addr.s6_addr[12], 4);
    } else {
      dst.family = AF_INET6;
      std::memcpy(dst.ip.data(), &in6.sin6_addr, 16);
    }
    return true;
  }
  return false;
}

namespace {

bool is_proxy(const Config& config, const Destination& dst) {
  for (const auto& p : config.proxies) {
    if (p.port != dst.port) continue;
    std::uint8_t buf[16];
    const int fam = p.host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    if (fam == dst.family && inet_pton(fam, p.host.c_str(), buf) == 1 &&
        std::memcmp(buf, dst.ip.data(), fam == AF_INET ? 4 : 16) == 0) {
      return true;
    }
  }
  return false;
}

bool matches(const Rule& r, const Destination& dst) {
  switch (r.kind) {
    case Rule::Kind::any: return true;
    case Rule::Kind::cidr: return dst.name.empty() && r.net.contains(dst.family, dst.ip.data());
    case Rule::Kind::port: return dst.port >= r.port_lo && dst.port <= r.port_hi;
    case Rule::Kind::domain: return !dst.name.empty() && domain_matches(dst.name, r.suffix);
  }
  return false;
}

}  // namespace

Verdict classify(const Config& config, const Destination& dst) noexcept {
  if (dst.name.empty() && is_proxy(config, dst)) return {Action::direct, "the proxy itself"};
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    if (matches(config.rules[i], dst)) {
      return {config.rules[i].action, "rule", static_cast<int>(i + 1)};
    }
  }
  // A local stub resolver forwards what it gets: DNS over TCP is never sent direct.
  if (config.remote_dns && dst.tcp && dst.port == 53) return {Action::proxy, "dns over tcp"};
  if (dst.name.empty() && is_loopback(dst.family, dst.ip.data())) {
    return {Action::direct, "loopback"};
  }
  return {config.default_action, "default"};
}

std::optional<Action> classify_name(const Config& config, std::string_view name) noexcept {
  for (const auto& r : config.rules) {
    if (r.kind == Rule::Kind::domain && domain_matches(name, r.suffix)) return r.action;
  }
  return std::nullopt;
}

}  // namespace socksify::shim
