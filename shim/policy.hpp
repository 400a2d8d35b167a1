#pragma once
// classify(): the ONE place where the shim decides what happens to an operation. Pure (no
// system call, no allocation, no lock: a signal handler may reach it); unit-tested without
// sockets. Hooks gather the facts (the destination, the socket type, the name behind a fake
// address), call classify(), and act on the Verdict; a refusal's errno comes from the core's
// one error table (socks5::to_errno of Verdict::refusal).
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config.hpp"
#include "socks5/error.hpp"

namespace socksify::shim {

using settings::Action;
using settings::Config;

/// What the program is doing.
enum class Operation : std::uint8_t {
  connect,    ///< connect() of a stream socket, or TCP Fast Open data (sendto MSG_FASTOPEN)
  datagram,   ///< a datagram (sendto, sendmsg, sendmmsg) or connect() of a datagram socket
  listen,     ///< listen() on a socket bound to Destination (local, or SOCKS BIND)
  resolve,    ///< a forward lookup of Destination::name
  reverse,    ///< a reverse lookup of Destination's address
  dns_query,  ///< a resolver-library query (res_query and relatives) about Destination::name
};

/// A destination as the program named it, normalised (v4-mapped IPv6 -> IPv4).
struct Destination {
  int family = 0;  ///< AF_INET or AF_INET6 (0 for a bare name)
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;
  std::string_view name;  ///< the host name behind a fake address, or the name to resolve
};

/// Facts about the call that are not about the destination.
struct Context {
  /// The thread was already inside the shim (a signal handler interrupted its work).
  bool nested = false;
  /// ...and that work is a call into the local resolver (NSS modules' own traffic).
  bool in_resolver = false;
  /// ...or a call into the GSS-API library (Kerberos' own traffic to the KDC).
  bool in_kerberos = false;
  /// The address was resolved locally under a `direct` domain rule (direct_names.hpp).
  bool direct_by_name = false;
  /// The address lies in a fake range (with or without a name behind it).
  bool fake = false;
  /// listen: the socket is bound to the local address of a connection through the proxy (a
  /// data connection a protocol announces on it, as active FTP does).
  bool beside_proxied = false;
};

/// The decision, the reason (for -v logs) and, for refusals, what to tell the program.
struct Verdict {
  Action action = Action::direct;
  const char* why = "";
  int rule = -1;                                          ///< 1-based index of the matching rule
  socks5::Errc refusal = socks5::Errc::invalid_argument;  ///< meaningful for Action::reject
};

/// Fills `dst` from an AF_INET/AF_INET6 sockaddr (v4-mapped IPv6 becomes IPv4). False for
/// other families or short lengths.
bool destination_from(const sockaddr* sa, socklen_t len, Destination& dst) noexcept;

/// The decision for `op` on `dst`. For connections, first match wins: the proxies themselves
/// are direct; then addresses a direct domain rule resolved; then the user's rules; then, in
/// remote-DNS mode, TCP port 53 goes to the proxy; then loopback is direct; then the default.
/// See policy.cpp for the other operations.
Verdict classify(const Config& config, Operation op, const Destination& dst,
                 const Context& ctx = {}) noexcept;

/// True for 127.0.0.0/8 and ::1.
bool is_loopback(int family, const std::uint8_t* ip) noexcept;

/// Does `name` equal `suffix` or end with "." + suffix (case-insensitive)?
bool domain_matches(std::string_view name, std::string_view suffix) noexcept;

/// True for the names RFC 6761 reserves for loopback: localhost and *.localhost (with or
/// without the final dot).
bool is_localhost_name(std::string_view name) noexcept;

}  // namespace socksify::shim
