#pragma once
// Datagrams (UDP, ICMP, raw) are not proxied yet: UDP ASSOCIATE comes later. Until then they
// follow the policy fail-closed: a destination the policy sends through the proxy refuses
// them, as a proxied TCP connect that fails would, instead of letting them go direct.
#include "policy.hpp"
#include "runtime.hpp"

namespace socksify::shim {

/// 0 if a datagram (or a datagram socket's connect) to `d` may go; else the errno to fail
/// with, after one log line: EACCES for DNS in remote-DNS mode and for `reject`,
/// ENETUNREACH for destinations the policy proxies (fake addresses included). `d.name` is
/// the host name behind a fake address, if any.
int datagram_refusal(const Runtime& rt, const Destination& d) noexcept;

/// The same for a destination `to` of a datagram on socket `fd` (not a stream socket: those
/// ignore the address); fills in the name behind a fake address.
int datagram_refusal(int fd, const sockaddr* to, socklen_t len) noexcept;

}  // namespace socksify::shim
