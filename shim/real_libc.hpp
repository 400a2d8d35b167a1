#pragma once
// The real libc functions behind our hooks, found lazily with dlsym(RTLD_NEXT).
// ONE list of hooked symbols (SOCKSIFY_HOOKED); each entry gives a pointer of the exact type.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <resolv.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "socks5/syscalls.hpp"

/// Marks a hook definition as exported (everything else in the shim is hidden).
#define SOCKSIFY_EXPORT __attribute__((visibility("default")))

namespace socksify::shim {

// X(name): symbols we interpose. Every hook calls real().name for pass-through.
#define SOCKSIFY_HOOKED(X) \
  X(connect)               \
  X(close)                 \
  X(dup)                   \
  X(dup2)                  \
  X(dup3)                  \
  X(fcntl)                 \
  X(getpeername)           \
  X(getsockname)           \
  X(sendto)                \
  X(sendmsg)               \
  X(sendmmsg)              \
  X(getaddrinfo)           \
  X(freeaddrinfo)          \
  X(getnameinfo)           \
  X(gethostbyname)         \
  X(gethostbyname2)        \
  X(gethostbyname_r)       \
  X(gethostbyname2_r)      \
  X(gethostbyaddr)         \
  X(gethostbyaddr_r)

// Hooked symbols the C library may lack (close_range and, in libc, the resolver functions are
// glibc 2.34's; before that those live in libanl and libresolv, which only programs that use
// them load). A null real pointer means the program cannot have called them through the loader
// either.
#define SOCKSIFY_HOOKED_OPTIONAL(X) \
  X(close_range)                    \
  X(getaddrinfo_a)                  \
  X(res_query)                      \
  X(res_search)                     \
  X(res_querydomain)                \
  X(res_send)                       \
  X(res_nquery)                     \
  X(res_nsearch)                    \
  X(res_nquerydomain)               \
  X(res_nsend)

/// The real functions behind the hooks (null for a missing optional one).
struct RealLibc {
#define SOCKSIFY_DECLARE(name) decltype(&::name) name;
  SOCKSIFY_HOOKED(SOCKSIFY_DECLARE)
  SOCKSIFY_HOOKED_OPTIONAL(SOCKSIFY_DECLARE)
#undef SOCKSIFY_DECLARE
};

/// The real functions. Resolved on first use (thread-safe); never returns a hook of ours.
const RealLibc& real() noexcept;

/// A Syscalls table for the core, filled with the real functions.
const socks5::Syscalls& real_syscalls() noexcept;

}  // namespace socksify::shim
