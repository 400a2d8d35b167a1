#pragma once
// The protected-stream relay (see doc/protected-streams.md). A GSSAPI connection at level
// integrity or confidentiality wraps every octet in RFC 1961 tokens; a proxy on a Unix socket
// cannot be reached by the program's internet socket at all (kind plain: octets as they are). The
// program's own socket stays a plain TCP socket connected to a loopback listener of a relay
// process, which wraps what the program writes and unwraps what the proxy sends. So every kind of
// I/O the program does (read, send, sendfile, splice, stdio, io_uring...) works, readiness is the
// kernel's own and therefore true, and the connection survives fork, dup and the death of the
// process that made it.
//
// The relay process is `socksify-relay`, started by the shim (never a copy of the program):
// it gets the proxy connection, the listener and a setup message (the exported security
// context, the protection level, and the port the program's socket connects from), answers
// one status octet, and relays until both directions end.
#include <cstdint>
#include <string>

#include "socks5/auth.hpp"
#include "socks5/gssapi.hpp"

namespace socksify::relay {

/// File descriptors the relay process is started with.
inline constexpr int kProxyFd = 3;    ///< the connection to the proxy, after the handshake
inline constexpr int kListenFd = 4;   ///< a loopback listener the program's socket connects to
inline constexpr int kControlFd = 5;  ///< setup in, status out (AF_UNIX stream)

/// What the relay does to the octets.
enum class Kind : std::uint8_t {
  gssapi = 1,  ///< wraps and unwraps with the exported GSSAPI context (RFC 1961 §5)
  plain = 2,   ///< passes them as they are (the proxy is on a socket the program cannot hold)
  tls = 3,     ///< TLS toward an https proxy: the hand-over after the dial (relay/tls.hpp)
};

/// What the shim tells the relay.
struct Setup {
  Kind kind = Kind::gssapi;
  socks5::GssLevel level = socks5::GssLevel::integrity;
  std::uint16_t peer_port = 0;  ///< the program socket's local port (the only peer accepted)
  socks5::Bytes context;        ///< gss_export_sec_context() output
  socks5::Bytes rest;           ///< plaintext that arrived after the SOCKS reply
};

/// Encodes a Setup: "SRL2", level, port (2), context length (4), rest length (4), kind, the
/// bytes.
socks5::Bytes encode_setup(const Setup& s);
/// Decodes a whole Setup; 0 consumed while incomplete; an error for a malformed one.
socks5::Result<std::size_t> decode_setup(socks5::ByteView in, Setup& out);

/// Why a relay ended.
enum class End : std::uint8_t {
  done,          ///< both directions finished (each end's FIN passed on)
  program_gone,  ///< the program's side reset or refused more data: proxy side reset
  proxy_reset,   ///< the proxy reset or ended mid-token: program side reset
  bad_token,     ///< a token failed verification: both sides reset
};

/// The layer of kind plain: every octet as it is.
class PlainLayer final : public socks5::Protection {
 public:
  socks5::Result<void> wrap(socks5::ByteView plain, socks5::Bytes& out) override;
  socks5::Result<std::size_t> unwrap(socks5::ByteView in, socks5::Bytes& plain) override;
};

/// Relays until both directions end. `plain` is the program's side, `wrapped` the proxy's;
/// both are made non-blocking. `rest` is plaintext to deliver first. Closes neither fd.
End run_relay(int plain, int wrapped, socks5::Protection& protection, socks5::ByteView rest);

}  // namespace socksify::relay
