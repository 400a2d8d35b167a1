// getpeername returns the destination the application asked for (a fake address or a real
// one), not the proxy. getsockname is the kernel's answer: the local end of the socket's
// connection to the proxy (a real local address and port of this host).
#include <sys/socket.h>

#include <cstring>

#include "fd_table.hpp"
#include "guard.hpp"
#include "real_libc.hpp"

namespace socksify::shim {

int on_getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept {
  const FdInfo info = fd_get(fd);
  if (info.kind != FdKind::proxied || addr == nullptr || len == nullptr) {
    return real().getpeername(fd, addr, len);
  }
  // Same truncation rule as the kernel: copy what fits, report the full length.
  const socklen_t n = *len < info.peer_len ? *len : info.peer_len;
  std::memcpy(addr, &info.peer, n);
  *len = info.peer_len;
  return 0;
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  if (socksify::shim::inside()) return socksify::shim::real().getpeername(fd, addr, len);
  return socksify::shim::on_getpeername(fd, addr, len);
}

extern "C" SOCKSIFY_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  return socksify::shim::real().getsockname(fd, addr, len);
}
