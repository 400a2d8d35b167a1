#pragma once
// The hop seam: one proxy's handshake, whatever protocol the proxy speaks. The dialer connects
// to a proxy, asks make_hop() for the handshake its URI's scheme names, and pumps it (a
// Machine: octets out, octets in, done) until the proxy has connected the stream onwards. A new
// upstream protocol is one Hop, its scheme in uri.hpp and its texts.
#include <memory>
#include <optional>
#include <string>

#include "socks5/address.hpp"
#include "socks5/auth.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/stream.hpp"
#include "socks5/uri.hpp"
#include "socks5/wire.hpp"

namespace socks5 {

class ReplyReader;

/// What one hop is asked for.
struct HopRequest {
  /// CONNECT, BIND or UDP ASSOCIATE; nullopt: authenticate only (SOCKS5, `check`).
  std::optional<wire::Command> command = wire::Command::connect;
  Address target;
  bool pipelining = false;                ///< SOCKS5: send what it can with the greeting
  const GssapiOptions* gssapi = nullptr;  ///< GSSAPI (SOCKS5) or Negotiate (HTTP)
};

/// One proxy's handshake.
class Hop : public Machine {
 public:
  /// Produces the first output.
  virtual Result<void> start() = 0;
  /// The authentication used, as a SOCKS5 method (none, username/password, GSSAPI).
  virtual wire::Method method() const noexcept = 0;
  /// Its name for lines: "none", "username/password", "GSSAPI", "Basic", "Negotiate"...
  virtual const char* method_text() const noexcept = 0;
  /// Pipelining (SOCKS5): everything went out in the first write.
  virtual bool pipelined() const noexcept { return false; }
  /// The server answered its first message (the SOCKS5 method selection).
  virtual bool first_answered() const noexcept { return true; }
  /// The server answered something sent after the first message (pipelined credentials).
  virtual bool answered_beyond_first() const noexcept { return true; }
  /// What silence until the deadline means now.
  virtual Errc silence_error() const noexcept { return Errc::timed_out; }
  /// A detail for the failure line: an HTTP status line, or the methods a 407 asked for.
  virtual std::string detail() const { return {}; }
  /// The bound address of the (first) reply, after done() (SOCKS).
  virtual Address bound() const { return {}; }
  /// After done(): the protection layer (GSSAPI), if one was negotiated.
  virtual std::unique_ptr<Protection> take_protection() { return nullptr; }
  /// After done(): the reader of later replies (SOCKS5 BIND's second reply); nullptr if none.
  virtual ReplyReader* reply_reader() noexcept { return nullptr; }
};

/// Whether `proxy` can carry `request` at all: its protocol has the command (BIND and UDP
/// ASSOCIATE are SOCKS5's) and can name the target (SOCKS4: IPv4 addresses only). Errc on
/// why not: command_not_offered or target_not_expressible.
Result<void> can_carry(const ProxyUri& proxy, const HopRequest& request);

/// The handshake `proxy`'s scheme names, for `request`.
Result<std::unique_ptr<Hop>> make_hop(const ProxyUri& proxy, HopRequest request);

}  // namespace socks5
