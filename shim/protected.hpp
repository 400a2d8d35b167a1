#pragma once
// Protected streams (GSSAPI integrity or confidentiality, RFC 1961 §5): after the handshake,
// the program's own socket is connected to a relay process that wraps and unwraps every
// octet (relay/relay.hpp, doc/protected-streams.md). The program keeps its socket, its file
// description, its flags and its epoll registrations; the kernel's readiness is the truth.
#include <sys/socket.h>

#include "socks5/dialer.hpp"

namespace socksify::shim {

/// After a dial that ended with a protection layer on its own socket: hands the proxy
/// connection and the security context to a new relay process and connects the program's
/// socket `fd` (of `family`) to it. Returns 0, or the errno for the program's connect().
int start_protected(int fd, int family, socks5::Dial& dial, socks5::Deadline deadline) noexcept;

/// The same for a proxy connection of any origin (BIND's accepted connection): hands `proxy`
/// (closed in any case), its protection layer and `rest` (plaintext already unwrapped) to a
/// new relay and connects `fd` to it.
int relay_stream(int fd, int family, int proxy, socks5::Protection& protection, socks5::Bytes rest,
                 socks5::Deadline deadline) noexcept;

/// True if dials of this configuration end with a protection layer (GSSAPI above clear):
/// they must run on a socket of their own, not on the program's.
bool dials_protected() noexcept;

}  // namespace socksify::shim
