#pragma once
// Proxy URIs: socks5://[user[:password]@]host[:port] (names resolved locally) and socks5h://
// (the proxy resolves names). Bracketed IPv6 literals, percent-decoding, default port 1080.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "socks5/result.hpp"

namespace socks5 {

/// A parsed proxy URI.
struct ProxyUri {
  bool remote_dns = false;  ///< socks5h: destination names go to the proxy unresolved
  std::string host;         ///< name or literal, without brackets
  std::uint16_t port = 1080;
  std::optional<std::string> user;
  std::optional<std::string> password;

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
