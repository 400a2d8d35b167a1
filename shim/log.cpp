#include "log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "real_libc.hpp"

namespace socksify::shim {
namespace {

// What fd 2 was before the program could change it: taken on the first hook that could
// change fd 2 (close, dup2, dup3, close_range, closefrom) or at init, whichever comes first.
// 0: not yet; 1: being taken; 2: taken.
std::atomic<int> g_captured{0};
bool g_stderr_usable = false;
dev_t g_stderr_dev = 0;
ino_t g_stderr_ino = 0;
std::atomic<int> g_level{static_cast<int>(LogLevel::quiet)};
const char* g_log_file = nullptr;

// fd 2 if it is still the standard error we were started with, else -1.
int stderr_fd() {
  if (g_captured.load(std::memory_order_acquire) != 2 || !g_stderr_usable) return -1;
  struct stat st {};
  if (real().fstat(2, &st) != 0) return -1;
  return st.st_dev == g_stderr_dev && st.st_ino == g_stderr_ino ? 2 : -1;
}

std::atomic<bool> g_file_failed{false};

void write_line(const char* buf, std::size_t len) {
  if (g_log_file != nullptr) {
    const int fd = real().open(g_log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)!real().write(fd, buf, len);
      real().close(fd);
      return;
    }
    // Lines must not vanish without a word: say once why, then use standard error.
    const int e = errno;
    const int err = stderr_fd();
    if (!g_file_failed.exchange(true) && err >= 0) {
      char note[512];
      const int n = std::snprintf(note, sizeof note,
                                  "socksify[%d]: cannot write the log file %s: %s; logging to "
                                  "standard error\n",
                                  static_cast<int>(getpid()), g_log_file, strerrordesc_np(e));
      if (n > 0)
        (void)!real().write(err, note, std::min(sizeof note - 1, static_cast<std::size_t>(n)));
    }
  }
  const int fd = stderr_fd();
  if (fd >= 0) (void)!real().write(fd, buf, len);
}

__attribute__((format(printf, 1, 0))) void vlog(const char* fmt, va_list ap) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "socksify[%d]: ", static_cast<int>(getpid()));
  if (n < 0) return;
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<std::size_t>(n) - 1, fmt, ap);
  if (m < 0) return;
  std::size_t len = static_cast<std::size_t>(n) + static_cast<std::size_t>(m);
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  write_line(buf, len);
}

}  // namespace

void log_capture_stderr() noexcept {
  int state = 0;
  if (!g_captured.compare_exchange_strong(state, 1, std::memory_order_acq_rel)) return;
  struct stat st {};
  // A socket as fd 2 from the start (inetd-style services) carries the program's data.
  if (real().fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
    g_stderr_dev = st.st_dev;
    g_stderr_ino = st.st_ino;
    g_stderr_usable = true;
  }
  g_captured.store(2, std::memory_order_release);
}

void log_configure(LogLevel level, const char* file) noexcept {
  g_log_file = file;
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void log_error(const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

}  // namespace socksify::shim
