#include "real_libc.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cstring>

#include "guard.hpp"

namespace socksify::shim {

RealLibc g_real;  // trivially initialised (all null) before any constructor runs
std::atomic<bool> g_real_resolved{false};

namespace {

socks5::Syscalls g_syscalls;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

[[noreturn]] void die(const char* name) {
  // Nothing sensible can continue: the host program would recurse into us forever. (The raw
  // write below is the only libc call made by name: the table it would come from is broken.)
  static const char prefix[] = "socksify: cannot find the real ";
  (void)!::write(2, prefix, sizeof prefix - 1);
  (void)!::write(2, name, std::strlen(name));
  (void)!::write(2, "\n", 1);
  _exit(127);
}

// An optional symbol that is missing (or that resolves to the library itself) stays null.
template <class F>
void resolve(F& slot, const char* name, void* self, bool required) {
  void* p = dlsym(RTLD_NEXT, name);
  if (p == nullptr || p == self) {
    if (required) die(name);
    return;
  }
  slot = reinterpret_cast<F>(p);
}

// The resolver's own lookups (a proxy given by host name) go through NSS modules, whose
// socket calls reach our hooks: marked, they let DNS queries through (policy.hpp, Context).
int resolver_getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                         addrinfo** res) {
  ResolverScope scope;
  return g_real.getaddrinfo(node, service, hints, res);
}

void resolve_all() {
#define SOCKSIFY_SELF(name) reinterpret_cast<void*>(static_cast<decltype(&::name)>(::name))
#define SOCKSIFY_RESOLVE(name) resolve(g_real.name, #name, SOCKSIFY_SELF(name), true);
#define SOCKSIFY_RESOLVE_OPTIONAL(name) resolve(g_real.name, #name, SOCKSIFY_SELF(name), false);
#define SOCKSIFY_RESOLVE_USED(name) resolve(g_real.name, #name, nullptr, true);
  SOCKSIFY_HOOKED(SOCKSIFY_RESOLVE)
  SOCKSIFY_HOOKED_OPTIONAL(SOCKSIFY_RESOLVE_OPTIONAL)
  SOCKSIFY_USED(SOCKSIFY_RESOLVE_USED)
#undef SOCKSIFY_RESOLVE_USED
#undef SOCKSIFY_RESOLVE_OPTIONAL
#undef SOCKSIFY_RESOLVE
#undef SOCKSIFY_SELF
  g_syscalls = socks5::Syscalls{
      g_real.socket,      g_real.connect, g_real.send,          g_real.recv,
      g_real.poll,        g_real.close,   g_real.getsockopt,    g_real.setsockopt,
      g_real.getpeername, g_real.fcntl,   resolver_getaddrinfo, g_real.freeaddrinfo,
  };
  g_real_resolved.store(true, std::memory_order_release);
}

}  // namespace

const RealLibc& real_slow() noexcept {
  pthread_once(&g_once, resolve_all);
  return g_real;
}

const socks5::Syscalls& real_syscalls() noexcept {
  if (!g_real_resolved.load(std::memory_order_acquire)) pthread_once(&g_once, resolve_all);
  return g_syscalls;
}

}  // namespace socksify::shim
