#include "socks5/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace socks5 {

Address Address::ipv4(const std::array<std::uint8_t, 4>& octets, std::uint16_t port) {
  Address a;
  a.type_ = AddressType::ipv4;
  std::memcpy(a.ip_.data(), octets.data(), 4);
  a.port_ = port;
  return a;
}

Address Address::ipv6(const std::array<std::uint8_t, 16>& octets, std::uint16_t port) {
  Address a;
  a.type_ = AddressType::ipv6;
  a.ip_ = octets;
  a.port_ = port;
  return a;
}

Address Address::domain(std::string name, std::uint16_t port) {
  Address a;
  a.type_ = AddressType::domain;
  a.host_ = std::move(name);
  a.port_ = port;
  return a;
}

Result<Address> Address::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return fail_errno(EFAULT);
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    std::array<std::uint8_t, 4> o{};
    std::memcpy(o.data(), &in.sin_addr, 4);
    return ipv4(o, ntohs(in.sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof in6);
    std::array<std::uint8_t, 16> o{};
    std::memcpy(o.data(), &in6.sin6_addr, 16);
    return ipv6(o, ntohs(in6.sin6_port));
  }
  return fail_errno(sa->sa_family == AF_INET || sa->sa_family == AF_INET6 ? EINVAL : EAFNOSUPPORT);
}

Address Address::from_host(std::string_view host, std::uint16_t port) {
  std::string h(host);
  std::array<std::uint8_t, 16> buf{};
  if (inet_pton(AF_INET, h.c_str(), buf.data()) == 1) {
    return ipv4({buf[0], buf[1], buf[2], buf[3]}, port);
  }
  if (inet_pton(AF_INET6, h.c_str(), buf.data()) == 1) return ipv6(buf, port);
  return domain(std::move(h), port);
}

std::optional<Address> Address::parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    std::array<std::uint8_t, 16> buf{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), buf.data()) != 1) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  if (host.empty() || host.size() > 255 || port_text.empty()) return std::nullopt;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value > 65535) {
    return std::nullopt;
  }
  return from_host(host, static_cast<std::uint16_t>(value));
}

bool Address::is_unspecified() const noexcept {
  if (type_ == AddressType::domain) return false;
  const std::size_t n = type_ == AddressType::ipv4 ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i) {
    if (ip_[i] != 0) return false;
  }
  return true;
}

socklen_t Address::to_sockaddr(sockaddr_storage& out) const noexcept {
  std::memset(&out, 0, sizeof out);
  if (type_ == AddressType::ipv4) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port_);
    std::memcpy(&in.sin_addr, ip_.data(), 4);
    std::memcpy(&out, &in, sizeof in);
    return sizeof in;
  }
  if (type_ == AddressType::ipv6) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port_);
    std::memcpy(&in6.sin6_addr, ip_.data(), 16);
    std::memcpy(&out, &in6, sizeof in6);
    return sizeof in6;
  }
  return 0;
}

std::string Address::host_string() const {
  if (type_ == AddressType::domain) return host_;
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(type_ == AddressType::ipv4 ? AF_INET : AF_INET6, ip_.data(), buf, sizeof buf);
  return buf;
}

std::string Address::to_string() const {
  std::string h = host_string();
  if (type_ == AddressType::ipv6) h = "[" + h + "]";
  return h + ":" + std::to_string(port_);
}

bool operator==(const Address& a, const Address& b) noexcept {
  if (a.type_ != b.type_ || a.port_ != b.port_) return false;
  if (a.type_ == AddressType::domain) return a.host_ == b.host_;
  return a.ip_ == b.ip_;
}

Address reachable_bound(const Address& bound, const Address& proxy) {
  if (!bound.is_unspecified() || !proxy.is_ip()) return bound;
  Address at = proxy;
  at.set_port(bound.port());
  return at;
}

bool fit_family(const sockaddr* sa, int family, sockaddr_storage& out) noexcept {
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return false;
  if (family == AF_UNSPEC || sa->sa_family == family) {
    std::memcpy(&out, sa, sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    return true;
  }
  if (family != AF_INET6 || sa->sa_family != AF_INET) return false;
  sockaddr_in in{};
  std::memcpy(&in, sa, sizeof in);
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  m.sin6_port = in.sin_port;
  m.sin6_addr.s6_addr[10] = 0xFF;
  m.sin6_addr.s6_addr[11] = 0xFF;
  std::memcpy(&m.sin6_addr.s6_addr[12], &in.sin_addr, 4);
  std::memcpy(&out, &m, sizeof m);
  return true;
}

}  // namespace socks5
