#include "handover.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace socksify::relay {
namespace {

// A loopback listener of `family`, for the program's socket to connect to.
int loopback_listener(int family, sockaddr_storage& addr, socklen_t& len, const Calls& c) {
  const int fd = c.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  std::memset(&addr, 0, sizeof addr);
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  }
  if (c.bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || c.listen(fd, 1) != 0 ||
      c.getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    c.close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int connect_to(int fd, const sockaddr_storage& addr, socklen_t len, socks5::Deadline d,
               const Calls& c) {
  if (c.connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return errno;
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    const int n = c.poll(&p, 1, d.poll_ms());
    if (n > 0) break;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
  int err = 0;
  socklen_t elen = sizeof err;
  if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
  return err;
}

std::uint16_t local_port(int fd, const Calls& c) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (c.getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace

int park(int fd, int family, Parked& parked, socks5::Deadline deadline, const Calls& c) noexcept {
  sockaddr_storage addr{};
  socklen_t len = 0;
  parked.listener = loopback_listener(family, addr, len, c);
  if (parked.listener < 0) return errno;
  const int err = connect_to(fd, addr, len, deadline, c);
  if (err != 0) {
    c.close(parked.listener);
    parked.listener = -1;
    return err;
  }
  parked.peer_port = local_port(fd, c);
  return 0;
}

int send_setup(int control, const Setup& setup, socks5::Deadline deadline, const Calls& c,
               std::initializer_list<int> fds) noexcept {
  const socks5::Bytes msg = encode_setup(setup);
  std::size_t off = 0;
  if (fds.size() > 0) {
    alignas(cmsghdr) char ctrl[CMSG_SPACE(4 * sizeof(int))] = {};
    if (fds.size() > 4) return EINVAL;
    iovec iov{const_cast<std::uint8_t*>(msg.data()), msg.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(h), fds.begin(), fds.size() * sizeof(int));
    ssize_t n;
    do {
      n = c.sendmsg(control, &m, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return EIO;
    off = static_cast<std::size_t>(n);
  }
  while (off < msg.size()) {
    const ssize_t n = c.send(control, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return EIO;
    }
  }
  for (;;) {
    pollfd p{control, POLLIN, 0};
    const int n = c.poll(&p, 1, deadline.poll_ms());
    if (n == 0) return ETIMEDOUT;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    std::uint8_t status = 0xff;
    const ssize_t got = c.recv(control, &status, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    return got == 1 && status == 0 ? 0 : EIO;
  }
}

}  // namespace socksify::relay
