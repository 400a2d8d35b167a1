// The one table from SOCKS replies and protocol failures to errno.
#include <catch2/catch.hpp>
#include <cerrno>

#include "socks5/error.hpp"

using socks5::Errc;

TEST_CASE("errno table", "[error]") {
  struct Row {
    Errc code;
    int err;
  };
  const Row rows[] = {
      {Errc::general_failure, ECONNREFUSED},  // documented choice, see error.cpp
      {Errc::not_allowed, EACCES},
      {Errc::network_unreachable, ENETUNREACH},
      {Errc::host_unreachable, EHOSTUNREACH},
      {Errc::connection_refused, ECONNREFUSED},
      {Errc::ttl_expired, ETIMEDOUT},
      {Errc::command_not_supported, EOPNOTSUPP},
      {Errc::address_type_not_supported, EAFNOSUPPORT},
      {Errc::unassigned_reply, ECONNREFUSED},
      {Errc::no_acceptable_method, EACCES},
      {Errc::auth_rejected, EACCES},
      // GSSAPI: refusals and missing credentials are EACCES, like a rejected password; a
      // token that fails verification is a protocol error.
      {Errc::gssapi_unavailable, EACCES},
      {Errc::gssapi_no_credentials, EACCES},
      {Errc::gssapi_unknown_service, EACCES},
      {Errc::gssapi_clock_skew, EACCES},
      {Errc::gssapi_failed, EACCES},
      {Errc::gssapi_rejected, EACCES},
      {Errc::gssapi_level_refused, EACCES},
      {Errc::gssapi_bad_token, EPROTO},
      {Errc::bad_version, EPROTO},
      {Errc::unexpected_method, EPROTO},
      {Errc::bad_reserved, EPROTO},
      {Errc::bad_address_type, EPROTO},
      {Errc::bad_domain_length, EPROTO},
      {Errc::bad_message_type, EPROTO},
      {Errc::pipelining_stalled, ETIMEDOUT},
      {Errc::not_socks5, ECONNREFUSED},
      {Errc::greeting_unanswered, ETIMEDOUT},
      {Errc::not_socks4, ECONNREFUSED},
      {Errc::socks4_rejected, ECONNREFUSED},
      {Errc::socks4_identd, EACCES},
      {Errc::socks4_unassigned_reply, ECONNREFUSED},
      {Errc::not_http, ECONNREFUSED},
      {Errc::http_bad_reply, EPROTO},
      {Errc::http_header_too_long, EPROTO},
      {Errc::http_auth_required, EACCES},
      {Errc::http_refused, ECONNREFUSED},
      {Errc::http_gateway_timeout, ETIMEDOUT},
      {Errc::command_not_offered, EOPNOTSUPP},
      {Errc::target_not_expressible, EHOSTUNREACH},
      {Errc::tls_unavailable, ECONNREFUSED},
      {Errc::tls_handshake_failed, ECONNREFUSED},
      {Errc::tls_certificate_rejected, EACCES},
      {Errc::connection_closed, ECONNRESET},
      {Errc::timed_out, ETIMEDOUT},
      {Errc::invalid_argument, EINVAL},
      {Errc::message_too_long, EMSGSIZE},
      {Errc::name_resolution_failed, EHOSTUNREACH},
      {Errc::invalid_uri, EINVAL},
      {Errc::no_proxy_address, EAFNOSUPPORT},
  };
  // Every code has a row (the last one is the highest).
  CHECK(static_cast<int>(Errc::no_proxy_address) == static_cast<int>(std::size(rows)));
  for (const auto& row : rows) {
    std::error_code ec = row.code;
    INFO(ec.message());
    CHECK(socks5::to_errno(ec) == row.err);
    CHECK(ec.message() != "unknown socks5 error");
    CHECK(std::string(ec.category().name()) == "socks5");
  }
  // OS errors pass through unchanged; success is 0.
  CHECK(socks5::to_errno(std::error_code(ECONNREFUSED, std::generic_category())) == ECONNREFUSED);
  CHECK(socks5::to_errno(std::error_code(ENETUNREACH, std::system_category())) == ENETUNREACH);
  CHECK(socks5::to_errno({}) == 0);
}

TEST_CASE("REP codes map through reply_error to errno", "[error]") {
  CHECK(socks5::to_errno(socks5::reply_error(0x01)) == ECONNREFUSED);
  CHECK(socks5::to_errno(socks5::reply_error(0x02)) == EACCES);
  CHECK(socks5::to_errno(socks5::reply_error(0x03)) == ENETUNREACH);
  CHECK(socks5::to_errno(socks5::reply_error(0x04)) == EHOSTUNREACH);
  CHECK(socks5::to_errno(socks5::reply_error(0x05)) == ECONNREFUSED);
  CHECK(socks5::to_errno(socks5::reply_error(0x06)) == ETIMEDOUT);
  CHECK(socks5::to_errno(socks5::reply_error(0x07)) == EOPNOTSUPP);
  CHECK(socks5::to_errno(socks5::reply_error(0x08)) == EAFNOSUPPORT);
  CHECK(socks5::to_errno(socks5::reply_error(0x09)) == ECONNREFUSED);
  CHECK(socks5::to_errno(socks5::reply_error(0xFF)) == ECONNREFUSED);
  CHECK_FALSE(socks5::reply_error(0x00));
}
