#pragma once
// Protected streams (GSSAPI integrity or confidentiality, RFC 1961 §5): after the handshake,
// the program's own socket is connected to a relay process that wraps and unwraps every
// octet (relay/relay.hpp, doc/protected-streams.md). The program keeps its socket, its file
// description, its flags and its epoll registrations; the kernel's readiness is the truth.
#include <sys/socket.h>

#include <cstdint>

#include "handover.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

/// After a dial on its own socket: hands the proxy connection (and the security context of
/// its protection layer, if any) to a new relay process and connects the program's socket
/// `fd` (of `family`) to it. Returns 0, or the errno for the program's connect().
int start_protected(int fd, int family, socks5::Dial& dial, socks5::Deadline deadline) noexcept;

/// The same for a proxy connection of any origin (BIND's accepted connection): hands `proxy`
/// (closed in any case), its protection layer and `rest` (plaintext already unwrapped) to a
/// new relay and connects `fd` to it.
int relay_stream(int fd, int family, int proxy, socks5::Protection& protection, socks5::Bytes rest,
                 socks5::Deadline deadline) noexcept;

/// The program's socket connected to a listener of the library's own (loopback), where the
/// relay will pick it up: so that it is a connected stream while its dial is under way
/// (an unconnected socket reports EPOLLHUP, which no held registration can hide).
using Parked = relay::Parked;
/// Connects `fd` to a new listener of the library's. Returns 0 or the errno.
int park_program(int fd, int family, Parked& parked, socks5::Deadline deadline) noexcept;
/// start_protected() for a program socket parked before the dial: the relay takes the
/// listener over (closed here in any case).
int start_parked(socks5::Dial& dial, Parked& parked, socks5::Deadline deadline) noexcept;

/// True if dials of this configuration must run on a socket of their own, not on the
/// program's: they end with a protection layer (GSSAPI above clear), or a proxy is on a Unix
/// socket.
bool dials_protected() noexcept;

/// TLS toward https proxies (DialPlan::transport): a relay process per connection.
socks5::Transport* relay_transport() noexcept;

}  // namespace socksify::shim
