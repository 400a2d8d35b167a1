#pragma once
// SOCKS4 and SOCKS4a, the client side: one CONNECT request, one 8-octet reply. Pure codec plus
// the hop's state machine; no I/O.
//
//   request  +----+----+----+----+----+----+----+----+----+----+....+----+
//            | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
//            +----+----+----+----+----+----+----+----+----+----+....+----+
//               1    1      2              4           variable       1
//   SOCKS4a: DSTIP 0.0.0.x (x != 0), and after USERID's NULL: HOSTNAME, NULL.
//
//   reply    +----+----+----+----+----+----+----+----+
//            | VN | CD | DSTPORT |      DSTIP        |   VN 0; CD 90 granted, 91 rejected,
//            +----+----+----+----+----+----+----+----+   92/93 identd failures
#include <cstdint>
#include <string>
#include <string_view>

#include "socks5/hop.hpp"

namespace socks5::socks4 {

inline constexpr std::uint8_t kVersion = 0x04;
inline constexpr std::uint8_t kConnect = 0x01;
inline constexpr std::uint8_t kGranted = 90;
inline constexpr std::size_t kReplySize = 8;

/// A CONNECT request for `target`: an IPv4 address, or with `names` (SOCKS4a) a domain name.
/// Fails with target_not_expressible for IPv6 or (without `names`) a name.
Result<void> encode_connect(const Address& target, std::string_view userid, bool names, Bytes& out);

/// A decoded reply.
struct Reply {
  std::uint8_t cd = 0;
  Address bound;
};

/// The 8-octet reply; nullopt while shorter. VN must be 0 (not_socks4 otherwise).
wire::Parse<Reply> decode_reply(ByteView in);

/// The error a reply's CD means ({} for 90).
std::error_code reply_error(std::uint8_t cd) noexcept;

/// The hop: request out, reply in.
class Handshake final : public Hop {
 public:
  Handshake(const ProxyUri& proxy, Address target);
  Result<void> start() override;
  const Bytes& output() const noexcept override { return out_; }
  void clear_output() noexcept override { out_.clear(); }
  Result<std::size_t> receive(ByteView in) override;
  bool done() const noexcept override { return done_; }
  std::size_t exact_need() const noexcept override { return done_ ? 0 : kReplySize; }
  wire::Method method() const noexcept override { return wire::Method::none; }
  const char* method_text() const noexcept override { return user_.empty() ? "none" : "user id"; }
  Address bound() const override { return bound_; }

 private:
  std::string user_;
  bool names_;
  Address target_;
  Bytes out_;
  Address bound_;
  bool done_ = false;
};

}  // namespace socks5::socks4
