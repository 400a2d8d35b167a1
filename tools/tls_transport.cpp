#include "tls_transport.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

socks5::Result<socks5::TransportStart> SpawnedTls::start(int stream, const socks5::ProxyUri& proxy,
                                                         socks5::Deadline deadline) noexcept {
  int plain[2] = {-1, -1}, control[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {stream, plain[0], plain[1], control[0], control[1]}) {
      if (fd >= 0) close(fd);
    }
  };
  if (relay_.empty() ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, plain) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    close_all();
    return socks5::fail(socks5::Errc::tls_unavailable);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Moved above 5 first, so that no dup2 overwrites a descriptor still to be moved.
  const int from[3] = {stream, plain[0], control[1]};
  int high[3];
  for (int i = 0; i < 3; ++i) high[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&actions, high[i], 3 + i);
  const std::string ms = std::to_string(deadline.poll_ms());
  char* argv[] = {const_cast<char*>(relay_.c_str()),     const_cast<char*>("tls"),
                  const_cast<char*>(proxy.host.c_str()), const_cast<char*>(ca_file_.c_str()),
                  const_cast<char*>(ms.c_str()),         nullptr};
  pid_t pid = -1;
  const int err = posix_spawn(&pid, relay_.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  for (int fd : high) {
    if (fd >= 0) close(fd);
  }
  // The relay detaches at once (it forks and its first process exits).
  int status = 0;
  if (err == 0) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  const int keep_plain = plain[1], keep_control = control[0];
  plain[1] = control[0] = -1;
  close_all();
  if (err != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    close(keep_plain);
    close(keep_control);
    return socks5::fail(socks5::Errc::tls_unavailable);
  }
  return socks5::TransportStart{keep_plain, keep_control};
}

}  // namespace socksify::tool
