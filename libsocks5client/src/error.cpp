#include "socks5/error.hpp"

#include <cerrno>

namespace socks5 {
namespace {

struct Entry {
  Errc code;
  int err;
  const char* text;
};

// THE table: every Errc, its errno at a C boundary and its message. Tested row by row in
// tests/unit/error_test.cpp. "general failure" (and unassigned REP codes) become ECONNREFUSED:
// the attempt failed at the far end for a reason the server did not say, and programs handle
// ECONNREFUSED by trying the next address, which is the useful reaction.
constexpr Entry kTable[] = {
    {Errc::general_failure, ECONNREFUSED, "general SOCKS server failure"},
    {Errc::not_allowed, EACCES, "connection not allowed by ruleset"},
    {Errc::network_unreachable, ENETUNREACH, "network unreachable"},
    {Errc::host_unreachable, EHOSTUNREACH, "host unreachable"},
    {Errc::connection_refused, ECONNREFUSED, "connection refused"},
    {Errc::ttl_expired, ETIMEDOUT, "TTL expired"},
    {Errc::command_not_supported, EOPNOTSUPP, "command not supported"},
    {Errc::address_type_not_supported, EAFNOSUPPORT, "address type not supported"},
    {Errc::unassigned_reply, ECONNREFUSED, "unassigned SOCKS reply code"},
    {Errc::no_acceptable_method, EACCES, "proxy accepts none of the offered methods"},
    {Errc::auth_rejected, EACCES, "authentication rejected by the proxy"},
    {Errc::gssapi_unavailable, EACCES,
     "the GSS-API library (libgssapi_krb5.so.2) is not installed"},
    {Errc::gssapi_no_credentials, EACCES, "no Kerberos credentials (run kinit)"},
    {Errc::gssapi_unknown_service, EACCES, "the KDC does not know the proxy's service principal"},
    {Errc::gssapi_clock_skew, EACCES, "clock skew too great for Kerberos"},
    {Errc::gssapi_failed, EACCES, "GSS-API failure"},
    {Errc::gssapi_rejected, EACCES, "proxy rejected the GSS-API authentication"},
    {Errc::gssapi_level_refused, EACCES, "proxy refused the GSS-API protection level"},
    {Errc::gssapi_bad_token, EPROTO, "GSS-API protected message failed verification"},
    {Errc::bad_version, EPROTO, "protocol violation: wrong version"},
    {Errc::unexpected_method, EPROTO, "protocol violation: method not offered"},
    {Errc::bad_reserved, EPROTO, "protocol violation: reserved field not zero"},
    {Errc::bad_address_type, EPROTO, "protocol violation: unknown address type"},
    {Errc::bad_domain_length, EPROTO, "protocol violation: empty domain name"},
    {Errc::bad_message_type, EPROTO, "protocol violation: unexpected message type"},
    {Errc::pipelining_stalled, ETIMEDOUT, "proxy stalled on pipelined handshake"},
    // A server of another protocol (an HTTP server, an SSH daemon) or none at all behind the
    // port: the proxy is unusable, as if it had refused the connection.
    {Errc::not_socks5, ECONNREFUSED, "not a SOCKS5 server"},
    {Errc::greeting_unanswered, ETIMEDOUT, "no answer to the greeting"},
    {Errc::not_socks4, ECONNREFUSED, "not a SOCKS4 server"},
    {Errc::socks4_rejected, ECONNREFUSED, "request rejected or failed (SOCKS4 reply 91)"},
    {Errc::socks4_identd, EACCES, "the proxy could not confirm the user id with identd"},
    {Errc::socks4_unassigned_reply, ECONNREFUSED, "unassigned SOCKS4 reply code"},
    {Errc::not_http, ECONNREFUSED, "not an HTTP proxy"},
    {Errc::http_bad_reply, EPROTO, "protocol violation: malformed HTTP reply"},
    {Errc::http_header_too_long, EPROTO, "HTTP reply header too long"},
    {Errc::http_auth_required, EACCES, "proxy authentication required (HTTP 407)"},
    {Errc::http_refused, ECONNREFUSED, "the HTTP proxy refused the CONNECT"},
    {Errc::http_gateway_timeout, ETIMEDOUT, "the HTTP proxy timed out reaching the destination"},
    {Errc::command_not_offered, EOPNOTSUPP, "the proxy's protocol has no such command"},
    {Errc::target_not_expressible, EHOSTUNREACH,
     "the proxy's protocol cannot carry this destination"},
    {Errc::tls_unavailable, ECONNREFUSED, "no TLS toward the https proxy (libssl.so.3)"},
    {Errc::tls_handshake_failed, ECONNREFUSED, "the TLS handshake with the proxy failed"},
    {Errc::tls_certificate_rejected, EACCES, "the proxy's TLS certificate was not accepted"},
    {Errc::connection_closed, ECONNRESET, "proxy closed the connection mid-message"},
    {Errc::timed_out, ETIMEDOUT, "timed out"},
    {Errc::invalid_argument, EINVAL, "invalid argument"},
    {Errc::message_too_long, EMSGSIZE, "field too long for the protocol"},
    {Errc::name_resolution_failed, EHOSTUNREACH, "proxy host name did not resolve"},
    {Errc::invalid_uri, EINVAL, "invalid proxy URI"},
    {Errc::no_proxy_address, EAFNOSUPPORT, "the proxy has no address of the socket's family"},
};

const Entry* find(int value) noexcept {
  for (const auto& e : kTable) {
    if (static_cast<int>(e.code) == value) return &e;
  }
  return nullptr;
}

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "socks5"; }
  std::string message(int value) const override {
    const Entry* e = find(value);
    return e ? e->text : "unknown socks5 error";
  }
};

}  // namespace

const std::error_category& socks5_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), socks5_category()};
}

int to_errno(const std::error_code& ec) noexcept {
  if (!ec) return 0;
  if (ec.category() == socks5_category()) {
    const Entry* e = find(ec.value());
    return e ? e->err : EIO;
  }
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    return ec.value();
  }
  return EIO;
}

std::error_code reply_error(std::uint8_t rep) noexcept {
  switch (rep) {
    case 0x00: return {};
    case 0x01: return Errc::general_failure;
    case 0x02: return Errc::not_allowed;
    case 0x03: return Errc::network_unreachable;
    case 0x04: return Errc::host_unreachable;
    case 0x05: return Errc::connection_refused;
    case 0x06: return Errc::ttl_expired;
    case 0x07: return Errc::command_not_supported;
    case 0x08: return Errc::address_type_not_supported;
    default: return Errc::unassigned_reply;
  }
}

bool is_destination_failure(const std::error_code& ec) noexcept {
  if (ec.category() != socks5_category()) return false;
  switch (static_cast<Errc>(ec.value())) {
    case Errc::general_failure:
    case Errc::not_allowed:
    case Errc::network_unreachable:
    case Errc::host_unreachable:
    case Errc::connection_refused:
    case Errc::ttl_expired:
    case Errc::command_not_supported:
    case Errc::address_type_not_supported:
    case Errc::unassigned_reply:
    case Errc::socks4_rejected:
    case Errc::socks4_unassigned_reply:
    case Errc::http_refused:
    case Errc::http_gateway_timeout: return true;
    default: return false;
  }
}

}  // namespace socks5
