#include "socks5/uri.hpp"

#include <arpa/inet.h>

#include <array>
#include <cctype>

namespace socks5 {
namespace {

Unexpected<UriError> bad(std::size_t pos, std::string msg) {
  return {UriError{pos, std::move(msg)}};
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s` (which starts at `base` in the whole URI, for error positions).
Result<std::string, UriError> decode(std::string_view s, std::size_t base, const char* what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return bad(base + i, std::string("truncated percent-encoding in ") + what);
    }
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return bad(base + i, std::string("invalid percent-encoding in ") + what +
                               " (expected %XX with two hex digits)");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string encode(std::string_view s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(digits[u >> 4]);
      out.push_back(digits[u & 15]);
    }
  }
  return out;
}

struct SchemeInfo {
  Scheme scheme;
  std::string_view name;
  std::string_view protocol;
  std::uint16_t port;
};

constexpr SchemeInfo kSchemes[] = {
    {Scheme::socks5, "socks5", "SOCKS5", 1080},   {Scheme::socks5h, "socks5h", "SOCKS5", 1080},
    {Scheme::socks4, "socks4", "SOCKS4", 1080},   {Scheme::socks4a, "socks4a", "SOCKS4a", 1080},
    {Scheme::http, "http", "HTTP CONNECT", 1080}, {Scheme::https, "https", "HTTPS CONNECT", 443},
};

const SchemeInfo& info(Scheme s) noexcept {
  for (const auto& i : kSchemes) {
    if (i.scheme == s) return i;
  }
  return kSchemes[0];
}

constexpr std::size_t kMaxUnixPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

}  // namespace

std::string_view scheme_name(Scheme s) noexcept {
  return info(s).name;
}

std::string_view protocol_name(Scheme s) noexcept {
  return info(s).protocol;
}

std::uint16_t default_port(Scheme s) noexcept {
  return info(s).port;
}

bool ProxyUri::remote_dns() const noexcept {
  return scheme != Scheme::socks5 && scheme != Scheme::socks4;
}

Result<ProxyUri, UriError> parse_proxy_uri(std::string_view text) {
  ProxyUri uri;
  if (text.empty()) return bad(0, "empty proxy URI");
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    // A known scheme with a colon but not both slashes ("socks5h:/host", "http:host").
    const auto colon = text.find(':');
    if (colon != std::string_view::npos) {
      const std::string named = lower(text.substr(0, colon));
      for (const auto& i : kSchemes) {
        if (named == i.name) {
          return bad(colon + 1, "expected '//' after '" + std::string(text.substr(0, colon + 1)) +
                                    "': write " + named + "://HOST[:PORT]");
        }
      }
    }
    return bad(0,
               "missing scheme: write SCHEME://HOST[:PORT] with socks5, socks5h, socks4, "
               "socks4a, http or https");
  }
  const std::string scheme = lower(text.substr(0, sep));
  bool known = false;
  for (const auto& i : kSchemes) {
    if (scheme == i.name) {
      uri.scheme = i.scheme;
      known = true;
    }
  }
  if (!known) {
    return bad(0, "unsupported scheme '" + std::string(text.substr(0, sep)) +
                      "' (expected socks5, socks5h, socks4, socks4a, http or https)");
  }
  uri.port = default_port(uri.scheme);
  std::size_t pos = sep + 3;
  std::string_view rest = text.substr(pos);
  // The authority ends at a path, query or fragment. Only an empty path "/" is allowed, or
  // a Unix socket's path after "localhost" (curl's form).
  std::string_view path;
  std::size_t path_pos = 0;
  const auto end = rest.find_first_of("/?#");
  if (end != std::string_view::npos) {
    const auto odd = rest.find_first_of("?#", end);
    if (odd != std::string_view::npos) {
      return bad(pos + odd, "unexpected query or fragment after the host");
    }
    if (rest.substr(end) != "/") {
      path = rest.substr(end);
      path_pos = pos + end;
    }
    rest = rest.substr(0, end);
  }
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view info_part = rest.substr(0, at);
    const auto colon = info_part.find(':');
    const std::string_view user = info_part.substr(0, colon);
    if (user.empty()) return bad(pos, "empty user name before '@'");
    auto u = decode(user, pos, "user name");
    if (!u) return unexpected(u.error());
    if (u->size() > 255) return bad(pos, "user name longer than 255 octets");
    if (uri.is_socks4() && u->find('\0') != std::string::npos) {
      return bad(pos, "a SOCKS4 user id cannot contain a NUL octet");
    }
    if (uri.is_http() && u->find(':') != std::string::npos) {
      return bad(pos, "an HTTP user name cannot contain ':' (RFC 7617)");
    }
    uri.user = std::move(*u);
    if (colon != std::string_view::npos) {
      if (uri.is_socks4()) {
        return bad(pos + colon, "SOCKS4 has a user id but no password: write socks4://USERID@HOST");
      }
      auto p = decode(info_part.substr(colon + 1), pos + colon + 1, "password");
      if (!p) return unexpected(p.error());
      if (p->size() > 255) return bad(pos + colon + 1, "password longer than 255 octets");
      uri.password = std::move(*p);
    }
    pos += at + 1;
    rest = rest.substr(at + 1);
  }
  if (rest.empty()) return bad(pos, "missing host");
  std::string_view port_text;
  bool has_port = false;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad(pos, "unterminated '[' in IPv6 literal");
    const std::string v6(rest.substr(1, close - 1));
    std::array<unsigned char, 16> buf{};
    if (v6.empty() || inet_pton(AF_INET6, v6.c_str(), buf.data()) != 1) {
      return bad(pos + 1, "invalid IPv6 address '" + v6 + "' in brackets");
    }
    uri.host = v6;
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(pos + close + 1, "expected ':' or end after ']'");
      has_port = true;
      port_text = after.substr(1);
      pos += close + 2;
    }
  } else {
    const auto colon = rest.find(':');
    std::string_view host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      if (rest.find(':', colon + 1) != std::string_view::npos) {
        return bad(pos, "IPv6 literal must be in brackets, e.g. socks5://[::1]:1080");
      }
      has_port = true;
      port_text = rest.substr(colon + 1);
    }
    if (host.empty()) return bad(pos, "missing host");
    for (std::size_t i = 0; i < host.size(); ++i) {
      if (!host_char(host[i])) {
        return bad(pos + i, std::string("invalid character '") + host[i] + "' in host");
      }
    }
    if (host.size() > 255) return bad(pos, "host name longer than 255 octets");
    uri.host = std::string(host);
    if (has_port) pos += colon + 1;
  }
  if (has_port) {
    if (port_text.empty()) return bad(pos, "empty port after ':'");
    unsigned long value = 0;
    for (std::size_t i = 0; i < port_text.size(); ++i) {
      const char c = port_text[i];
      if (c < '0' || c > '9') return bad(pos + i, "port must be a decimal number");
      value = value * 10 + static_cast<unsigned long>(c - '0');
      if (value > 65535) return bad(pos, "port out of range (1-65535)");
    }
    if (value == 0) return bad(pos, "port out of range (1-65535)");
    uri.port = static_cast<std::uint16_t>(value);
  }
  if (!path.empty()) {
    if (lower(uri.host) != "localhost") {
      return bad(path_pos,
                 "unexpected path after the host (a Unix socket is written "
                 "socks5h://localhost/PATH)");
    }
    if (!uri.is_socks5()) {
      return bad(path_pos, "a Unix socket path is only for socks5:// and socks5h:// proxies");
    }
    if (has_port) return bad(path_pos, "a Unix socket path takes no port");
    auto p = decode(path, path_pos, "socket path");
    if (!p) return unexpected(p.error());
    if (p->find('\0') != std::string::npos) {
      return bad(path_pos, "a NUL octet in the socket path");
    }
    if (p->size() > kMaxUnixPath) {
      return bad(path_pos, "socket path longer than 107 octets (sun_path)");
    }
    uri.unix_path = std::move(*p);
    uri.host = "localhost";
  }
  return uri;
}

std::string ProxyUri::to_string(bool reveal) const {
  std::string s(scheme_name(scheme));
  s += "://";
  if (user) {
    s += encode(*user);
    if (password) {
      s.push_back(':');
      s.append(reveal ? encode(*password) : std::string("***"));
    }
    s += "@";
  }
  if (!unix_path.empty()) {
    s += "localhost";
    for (char c : unix_path) {
      if (c == '/') {
        s.push_back('/');
      } else {
        s += encode(std::string_view(&c, 1));
      }
    }
    return s;
  }
  const bool v6 = host.find(':') != std::string::npos;
  if (v6) s.push_back('[');
  s.append(host);
  if (v6) s.push_back(']');
  s.push_back(':');
  s.append(std::to_string(port));
  return s;
}

}  // namespace socks5
