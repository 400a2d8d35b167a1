#pragma once
// One error vocabulary for the SOCKS5 core: fine-grained codes, a std::error_category,
// and THE table from codes to errno used at every C boundary.
#include <cstdint>
#include <string>
#include <system_error>

namespace socks5 {

/// Every failure the core can report. OS errors travel as std::generic_category codes.
enum class Errc : int {
  // Replies from the server (RFC 1928 §6, REP field).
  general_failure = 1,         ///< REP 0x01
  not_allowed,                 ///< REP 0x02 connection not allowed by ruleset
  network_unreachable,         ///< REP 0x03
  host_unreachable,            ///< REP 0x04
  connection_refused,          ///< REP 0x05
  ttl_expired,                 ///< REP 0x06
  command_not_supported,       ///< REP 0x07
  address_type_not_supported,  ///< REP 0x08
  unassigned_reply,            ///< REP 0x09..0xFF
  // Authentication.
  no_acceptable_method,  ///< METHOD 0xFF
  auth_rejected,         ///< RFC 1929 STATUS != 0, or a GSSAPI abort
  // GSSAPI (RFC 1961).
  gssapi_unavailable,      ///< the GSS-API library could not be loaded
  gssapi_no_credentials,   ///< no (valid) Kerberos ticket: run kinit
  gssapi_unknown_service,  ///< the KDC does not know the proxy's service principal
  gssapi_clock_skew,       ///< clocks too far apart for Kerberos
  gssapi_failed,           ///< another GSS-API failure (see gssapi_last_status())
  gssapi_rejected,         ///< the proxy closed or aborted during context establishment
  gssapi_level_refused,    ///< the proxy refused the protection level asked for
  gssapi_bad_token,        ///< a protected message failed verification (or was not sealed)
  // Protocol violations by the server.
  bad_version,          ///< VER is not what the RFC requires
  unexpected_method,    ///< server chose a method the client did not offer
  bad_reserved,         ///< RSV is not zero
  bad_address_type,     ///< ATYP not 1, 3 or 4
  bad_domain_length,    ///< domain name of length 0
  bad_message_type,     ///< RFC 1961 MTYP not expected here
  pipelining_stalled,   ///< server swallowed pipelined bytes (see Client)
  not_socks5,           ///< the server's first octet is not VER 5: another protocol
  greeting_unanswered,  ///< no answer to the greeting before the deadline
  // SOCKS4 / SOCKS4a.
  not_socks4,               ///< the reply's first octet is not VN 0: another protocol
  socks4_rejected,          ///< CD 91: request rejected or failed
  socks4_identd,            ///< CD 92/93: the proxy could not confirm the user id with identd
  socks4_unassigned_reply,  ///< CD other than 90..93
  // HTTP CONNECT.
  not_http,              ///< the reply does not start with an HTTP/1.x status line
  http_bad_reply,        ///< a malformed status line or header field
  http_header_too_long,  ///< the reply's header exceeds the bound
  http_auth_required,    ///< 407 (or 401): the proxy wants (other) credentials
  http_refused,          ///< another non-2xx status: the proxy did not connect onwards
  http_gateway_timeout,  ///< 504: the proxy timed out reaching the destination
  // What a proxy's protocol cannot do.
  command_not_offered,     ///< BIND or UDP ASSOCIATE asked of a proxy without them
  target_not_expressible,  ///< a name or IPv6 address to a SOCKS4 proxy, or a name HTTP cannot
                           ///< carry
  // TLS toward an https:// proxy (transport.hpp).
  tls_unavailable,           ///< no TLS transport (no libssl.so.3, or none given to the dial)
  tls_handshake_failed,      ///< the TLS handshake with the proxy failed
  tls_certificate_rejected,  ///< the proxy's certificate did not verify
  // Transport.
  connection_closed,  ///< EOF in the middle of a message
  timed_out,          ///< the deadline passed
  // Local misuse.
  invalid_argument,        ///< e.g. a domain name longer than 255 octets
  message_too_long,        ///< a field larger than the protocol allows
  name_resolution_failed,  ///< the proxy host name did not resolve locally
  invalid_uri,             ///< see UriError for the precise message
  no_proxy_address,        ///< the proxy has no address of the socket's family
};

/// The category of Errc; name() is "socks5".
const std::error_category& socks5_category() noexcept;

/// Makes Errc usable as std::error_code.
std::error_code make_error_code(Errc e) noexcept;

/// The errno a socket call should fail with for this error (the ONE table; see error.cpp).
/// Generic/system categories pass their value through; unknown categories give EIO.
int to_errno(const std::error_code& ec) noexcept;

/// True when the proxy answered the request with a refusal: the destination failed (or the
/// proxy's rules refused it), not the proxy. No other proxy is tried, none is cooled.
bool is_destination_failure(const std::error_code& ec) noexcept;

/// Maps a REP octet (RFC 1928 §6) to an error; 0x00 (success) is not an error and maps to {}.
std::error_code reply_error(std::uint8_t rep) noexcept;

}  // namespace socks5

template <>
struct std::is_error_code_enum<socks5::Errc> : std::true_type {};
