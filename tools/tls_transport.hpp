#pragma once
// TLS toward https proxies for the wrapper's own dials (`socksify check`): the relay program
// the library uses (socksify-relay tls, relay/tls.hpp), started with posix_spawn. The dial
// goes on over the relay's plaintext socket; nothing is handed over afterwards.
#include <string>

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

}  // namespace socksify::tool
