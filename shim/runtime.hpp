#pragma once
// Process-wide state: the immutable configuration, the fake DNS table, proxy health and the
// dial plan built from them. Initialised once, lazily (the first hook that needs it, or the
// first fork), with the thread's guard set, so hooks reached during init pass straight through.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "fake_dns.hpp"
#include "policy.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

/// Per-proxy cool-down: a proxy that failed is tried last for `cooldown`. Lock-free, shared by
/// every thread; a forked child starts with its parent's view.
class Cooldown final : public socks5::ProxyHealth {
 public:
  void init(std::size_t proxies, std::chrono::milliseconds cooldown);
  bool cooling(std::size_t i) const noexcept override;
  void failed(std::size_t i) noexcept override;

 private:
  std::unique_ptr<std::atomic<std::int64_t>[]> until_;  // steady-clock ms
  std::size_t n_ = 0;
  std::int64_t cooldown_ms_ = 0;
};

/// Everything the hooks share. Immutable after init except the atomics.
struct Runtime {
  settings::Config config;
  FakeDns* dns = nullptr;  ///< only in remote-DNS mode
  /// Per proxy: its address when the URI names it numerically (the usual case), parsed once
  /// so that a connect needs no parsing; family AF_UNSPEC for a host name.
  std::vector<sockaddr_storage> proxy_numeric;
  Cooldown health;
  /// Where what was learned about the proxies is kept between processes (settings/state.hpp).
  std::string state_dir;
  /// What every dial starts from: views into the above.
  socks5::DialPlan plan;
};

/// The runtime; never null (a bad configuration ends the process at init with one line).
const Runtime& runtime() noexcept;
/// The runtime if it is initialised, else nullptr (never waits: for signal-handler paths).
const Runtime* runtime_if_ready() noexcept;

/// What the fake ranges say about `d`: sets ctx.fake when it lies in them, and d.name to the
/// name behind it (kept in `name`), unless ctx.nested: the table's lock is never taken from a
/// signal handler that may have interrupted its holder.
void describe_fake(const Runtime& rt, Destination& d, Context& ctx, char (&name)[256]) noexcept;

/// Proxy `i` as its URI (password masked), for log lines; "?" out of range.
std::string proxy_text(const Runtime& rt, std::size_t i);

/// Monotonic milliseconds.
std::int64_t now_ms() noexcept;

}  // namespace socksify::shim
