// fd lifecycle: close, close_range, dup, dup2, dup3, fcntl(F_DUPFD*) keep per-fd state right.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>

#include "fd_table.hpp"
#include "real_libc.hpp"

namespace socksify::shim {
namespace {

int on_fcntl(decltype(&::fcntl) real_fcntl, int fd, int cmd, void* arg) noexcept {
  const int r = real_fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) fd_copy(fd, r);
  return r;
}

}  // namespace
}  // namespace socksify::shim

using socksify::shim::real;

extern "C" {

SOCKSIFY_EXPORT int close(int fd) {
  socksify::shim::fd_clear(fd);
  return real().close(fd);
}

SOCKSIFY_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  if (real().close_range == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int r = real().close_range(first, last, flags);
  if (r == 0 && (static_cast<unsigned>(flags) & CLOSE_RANGE_CLOEXEC) == 0)
    socksify::shim::fd_clear_range(first, last);
  return r;
}

SOCKSIFY_EXPORT int dup(int fd) {
  const int r = real().dup(fd);
  if (r >= 0) socksify::shim::fd_copy(fd, r);
  return r;
}

SOCKSIFY_EXPORT int dup2(int fd, int fd2) {
  const int r = real().dup2(fd, fd2);
  if (r >= 0 && fd != fd2) socksify::shim::fd_copy(fd, r);
  return r;
}

SOCKSIFY_EXPORT int dup3(int fd, int fd2, int flags) {
  const int r = real().dup3(fd, fd2, flags);
  if (r >= 0) socksify::shim::fd_copy(fd, r);
  return r;
}

// fcntl's third argument is an int or a pointer depending on cmd; like glibc's own wrapper we
// read it as a pointer-sized value and hand it on unchanged.
SOCKSIFY_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return socksify::shim::on_fcntl(real().fcntl, fd, cmd, arg);
}

SOCKSIFY_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return socksify::shim::on_fcntl(real().fcntl, fd, cmd, arg);
}

}  // extern "C"
