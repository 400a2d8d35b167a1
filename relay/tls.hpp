#pragma once
// TLS toward an https:// proxy, in the relay process only: a program never loads a TLS library
// it did not ask for. OpenSSL (Debian's libssl3) is loaded with dlopen when the first https
// connection needs it, so the relay starts without it for every other kind.
//
// The relay owns the stream to the proxy: it runs the TLS handshake (the system CA store plus
// an optional extra CA file, the proxy's name or address checked, SNI sent), reports on the
// dial's plaintext socket (socks5/transport.hpp), carries the dial's HTTP CONNECT, and then,
// once the dial has handed the program's connection over, carries the program's octets.
#include <cstdint>
#include <string>

#include "socks5/wire.hpp"

namespace socksify::relay {

/// How the relay checks the proxy.
struct TlsOptions {
  std::string host;     ///< the proxy's name (or address) as the URI gives it: SNI and check
  std::string ca_file;  ///< an extra CA (--proxy-cacert); empty: the system store only
};

/// How a handshake ended (the values of socks5::TransportStatus).
enum class TlsResult : std::uint8_t {
  up = 0,
  unavailable = 1,  ///< libssl.so.3 could not be loaded
  handshake = 2,    ///< the handshake failed (not TLS, an alert, the connection closed)
  certificate = 3,  ///< the proxy's certificate did not verify (detail: OpenSSL's words)
  timed_out = 4,    ///< the deadline passed
};

/// Why relay() returned.
enum class TlsStop : std::uint8_t {
  done,     ///< both directions ended cleanly
  broken,   ///< a side failed (reset, TLS error)
  control,  ///< the control descriptor became readable (the dial is over)
};

/// One TLS client connection over a connected stream socket, and the relay around it.
class TlsClient {
 public:
  TlsClient();
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  /// Runs the handshake on `fd` (made non-blocking) until `deadline_ms` from now.
  TlsResult handshake(int fd, const TlsOptions& options, int deadline_ms);
  /// OpenSSL's words for the last failure ("certificate verify failed: unable to get local
  /// issuer certificate").
  const std::string& detail() const { return detail_; }

  /// Carries plaintext between `plain` (a local stream socket) and the TLS connection until
  /// both directions end, one fails, or `control` (if >= 0) becomes readable. With
  /// `hold_down`, nothing of the proxy's is read before `plain` has sent something (the
  /// dial reads the transport's report exactly, and nothing may follow it unasked).
  /// `tunnel`: the local side's end of stream ends the relay once its octets are through (a
  /// chain's tunnel, or a dial that failed: no half-closed connection is kept waiting on the
  /// proxy). What is in flight stays here for the next call.
  TlsStop relay(int plain, int control, bool hold_down, bool tunnel = false);
  /// Takes whatever `plain` has to give now (at a hand-over), for the proxy.
  void drain_up(int plain);
  /// Octets to deliver to the next `plain` before anything still held here.
  void put_front(const socks5::Bytes& octets);

 private:
  struct State;
  State* s_ = nullptr;
  std::string detail_;
};

}  // namespace socksify::relay
