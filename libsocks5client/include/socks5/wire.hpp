#pragma once
// The pure codec: RFC 1928 (SOCKS5), RFC 1929 (username/password) and RFC 1961 (GSS-API framing).
// No I/O. Encoders append to a byte vector; decoders read a prefix of a byte span and return
// nullopt while the prefix is too short to decide, an error as soon as it is invalid.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "socks5/address.hpp"
#include "socks5/result.hpp"

namespace socks5 {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

namespace wire {

inline constexpr std::uint8_t kVersion = 0x05;          ///< RFC 1928 VER
inline constexpr std::uint8_t kUserPassVersion = 0x01;  ///< RFC 1929 VER
inline constexpr std::uint8_t kGssVersion = 0x01;       ///< RFC 1961 ver

/// Method identifiers (RFC 1928 §3).
enum class Method : std::uint8_t {
  none = 0x00,
  gssapi = 0x01,
  username_password = 0x02,
  no_acceptable = 0xFF,
};

/// Request commands (RFC 1928 §4).
enum class Command : std::uint8_t { connect = 0x01, bind = 0x02, udp_associate = 0x03 };

/// RFC 1961 message types.
enum class GssMessageType : std::uint8_t {
  token = 0x01,
  protection = 0x02,
  encapsulated = 0x03,
  abort = 0xFF,
};

/// A decoded value and how many input octets it used.
template <class T>
struct Decoded {
  T value;
  std::size_t size;
};

/// nullopt = need more input; error = invalid; value = complete message.
template <class T>
using Parse = Result<std::optional<Decoded<T>>>;

/// A server reply (RFC 1928 §6).
struct Reply {
  std::uint8_t rep = 0;  ///< 0x00 succeeded, otherwise an error code
  Address bound;         ///< BND.ADDR / BND.PORT
};

/// A client request as seen by a server (for the test server and fuzzers).
struct Request {
  Command command = Command::connect;
  Address destination;
};

/// A datagram's UDP request header (RFC 1928 §7) and where its DATA starts.
struct UdpHeader {
  std::uint8_t frag = 0;
  Address destination;
};

/// An RFC 1929 request as seen by a server.
struct UserPass {
  std::string user;
  std::string password;
};

/// An RFC 1961 frame; token views into the decoded input.
struct GssFrame {
  GssMessageType type = GssMessageType::token;
  ByteView token;
};

// --- RFC 1928 ---
/// Version/method-selection message (1..255 methods).
Result<void> encode_greeting(std::span<const Method> methods, Bytes& out);
/// Server side of the greeting: the list of offered methods.
Parse<std::vector<Method>> decode_greeting(ByteView in);
/// METHOD selection reply: VER must be 5.
Parse<Method> decode_method_selection(ByteView in);
/// Encodes an address as ATYP + ADDR + PORT (used by requests, replies, UDP headers).
Result<void> encode_address(const Address& a, Bytes& out);
/// Decodes ATYP + ADDR + PORT, sized from its own ATYP.
Parse<Address> decode_address(ByteView in);
/// VER CMD RSV ATYP DST.ADDR DST.PORT.
Result<void> encode_request(Command cmd, const Address& dst, Bytes& out);
/// Server side of a request.
Parse<Request> decode_request(ByteView in);
/// VER REP RSV ATYP BND.ADDR BND.PORT (server side; for the test server).
Result<void> encode_reply(std::uint8_t rep, const Address& bound, Bytes& out);
/// A reply, sized from the reply's own ATYP; VER 5 and RSV 0 required.
Parse<Reply> decode_reply(ByteView in);
/// RSV(2) FRAG ATYP DST.ADDR DST.PORT, followed by the data.
Result<void> encode_udp_header(std::uint8_t frag, const Address& dst, Bytes& out);
/// Decodes a whole datagram's header; Decoded::size is where DATA starts. A datagram is
/// complete by definition, so a short one is an error, never "need more".
Result<Decoded<UdpHeader>> decode_udp_header(ByteView datagram);

// --- RFC 1929 ---
/// VER ULEN UNAME PLEN PASSWD (user 1..255, password 0..255 octets).
Result<void> encode_userpass(std::string_view user, std::string_view password, Bytes& out);
/// Server side of RFC 1929.
Parse<UserPass> decode_userpass(ByteView in);
/// VER STATUS; returns the status octet (0 = success). VER must be 1.
Parse<std::uint8_t> decode_userpass_status(ByteView in);

// --- RFC 1961 ---
/// ver mtyp len token (or just ver mtyp for abort).
Result<void> encode_gss_frame(GssMessageType type, ByteView token, Bytes& out);
/// Decodes one frame; the token views into `in`.
Parse<GssFrame> decode_gss_frame(ByteView in);

/// Printable name of a method ("none", "username/password", "gssapi", "0x80").
std::string method_name(Method m);

}  // namespace wire
}  // namespace socks5
