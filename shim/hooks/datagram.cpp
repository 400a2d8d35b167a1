// Datagrams: in remote-DNS mode, DNS queries over UDP (port 53, any address, loopback stub
// resolvers included: they forward what they get) are refused so that no name leaks.
// UDP ASSOCIATE will route them later.
#include <sys/socket.h>

#include <cerrno>

#include "guard.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

// True if a datagram to `to` must not leave. (A connected UDP socket to port 53 never exists:
// connect() already refused it.)
bool leaks_dns(int fd, const sockaddr* to, socklen_t len) noexcept {
  const Runtime& rt = runtime();
  if (!rt.config.remote_dns) return false;
  Destination d;
  if (!destination_from(to, len, d)) return false;
  if (d.port != 53) return false;
  int type = 0;
  socklen_t tl = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || (type & 0xF) != SOCK_DGRAM) {
    return false;
  }
  log_line(LogLevel::info, "refused DNS over UDP to port 53 (remote DNS: it would leak)");
  return true;
}

}  // namespace
}  // namespace socksify::shim

using socksify::shim::real;

extern "C" SOCKSIFY_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                                          const sockaddr* to, socklen_t len) {
  if (!socksify::shim::inside() && to != nullptr) {
    socksify::shim::Guard guard;
    if (socksify::shim::leaks_dns(fd, to, len)) {
      errno = EACCES;
      return -1;
    }
  }
  return real().sendto(fd, buf, n, flags, to, len);
}

extern "C" SOCKSIFY_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (!socksify::shim::inside() && msg != nullptr && msg->msg_name != nullptr) {
    socksify::shim::Guard guard;
    if (socksify::shim::leaks_dns(fd, static_cast<const sockaddr*>(msg->msg_name),
                                  msg->msg_namelen)) {
      errno = EACCES;
      return -1;
    }
  }
  return real().sendmsg(fd, msg, flags);
}

// Several datagrams at once: the ones before the first DNS query leave, as the kernel reports
// a partial send; a first message that is a DNS query fails the call.
extern "C" SOCKSIFY_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (!socksify::shim::inside() && vec != nullptr) {
    socksify::shim::Guard guard;
    for (unsigned int i = 0; i < vlen; ++i) {
      const msghdr& m = vec[i].msg_hdr;
      if (m.msg_name != nullptr &&
          socksify::shim::leaks_dns(fd, static_cast<const sockaddr*>(m.msg_name), m.msg_namelen)) {
        if (i == 0) {
          errno = EACCES;
          return -1;
        }
        vlen = i;
        break;
      }
    }
  }
  return real().sendmmsg(fd, vec, vlen, flags);
}
