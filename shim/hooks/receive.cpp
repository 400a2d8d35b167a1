// Receiving on a socket with a UDP association (udp.hpp): recv, recvfrom, recvmsg, recvmmsg,
// read and readv unwrap the relay's datagrams. Every other fd passes straight through (one or
// two loads to tell).
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "async_connect.hpp"
#include "hooks/hooks.hpp"
#include "real_libc.hpp"
#include "session.hpp"
#include "udp.hpp"

namespace sh = socksify::shim;
using socksify::shim::real;

namespace {

ssize_t receive_one(int fd, sh::Session& s, void* buf, size_t n, int flags, sockaddr* from,
                    socklen_t* fromlen) {
  iovec iov{buf, n};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (from != nullptr && fromlen != nullptr) {
    m.msg_name = from;
    m.msg_namelen = *fromlen;
  }
  const ssize_t r = sh::udp_receive(fd, s, &m, flags, false);
  if (r >= 0 && from != nullptr && fromlen != nullptr) *fromlen = m.msg_namelen;
  return r;
}

// A socket whose event-loop connect is still under way: no read may take the SOCKS reply
// (EAGAIN, as a connecting socket gives).
bool held(int fd) {
  if (sh::g_async_pending.load(std::memory_order_relaxed) == 0 || !sh::async_pending(fd)) {
    return false;
  }
  errno = EAGAIN;
  return true;
}

}  // namespace

extern "C" SOCKSIFY_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of_unverified(fd))
    return receive_one(fd, *s.get(), buf, n, flags, nullptr, nullptr);
  return real().recv(fd, buf, n, flags);
}

namespace socksify::shim {

ssize_t receive_from(int fd, void* buf, size_t n, int flags, sockaddr* from,
                     socklen_t* fromlen) noexcept {
  if (held(fd)) return -1;
  if (SessionRef s = udp_of_unverified(fd))
    return receive_one(fd, *s.get(), buf, n, flags, from, fromlen);
  return real().recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t receive_message(int fd, msghdr* msg, int flags) noexcept {
  if (held(fd)) return -1;
  if (msg != nullptr) {
    if (SessionRef s = udp_of_unverified(fd)) return udp_receive(fd, *s.get(), msg, flags, false);
  }
  return real().recvmsg(fd, msg, flags);
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from,
                                            socklen_t* fromlen) {
  return sh::receive_from(fd, buf, n, flags, from, fromlen);
}

extern "C" SOCKSIFY_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  return sh::receive_message(fd, msg, flags);
}

// A batch: the first datagram as the flags say, then whatever else is already there
// (MSG_DONTWAIT), as the kernel's recvmmsg returns what it has. The timeout is not applied
// to an associated socket.
namespace socksify::shim {

int receive_mmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) noexcept {
  if (vec != nullptr && vlen > 0) {
    if (SessionRef s = udp_of_unverified(fd)) {
      unsigned int got = 0;
      for (; got < vlen; ++got) {
        const int f =
            got == 0 ? (flags & ~MSG_WAITFORONE) : ((flags & ~MSG_WAITFORONE) | MSG_DONTWAIT);
        const ssize_t r = udp_receive(fd, *s.get(), &vec[got].msg_hdr, f, false);
        if (r < 0) {
          if (got == 0) return -1;
          break;
        }
        vec[got].msg_len = static_cast<unsigned int>(r);
      }
      return static_cast<int>(got);
    }
  }
  return real().recvmmsg(fd, vec, vlen, flags, timeout);
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags,
                                        timespec* timeout) {
  return sh::receive_mmsg(fd, vec, vlen, flags, timeout);
}

extern "C" SOCKSIFY_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  if (held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of_unverified(fd))
    return receive_one(fd, *s.get(), buf, n, 0, nullptr, nullptr);
  return real().read(fd, buf, n);
}

extern "C" SOCKSIFY_EXPORT ssize_t readv(int fd, const iovec* iov, int count) {
  if (held(fd)) return -1;
  if (count >= 0) {
    if (sh::SessionRef s = sh::udp_of_unverified(fd)) {
      msghdr m{};
      m.msg_iov = const_cast<iovec*>(iov);
      m.msg_iovlen = static_cast<size_t>(count);
      return sh::udp_receive(fd, *s.get(), &m, 0, false);
    }
  }
  return real().readv(fd, iov, count);
}
