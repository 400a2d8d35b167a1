#include "socks5/wire.hpp"

#include <cstdio>
#include <cstring>

#include "socks5/error.hpp"

namespace socks5::wire {
namespace {

void put_u16(std::uint16_t v, Bytes& out) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

std::uint16_t get_u16(ByteView in, std::size_t at) {
  return static_cast<std::uint16_t>((in[at] << 8) | in[at + 1]);
}

template <class T>
Parse<T> need_more() {
  return std::optional<Decoded<T>>{};
}

template <class T>
Parse<T> done(T value, std::size_t size) {
  return std::optional<Decoded<T>>{Decoded<T>{std::move(value), size}};
}

}  // namespace

// RFC 1928 §3, client greeting:
//   +----+----------+----------+
//   |VER | NMETHODS | METHODS  |
//   +----+----------+----------+
//   | 1  |    1     | 1 to 255 |
//   +----+----------+----------+
Result<void> encode_greeting(std::span<const Method> methods, Bytes& out) {
  if (methods.empty()) return fail(Errc::invalid_argument);
  if (methods.size() > 255) return fail(Errc::message_too_long);
  out.push_back(kVersion);
  out.push_back(static_cast<std::uint8_t>(methods.size()));
  for (Method m : methods) out.push_back(static_cast<std::uint8_t>(m));
  return {};
}

Parse<std::vector<Method>> decode_greeting(ByteView in) {
  if (in.size() < 2) {
    if (!in.empty() && in[0] != kVersion) return fail(Errc::bad_version);
    return need_more<std::vector<Method>>();
  }
  if (in[0] != kVersion) return fail(Errc::bad_version);
  const std::size_t n = in[1];
  if (n == 0) return fail(Errc::invalid_argument);
  if (in.size() < 2 + n) return need_more<std::vector<Method>>();
  std::vector<Method> methods;
  methods.reserve(n);
  for (std::size_t i = 0; i < n; ++i) methods.push_back(static_cast<Method>(in[2 + i]));
  return done(std::move(methods), 2 + n);
}

// RFC 1928 §3, server's choice:
//   +----+--------+
//   |VER | METHOD |
//   +----+--------+
//   | 1  |   1    |
//   +----+--------+
Parse<Method> decode_method_selection(ByteView in) {
  if (!in.empty() && in[0] != kVersion) return fail(Errc::bad_version);
  if (in.size() < 2) return need_more<Method>();
  return done(static_cast<Method>(in[1]), 2);
}

// RFC 1928 §5: ATYP then DST.ADDR (4 octets, 1+1..255 octets, or 16 octets) then the port.
Result<void> encode_address(const Address& a, Bytes& out) {
  switch (a.type()) {
    case AddressType::ipv4:
      out.push_back(0x01);
      out.insert(out.end(), a.octets().begin(), a.octets().begin() + 4);
      break;
    case AddressType::ipv6:
      out.push_back(0x04);
      out.insert(out.end(), a.octets().begin(), a.octets().end());
      break;
    case AddressType::domain:
      if (a.host().empty()) return fail(Errc::bad_domain_length);
      if (a.host().size() > 255) return fail(Errc::message_too_long);
      out.push_back(0x03);
      out.push_back(static_cast<std::uint8_t>(a.host().size()));
      out.insert(out.end(), a.host().begin(), a.host().end());
      break;
  }
  put_u16(a.port(), out);
  return {};
}

Parse<Address> decode_address(ByteView in) {
  if (in.empty()) return need_more<Address>();
  std::size_t size = 0;
  switch (in[0]) {
    case 0x01: size = 1 + 4 + 2; break;
    case 0x04: size = 1 + 16 + 2; break;
    case 0x03:
      if (in.size() < 2) return need_more<Address>();
      if (in[1] == 0) return fail(Errc::bad_domain_length);
      size = 2 + std::size_t{in[1]} + 2;
      break;
    default: return fail(Errc::bad_address_type);
  }
  if (in.size() < size) return need_more<Address>();
  const std::uint16_t port = get_u16(in, size - 2);
  if (in[0] == 0x01) return done(Address::ipv4({in[1], in[2], in[3], in[4]}, port), size);
  if (in[0] == 0x04) {
    std::array<std::uint8_t, 16> o{};
    std::memcpy(o.data(), in.data() + 1, 16);
    return done(Address::ipv6(o, port), size);
  }
  std::string name(reinterpret_cast<const char*>(in.data() + 2), in[1]);
  return done(Address::domain(std::move(name), port), size);
}

// RFC 1928 §4, request:
//   +----+-----+-------+------+----------+----------+
//   |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//   +----+-----+-------+------+----------+----------+
//   | 1  |  1  | X'00' |  1   | Variable |    2     |
//   +----+-----+-------+------+----------+----------+
Result<void> encode_request(Command cmd, const Address& dst, Bytes& out) {
  const std::size_t mark = out.size();
  out.push_back(kVersion);
  out.push_back(static_cast<std::uint8_t>(cmd));
  out.push_back(0x00);
  auto r = encode_address(dst, out);
  if (!r) out.resize(mark);
  return r;
}

Parse<Request> decode_request(ByteView in) {
  if (!in.empty() && in[0] != kVersion) return fail(Errc::bad_version);
  if (in.size() >= 2 && (in[1] < 0x01 || in[1] > 0x03)) return fail(Errc::command_not_supported);
  if (in.size() >= 3 && in[2] != 0) return fail(Errc::bad_reserved);
  if (in.size() < 4) return need_more<Request>();
  auto addr = decode_address(in.subspan(3));
  if (!addr) return fail(addr.error());
  if (!*addr) return need_more<Request>();
  return done(Request{static_cast<Command>(in[1]), std::move((*addr)->value)}, 3 + (*addr)->size);
}

// RFC 1928 §6, reply:
//   +----+-----+-------+------+----------+----------+
//   |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
//   +----+-----+-------+------+----------+----------+
//   | 1  |  1  | X'00' |  1   | Variable |    2     |
//   +----+-----+-------+------+----------+----------+
Result<void> encode_reply(std::uint8_t rep, const Address& bound, Bytes& out) {
  out.push_back(kVersion);
  out.push_back(rep);
  out.push_back(0x00);
  return encode_address(bound, out);
}

Parse<Reply> decode_reply(ByteView in) {
  // Check each fixed octet as soon as it arrives: a wrong version is reported at once
  // instead of waiting for octets that a confused server will never send.
  if (!in.empty() && in[0] != kVersion) return fail(Errc::bad_version);
  if (in.size() >= 3 && in[2] != 0x00) return fail(Errc::bad_reserved);
  if (in.size() < 4) return need_more<Reply>();
  auto addr = decode_address(in.subspan(3));  // sized from the reply's own ATYP
  if (!addr) return fail(addr.error());
  if (!*addr) return need_more<Reply>();
  return done(Reply{in[1], std::move((*addr)->value)}, 3 + (*addr)->size);
}

// RFC 1928 §7, UDP request header:
//   +----+------+------+----------+----------+----------+
//   |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//   +----+------+------+----------+----------+----------+
//   | 2  |  1   |  1   | Variable |    2     | Variable |
//   +----+------+------+----------+----------+----------+
Result<void> encode_udp_header(std::uint8_t frag, const Address& dst, Bytes& out) {
  const std::size_t mark = out.size();
  out.push_back(0x00);
  out.push_back(0x00);
  out.push_back(frag);
  auto r = encode_address(dst, out);
  if (!r) out.resize(mark);
  return r;
}

Result<Decoded<UdpHeader>> decode_udp_header(ByteView datagram) {
  if (datagram.size() < 4) return fail(Errc::connection_closed);
  if (datagram[0] != 0 || datagram[1] != 0) return fail(Errc::bad_reserved);
  auto addr = decode_address(datagram.subspan(3));
  if (!addr) return fail(addr.error());
  if (!*addr) return fail(Errc::connection_closed);  // truncated datagram
  return Decoded<UdpHeader>{UdpHeader{datagram[2], std::move((*addr)->value)}, 3 + (*addr)->size};
}

// RFC 1929 §2, request:
//   +----+------+----------+------+----------+
//   |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
//   +----+------+----------+------+----------+
//   | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
//   +----+------+----------+------+----------+
// An empty password is accepted (PLEN 0): servers such as Dante take it, and refusing it here
// would make such accounts unusable.
Result<void> encode_userpass(std::string_view user, std::string_view password, Bytes& out) {
  if (user.empty()) return fail(Errc::invalid_argument);
  if (user.size() > 255 || password.size() > 255) return fail(Errc::message_too_long);
  out.push_back(kUserPassVersion);
  out.push_back(static_cast<std::uint8_t>(user.size()));
  out.insert(out.end(), user.begin(), user.end());
  out.push_back(static_cast<std::uint8_t>(password.size()));
  out.insert(out.end(), password.begin(), password.end());
  return {};
}

Parse<UserPass> decode_userpass(ByteView in) {
  if (!in.empty() && in[0] != kUserPassVersion) return fail(Errc::bad_version);
  if (in.size() < 2) return need_more<UserPass>();
  const std::size_t ulen = in[1];
  if (ulen == 0) return fail(Errc::invalid_argument);
  if (in.size() < 2 + ulen + 1) return need_more<UserPass>();
  const std::size_t plen = in[2 + ulen];
  const std::size_t size = 3 + ulen + plen;
  if (in.size() < size) return need_more<UserPass>();
  const char* base = reinterpret_cast<const char*>(in.data());
  return done(UserPass{std::string(base + 2, ulen), std::string(base + 3 + ulen, plen)}, size);
}

// RFC 1929 §2, response:
//   +----+--------+
//   |VER | STATUS |
//   +----+--------+
//   | 1  |   1    |
//   +----+--------+
Parse<std::uint8_t> decode_userpass_status(ByteView in) {
  if (!in.empty() && in[0] != kUserPassVersion) return fail(Errc::bad_version);
  if (in.size() < 2) return need_more<std::uint8_t>();
  return done(std::uint8_t{in[1]}, 2);
}

// RFC 1961 §3.4, §4.3, §5 (token, protection level, encapsulation):
//   +------+------+------+.......................+
//   + ver  | mtyp | len  |       token           |
//   +------+------+------+.......................+
//   + 0x01 | 0x01 | 0x02 | up to 2^16 - 1 octets |
//   +------+------+------+.......................+
// RFC 1961 §3.8, abort:
//   +------+------+
//   + ver  | mtyp |
//   +------+------+
//   + 0x01 | 0xff |
//   +------+------+
Result<void> encode_gss_frame(GssMessageType type, ByteView token, Bytes& out) {
  if (type == GssMessageType::abort) {
    out.push_back(kGssVersion);
    out.push_back(0xFF);
    return {};
  }
  if (token.size() > 0xFFFF) return fail(Errc::message_too_long);
  out.push_back(kGssVersion);
  out.push_back(static_cast<std::uint8_t>(type));
  put_u16(static_cast<std::uint16_t>(token.size()), out);
  out.insert(out.end(), token.begin(), token.end());
  return {};
}

Parse<GssFrame> decode_gss_frame(ByteView in) {
  if (!in.empty() && in[0] != kGssVersion) return fail(Errc::bad_version);
  if (in.size() < 2) return need_more<GssFrame>();
  switch (in[1]) {
    case 0xFF: return done(GssFrame{GssMessageType::abort, {}}, 2);
    case 0x01:
    case 0x02:
    case 0x03: break;
    default: return fail(Errc::bad_message_type);
  }
  if (in.size() < 4) return need_more<GssFrame>();
  const std::size_t len = get_u16(in, 2);
  if (in.size() < 4 + len) return need_more<GssFrame>();
  return done(GssFrame{static_cast<GssMessageType>(in[1]), in.subspan(4, len)}, 4 + len);
}

std::string method_name(Method m) {
  switch (m) {
    case Method::none: return "none";
    case Method::gssapi: return "gssapi";
    case Method::username_password: return "username/password";
    case Method::no_acceptable: return "no acceptable method";
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(m));
  return buf;
}

}  // namespace socks5::wire
