// socksify-relay: the process that carries one connection the program's socket cannot carry
// itself (relay.hpp). Started by the shim with the proxy connection on fd 3, a loopback
// listener on fd 4 and the control socket on fd 5. It detaches at once (its parent, the shim's
// intermediate process, is gone already; it forks once more to start a session of its own),
// reads the setup, accepts the program's socket, answers one status octet (0 = relaying) and
// relays until both directions end.
//
// `socksify-relay tls HOST CAFILE MS` (an https proxy): fd 3 is the stream to the proxy, fd 4
// the dial's plaintext socket, fd 5 the control socket. It runs the TLS handshake within MS
// milliseconds, reports on fd 4 (socks5/transport.hpp) and carries the dial's plaintext. When
// the dial is through, the shim sends the setup (kind tls) with two descriptors: the listener
// the program's socket waits on and the dial's own end of fd 4, whose unread octets (the
// proxy's, after its reply) go to the program first. The relay then carries the program's
// octets. If the control socket closes instead (a chain's earlier hop), it carries fd 4 on.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "relay.hpp"
#include "socks5/error.hpp"
#include "socks5/transport.hpp"
#include "tls.hpp"

namespace {

using socksify::relay::kControlFd;
using socksify::relay::kListenFd;
using socksify::relay::kProxyFd;
using Clock = std::chrono::steady_clock;

constexpr auto kSetupTime = std::chrono::seconds(10);

int ms_left(Clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool wait_readable(int fd, Clock::time_point until) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = poll(&p, 1, ms_left(until));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool read_setup(socksify::relay::Setup& setup, Clock::time_point until) {
  socks5::Bytes buf;
  for (;;) {
    auto used = socksify::relay::decode_setup(buf, setup);
    if (!used) return false;
    if (*used > 0) return true;
    if (!wait_readable(kControlFd, until)) return false;
    std::uint8_t chunk[4096];
    const ssize_t n = recv(kControlFd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    buf.insert(buf.end(), chunk, chunk + n);
  }
}

bool is_loopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
}

// Accepts the program's socket: from loopback and the port the shim named; anything else that
// finds the listener in the short time it exists is turned away.
int accept_program(std::uint16_t port, int listener, Clock::time_point until) {
  while (wait_readable(listener, until)) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      return -1;
    }
    if (is_loopback(ss) && port_of(ss) == port) return fd;
    close(fd);
  }
  return -1;
}

