// Datagrams: sendto, sendmsg and sendmmsg with a destination address follow the datagram
// policy (datagram_policy.hpp): in remote-DNS mode DNS queries over UDP are refused (port 53,
// any address, loopback stub resolvers included: they forward what they get), and until UDP
// ASSOCIATE routes them, datagrams to destinations the policy proxies are refused too.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>

#include "datagram_policy.hpp"
#include "fake_dns.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

// The decision alone: no system call, no log line.
int verdict(const Runtime& rt, const Destination& d) noexcept {
  // Local-DNS mode means the local resolver is wanted: raw resolvers (dig, c-ares) too.
  if (d.port == 53) return rt.config.remote_dns ? EACCES : 0;
  if (!d.name.empty()) return ENETUNREACH;
  Destination udp = d;
  udp.tcp = false;
  const Action a = classify(rt.config, udp).action;
  return a == Action::direct ? 0 : (a == Action::reject ? EACCES : ENETUNREACH);
}

int refused(const Destination& d, int e) noexcept {
  if (!log_enabled(LogLevel::info)) return e;
  if (d.port == 53) {
    log_line(LogLevel::info, "refused DNS over UDP to port 53 (remote DNS: it would leak)");
  } else if (!d.name.empty()) {
    log_line(LogLevel::info, "refused UDP to %.*s: UDP through the proxy is not supported yet",
             static_cast<int>(d.name.size()), d.name.data());
  } else {
    char text[64] = "";
    inet_ntop(d.family, d.ip.data(), text, sizeof text);
    log_line(LogLevel::info, "refused UDP to %s port %u (%s): %s", text, d.port,
             e == EACCES ? "reject" : "proxy",
             e == EACCES ? "rejected by the rules" : "UDP through the proxy is not supported yet");
  }
  return e;
}

}  // namespace

int datagram_refusal(const Runtime& rt, const Destination& d) noexcept {
  const int e = verdict(rt, d);
  return e == 0 ? 0 : refused(d, e);
}

int datagram_refusal(int fd, const sockaddr* to, socklen_t len) noexcept {
  Destination d;
  if (to == nullptr || !destination_from(to, len, d)) return 0;
  const Runtime& rt = runtime();
  char name[256];
  if (rt.dns != nullptr && rt.dns->name_of(d.family, d.ip.data(), name, sizeof name)) {
    d.name = name;
  }
  // Most datagrams go to destinations routed direct (loopback, say): those cost no system call.
  const int e = verdict(rt, d);
  if (e == 0) return 0;
  int type = 0;
  socklen_t tl = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || (type & 0xF) == SOCK_STREAM) {
    return 0;  // not a socket (the kernel says why), or a stream: the address is ignored
  }
  return refused(d, e);
}

}  // namespace socksify::shim

using socksify::shim::real;

extern "C" SOCKSIFY_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                                          const sockaddr* to, socklen_t len) {
  if (!socksify::shim::inside() && to != nullptr) {
    socksify::shim::Guard guard;
    if (const int e = socksify::shim::datagram_refusal(fd, to, len); e != 0) {
      errno = e;
      return -1;
    }
  }
  return real().sendto(fd, buf, n, flags, to, len);
}

extern "C" SOCKSIFY_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (!socksify::shim::inside() && msg != nullptr && msg->msg_name != nullptr) {
    socksify::shim::Guard guard;
    if (const int e = socksify::shim::datagram_refusal(
            fd, static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
        e != 0) {
      errno = e;
      return -1;
    }
  }
  return real().sendmsg(fd, msg, flags);
}

// Several datagrams at once: the ones before the first refused one leave, as the kernel
// reports a partial send; a refused first message fails the call.
extern "C" SOCKSIFY_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (!socksify::shim::inside() && vec != nullptr) {
    socksify::shim::Guard guard;
    for (unsigned int i = 0; i < vlen; ++i) {
      const msghdr& m = vec[i].msg_hdr;
      const int e = m.msg_name == nullptr
                        ? 0
                        : socksify::shim::datagram_refusal(
                              fd, static_cast<const sockaddr*>(m.msg_name), m.msg_namelen);
      if (e != 0) {
        if (i == 0) {
          errno = e;
          return -1;
        }
        vlen = i;
        break;
      }
    }
  }
  return real().sendmmsg(fd, vec, vlen, flags);
}
