// Receiving on a socket with a UDP association (udp.hpp): recv, recvfrom, recvmsg, recvmmsg,
// read and readv unwrap the relay's datagrams. Every other fd passes straight through (one or
// two loads to tell); an fd with a session pays one system call to check that the number
// still names the socket the session was made for (it may have been closed behind the
// library's back and reused, for TCP say: then the call is the kernel's).
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>

#include "async_connect.hpp"
#include "hooks/hooks.hpp"
#include "proxy_connect.hpp"
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
  const ssize_t r = sh::udp_receive(fd, s, &m, flags);
  if (r >= 0 && from != nullptr && fromlen != nullptr) *fromlen = m.msg_namelen;
  return r;
}

}  // namespace

extern "C" SOCKSIFY_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (sh::data_held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of(fd))
    return receive_one(fd, *s.get(), buf, n, flags, nullptr, nullptr);
  return real().recv(fd, buf, n, flags);
}

namespace socksify::shim {

ssize_t receive_from(int fd, void* buf, size_t n, int flags, sockaddr* from,
                     socklen_t* fromlen) noexcept {
  if (sh::data_held(fd)) return -1;
  if (SessionRef s = udp_of(fd)) return receive_one(fd, *s.get(), buf, n, flags, from, fromlen);
  return real().recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t receive_message(int fd, msghdr* msg, int flags) noexcept {
  if (sh::data_held(fd)) return -1;
  if (msg != nullptr) {
    if (SessionRef s = udp_of(fd)) return udp_receive(fd, *s.get(), msg, flags);
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

// A batch, as the kernel's recvmmsg: the first datagram as the flags say (not bounded by the
// timeout), then more until `vlen` (with MSG_WAITFORONE only what is already there). The
// timeout ends the call once it has passed (checked after each datagram, as the kernel does),
// and it also bounds the wait for each datagram after the first: the kernel's can wait for one
// forever (recvmmsg(2), BUGS). The time left is written back, as the kernel does.
namespace socksify::shim {

int receive_mmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) noexcept {
  if (data_held(fd)) return -1;
  if (vec != nullptr && vlen > 0) {
    if (SessionRef s = udp_of(fd)) {
      using Clock = std::chrono::steady_clock;
      const auto start = Clock::now();
      Clock::time_point until{};
      if (timeout != nullptr) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) {
          errno = EINVAL;
          return -1;
        }
        until = start + std::chrono::seconds(timeout->tv_sec) +
                std::chrono::nanoseconds(timeout->tv_nsec);
      }
      unsigned int got = 0;
      for (; got < vlen; ++got) {
        int f = flags & ~MSG_WAITFORONE;
        if (got > 0 && (flags & MSG_WAITFORONE) != 0) f |= MSG_DONTWAIT;
        const ssize_t r = udp_receive(fd, *s.get(), &vec[got].msg_hdr, f,
                                      got > 0 && timeout != nullptr ? &until : nullptr);
        if (r < 0) {
          if (got == 0) return -1;
          break;
        }
        vec[got].msg_len = static_cast<unsigned int>(r);
        if (timeout != nullptr && Clock::now() >= until) {
          ++got;
          break;
        }
      }
      if (timeout != nullptr) {
        const auto left = until - Clock::now();
        const long long ns =
            left > Clock::duration::zero()
                ? std::chrono::duration_cast<std::chrono::nanoseconds>(left).count()
                : 0;
        timeout->tv_sec = static_cast<time_t>(ns / 1000000000);
        timeout->tv_nsec = static_cast<long>(ns % 1000000000);
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
  if (sh::data_held(fd)) return -1;
  if (sh::SessionRef s = sh::udp_of(fd))
    return receive_one(fd, *s.get(), buf, n, 0, nullptr, nullptr);
  return real().read(fd, buf, n);
}

extern "C" SOCKSIFY_EXPORT ssize_t readv(int fd, const iovec* iov, int count) {
  if (sh::data_held(fd)) return -1;
  if (count >= 0) {
    if (sh::SessionRef s = sh::udp_of(fd)) {
      msghdr m{};
      m.msg_iov = const_cast<iovec*>(iov);
      m.msg_iovlen = static_cast<size_t>(count);
      return sh::udp_receive(fd, *s.get(), &m, 0);
    }
  }
  return real().readv(fd, iov, count);
}
