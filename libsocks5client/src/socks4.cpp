#include "socks5/socks4.hpp"

namespace socks5::socks4 {

Result<void> encode_connect(const Address& target, std::string_view userid, bool names,
                            Bytes& out) {
  if (target.type() == AddressType::ipv6) return fail(Errc::target_not_expressible);
  if (target.type() == AddressType::domain) {
    if (!names) return fail(Errc::target_not_expressible);
    const std::string& h = target.host();
    if (h.empty() || h.size() > 255 || h.find('\0') != std::string::npos) {
      return fail(Errc::target_not_expressible);
    }
  }
  if (userid.size() > 255 || userid.find('\0') != std::string_view::npos) {
    return fail(Errc::invalid_argument);
  }
  out.push_back(kVersion);
  out.push_back(kConnect);
  out.push_back(static_cast<std::uint8_t>(target.port() >> 8));
  out.push_back(static_cast<std::uint8_t>(target.port() & 0xFF));
  if (target.type() == AddressType::ipv4) {
    out.insert(out.end(), target.octets().begin(), target.octets().begin() + 4);
  } else {
    // SOCKS4a: 0.0.0.x with x != 0 says "the name follows".
    const std::uint8_t marker[4] = {0, 0, 0, 1};
    out.insert(out.end(), marker, marker + 4);
  }
  out.insert(out.end(), userid.begin(), userid.end());
  out.push_back(0);
  if (target.type() == AddressType::domain) {
    out.insert(out.end(), target.host().begin(), target.host().end());
    out.push_back(0);
  }
  return {};
}

wire::Parse<Reply> decode_reply(ByteView in) {
  if (in.empty()) return std::nullopt;
  if (in[0] != 0) return fail(Errc::not_socks4);
  if (in.size() < kReplySize) return std::nullopt;
  Reply r;
  r.cd = in[1];
  const auto port = static_cast<std::uint16_t>((in[2] << 8) | in[3]);
  r.bound = Address::ipv4({in[4], in[5], in[6], in[7]}, port);
  return wire::Decoded<Reply>{std::move(r), kReplySize};
}

std::error_code reply_error(std::uint8_t cd) noexcept {
  switch (cd) {
    case kGranted: return {};
    case 91: return Errc::socks4_rejected;
    case 92:
    case 93: return Errc::socks4_identd;
    default: return Errc::socks4_unassigned_reply;
  }
}

Handshake::Handshake(const ProxyUri& proxy, Address target)
    : user_(proxy.user.value_or("")),
      names_(proxy.scheme == Scheme::socks4a),
      target_(std::move(target)) {}

Result<void> Handshake::start() {
  return encode_connect(target_, user_, names_, out_);
}

Result<std::size_t> Handshake::receive(ByteView in) {
  if (done_) return std::size_t{0};
  auto r = decode_reply(in);
  if (!r) return fail(r.error());
  if (!*r) return std::size_t{0};
  if (auto ec = reply_error((*r)->value.cd)) return fail(ec);
  bound_ = (*r)->value.bound;
  done_ = true;
  return (*r)->size;
}

}  // namespace socks5::socks4
