#pragma once
// Proxy URIs, in the forms curl's -x takes:
//   socks5://[user[:password]@]host[:port]    SOCKS5, names resolved locally
//   socks5h://...                             SOCKS5, the proxy resolves names
//   socks5h://localhost/path/to/socket        SOCKS5 on a Unix-domain socket (Tor's SocksPort
//   unix:) socks4://[userid@]host[:port]             SOCKS4: IPv4 addresses only
//   socks4a://[userid@]host[:port]            SOCKS4a: names go to the proxy
//   http://[user[:password]@]host[:port]      HTTP CONNECT (default port 1080, as curl)
//   https://[user[:password]@]host[:port]     HTTP CONNECT over TLS (default port 443)
// Bracketed IPv6 literals, percent-decoding.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "socks5/result.hpp"

namespace socks5 {

/// The protocol spoken to a proxy (the URI's scheme).
enum class Scheme : std::uint8_t { socks5, socks5h, socks4, socks4a, http, https };

/// "socks5", "socks5h", "socks4", "socks4a", "http", "https".
std::string_view scheme_name(Scheme s) noexcept;
/// The protocol's name for lines: "SOCKS5", "SOCKS4", "SOCKS4a", "HTTP CONNECT", "HTTPS CONNECT".
std::string_view protocol_name(Scheme s) noexcept;
/// The port a URI without one gets (curl's: 1080, and 443 for https).
std::uint16_t default_port(Scheme s) noexcept;

/// A parsed proxy URI.
struct ProxyUri {
  Scheme scheme = Scheme::socks5;
  std::string host;  ///< name or literal, without brackets
  std::uint16_t port = 1080;
  std::optional<std::string> user;      ///< SOCKS5/HTTP user, SOCKS4 user id
  std::optional<std::string> password;  ///< not for SOCKS4
  /// A Unix-domain socket's absolute path (socks5 and socks5h only); empty: TCP to host:port.
  std::string unix_path;

  /// The proxy resolves destination names (socks5h, socks4a, http, https).
  bool remote_dns() const noexcept;
  /// The proxy can be asked for a domain name (same as remote_dns(): SOCKS5 can, but a
  /// socks5:// URI asks for addresses).
  bool takes_names() const noexcept { return remote_dns(); }
  /// SOCKS5: the only protocol here with BIND and UDP ASSOCIATE.
  bool is_socks5() const noexcept { return scheme == Scheme::socks5 || scheme == Scheme::socks5h; }
  bool is_http() const noexcept { return scheme == Scheme::http || scheme == Scheme::https; }
  bool is_socks4() const noexcept { return scheme == Scheme::socks4 || scheme == Scheme::socks4a; }

  /// The URI again; the password is shown as "***" unless `reveal` is set.
  std::string to_string(bool reveal = false) const;
};

/// Why a URI was rejected: a precise message and the 0-based offset where the problem starts.
struct UriError {
  std::size_t position = 0;
  std::string message;
};

/// Parses a proxy URI; every malformed input gets a precise UriError.
Result<ProxyUri, UriError> parse_proxy_uri(std::string_view text);

}  // namespace socks5
