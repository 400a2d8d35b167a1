#pragma once
// The ONE libc boundary of the shim. Every C library function the shim calls is reached
// through real(): the functions we interpose (their real definitions, found with
// dlsym(RTLD_NEXT)) and the ones we merely use. Calling a socket function by name inside the
// shim would land in our own hook (or, for the ones we do not hook, hide a call that a lint
// test could not see); tests/lint_shim.cmake greps the shim for such calls, and the
// "exports" test checks that these lists, shim/exports.map and the library's dynamic symbols
// agree.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <resolv.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>

#include "socks5/syscalls.hpp"

/// Marks a hook definition as exported (everything else in the shim is hidden).
#define SOCKSIFY_EXPORT __attribute__((visibility("default")))

namespace socksify::shim {

// X(name): symbols we interpose that the C library always has; each hook can pass through to
// real().name.
#define SOCKSIFY_HOOKED(X) \
  X(connect)               \
  X(close)                 \
  X(dup)                   \
  X(dup2)                  \
  X(dup3)                  \
  X(fcntl)                 \
  X(getpeername)           \
  X(getsockopt)            \
  X(sendto)                \
  X(sendmsg)               \
  X(sendmmsg)              \
  X(send)                  \
  X(write)                 \
  X(writev)                \
  X(recv)                  \
  X(recvfrom)              \
  X(recvmsg)               \
  X(recvmmsg)              \
  X(read)                  \
  X(readv)                 \
  X(sendfile)              \
  X(splice)                \
  X(syscall)               \
  X(bind)                  \
  X(listen)                \
  X(accept)                \
  X(accept4)               \
  X(getsockname)           \
  X(getaddrinfo)           \
  X(freeaddrinfo)          \
  X(getnameinfo)           \
  X(gethostbyname)         \
  X(gethostbyname2)        \
  X(gethostbyname_r)       \
  X(gethostbyname2_r)      \
  X(gethostbyaddr)         \
  X(gethostbyaddr_r)       \
  X(execve)                \
  X(execvpe)               \
  X(fexecve)               \
  X(posix_spawn)           \
  X(posix_spawnp)          \
  X(poll)                  \
  X(ppoll)                 \
  X(select)                \
  X(pselect)               \
  X(epoll_ctl)

// Interposed symbols the C library may lack (close_range, closefrom, execveat and, in libc,
// the resolver functions are glibc 2.34's; before that those live in libanl and libresolv,
// which only programs that use them load). A null real pointer means the program cannot have
// called them through the loader either.
#define SOCKSIFY_HOOKED_OPTIONAL(X) \
  X(close_range)                    \
  X(closefrom)                      \
  X(execveat)                       \
  X(getaddrinfo_a)                  \
  X(res_query)                      \
  X(res_search)                     \
  X(res_querydomain)                \
  X(res_send)                       \
  X(res_nquery)                     \
  X(res_nsearch)                    \
  X(res_nquerydomain)               \
  X(res_nsend)

// Interposed symbols that forward to one of the above (no real pointer of their own): the
// 64-bit fcntl name, the exec functions that take the environment implicitly or as varargs,
// and the names older glibc headers mapped the resolver functions to.
#define SOCKSIFY_HOOKED_FORWARDING(X) \
  X(fcntl64)                          \
  X(sendfile64)                       \
  X(execv)                            \
  X(execvp)                           \
  X(execl)                            \
  X(execlp)                           \
  X(execle)                           \
  X(__res_query)                      \
  X(__res_search)                     \
  X(__res_querydomain)                \
  X(__res_send)                       \
  X(__res_nquery)                     \
  X(__res_nsearch)                    \
  X(__res_nquerydomain)               \
  X(__res_nsend)

// C library functions the shim calls but does not interpose.
#define SOCKSIFY_USED(X) \
  X(socket)              \
  X(socketpair)          \
  X(epoll_create1)       \
  X(epoll_wait)          \
  X(setsockopt)          \
  X(fstat)               \
  X(sigaction)           \
  X(open)

/// The real functions behind the hooks and the ones the shim uses (null for a missing
/// optional one).
struct RealLibc {
#define SOCKSIFY_DECLARE(name) decltype(&::name) name;
  SOCKSIFY_HOOKED(SOCKSIFY_DECLARE)
  SOCKSIFY_HOOKED_OPTIONAL(SOCKSIFY_DECLARE)
  SOCKSIFY_USED(SOCKSIFY_DECLARE)
#undef SOCKSIFY_DECLARE
};

/// The table behind real() (filled once by real_slow()).
extern RealLibc g_real;
extern std::atomic<bool> g_real_resolved;
/// Resolves the table (once, thread-safe) and returns it.
const RealLibc& real_slow() noexcept;

/// The real functions. Resolved on first use (thread-safe); never returns a hook of ours.
/// Inline: every hook calls it, and after the first call it is one load.
inline const RealLibc& real() noexcept {
  if (__builtin_expect(g_real_resolved.load(std::memory_order_acquire), 1)) return g_real;
  return real_slow();
}

/// A Syscalls table for the core, filled with the real functions; its getaddrinfo marks the
/// call as the resolver's own work (hooks it reaches let DNS queries through).
const socks5::Syscalls& real_syscalls() noexcept;

}  // namespace socksify::shim
