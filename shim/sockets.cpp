// The socket side of sessions: identity (SO_COOKIE) with the real getsockopt, and the
// verified lookup the hooks use.
#include <sys/socket.h>

#include "real_libc.hpp"
#include "session.hpp"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

namespace socksify::shim {

std::uint64_t socket_cookie(int fd) noexcept {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (real().getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

SessionRef session_of(int fd) noexcept {
  return session_verified(fd, socket_cookie);
}

}  // namespace socksify::shim
