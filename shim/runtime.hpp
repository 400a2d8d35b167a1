#pragma once
// Process-wide state: the immutable configuration, the fake DNS table, proxy health.
// Initialised once, lazily (the first hook that needs it, or the first fork), with the thread's
// guard set, so hooks reached during init pass straight through.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>

#include "config.hpp"
#include "fake_dns.hpp"

namespace socksify::shim {

/// Everything the hooks share. Immutable after init except the atomics.
struct Runtime {
  Config config;
  FakeDns* dns = nullptr;  ///< only in remote-DNS mode
  /// Per proxy (same order as config.proxies): steady-clock ms until which it is skipped.
  std::atomic<std::int64_t> cooldown_until[16];
  /// Per proxy: its address when the URI names it numerically (the usual case), computed
  /// once so that a connect needs no parsing; family AF_UNSPEC for a host name.
  sockaddr_storage proxy_numeric[16];
};

/// The runtime; never null (a bad configuration ends the process at init with one line).
const Runtime& runtime() noexcept;
Runtime& mutable_runtime() noexcept;

/// Monotonic milliseconds.
std::int64_t now_ms() noexcept;

}  // namespace socksify::shim
