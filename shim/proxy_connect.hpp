#pragma once
// Connects an application's own socket to the destination through a proxy: TCP connect to
// the proxy ON THE APP'S FD (no fd swapping: epoll registrations stay valid, O_NONBLOCK is
// never touched), then the SOCKS handshake, bounded by the configured deadline.
#include <sys/socket.h>

#include "policy.hpp"
#include "runtime.hpp"

namespace socksify::shim {

/// Returns 0, or -1 with errno as connect(2) would set it. `addr` is what the app passed
/// (remembered for getpeername).
int proxied_connect(const Runtime& rt, int fd, int family, const Destination& dst,
                    const sockaddr* addr, socklen_t len, const char* why) noexcept;

/// Dissolves a TCP socket's association (connect with AF_UNSPEC) so the app may retry.
void disconnect(int fd) noexcept;

}  // namespace socksify::shim
