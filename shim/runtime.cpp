#include "runtime.hpp"

#include "async_connect.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <new>

#include "config_file.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "protected.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"
#include "state.hpp"

namespace socksify::shim {

constinit thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local int t_resolver __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local int t_kerberos __attribute__((tls_model("initial-exec"))) = 0;

namespace {

// Storage for the runtime, constructed in place at init: no static constructor or destructor
// runs (hooks may be called before our constructor and after our destructors).
alignas(Runtime) unsigned char g_storage[sizeof(Runtime)];
Runtime* g_runtime = nullptr;
std::atomic<bool> g_ready{false};
pthread_once_t g_once = PTHREAD_ONCE_INIT;

void init() {
  Guard guard;
  log_capture_stderr();
  auto parsed = settings::load_config([](const char* name) { return secure_getenv(name); });
  if (!parsed) {
    log_error("configuration error: %s", parsed.error().message.c_str());
    _exit(2);  // a bad configuration never runs the program half-socksified
  }
  g_runtime = new (g_storage) Runtime{};
  Runtime& rt = *g_runtime;
  rt.config = std::move(*parsed);
  log_configure(rt.config.log_level,
                rt.config.log_file.empty() ? nullptr : rt.config.log_file.c_str());
  if (rt.config.gssapi) rt.config.gssapi->library_scope = kerberos_scope;
  // What earlier processes learned about the proxies' pipelining is kept in the state
  // directory (only needed when it is learned).
  // The fake-DNS table shared by the user's socksified processes lives there too.
  std::string state_dir;
  if (rt.config.pipelining == socks5::Pipelining::automatic || rt.config.remote_dns) {
    state_dir = settings::state_dir([](const char* name) { return secure_getenv(name); });
  }
  LineSink sink;
  sink.enabled = log_enabled;
  sink.write = [](LogLevel level, int, const char* text) noexcept { log_line(level, "%s", text); };
  static constinit FileCalls file_calls{};
  file_calls = FileCalls{real().open, real().close, real().fstat};
  // (Nothing is mapped here: the table is mapped by the first lookup that needs it.)
  if (rt.config.remote_dns) {
    rt.dns = FakeDns::create(rt.config.fake4, rt.config.fake6, state_dir, &file_calls);
  }
  rt.connector.init(
      rt.config,
      rt.config.pipelining == socks5::Pipelining::automatic ? std::move(state_dir) : std::string(),
      sink, &real_syscalls());
  rt.connector.set_transport(relay_transport());
  g_release_pending = release_pending_connect;
  g_ready.store(true, std::memory_order_release);
}

// Runs in the parent just before fork(): the runtime, and with it the fake DNS table, must exist
// before a fork so that parent and child share one table. vfork/posix_spawn skip this, but their
// child execs and starts afresh.
void before_fork() {
  pthread_once(&g_once, init);
  if (g_runtime != nullptr && g_runtime->dns != nullptr) g_runtime->dns->before_fork();
  async_before_fork();
}

void after_fork_parent() {
  async_after_fork_parent();
}

// Nothing is parsed, allocated or mapped at load: init happens on the first hook that needs the
// configuration (connect, sendto, the resolver) or on the first fork. Loading the library into a
// program that never uses the network costs only the loader's work.
// In a forked child: the event-loop connects' driver thread did not come along.
void after_fork_child() {
  async_after_fork_child();
}

__attribute__((constructor)) void on_load() {
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

}  // namespace

void describe_fake(const Runtime& rt, Destination& d, Context& ctx, char (&name)[256]) noexcept {
  if (rt.dns == nullptr || !rt.dns->in_range(d.family, d.ip.data())) return;
  ctx.fake = true;
  if (!ctx.nested && rt.dns->name_of(d.family, d.ip.data(), name, sizeof name)) d.name = name;
}

const Runtime& runtime() noexcept {
  pthread_once(&g_once, init);
  return *g_runtime;
}

const Runtime* runtime_if_ready() noexcept {
  return g_ready.load(std::memory_order_acquire) ? g_runtime : nullptr;
}

std::string proxy_text(const Runtime& rt, std::size_t i) {
  return rt.connector.proxy_text(i);
}

}  // namespace socksify::shim
