#include "real_libc.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <cstring>

namespace socksify::shim {
namespace {

RealLibc g_real;  // trivially initialised (all null) before any constructor runs
socks5::Syscalls g_syscalls;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

[[noreturn]] void die(const char* name) {
  // Nothing sensible can continue: the host program would recurse into us forever.
  static const char prefix[] = "socksify: cannot find the real ";
  (void)!write(2, prefix, sizeof prefix - 1);
  (void)!write(2, name, std::strlen(name));
  (void)!write(2, "\n", 1);
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

void resolve_all() {
#define SOCKSIFY_SELF(name) reinterpret_cast<void*>(static_cast<decltype(&::name)>(::name))
#define SOCKSIFY_RESOLVE(name) resolve(g_real.name, #name, SOCKSIFY_SELF(name), true);
#define SOCKSIFY_RESOLVE_OPTIONAL(name) resolve(g_real.name, #name, SOCKSIFY_SELF(name), false);
  SOCKSIFY_HOOKED(SOCKSIFY_RESOLVE)
  SOCKSIFY_HOOKED_OPTIONAL(SOCKSIFY_RESOLVE_OPTIONAL)
#undef SOCKSIFY_RESOLVE_OPTIONAL
#undef SOCKSIFY_RESOLVE
#undef SOCKSIFY_SELF
  g_syscalls = socks5::Syscalls{
      ::socket,
      g_real.connect,
      ::send,
      ::recv,
      ::poll,
      g_real.close,
      ::getsockopt,
      g_real.getpeername,
      g_real.fcntl,
      g_real.getaddrinfo,
      g_real.freeaddrinfo,
  };
}

}  // namespace

const RealLibc& real() noexcept {
  pthread_once(&g_once, resolve_all);
  return g_real;
}

const socks5::Syscalls& real_syscalls() noexcept {
  pthread_once(&g_once, resolve_all);
  return g_syscalls;
}

}  // namespace socksify::shim
