// Listening sockets: bind, listen, accept, accept4 and getsockname. A socket the policy sends
// through the proxy holds a SOCKS BIND (bind.hpp); every other one is the kernel's, untouched.
#include <sys/socket.h>

#include "bind.hpp"
#include "guard.hpp"
#include "real_libc.hpp"

namespace sh = socksify::shim;
using socksify::shim::real;

extern "C" SOCKSIFY_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) {
  if (sh::inside() || !sh::sessions_in_use()) return real().bind(fd, addr, len);
  // The proxy's address, as getsockname() of a proxied connection gave it (active FTP's
  // "bind to the control connection's address"): a BIND, not a local bind.
  if (const int r = sh::bind_proxy_address(fd, addr, len); r != 1) return r;
  const int r = real().bind(fd, addr, len);
  if (r != 0) return r;
  return sh::bind_bound(fd, addr, len);
}

extern "C" SOCKSIFY_EXPORT int listen(int fd, int backlog) {
  if (!sh::inside()) {
    const int r = sh::bind_listen(fd, backlog);
    if (r != 1) return r;
  }
  return real().listen(fd, backlog);
}

extern "C" SOCKSIFY_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  const int r = sh::bind_accept(fd, addr, len, 0);
  if (r != -2) return r;
  return real().accept(fd, addr, len);
}

extern "C" SOCKSIFY_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int r = sh::bind_accept(fd, addr, len, flags);
  if (r != -2) return r;
  return real().accept4(fd, addr, len, flags);
}

extern "C" SOCKSIFY_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  if (addr != nullptr && len != nullptr && sh::bind_sockname(fd, addr, len)) return 0;
  return real().getsockname(fd, addr, len);
}
