#pragma once
// A SOCKS address (RFC 1928 §5): IPv4, IPv6 or a domain name, with a port.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "socks5/result.hpp"

namespace socks5 {

/// The ATYP octet values (RFC 1928 §4, §5).
enum class AddressType : std::uint8_t { ipv4 = 0x01, domain = 0x03, ipv6 = 0x04 };

/// A destination or bound address as carried on the wire.
class Address {
 public:
  Address() = default;
  /// An IPv4 address from its 4 octets in network order.
  static Address ipv4(const std::array<std::uint8_t, 4>& octets, std::uint16_t port);
  /// An IPv6 address from its 16 octets in network order.
  static Address ipv6(const std::array<std::uint8_t, 16>& octets, std::uint16_t port);
  /// A domain name (1..255 octets; checked when encoded, not here).
  static Address domain(std::string name, std::uint16_t port);
  /// From a sockaddr_in/sockaddr_in6; fails with EAFNOSUPPORT for other families.
  static Result<Address> from_sockaddr(const sockaddr* sa, socklen_t len);
  /// Parses "1.2.3.4", "::1" (no brackets) or else takes the text as a domain name.
  static Address from_host(std::string_view host, std::uint16_t port);
  /// Parses "host:port", "[v6]:port"; the port is required. nullopt on syntax errors.
  static std::optional<Address> parse_host_port(std::string_view text);

  AddressType type() const noexcept { return type_; }
  bool is_ip() const noexcept { return type_ != AddressType::domain; }
  std::uint16_t port() const noexcept { return port_; }
  void set_port(std::uint16_t p) noexcept { port_ = p; }
  /// The 4 or 16 address octets (only meaningful for IP types).
  const std::array<std::uint8_t, 16>& octets() const noexcept { return ip_; }
  /// The domain name (only meaningful for AddressType::domain).
  const std::string& host() const noexcept { return host_; }
  /// True for 0.0.0.0 and :: (a server's "use my address" answer).
  bool is_unspecified() const noexcept;

  /// Fills a sockaddr_storage; returns its length, or 0 for a domain address.
  socklen_t to_sockaddr(sockaddr_storage& out) const noexcept;
  /// "1.2.3.4:80", "[::1]:80", "example.org:80".
  std::string to_string() const;
  /// The host part only, without brackets or port.
  std::string host_string() const;

  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  AddressType type_ = AddressType::ipv4;
  std::array<std::uint8_t, 16> ip_{};
  std::string host_;
  std::uint16_t port_ = 0;
};

/// Copies `sa` (IPv4 or IPv6) into `out` if it suits a socket of `family`: the same family,
/// A BND address as a place to reach (a UDP relay, a BIND listener): RFC 1928 leaves
/// "0.0.0.0" / "::" undefined, and servers use it to mean "the address you reached me at", so
/// it becomes `proxy` (when that is an address) at BND's port. Anything else is kept.
Address reachable_bound(const Address& bound, const Address& proxy);

/// any family for AF_UNSPEC, or an IPv4 address for an IPv6 socket (as a v4-mapped address).
bool fit_family(const sockaddr* sa, int family, sockaddr_storage& out) noexcept;

}  // namespace socks5
