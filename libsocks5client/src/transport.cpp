#include "socks5/transport.hpp"

namespace socks5 {

bool needs_transport(const ProxyUri& proxy) noexcept {
  return proxy.scheme == Scheme::https;
}

Bytes encode_transport_status(TransportStatus status, std::string_view text) {
  if (text.size() > 255) text = text.substr(0, 255);
  Bytes out;
  out.reserve(2 + text.size());
  out.push_back(static_cast<std::uint8_t>(status));
  out.push_back(static_cast<std::uint8_t>(text.size()));
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

std::error_code transport_error(std::uint8_t status) noexcept {
  switch (static_cast<TransportStatus>(status)) {
    case TransportStatus::up: return {};
    case TransportStatus::unavailable: return make_error_code(Errc::tls_unavailable);
    case TransportStatus::certificate: return make_error_code(Errc::tls_certificate_rejected);
    case TransportStatus::timed_out: return make_error_code(Errc::timed_out);
    case TransportStatus::handshake: break;
  }
  return make_error_code(Errc::tls_handshake_failed);
}

}  // namespace socks5
