// socksify-relay: the process that carries one GSSAPI-protected connection (relay.hpp).
// Started by the shim with the proxy connection on fd 3, a loopback listener on fd 4 and the
// control socket on fd 5. It detaches at once (its parent, the shim's intermediate process, is
// gone already; it forks once more to start a session of its own), reads the setup, accepts the
// program's socket, answers one status octet (0 = relaying) and relays until both directions end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "relay.hpp"
#include "socks5/error.hpp"

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
int accept_program(std::uint16_t port, Clock::time_point until) {
  while (wait_readable(kListenFd, until)) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = accept4(kListenFd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
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

}  // namespace

int main() {
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
  const int program = accept_program(setup.peer_port, until);
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
