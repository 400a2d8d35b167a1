// syscall(2), the C library's wrapper for raw system calls: libuv (dig, node, bind's tools)
// sends and receives datagrams with syscall(__NR_sendmmsg, ...) and the like, and some
// programs connect that way. Those few calls are handed to the hooks that handle their libc
// names; every other number goes straight to the real wrapper (one switch).
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>

#include "hooks/hooks.hpp"
#include "real_libc.hpp"

namespace sh = socksify::shim;
using socksify::shim::real;

// Not instrumented by AddressSanitizer: like the C library's own wrapper, this reads six
// arguments whatever the caller passed (a futex wait passes four), and the sixth then comes
// from the caller's stack frame, which ASan would report as an underflow.
extern "C" __attribute__((no_sanitize("address"))) SOCKSIFY_EXPORT long syscall(long number, ...) {
  // The kernel takes at most six arguments; the C library's wrapper passes six, as here.
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  const int fd = static_cast<int>(a[0]);
  switch (number) {
    case SYS_connect:
      return sh::on_connect(fd, reinterpret_cast<const sockaddr*>(a[1]),
                            static_cast<socklen_t>(a[2]), nullptr);
    case SYS_sendto:
      return sh::send_to(fd, reinterpret_cast<const void*>(a[1]), static_cast<size_t>(a[2]),
                         static_cast<int>(a[3]), reinterpret_cast<const sockaddr*>(a[4]),
                         static_cast<socklen_t>(a[5]));
    case SYS_sendmsg:
      return sh::send_message(fd, reinterpret_cast<const msghdr*>(a[1]), static_cast<int>(a[2]));
    case SYS_sendmmsg:
      return sh::send_mmsg(fd, reinterpret_cast<mmsghdr*>(a[1]), static_cast<unsigned>(a[2]),
                           static_cast<int>(a[3]));
    case SYS_recvfrom:
      return sh::receive_from(fd, reinterpret_cast<void*>(a[1]), static_cast<size_t>(a[2]),
                              static_cast<int>(a[3]), reinterpret_cast<sockaddr*>(a[4]),
                              reinterpret_cast<socklen_t*>(a[5]));
    case SYS_recvmsg:
      return sh::receive_message(fd, reinterpret_cast<msghdr*>(a[1]), static_cast<int>(a[2]));
    case SYS_recvmmsg:
      return sh::receive_mmsg(fd, reinterpret_cast<mmsghdr*>(a[1]), static_cast<unsigned>(a[2]),
                              static_cast<int>(a[3]), reinterpret_cast<timespec*>(a[4]));
    default: return real().syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
}
