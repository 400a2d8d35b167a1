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

template <class F>
void resolve(F& slot, const char* name, void* self) {
  void* p = dlsym(RTLD_NEXT, name);
  if (p == nullptr || p == self) die(name);
  slot = reinterpret_cast<F>(p);
}

void resolve_all() {
#define SOCKSIFY_RESOLVE(name) \
  resolve(g_real.name, #name, reinterpret_cast<void*>(static_cast<decltype(&::name)>(::name)));
  SOCKSIFY_HOOKED(SOCKSIFY_RESOLVE)
#undef SOCKSIFY_RESOLVE
#define SOCKSIFY_RESOLVE_OPTIONAL(name)                                                     \
  if (void* p = dlsym(RTLD_NEXT, #name);                                                    \
      p != nullptr && p != reinterpret_cast<void*>(static_cast<decltype(&::name)>(::name))) \
    g_real.name = reinterpret_cast<decltype(&::name)>(p);
  SOCKSIFY_HOOKED_OPTIONAL(SOCKSIFY_RESOLVE_OPTIONAL)
#undef SOCKSIFY_RESOLVE_OPTIONAL
  g_real.close_range =
      reinterpret_cast<int (*)(unsigned, unsigned, int)>(dlsym(RTLD_NEXT, "close_range"));
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
