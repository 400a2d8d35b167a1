#include "tls_transport.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <string>

#include "launch.hpp"

extern char** environ;

namespace socksify::tool {

std::string find_relay() {
  std::string shim = find_shim();
  const auto slash = shim.rfind('/');
  if (slash == std::string::npos) return {};
  shim.resize(slash + 1);
  shim += "socksify-relay";
  return access(shim.c_str(), X_OK) == 0 ? shim : std::string();
}

const relay::Calls& libc_calls() noexcept {
  static const relay::Calls calls{::socket,  ::bind, ::listen,     ::getsockname,
                                  ::connect, ::poll, ::getsockopt, ::sendmsg,
                                  ::send,    ::recv, ::close};
  return calls;
}

int spawn_relay(const std::string& relay, const int (&fds)[3],
                std::initializer_list<const char*> args) noexcept {
  if (relay.empty()) return ENOENT;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Moved above 5 first, so that no dup2 overwrites a descriptor still to be moved.
  int high[3];
  for (int i = 0; i < 3; ++i) high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&actions, high[i], 3 + i);
  char* argv[8] = {const_cast<char*>(relay.c_str())};
  std::size_t argc = 1;
  for (const char* a : args) {
    if (argc + 1 < std::size(argv)) argv[argc++] = const_cast<char*>(a);
  }
  argv[argc] = nullptr;
  pid_t pid = -1;
  int err = posix_spawn(&pid, relay.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  for (int fd : high) {
    if (fd >= 0) close(fd);
  }
  if (err != 0) return err;
  // The relay detaches at once (it forks and its first process exits).
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ECHILD;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EIO;
}

socks5::Result<socks5::TransportStart> SpawnedTls::start(int stream, const socks5::ProxyUri& proxy,
                                                         socks5::Deadline deadline) noexcept {
  int plain[2] = {-1, -1}, control[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {stream, plain[0], plain[1], control[0], control[1]}) {
      if (fd >= 0) close(fd);
    }
  };
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, plain) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    close_all();
    return socks5::fail(socks5::Errc::tls_unavailable);
  }
  const std::string ms = std::to_string(deadline.poll_ms());
  const int fds[3] = {stream, plain[0], control[1]};
  const int err =
      spawn_relay(relay_, fds, {"tls", proxy.host.c_str(), ca_file_.c_str(), ms.c_str()});
  const int keep_plain = plain[1], keep_control = control[0];
  plain[1] = control[0] = -1;
  close_all();
  if (err != 0) {
    close(keep_plain);
    close(keep_control);
    return socks5::fail(socks5::Errc::tls_unavailable);
  }
  return socks5::TransportStart{keep_plain, keep_control};
}

int hand_over(socks5::Dial& dial, int program, int family, socks5::Deadline deadline,
              const std::string& relay_path) noexcept {
  relay::Parked parked;
  if (relay::park(program, family, parked, deadline, libc_calls()) != 0) return ECONNABORTED;
  relay::Setup setup;
  setup.peer_port = parked.peer_port;
  setup.rest = dial.reader().take_rest();
  const int proxy = dial.release_fd();
  int err = 0;
  if (const int control = dial.release_transport_control(); control >= 0) {
    // The TLS relay is there already: it takes the listener and the dial's socket over.
    setup.kind = relay::Kind::tls;
    err = relay::send_setup(control, setup, deadline, libc_calls(), {parked.listener, proxy});
    close(control);
  } else {
    // A proxy on a Unix socket: a relay that passes octets as they are.
    setup.kind = relay::Kind::plain;
    int pair[2] = {-1, -1};
    err = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 ? errno : 0;
    if (err == 0) {
      const int fds[3] = {proxy, parked.listener, pair[1]};
      err = spawn_relay(relay_path, fds);
      close(pair[1]);
      if (err == 0) err = relay::send_setup(pair[0], setup, deadline, libc_calls());
      close(pair[0]);
    }
  }
  if (proxy >= 0) close(proxy);
  close(parked.listener);
  return err == 0 ? 0 : ECONNABORTED;
}

}  // namespace socksify::tool
