#pragma once
// Handing a dialled connection to a relay process (relay.hpp), shared by the preloaded library
// (whose calls must bypass its own hooks) and the supervisor (which parks the program's socket
// it holds a duplicate of): the program's socket is connected to a loopback listener of ours
// (parked), then the relay takes the listener over, accepts that socket, and carries it.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <initializer_list>

#include "relay.hpp"
#include "socks5/stream.hpp"

namespace socksify::relay {

/// The system calls the hand-over makes (the shim passes its real C library's, which its
/// hooks do not see; the supervisor the C library's).
struct Calls {
  int (*socket)(int, int, int);
  int (*bind)(int, const sockaddr*, socklen_t);
  int (*listen)(int, int);
  int (*getsockname)(int, sockaddr*, socklen_t*);
  int (*connect)(int, const sockaddr*, socklen_t);
  int (*poll)(pollfd*, nfds_t, int);
  int (*getsockopt)(int, int, int, void*, socklen_t*);
  ssize_t (*sendmsg)(int, const msghdr*, int);
  ssize_t (*send)(int, const void*, size_t, int);
  ssize_t (*recv)(int, void*, size_t, int);
  int (*close)(int);
};

/// A program socket connected to a listener of ours, waiting for its relay.
struct Parked {
  int listener = -1;
  std::uint16_t peer_port = 0;  ///< the program socket's local port (the relay checks it)
};

/// Connects `fd` (of `family`) to a new loopback listener, whatever its O_NONBLOCK (never
/// touched). Returns 0 or the errno.
int park(int fd, int family, Parked& parked, socks5::Deadline deadline, const Calls& c) noexcept;

/// Sends `setup` on the relay's control socket (with `fds` attached to its first octets:
/// SCM_RIGHTS) and waits for the relay's status octet. 0, or EIO / ETIMEDOUT.
int send_setup(int control, const Setup& setup, socks5::Deadline deadline, const Calls& c,
               std::initializer_list<int> fds = {}) noexcept;

}  // namespace socksify::relay
