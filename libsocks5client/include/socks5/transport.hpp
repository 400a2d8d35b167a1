#pragma once
// A layer between a proxy connection and its hop, asked for by the proxy's scheme: TLS for
// https:// (HTTP CONNECT inside TLS). The library runs no TLS of its own; the caller hands the
// dial a Transport (DialPlan::transport). The shim's runs TLS in its relay process, so that a
// program never loads a TLS library it did not ask for.
//
// The contract: start() is given the dial's own stream to the proxy (TCP, or the tunnel
// through the chain's earlier hops) and returns a socket on which the dial goes on in
// plaintext. Before any octet of the proxy's, the transport reports on that socket whether
// the layer came up: one status octet (TransportStatus), one length octet and that many
// octets of text (OpenSSL's words for a failure). Nothing of the proxy's follows until the dial
// has written something, so the dial reads the report exactly and no further.
#include <cstdint>
#include <string>
#include <string_view>

#include "socks5/error.hpp"
#include "socks5/result.hpp"
#include "socks5/stream.hpp"
#include "socks5/uri.hpp"

namespace socks5 {

/// What start() returns: the plaintext socket (the dial owns it from now) and, optionally, a
/// control descriptor the caller may want back after the dial (Dial::release_transport_control()).
struct TransportStart {
  int plain = -1;
  int control = -1;
};

/// A layer under a hop (TLS).
class Transport {
 public:
  /// `stream` is connected to `proxy` (or to a tunnel ending there); it is handed over and
  /// closed here in any case.
  virtual Result<TransportStart> start(int stream, const ProxyUri& proxy,
                                       Deadline deadline) noexcept = 0;

 protected:
  ~Transport() = default;
};

/// True if the proxy's scheme needs a transport (https).
bool needs_transport(const ProxyUri& proxy) noexcept;

/// The first octet of a transport's report.
enum class TransportStatus : std::uint8_t {
  up = 0,           ///< the layer is up: the hop may start
  unavailable = 1,  ///< no TLS library (libssl.so.3) could be loaded
  handshake = 2,    ///< the TLS handshake failed (not TLS, an alert, the connection closed)
  certificate = 3,  ///< the proxy's certificate did not verify
  timed_out = 4,    ///< the handshake did not finish in time
};

/// Encodes a report (the text cut to 255 octets).
Bytes encode_transport_status(TransportStatus status, std::string_view text);
/// The error a report stands for (none for `up`).
std::error_code transport_error(std::uint8_t status) noexcept;

}  // namespace socks5
