#pragma once
// classify(): the ONE place where the shim decides what happens to an operation. Pure (no
// system call, no allocation, no lock: a signal handler may reach it); unit-tested without
// sockets. Hooks gather the facts (the destination, the socket type, the name behind a fake
// address), call classify(), and act on the Verdict; a refusal is the library's own decision,
// not a proxy's error: its errno and text come from refusal_errno() and refusal_text().
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config.hpp"
#include "socks5/address.hpp"
#include "socks5/error.hpp"

namespace socksify::core {

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
/// Why the policy refuses an operation (Action::reject).
enum class Refusal : std::uint8_t {
  none,
  rejected_by_rule,  ///< a `reject` rule matched (or the default is reject)
  udp_not_proxied,   ///< an ICMP or raw datagram to a destination the policy proxies
  dns_would_leak,    ///< a DNS query that would reach the local resolver in remote-DNS mode
  reentrant_call,    ///< a call that needs the proxy, made from inside the library's own work
                     ///< (a signal handler interrupting it)
};

/// The errno the refused call fails with: EACCES, ENETUNREACH.
int refusal_errno(Refusal r) noexcept;
/// What the refusal means, for the -v line.
const char* refusal_text(Refusal r) noexcept;

struct Verdict {
  Action action = Action::direct;
  const char* why = "";
  int rule = -1;                    ///< 1-based index of the matching rule
  Refusal refusal = Refusal::none;  ///< meaningful for Action::reject
};

/// Fills `dst` from an AF_INET/AF_INET6 sockaddr of its full size (v4-mapped IPv6 becomes
/// IPv4). False for other families or short lengths. For addresses the library made or the
/// kernel returned; an address a PROGRAM passes to a call is read with read_address().
bool destination_from(const sockaddr* sa, socklen_t len, Destination& dst) noexcept;

/// What the kernel's reading of an address depends on: the socket's SO_DOMAIN, SO_TYPE (the
/// low bits) and SO_PROTOCOL.
struct SocketFacts {
  int family = 0;
  int type = 0;
  int protocol = 0;
};

/// True for an AF_INET or AF_INET6 socket.
inline bool is_inet(const SocketFacts& f) noexcept {
  return f.family == AF_INET || f.family == AF_INET6;
}

/// The call an address is passed to.
enum class AddressUse : std::uint8_t {
  connect,  ///< connect(), and the address of sendto/sendmsg with MSG_FASTOPEN
  send,     ///< the address of sendto, sendmsg, sendmmsg on a datagram or raw socket
};

/// How the kernel reads an address a program passed.
struct AddressReading {
  enum class Kind : std::uint8_t {
    destination,  ///< an internet destination, in `dst`
    unspecified,  ///< connect: AF_UNSPEC dissolves the association; send: as if no address
    refused,      ///< the kernel refuses it with `error` (nothing leaves)
  };
  Kind kind = Kind::refused;
  int error = 0;
  /// The destination came from a v4-mapped IPv6 address (an IPV6_V6ONLY socket refuses it
  /// with ENETUNREACH).
  bool v4_mapped = false;
};

/// Reads `sa`/`len` for `use` on an AF_INET or AF_INET6 socket exactly as Linux does
/// (net/ipv4/af_inet.c, tcp_ipv4.c, udp.c, datagram.c and their IPv6 twins): the minimum
/// lengths (16 for AF_INET; 24, RFC 2133's layout without sin6_scope_id, for AF_INET6), a
/// longer address read for its first octets, AF_UNSPEC read as AF_INET where udp_sendmsg and
/// raw_sendmsg do, AF_INET on an IPv6 datagram socket read as IPv4, a destination port 0
/// refused for UDP. Pure; `facts.family` must be AF_INET or AF_INET6.
AddressReading read_address(const SocketFacts& facts, AddressUse use, const sockaddr* sa,
                            socklen_t len, Destination& dst) noexcept;

/// The address a program passed to connect(), as a socket of `socket_family` reports its peer
/// (getpeername): a full sockaddr_in or sockaddr_in6 (an AF_INET address on an IPv6 socket
/// v4-mapped). Only for an address read_address() read as a destination. Its length.
socklen_t canonical_peer(int socket_family, const sockaddr* sa, socklen_t len,
                         sockaddr_storage& out) noexcept;

/// The reading of an address of one of the two usual shapes (AF_INET of 16 octets or more,
/// AF_INET6 of 28 or more), which is the same on every socket that accepts it at all. False
/// for any other shape: then the socket's facts are needed (read_address). For the paths
/// that must cost no system call (a datagram to a direct destination).
bool read_usual_address(const sockaddr* sa, socklen_t len, Destination& dst) noexcept;

/// The decision for `op` on `dst`. For connections, first match wins: the proxies themselves
/// are direct; then addresses a direct domain rule resolved; then the user's rules; then, in
/// remote-DNS mode, TCP port 53 goes to the proxy; then loopback is direct; then the default.
/// See policy.cpp for the other operations.
Verdict classify(const Config& config, Operation op, const Destination& dst,
                 const Context& ctx = {}) noexcept;

/// The destination as a SOCKS address: the name behind a fake address, else the IP.
socks5::Address target_of(const Destination& d);

/// True for 127.0.0.0/8 and ::1.
bool is_loopback(int family, const std::uint8_t* ip) noexcept;

/// True for 0.0.0.0 and ::. As a destination the kernel takes either for this host (a connect
/// or a datagram to it reaches the local machine), so the policy routes it as loopback.
bool is_unspecified(int family, const std::uint8_t* ip) noexcept;

/// Does `name` equal `suffix` or end with "." + suffix (case-insensitive)?
bool domain_matches(std::string_view name, std::string_view suffix) noexcept;

/// True for the names RFC 6761 reserves for loopback: localhost and *.localhost (with or
/// without the final dot).
bool is_localhost_name(std::string_view name) noexcept;

}  // namespace socksify::core
