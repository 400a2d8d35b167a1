// Sending datagrams, and TCP Fast Open: sendto, sendmsg, sendmmsg, and on an associated
// socket (udp.hpp) send, write and writev too.
//  - On a datagram socket the datagram policy decides (policy.cpp): a destination it proxies
//    is reached through the socket's UDP association, a direct one as usual, and a refused one
//    (a reject rule; in remote-DNS mode, DNS to a loopback stub, which would forward it) fails.
//  - On an unconnected stream socket, MSG_FASTOPEN connects as connect() would: a proxied
//    destination is reached through the proxy first (the data then follows as a plain send),
//    a rejected one is refused, a direct one is left to the kernel (data in the SYN).
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "async_connect.hpp"
#include "core_names.hpp"
#include "fake_dns.hpp"
#include "guard.hpp"
#include "hooks/hooks.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"
#include "session.hpp"
#include "udp.hpp"

namespace socksify::shim {
namespace {

// Where a datagram to `to` goes from `fd`. `as_connected`: the kernel reads the address as no
// address at all (AF_UNSPEC on an IPv6 UDP socket): the datagram goes to the connected peer.
enum class Route : unsigned char { direct, proxy, stub, refused, as_connected };

// The address read exactly as the kernel reads it, with the socket's facts (fetched into
// `facts` when `*have` is false). Route::direct for a socket whose sends carry no address
// that matters (not an internet socket, a stream without MSG_FASTOPEN: tcp_sendmsg ignores
// it) or no socket at all (the kernel says why); Route::refused with errno for an address
// the kernel refuses; Route::proxy for a destination in `d` (the caller goes on).
Route exact_reading(int fd, const sockaddr* to, socklen_t len, Destination& d, SocketFacts& facts,
                    bool& have) {
  if (!have) {
    if (!socket_facts(fd, facts, true)) return Route::direct;
    have = true;
  }
  if (!is_inet(facts) || facts.type == SOCK_STREAM) return Route::direct;
  const AddressReading r = read_address(facts, AddressUse::send, to, len, d);
  switch (r.kind) {
    case AddressReading::Kind::refused: errno = r.error; return Route::refused;
    case AddressReading::Kind::unspecified: return Route::as_connected;
    case AddressReading::Kind::destination: break;
  }
  if (v6only_refuses(fd, r)) return Route::refused;
  return Route::proxy;
}

// Decides for one datagram; for Route::proxy, `d` is the destination (with the name behind a
// fake address in `name`), for Route::refused errno is set (after one log line when the
// policy refused it). `nested`: the thread was inside the shim when the hook was called.
Route datagram_route(int fd, const sockaddr* to, socklen_t len, bool nested, Destination& d,
                     char (&name)[256]) noexcept {
  if (to == nullptr) return Route::direct;
  SocketFacts facts;
  bool have_facts = false;
  // The usual shapes read the same on every socket that takes them (so a datagram to a
  // direct destination costs no system call); any other shape is read with the socket's facts.
  if (!read_usual_address(to, len, d)) {
    const Route r = exact_reading(fd, to, len, d, facts, have_facts);
    if (r != Route::proxy) return r;
  }
  Context ctx;
  ctx.nested = nested;
  ctx.in_resolver = in_resolver();
  ctx.in_kerberos = in_kerberos();
  Guard guard;
  const Runtime* rt = ctx.nested ? runtime_if_ready() : &runtime();
  if (rt == nullptr) {
    if (ctx.in_resolver || is_loopback(d.family, d.ip.data())) return Route::direct;
    errno = ENETUNREACH;
    return Route::refused;
  }
  describe_fake(*rt, d, ctx, name);
  // A DNS query to a local stub in remote-DNS mode: answered by the library itself.
  if (!nested && local_stub_query(*rt, d)) {
    const int type = socket_type(fd);
    if (type >= 0 && is_udp(fd, type)) return Route::stub;
  }
  // Most datagrams go to destinations routed direct (loopback, say): those cost no system call.
  const Verdict v = classify(rt->config, Operation::datagram, d, ctx);
  if (v.action == Action::direct) return Route::direct;
  // Not direct: the address is checked against the socket as the kernel would (a shape
  // the kernel refuses on this socket is refused, not carried through the proxy).
  if (!have_facts) {
    Destination exact;
    const Route r = exact_reading(fd, to, len, exact, facts, have_facts);
    if (r != Route::proxy) return r;
  }
  if (v.action == Action::proxy) {
    if (is_udp(fd, facts.type)) return Route::proxy;
    // ICMP ("ping" sockets) and raw sockets: SOCKS carries only UDP. Never sent direct.
    const Verdict r{Action::reject, v.why, v.rule, Refusal::udp_not_proxied};
    log_refusal(r, d, "datagram");
    errno = refusal_errno(r.refusal);
    return Route::refused;
  }
  log_refusal(v, d, "UDP");
  errno = refusal_errno(v.refusal);
  return Route::refused;
}

// One datagram to a destination the policy proxies: through the socket's association (made
// now if it has none). A socket that talks to the local DNS stub (answered here) does not
// also reach the proxy.
ssize_t proxied_datagram(int fd, const Destination& d, const msghdr& msg, int flags) noexcept {
  Guard guard;
  const Runtime& rt = runtime();
  SessionRef s = udp_session(fd, rt, (flags & MSG_DONTWAIT) != 0);
  if (!s) return -1;
  if (is_stub(*s.get())) {
    log_line(LogLevel::error,
             "a UDP socket that asked the local DNS stub cannot also send through the proxy");
    errno = ENETUNREACH;
    return -1;
  }
  return udp_send(fd, *s.get(), rt, d, msg, flags);
}

// A DNS query to the local stub (remote-DNS mode): answered by the library, never sent.
ssize_t stub_datagram(int fd, const Destination& d, const sockaddr* to, socklen_t len,
                      const msghdr& msg, int flags) noexcept {
  Guard guard;
  const Runtime& rt = runtime();
  SessionRef s = stub_session(fd, to, len);
  if (!s) return -1;
  if (!is_stub(*s.get())) {
    // Associated with the proxy already: the query would have to leave through it to a
    // loopback address, which means nothing there.
    log_line(LogLevel::error,
             "refused DNS to the local stub on a UDP socket associated with the proxy");
    errno = EACCES;
    return -1;
  }
  return udp_send(fd, *s.get(), rt, d, msg, flags);
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

// A send without an address on an associated socket: to the peer it was connected to.
ssize_t connected_datagram(int fd, Session& s, const msghdr& msg, int flags) noexcept {
  Guard guard;
  return udp_send_connected(fd, s, runtime(), msg, flags);
}

// A copy of the program's message header whose address is a copy too (in `name`), as the
// kernel takes them (a name longer than a sockaddr_storage is cut to it; a name length the
// kernel reads as negative is EINVAL).
bool own_header(const msghdr& msg, msghdr& out, sockaddr_storage& name) noexcept {
  out = msg;
  if (out.msg_name == nullptr) {
    out.msg_namelen = 0;
    return true;
  }
  if (out.msg_namelen > static_cast<socklen_t>(INT_MAX)) {
    errno = EINVAL;
    return false;
  }
  out.msg_namelen = std::min<socklen_t>(out.msg_namelen, sizeof name);
  std::memcpy(&name, out.msg_name, out.msg_namelen);
  out.msg_name = &name;
  return true;
}

msghdr one_buffer(const void* buf, size_t n, iovec& iov) {
  iov = iovec{const_cast<void*>(buf), n};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  return m;
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;
using socksify::shim::real;

namespace socksify::shim {

// A datagram without an address (or with one the kernel reads as none): to the peer the
// socket is connected to.
ssize_t send_unaddressed(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                         socklen_t len) noexcept {
  if (SessionRef s = udp_of(fd)) {
    iovec iov;
    return connected_datagram(fd, *s.get(), one_buffer(buf, n, iov), flags);
  }
  return real().sendto(fd, buf, n, flags, to, len);
}

ssize_t send_to(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                socklen_t len) noexcept {
  if (data_held(fd)) return -1;
  if (to == nullptr) return send_unaddressed(fd, buf, n, flags, to, len);
  // The address is read once: the kernel gets the copy the policy judged, whatever another
  // thread writes to the program's memory meanwhile.
  sockaddr_storage own;
  if (len > sizeof own) {
    errno = EINVAL;  // the kernel's answer (move_addr_to_kernel)
    return -1;
  }
  std::memcpy(&own, to, len);
  to = reinterpret_cast<const sockaddr*>(&own);
  if ((flags & MSG_FASTOPEN) != 0 && !inside()) {
    const int r = fastopen_connect(fd, to, len);
    if (r < 0) return -1;
    if (r == 0) return real().send(fd, buf, n, flags & ~MSG_FASTOPEN);
    return real().sendto(fd, buf, n, flags, to, len);
  }
  Destination d;
  char name[256];
  iovec iov;
  switch (datagram_route(fd, to, len, inside(), d, name)) {
    case Route::direct: return real().sendto(fd, buf, n, flags, to, len);
    case Route::refused: return -1;
    case Route::stub: return stub_datagram(fd, d, to, len, one_buffer(buf, n, iov), flags);
    case Route::as_connected: return send_unaddressed(fd, buf, n, flags, to, len);
    case Route::proxy: break;
  }
  return proxied_datagram(fd, d, one_buffer(buf, n, iov), flags);
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                                          const sockaddr* to, socklen_t len) {
  return sh::send_to(fd, buf, n, flags, to, len);
}

namespace socksify::shim {

// sendmsg() as the hook does it (sendmmsg sends each message through it too).
// sendmsg() without an address (or with one the kernel reads as none).
ssize_t send_message_unaddressed(int fd, const msghdr* msg, int flags) noexcept {
  if (SessionRef s = udp_of(fd)) return connected_datagram(fd, *s.get(), *msg, flags);
  return real().sendmsg(fd, msg, flags);
}

ssize_t send_message(int fd, const msghdr* msg, int flags) noexcept {
  if (data_held(fd)) return -1;
  if (msg == nullptr) return real().sendmsg(fd, msg, flags);
  // The header and the address are read once: the kernel gets the copies the policy judged.
  msghdr header;
  sockaddr_storage own;
  if (!own_header(*msg, header, own)) return -1;
  msg = &header;
  if (msg->msg_name == nullptr) return send_message_unaddressed(fd, msg, flags);
  const auto* to = static_cast<const sockaddr*>(msg->msg_name);
  if ((flags & MSG_FASTOPEN) != 0 && !inside()) {
    const int r = fastopen_connect(fd, to, msg->msg_namelen);
    if (r < 0) return -1;
    if (r == 0) {
      msghdr plain = *msg;
      plain.msg_name = nullptr;
      plain.msg_namelen = 0;
      return real().sendmsg(fd, &plain, flags & ~MSG_FASTOPEN);
    }
    return real().sendmsg(fd, msg, flags);
  }
  Destination d;
  char name[256];
  switch (datagram_route(fd, to, msg->msg_namelen, inside(), d, name)) {
    case Route::direct: return real().sendmsg(fd, msg, flags);
    case Route::refused: return -1;
    case Route::stub: return stub_datagram(fd, d, to, msg->msg_namelen, *msg, flags);
    case Route::as_connected: return send_message_unaddressed(fd, msg, flags);
    case Route::proxy: break;
  }
  return proxied_datagram(fd, d, *msg, flags);
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  return sh::send_message(fd, msg, flags);
}

// Several datagrams at once, taken in chunks: each chunk's headers and addresses are copied
// once and judged on the copies. When none needs the proxy (and the socket has no
// association), the kernel sends the chunk from the copies; otherwise one at a time, each as
// sendmsg would. The ones before the first failure count, as the kernel reports a partial
// send.
namespace socksify::shim {

int send_mmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) noexcept {
  if (data_held(fd)) return -1;
  if (vec == nullptr || vlen == 0) return real().sendmmsg(fd, vec, vlen, flags);
  vlen = std::min<unsigned int>(vlen, UIO_MAXIOV);  // what the kernel takes (the rest: later)
  const bool nested = inside();
  const bool associated = static_cast<bool>(udp_of(fd));
  constexpr unsigned int kChunk = 16;
  mmsghdr own[kChunk];
  sockaddr_storage names[kChunk];
  unsigned int sent = 0;
  int failure = 0;
  while (sent < vlen && failure == 0) {
    unsigned int k = std::min(kChunk, vlen - sent);
    bool plain = !associated;
    for (unsigned int i = 0; i < k; ++i) {
      own[i].msg_len = 0;
      if (!own_header(vec[sent + i].msg_hdr, own[i].msg_hdr, names[i])) {
        failure = errno;
        k = i;
        break;
      }
      const msghdr& m = own[i].msg_hdr;
      if (m.msg_name == nullptr || !plain) continue;
      Destination d;
      char name[256];
      switch (datagram_route(fd, static_cast<const sockaddr*>(m.msg_name), m.msg_namelen, nested, d,
                             name)) {
        case Route::direct:
        case Route::as_connected: break;  // no association: the kernel sends to the peer
        case Route::proxy:
        case Route::stub: plain = false; break;
        case Route::refused:
          failure = errno;  // those before it leave; the refused one fails
          k = i;
          break;
      }
    }
    if (k == 0) break;
    if (plain) {
      const int r = real().sendmmsg(fd, own, k, flags);
      if (r < 0) {
        failure = errno;
        break;
      }
      for (int i = 0; i < r; ++i) vec[sent + static_cast<unsigned int>(i)].msg_len = own[i].msg_len;
      sent += static_cast<unsigned int>(r);
      if (static_cast<unsigned int>(r) < k) break;
      continue;
    }
    for (unsigned int i = 0; i < k; ++i) {
      const ssize_t n = send_message(fd, &own[i].msg_hdr, flags);
      if (n < 0) {
        failure = errno;
        break;
      }
      vec[sent].msg_len = static_cast<unsigned int>(n);
      ++sent;
    }
  }
  if (sent > 0) return static_cast<int>(sent);
  errno = failure;
  return -1;
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  return sh::send_mmsg(fd, vec, vlen, flags);
}

extern "C" SOCKSIFY_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (sh::data_held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of(fd)) {
    iovec iov;
    return sh::connected_datagram(fd, *s.get(), sh::one_buffer(buf, n, iov), flags);
  }
  return real().send(fd, buf, n, flags);
}

extern "C" SOCKSIFY_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  if (sh::data_held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of(fd)) {
    iovec iov;
    return sh::connected_datagram(fd, *s.get(), sh::one_buffer(buf, n, iov), 0);
  }
  return real().write(fd, buf, n);
}

extern "C" SOCKSIFY_EXPORT ssize_t writev(int fd, const iovec* iov, int count) {
  if (sh::data_held(fd)) return -1;
  if (count >= 0) {
    if (sh::SessionRef s = sh::udp_of(fd)) {
      msghdr m{};
      m.msg_iov = const_cast<iovec*>(iov);
      m.msg_iovlen = static_cast<size_t>(count);
      return sh::connected_datagram(fd, *s.get(), m, 0);
    }
  }
  return real().writev(fd, iov, count);
}

// sendfile() and splice() move data into (or out of) a socket without send or recv: held the
// same way while a proxied connect is under way.
namespace {

ssize_t on_sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  if (sh::data_held(out_fd)) return -1;
  return real().sendfile(out_fd, in_fd, offset, count);
}

}  // namespace

extern "C" SOCKSIFY_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  return on_sendfile(out_fd, in_fd, offset, count);
}

// The large-file name (the same call on 64-bit systems).
extern "C" SOCKSIFY_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) {
  return on_sendfile(out_fd, in_fd, offset, count);
}

extern "C" SOCKSIFY_EXPORT ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out,
                                          size_t len, unsigned int flags) {
  if (sh::data_held(fd_in) || sh::data_held(fd_out)) return -1;
  return real().splice(fd_in, off_in, fd_out, off_out, len, flags);
}
