#include "runtime.hpp"

#include <pthread.h>
#include <unistd.h>

#include <fcntl.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>

#include "config_file.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "real_libc.hpp"

namespace socksify::shim {

constinit thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace {

// Storage for the runtime, constructed in place at init: no static constructor or destructor
// runs (hooks may be called before our constructor and after our destructors).
alignas(Runtime) unsigned char g_storage[sizeof(Runtime)];
Runtime* g_runtime = nullptr;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
LogLevel g_level = LogLevel::quiet;
const char* g_log_file = nullptr;

void write_line(const char* buf, std::size_t len) {
  int fd = 2;
  if (g_log_file != nullptr) {
    fd = open(g_log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
  }
  (void)!write(fd, buf, len);
  if (g_log_file != nullptr) real().close(fd);
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

void create_fake_dns() {
  if (g_runtime->config.remote_dns && g_runtime->dns == nullptr) {
    g_runtime->dns = FakeDns::create(g_runtime->config.fake4, g_runtime->config.fake6);
  }
}

void init() {
  Guard guard;
  auto parsed = load_config([](const char* name) { return secure_getenv(name); });
  if (!parsed) {
    log_error("configuration error: %s", parsed.error().message.c_str());
    _exit(2);  // a bad configuration never runs the program half-socksified
  }
  g_runtime = new (g_storage) Runtime{};
  g_runtime->config = std::move(*parsed);
  g_level = g_runtime->config.log_level;
  if (!g_runtime->config.log_file.empty()) g_log_file = g_runtime->config.log_file.c_str();
  for (std::size_t i = 0; i < g_runtime->config.proxies.size() && i < 16; ++i) {
    const auto& p = g_runtime->config.proxies[i];
    const socks5::Address a = socks5::Address::from_host(p.host, p.port);
    if (a.is_ip()) a.to_sockaddr(g_runtime->proxy_numeric[i]);
  }
  create_fake_dns();
}

// Runs in the parent just before fork(): the runtime, and with it the fake DNS table, must exist
// before a fork so that parent and child share one table. vfork/posix_spawn skip this, but their
// child execs and starts afresh.
void before_fork() {
  pthread_once(&g_once, init);
}

// Nothing is parsed, allocated or mapped at load: init happens on the first hook that needs the
// configuration (connect, sendto, the resolver) or on the first fork. Loading the library into a
// program that never uses the network costs only the loader's work.
__attribute__((constructor)) void on_load() {
  pthread_atfork(before_fork, nullptr, nullptr);
}

}  // namespace

const Runtime& runtime() noexcept {
  pthread_once(&g_once, init);
  return *g_runtime;
}

Runtime& mutable_runtime() noexcept {
  pthread_once(&g_once, init);
  return *g_runtime;
}

std::int64_t now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(g_level);
}

void log_line(LogLevel level, const char* fmt, ...) noexcept {
  if (static_cast<int>(level) > static_cast<int>(g_level)) return;
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
