// What a managed socket says about itself.
//  - getpeername returns the destination the program asked for (a fake address or a real
//    one), not the proxy; while its connect is still under way, ENOTCONN as the kernel says.
//  - getsockname (listen.cpp) returns the proxy's BND address for a proxied connection, and
//    the proxy's BIND address for a listening socket through the proxy.
//  - getsockopt(SO_ERROR) on a socket whose proxied connect returned early (a signal,
//    SO_SNDTIMEO) finishes it and reports its outcome, once.
// Each answer is given only after checking that the fd is still the socket the session was
// made for (session.hpp); an fd this process inherited across exec is recognised here too.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "inherit.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"
#include "session.hpp"
#include "udp.hpp"

namespace socksify::shim {
namespace {

SessionRef managed(int fd) noexcept {
  if (SessionRef s = session_of(fd)) return s;
  return adopt_inherited(fd);
}

int on_getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept {
  if (addr == nullptr || len == nullptr) return real().getpeername(fd, addr, len);
  SessionRef s = managed(fd);
  if (!s) return real().getpeername(fd, addr, len);
  if (s->kind.load(std::memory_order_acquire) == SessionKind::udp) {
    // The peer the program connected to, not the relay.
    if (udp_peer(*s.get(), addr, len)) return 0;
    errno = ENOTCONN;
    return -1;
  }
  if (s->kind.load(std::memory_order_acquire) != SessionKind::proxied) {
    errno = ENOTCONN;
    return -1;
  }
  // Same truncation rule as the kernel: copy what fits, report the full length.
  const socklen_t n = *len < s->peer_len ? *len : s->peer_len;
  std::memcpy(addr, &s->peer, n);
  *len = s->peer_len;
  return 0;
}

int on_getsockopt(int fd, int level, int name, void* value, socklen_t* len) noexcept {
  if (level != SOL_SOCKET || name != SO_ERROR || value == nullptr || len == nullptr ||
      *len < static_cast<socklen_t>(sizeof(int))) {
    return real().getsockopt(fd, level, name, value, len);
  }
  // Most SO_ERROR reads follow a connect that finished: no reference, no identity check.
  SessionKind hint{};
  if (!session_kind_hint(fd, hint) || hint != SessionKind::connecting) {
    return real().getsockopt(fd, level, name, value, len);
  }
  SessionRef s = session_of(fd);
  if (!s || s->kind.load(std::memory_order_acquire) != SessionKind::connecting) {
    return real().getsockopt(fd, level, name, value, len);
  }
  const int err = finish_connect(fd, *s.get());
  std::memcpy(value, &err, sizeof err);
  *len = sizeof err;
  return 0;
}

}  // namespace
}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  return socksify::shim::on_getpeername(fd, addr, len);
}

extern "C" SOCKSIFY_EXPORT int getsockopt(int fd, int level, int name, void* value,
                                          socklen_t* len) {
  return socksify::shim::on_getsockopt(fd, level, name, value, len);
}
