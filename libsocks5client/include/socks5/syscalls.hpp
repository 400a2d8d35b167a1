#pragma once
// The only way the core reaches libc. Inside the preloaded shim, calling ::connect by name would
// land in our own hook, so the shim fills this table with the real libc functions; tests fill it
// with fakes that inject EINTR, EAGAIN and short transfers.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace socks5 {

/// Function table for every libc call the core makes.
struct Syscalls {
  int (*socket)(int, int, int);
  int (*connect)(int, const sockaddr*, socklen_t);
  ssize_t (*send)(int, const void*, size_t, int);
  ssize_t (*recv)(int, void*, size_t, int);
  int (*poll)(pollfd*, nfds_t, int);
  int (*close)(int);
  int (*getsockopt)(int, int, int, void*, socklen_t*);
  int (*setsockopt)(int, int, int, const void*, socklen_t);
  int (*getpeername)(int, sockaddr*, socklen_t*);
  int (*fcntl)(int, int, ...);
  int (*getaddrinfo)(const char*, const char*, const addrinfo*, addrinfo**);
  void (*freeaddrinfo)(addrinfo*);

  /// The table of plain libc functions (for programs that are not the shim).
  static const Syscalls& libc() noexcept;
};

}  // namespace socks5
