#pragma once
// The relay program (socksify-relay, relay/relay.hpp) for the wrapper's own dials: TLS toward
// https proxies for `socksify check` and the supervisor, and, for the supervisor, the
// hand-over of a dialled connection to the program's socket (an https proxy, a proxy on a Unix
// socket), as the preloaded library does it. Started with posix_spawn.
#include <initializer_list>
#include <string>

#include "handover.hpp"
#include "socks5/dialer.hpp"
#include "socks5/transport.hpp"

namespace socksify::tool {

class SpawnedTls final : public socks5::Transport {
 public:
  /// `relay`: the socksify-relay program; `ca_file`: an extra CA (may be empty).
  SpawnedTls(std::string relay, std::string ca_file)
      : relay_(std::move(relay)), ca_file_(std::move(ca_file)) {}
  socks5::Result<socks5::TransportStart> start(int stream, const socks5::ProxyUri& proxy,
                                               socks5::Deadline deadline) noexcept override;

 private:
  std::string relay_;
  std::string ca_file_;
};

/// socksify-relay next to the library (find_shim()); empty if there is none.
std::string find_relay();

/// The C library's calls, for the hand-over.
const relay::Calls& libc_calls() noexcept;

/// Starts `relay` with `fds` as 3, 4 and 5 and `args` after its name; waits for its first
/// process (the relay detaches). 0 or the errno.
int spawn_relay(const std::string& relay, const int (&fds)[3],
                std::initializer_list<const char*> args = {}) noexcept;

/// After `dial` (on a socket of its own) is done: connects `program` (a duplicate of the
/// program's socket, of `family`) to a relay that carries the proxy connection (the TLS relay
/// the dial started, or a new one for a Unix socket's). 0, or the errno for the program's
/// connect() (ECONNABORTED).
int hand_over(socks5::Dial& dial, int program, int family, socks5::Deadline deadline,
              const std::string& relay) noexcept;

}  // namespace socksify::tool
