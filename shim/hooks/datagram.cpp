// Datagrams and TCP Fast Open: sendto, sendmsg and sendmmsg with a destination address.
//  - On a datagram socket the datagram policy decides (policy.cpp): in remote-DNS mode DNS
//    over UDP is refused (port 53, any address, loopback stub resolvers included: they forward
//    what they get), and until UDP ASSOCIATE routes them, datagrams to destinations the policy
//    proxies are refused too.
//  - On an unconnected stream socket, MSG_FASTOPEN connects as connect() would: a proxied
//    destination is reached through the proxy first (the data then follows as a plain send),
//    a rejected one is refused, a direct one is left to the kernel (data in the SYN).
#include <sys/socket.h>

#include <cerrno>

#include "fake_dns.hpp"
#include "guard.hpp"
#include "hooks/hooks.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

// 0 if a datagram to `to` may leave `fd`, else the errno to fail with (after one log line).
// `nested`: the thread was inside the shim when the hook was called.
int datagram_refusal(int fd, const sockaddr* to, socklen_t len, bool nested) noexcept {
  Destination d;
  if (to == nullptr || !destination_from(to, len, d)) return 0;
  Context ctx;
  ctx.nested = nested;
  ctx.in_resolver = in_resolver();
  Guard guard;
  const Runtime* rt = ctx.nested ? runtime_if_ready() : &runtime();
  if (rt == nullptr) return ctx.in_resolver || is_loopback(d.family, d.ip.data()) ? 0 : ENETUNREACH;
  char name[256];
  describe_fake(*rt, d, ctx, name);
  // Most datagrams go to destinations routed direct (loopback, say): those cost no system call.
  const Verdict v = classify(rt->config, Operation::datagram, d, ctx);
  if (v.action == Action::direct) return 0;
  const int type = socket_type(fd);
  if (type < 0 || (type & 0xF) == SOCK_STREAM) {
    return 0;  // not a socket (the kernel says why), or a stream: the address is ignored
  }
  log_refusal(v, d, "UDP");
  return socks5::to_errno(v.refusal);
}

// MSG_FASTOPEN on a stream socket: connect as the policy says. Returns -1 with errno when the
// connect failed, 0 when the caller should send the data with a plain send (connected through
// the proxy), 1 when the kernel should do the whole sendto (direct).
int fastopen_connect(int fd, const sockaddr* to, socklen_t len) noexcept {
  const int type = socket_type(fd);
  if (type < 0 || (type & 0xF) != SOCK_STREAM) return 1;
  bool direct = false;
  if (on_connect(fd, to, len, &direct) != 0) return -1;
  return direct ? 1 : 0;
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;
using socksify::shim::real;

extern "C" SOCKSIFY_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                                          const sockaddr* to, socklen_t len) {
  if (to == nullptr) return real().sendto(fd, buf, n, flags, to, len);
  if ((flags & MSG_FASTOPEN) != 0 && !sh::inside()) {
    const int r = sh::fastopen_connect(fd, to, len);
    if (r < 0) return -1;
    if (r == 0) return real().send(fd, buf, n, flags & ~MSG_FASTOPEN);
    return real().sendto(fd, buf, n, flags, to, len);
  }
  if (const int e = sh::datagram_refusal(fd, to, len, sh::inside()); e != 0) {
    errno = e;
    return -1;
  }
  return real().sendto(fd, buf, n, flags, to, len);
}

extern "C" SOCKSIFY_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (msg == nullptr || msg->msg_name == nullptr) return real().sendmsg(fd, msg, flags);
  const auto* to = static_cast<const sockaddr*>(msg->msg_name);
  if ((flags & MSG_FASTOPEN) != 0 && !sh::inside()) {
    const int r = sh::fastopen_connect(fd, to, msg->msg_namelen);
    if (r < 0) return -1;
    if (r == 0) {
      msghdr plain = *msg;
      plain.msg_name = nullptr;
      plain.msg_namelen = 0;
      return real().sendmsg(fd, &plain, flags & ~MSG_FASTOPEN);
    }
    return real().sendmsg(fd, msg, flags);
  }
  if (const int e = sh::datagram_refusal(fd, to, msg->msg_namelen, sh::inside()); e != 0) {
    errno = e;
    return -1;
  }
  return real().sendmsg(fd, msg, flags);
}

// Several datagrams at once: the ones before the first refused one leave, as the kernel
// reports a partial send; a refused first message fails the call.
extern "C" SOCKSIFY_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (vec != nullptr) {
    const bool nested = sh::inside();
    for (unsigned int i = 0; i < vlen; ++i) {
      const msghdr& m = vec[i].msg_hdr;
      const int e = m.msg_name == nullptr
                        ? 0
                        : sh::datagram_refusal(fd, static_cast<const sockaddr*>(m.msg_name),
                                               m.msg_namelen, nested);
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
