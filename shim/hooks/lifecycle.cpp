// fd lifecycle: close, close_range, closefrom, dup, dup2, dup3, fcntl(F_DUPFD*) keep the fd
// table right (session.hpp). Paths no hook sees (a raw syscall(SYS_close), fclose() of an
// fdopen() stream) are caught later by the session's socket identity. Each of these calls
// that could replace fd 2 first lets the logger remember what fd 2 was (log.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>

#include "async_connect.hpp"
#include "log.hpp"
#include "real_libc.hpp"
#include "session.hpp"

namespace socksify::shim {
namespace {

int on_fcntl(int fd, int cmd, void* arg) noexcept {
  const int r = real().fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) session_copy(fd, r);
  return r;
}

void before_replacing(int fd) noexcept {
  if (fd == 2) log_capture_stderr();
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;
using socksify::shim::real;

extern "C" {

SOCKSIFY_EXPORT int close(int fd) {
  sh::before_replacing(fd);
  sh::session_detach(fd);
  sh::async_forget(fd);
  return real().close(fd);
}

SOCKSIFY_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  if (real().close_range == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (first <= 2 && last >= 2) sh::log_capture_stderr();
  const int r = real().close_range(first, last, flags);
  if (r == 0 && (static_cast<unsigned>(flags) & CLOSE_RANGE_CLOEXEC) == 0) {
    sh::session_detach_range(first, last);
  }
  return r;
}

SOCKSIFY_EXPORT void closefrom(int lowfd) {
  if (lowfd <= 2) sh::log_capture_stderr();
  if (real().closefrom != nullptr) real().closefrom(lowfd);
  if (lowfd >= 0) sh::session_detach_range(static_cast<unsigned>(lowfd), UINT_MAX);
}

SOCKSIFY_EXPORT int dup(int fd) {
  const int r = real().dup(fd);
  if (r >= 0) sh::session_copy(fd, r);
  return r;
}

SOCKSIFY_EXPORT int dup2(int fd, int fd2) {
  sh::before_replacing(fd2);
  const int r = real().dup2(fd, fd2);
  if (r >= 0) sh::session_copy(fd, r);
  return r;
}

SOCKSIFY_EXPORT int dup3(int fd, int fd2, int flags) {
  sh::before_replacing(fd2);
  const int r = real().dup3(fd, fd2, flags);
  if (r >= 0) sh::session_copy(fd, r);
  return r;
}

// fcntl's third argument is an int or a pointer depending on cmd; like glibc's own wrapper we
// read it as a pointer-sized value and hand it on unchanged.
SOCKSIFY_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return sh::on_fcntl(fd, cmd, arg);
}

SOCKSIFY_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return sh::on_fcntl(fd, cmd, arg);
}

}  // extern "C"
