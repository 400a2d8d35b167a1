#pragma once
// Re-entrancy guard: while the shim does its own work on a thread (init, a handshake, a
// resolver call), hooks reached from inside it pass straight through to libc.

namespace socksify::shim {

// constinit: no dynamic initialisation, so no TLS wrapper call on each access and no weak
// reference for the loader to resolve.
extern constinit thread_local int t_depth __attribute__((tls_model("initial-exec")));

/// True when the current thread is inside the shim.
inline bool inside() noexcept {
  return t_depth > 0;
}

/// Marks the current scope as shim work.
class Guard {
 public:
  Guard() noexcept { ++t_depth; }
  ~Guard() { --t_depth; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

}  // namespace socksify::shim
