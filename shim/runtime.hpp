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
#include "connector.hpp"
#include "core_names.hpp"
#include "fake_dns.hpp"
#include "policy.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

/// Everything the hooks share. Immutable after init except the atomics.
struct Runtime {
  settings::Config config;
  FakeDns* dns = nullptr;  ///< only in remote-DNS mode
  /// The one connect path (connector.hpp): the dial plan every dial starts from, what was
  /// learned about the proxies, and the lines of each outcome.
  Connector connector;
  const socks5::DialPlan& plan() const noexcept { return connector.plan(); }
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

}  // namespace socksify::shim
