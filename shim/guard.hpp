#pragma once
// Re-entrancy: what a hook does when the thread is already inside the shim.
//
// The shim calls libc only through real() (real_libc.hpp), so its own calls never come back
// to a hook. Two things still can:
//  - code we call into on purpose: the C library's resolver (NSS modules make their own socket
//    calls through the PLT). A ResolverScope marks those calls: the local resolver was asked
//    because the policy allows it, so its traffic goes as it would without us.
//  - a signal handler that interrupts the shim's work on this thread. Its connect() or sendto()
//    must not bypass the policy just because the thread happens to be inside the shim: the
//    hooks classify it as usual, and refuse what would need the proxy (the interrupted
//    handshake owns this thread's state; see policy.hpp, Context::nested).

namespace socksify::shim {

// constinit: no dynamic initialisation, so no TLS wrapper call on each access and no weak
// reference for the loader to resolve.
extern constinit thread_local int t_depth __attribute__((tls_model("initial-exec")));
extern constinit thread_local int t_resolver __attribute__((tls_model("initial-exec")));
extern constinit thread_local int t_kerberos __attribute__((tls_model("initial-exec")));

/// True when the current thread is inside the shim (its own work or a resolver call).
inline bool inside() noexcept {
  return t_depth > 0;
}

/// True while the shim waits for the local resolver on this thread.
inline bool in_resolver() noexcept {
  return t_resolver > 0;
}

/// True while the shim waits for the GSS-API library (Kerberos: the KDC) on this thread.
inline bool in_kerberos() noexcept {
  return t_kerberos > 0;
}

/// Enters (true) or leaves (false) a call into the GSS-API library made by the shim's dial:
/// its own connections (to the KDC) go direct, as the resolver's do. A plain function for
/// socks5::GssapiOptions::library_scope.
inline void kerberos_scope(bool enter) noexcept {
  const int d = enter ? 1 : -1;
  t_depth += d;
  t_kerberos += d;
}

/// Marks the current scope as shim work.
class Guard {
 public:
  Guard() noexcept { ++t_depth; }
  ~Guard() { --t_depth; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

/// Marks a call into the local resolver made by the shim.
class ResolverScope {
 public:
  ResolverScope() noexcept {
    ++t_depth;
    ++t_resolver;
  }
  ~ResolverScope() {
    --t_resolver;
    --t_depth;
  }
  ResolverScope(const ResolverScope&) = delete;
  ResolverScope& operator=(const ResolverScope&) = delete;
};

}  // namespace socksify::shim
