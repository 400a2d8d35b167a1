// connect(): the TCP family of hooks. Decides direct / proxy / reject for AF_INET and AF_INET6
// stream sockets; datagram sockets follow the datagram policy (datagram_policy.hpp).
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "datagram_policy.hpp"
#include "direct_names.hpp"
#include "fd_table.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

int socket_type(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}

// A fake address under a "direct" rule (e.g. a port rule): resolve the name here and connect.
int connect_direct_by_name(int fd, int family, const Destination& d) {
  addrinfo hints{};
  hints.ai_family = family == AF_INET ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = family == AF_INET6 ? (AI_V4MAPPED | AI_ALL) : 0;
  addrinfo* list = nullptr;
  const std::string name(d.name);
  const std::string port = std::to_string(d.port);
  if (real().getaddrinfo(name.c_str(), port.c_str(), &hints, &list) != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int rc = -1;
  errno = EHOSTUNREACH;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != family) continue;
    rc = real().connect(fd, ai->ai_addr, ai->ai_addrlen);
    break;
  }
  const int e = errno;
  real().freeaddrinfo(list);
  errno = e;
  return rc;
}

}  // namespace

int on_connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Destination d;
  if (!destination_from(addr, len, d)) return real().connect(fd, addr, len);
  const int type = socket_type(fd);
  if (type < 0) return real().connect(fd, addr, len);  // not a socket: the kernel says why
  Guard guard;
  const Runtime& rt = runtime();
  char name[256];
  if (rt.dns != nullptr && rt.dns->name_of(d.family, d.ip.data(), name, sizeof name)) {
    d.name = name;
  }
  if ((type & 0xF) != SOCK_STREAM) {
    // Datagram sockets (UDP, ICMP, raw) are not proxied yet: the datagram policy decides.
    if (const int e = datagram_refusal(rt, d); e != 0) {
      errno = e;
      return -1;
    }
    return real().connect(fd, addr, len);
  }
  if (fd_get(fd).kind == FdKind::proxied) {
    errno = EISCONN;  // what the kernel says for a second connect on a connected socket
    return -1;
  }
  const Verdict v = d.name.empty() && is_direct_by_name(d.family, d.ip.data())
                        ? Verdict{Action::direct, "a direct domain rule"}
                        : classify(rt.config, d);
  char why[32] = "";
  if (log_enabled(LogLevel::info)) {  // only the log lines use it
    if (v.rule > 0) {
      std::snprintf(why, sizeof why, "rule %d", v.rule);
    } else {
      std::snprintf(why, sizeof why, "%s", v.why);
    }
  }
  switch (v.action) {
    case Action::direct:
      log_line(LogLevel::debug, "direct connect on fd %d (%s)", fd, why);
      if (!d.name.empty()) return connect_direct_by_name(fd, addr->sa_family, d);
      return real().connect(fd, addr, len);
    case Action::reject:
      log_line(LogLevel::info, "rejected connect to %s port %u (%s)",
               d.name.empty() ? "an address" : name, d.port, why);
      errno = EACCES;
      return -1;
    case Action::proxy: return proxied_connect(rt, fd, addr->sa_family, d, addr, len, why);
  }
  errno = EINVAL;
  return -1;
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (socksify::shim::inside()) return socksify::shim::real().connect(fd, addr, len);
  return socksify::shim::on_connect(fd, addr, len);
}
