// The socket side of sessions: identity (SO_COOKIE) with the real getsockopt, the verified
// lookup the hooks use, and addresses fitted to a socket's family.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

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

socklen_t sockaddr_for(const socks5::Address& a, int family, sockaddr_storage& out) noexcept {
  sockaddr_storage ss{};
  if (a.to_sockaddr(ss) == 0 ||
      !socks5::fit_family(reinterpret_cast<sockaddr*>(&ss), family, out)) {
    return 0;
  }
  return out.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

}  // namespace socksify::shim