void answer(std::uint8_t status) {
  while (send(kControlFd, &status, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// Reads the hand-over: the setup, with the listener and the dial's socket attached to its
// first octets. False on end of stream (no hand-over comes) or a malformed one.
bool read_handover(socksify::relay::Setup& setup, int& listener, int& dial,
                   Clock::time_point until) {
  socks5::Bytes buf;
  for (;;) {
    std::uint8_t chunk[4096];
    alignas(cmsghdr) char ctrl[CMSG_SPACE(2 * sizeof(int))];
    iovec iov{chunk, sizeof chunk};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    const ssize_t n = recvmsg(kControlFd, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int fds[2] = {-1, -1};
      std::memcpy(fds, CMSG_DATA(c), std::min<std::size_t>(count, 2) * sizeof(int));
      if (count == 2 && listener < 0) {
        listener = fds[0];
        dial = fds[1];
      } else {
        for (std::size_t i = 0; i < std::min<std::size_t>(count, 2); ++i) close(fds[i]);
      }
    }
    buf.insert(buf.end(), chunk, chunk + n);
    auto used = socksify::relay::decode_setup(buf, setup);
    if (!used) return false;
    if (*used > 0) return listener >= 0 && setup.kind == socksify::relay::Kind::tls;
    if (!wait_readable(kControlFd, until)) return false;
  }
}

// An https proxy (see the top of this file).
int run_tls(const char* host, const char* ca_file, int ms) {
  constexpr int kDialFd = kListenFd;  // fd 4 is the dial's plaintext socket here
  socksify::relay::TlsClient tls;
  socksify::relay::TlsOptions options;
  options.host = host;
  options.ca_file = ca_file;
  const auto result = tls.handshake(kProxyFd, options, ms);
  const socks5::Bytes report = socks5::encode_transport_status(
      static_cast<socks5::TransportStatus>(result), result == socksify::relay::TlsResult::up
                                                        ? std::string_view{}
                                                        : std::string_view{tls.detail()});
  if (send(kDialFd, report.data(), report.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(report.size()) ||
      result != socksify::relay::TlsResult::up) {
    return 3;
  }
  const int one = 1;
  setsockopt(kProxyFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto stop = tls.relay(kDialFd, kControlFd, true);
  if (stop != socksify::relay::TlsStop::control)
    return stop == socksify::relay::TlsStop::done ? 0 : 5;
  socksify::relay::Setup setup;
  int listener = -1, dial = -1;
  const auto until = Clock::now() + kSetupTime;
  if (!read_handover(setup, listener, dial, until)) {
    if (listener >= 0) {
      close(listener);
      close(dial);
      return 4;
    }
    // No hand-over: this layer carries the dial's socket to its end (a tunnel for a later
    // hop), or sees it end at once (the dial failed after the layer was up).
    close(kControlFd);
    stop = tls.relay(kDialFd, -1, false, true);
    return stop == socksify::relay::TlsStop::done ? 0 : 5;
  }
  // What the dial did not read, in order: what it read beyond the reply (the setup's rest),
  // what is still queued on its socket, then what this process holds.
  tls.drain_up(kDialFd);
  socks5::Bytes front = std::move(setup.rest);
  for (;;) {
    std::uint8_t chunk[16384];
    const ssize_t n = recv(dial, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
      front.insert(front.end(), chunk, chunk + n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  tls.put_front(front);
  close(dial);
  close(kDialFd);
  const int program = accept_program(setup.peer_port, listener, until);
  close(listener);
  if (program < 0) {
    answer(4);
    return 4;
  }
  answer(0);
  close(kControlFd);
  stop = tls.relay(program, -1, false);
  close(program);
  close(kProxyFd);
  return stop == socksify::relay::TlsStop::done ? 0 : 5;
}

}  // namespace

int main(int argc, char** argv) {
  // Only the three descriptors it was given, and nothing of the program's: no other socket,
  // and no pipe of the program's (a relay holding a program's stdout pipe would keep a shell's
  // $(...) waiting).
  close_range(kControlFd + 1, ~0U, 0);
  // Started with every signal blocked (the shim's spawn): a relay takes the default actions.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    for (int fd = 0; fd <= 2; ++fd) dup2(null, fd);
    if (null > 2) close(null);
  }
  // Detach: the relay lives on in a session of its own (a terminal's signals belong to the
  // program, not to its connections; setsid() needs a process that leads no group).
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child > 0) _exit(0);
  setsid();
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && std::strcmp(argv[1], "tls") == 0) {
    return run_tls(argv[2], argv[3], std::atoi(argv[4]));
  }
  const auto until = Clock::now() + kSetupTime;
  socksify::relay::Setup setup;
  if (!read_setup(setup, until)) return 2;
  std::unique_ptr<socks5::Protection> layer;
  if (setup.kind == socksify::relay::Kind::plain) {
    layer = std::make_unique<socksify::relay::PlainLayer>();
  } else {
    auto protection = socks5::import_gss_protection(setup.context, setup.level);
    if (!protection) {
      answer(3);
      return 3;
    }
    layer = std::move(*protection);
  }
  const int program = accept_program(setup.peer_port, kListenFd, until);
  if (program < 0) {
    answer(4);
    return 4;
  }
  close(kListenFd);
  const int one = 1;
  setsockopt(kProxyFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  answer(0);
  close(kControlFd);
  const auto end = socksify::relay::run_relay(program, kProxyFd, *layer, setup.rest);
  close(program);
  close(kProxyFd);
  return end == socksify::relay::End::done ? 0 : 5;
}
