#pragma once
// classify(): which way a destination goes. Pure; unit-tested without sockets.
#include <array>
#include <cstdint>
#include <string_view>

#include <sys/socket.h>

#include "config.hpp"

namespace socksify::shim {

/// A destination as the application named it, normalised (v4-mapped IPv6 -> IPv4).
struct Destination {
  int family = 0;  ///< AF_INET or AF_INET6
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;
  std::string_view name;  ///< the host name behind a fake address, else empty
  bool tcp = true;
};

/// Fills `dst` from an AF_INET/AF_INET6 sockaddr (v4-mapped IPv6 becomes IPv4). False for
/// other families or short lengths.
bool destination_from(const sockaddr* sa, socklen_t len, Destination& dst) noexcept;

/// The decision and the reason (for -v logs).
struct Verdict {
  Action action;
  const char* why;  ///< "rule 3", "loopback", "default", "dns over tcp"...
  int rule = -1;    ///< index of the matching user rule
};

/// First match wins: the proxies themselves are direct; then the user's rules; then, in
/// remote-DNS mode, TCP port 53 goes to the proxy; then loopback is direct; then the default.
Verdict classify(const Config& config, const Destination& dst) noexcept;

/// Action of the domain rules alone for a name (used before it becomes a fake address);
/// nullopt when no domain rule matches.
std::optional<Action> classify_name(const Config& config, std::string_view name) noexcept;

/// True for 127.0.0.0/8 and ::1.
bool is_loopback(int family, const std::uint8_t* ip) noexcept;

/// Does `name` equal `suffix` or end with "." + suffix (case-insensitive)?
bool domain_matches(std::string_view name, std::string_view suffix) noexcept;

}  // namespace socksify::shim
