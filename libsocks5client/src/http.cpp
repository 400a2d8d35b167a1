#include "socks5/http.hpp"

#include <algorithm>
#include <cctype>

namespace socks5::http {
namespace {

bool token_char(char c) {
  // RFC 9110 §5.6.2 tchar.
  if (std::isalnum(static_cast<unsigned char>(c)) != 0) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

void wipe(std::string& s) {
  for (char& c : s) *static_cast<volatile char*>(&c) = 0;
  s.clear();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The auth-schemes of a Proxy-Authenticate value (RFC 9110 §11.6.1): a list of challenges,
// each "scheme [token68 | auth-param, ...]". A list element that is a lone token, or a token
// followed by a space, starts a challenge; "name=value" elements are parameters.
void add_schemes(std::string_view value, std::string& out) {
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    const bool end = i == value.size();
    if (!end && value[i] == '"' && (i == 0 || value[i - 1] != '\\')) quoted = !quoted;
    if (!end && (quoted || value[i] != ',')) continue;
    std::string_view element = trim(value.substr(start, i - start));
    start = i + 1;
    std::size_t n = 0;
    while (n < element.size() && token_char(element[n])) ++n;
    if (n == 0) continue;
    const std::string_view after = trim(element.substr(n));
    if (!after.empty() && after.front() == '=') continue;  // a parameter, not a scheme
    // Bounded for the failure line: at most 200 octets, a scheme at most 32.
    if (out.size() > 200) return;
    if (!out.empty()) out += ", ";
    out.append(element.substr(0, std::min<std::size_t>(n, 32)));
  }
}

}  // namespace

bool sendable_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > 255) return false;
  for (char c : host) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

std::string base64(ByteView data) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == data.size()) {
    const unsigned v = unsigned{data[i]} << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  std::string plain;
  plain.reserve(user.size() + 1 + password.size());
  plain.append(user);
  plain.push_back(':');
  plain.append(password);
  std::string out = "Basic " + base64(ByteView(reinterpret_cast<const std::uint8_t*>(plain.data()),
                                               plain.size()));
  // The plaintext password does not linger in freed memory.
  wipe(plain);
  return out;
}

Result<void> encode_connect(const Address& target, std::string_view authorization, Bytes& out) {
  if (target.type() == AddressType::domain && !sendable_name(target.host())) {
    return fail(Errc::target_not_expressible);
  }
  const std::string where = target.to_string();  // "1.2.3.4:80", "[::1]:80", "name:80"
  auto put = [&out](std::string_view s) { out.insert(out.end(), s.begin(), s.end()); };
  out.reserve(out.size() + 2 * where.size() + authorization.size() + 64);
  put("CONNECT ");
  put(where);
  put(" HTTP/1.1\r\nHost: ");
  put(where);
  put("\r\n");
  if (!authorization.empty()) {
    put("Proxy-Authorization: ");
    put(authorization);
    put("\r\n");
  }
  put("\r\n");
  return {};
}

Result<std::size_t> ReplyParser::receive(ByteView in) {
  std::size_t used = 0;
  while (state_ != State::done && used < in.size()) {
    const char c = static_cast<char>(in[used++]);
    ++total_;
    if (total_ > kMaxHeader) return fail(Errc::http_header_too_long);
    if (c == '\n') {
      auto r = line_done();
      if (!r) return fail(r.error());
      continue;
    }
    line_.push_back(c);
    if (line_.size() > kMaxLine) return fail(Errc::http_header_too_long);
    // Anything but "HTTP/" at the start is another protocol: say so at once, without
    // waiting for a line end that may never come.
    if (state_ == State::status && line_.size() <= 5 &&
        std::string_view("HTTP/", line_.size()) != std::string_view(line_)) {
      return fail(Errc::not_http);
    }
  }
  return used;
}

Result<void> ReplyParser::line_done() {
  // CRLF ends a line (a bare LF is accepted, RFC 9112 §2.2); a CR anywhere else, or a NUL,
  // is malformed.
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  for (char c : line_) {
    if (c == '\r' || c == '\0') return fail(Errc::http_bad_reply);
  }
  auto r = state_ == State::status ? status_line() : field_line();
  line_.clear();
  return r;
}

Result<void> ReplyParser::status_line() {
  // HTTP-version SP 3DIGIT SP [reason-phrase]   (RFC 9112 §4)
  const std::string_view l(line_);
  if (l.size() < 12 || (l.substr(0, 9) != "HTTP/1.1 " && l.substr(0, 9) != "HTTP/1.0 ")) {
    return fail(l.substr(0, 5) == "HTTP/" ? Errc::http_bad_reply : Errc::not_http);
  }
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (l[i] < '0' || l[i] > '9') return fail(Errc::http_bad_reply);
    status = status * 10 + (l[i] - '0');
  }
  if (status < 100 || status > 599) return fail(Errc::http_bad_reply);
  if (l.size() > 12 && l[12] != ' ') return fail(Errc::http_bad_reply);
  reply_.status = status;
  reply_.status_line.clear();
  for (char c : l.substr(9, 80)) {
    reply_.status_line.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  }
  reply_.auth_schemes.clear();
  fields_ = 0;
  state_ = State::fields;
  return {};
}

Result<void> ReplyParser::field_line() {
  if (line_.empty()) {
    // The end of the header. An interim reply (1xx) is followed by the real one.
    state_ = reply_.status < 200 ? State::status : State::done;
    return {};
  }
  if (++fields_ > kMaxFields) return fail(Errc::http_header_too_long);
  const std::string_view l(line_);
  // field-name ":" OWS field-value OWS; no whitespace before the colon, no obs-fold.
  std::size_t n = 0;
  while (n < l.size() && token_char(l[n])) ++n;
  if (n == 0 || n >= l.size() || l[n] != ':') return fail(Errc::http_bad_reply);
  // tinyproxy answers wrong credentials with 401 and WWW-Authenticate.
  if (iequals(l.substr(0, n), "Proxy-Authenticate") ||
      (reply_.status == 401 && iequals(l.substr(0, n), "WWW-Authenticate"))) {
    add_schemes(trim(l.substr(n + 1)), reply_.auth_schemes);
  }
  return {};
}

std::error_code reply_error(int status) noexcept {
  if (status >= 200 && status < 300) return {};
  if (status == 407 || status == 401) return Errc::http_auth_required;
  if (status == 504) return Errc::http_gateway_timeout;
  return Errc::http_refused;
}

Handshake::Handshake(const ProxyUri& proxy, Address target, const GssapiOptions* gssapi)
    : target_(std::move(target)),
      basic_(gssapi == nullptr && proxy.user.has_value()),
      gssapi_(gssapi),
      host_(proxy.host) {
  if (basic_) authorization_ = basic_authorization(*proxy.user, proxy.password.value_or(""));
}

Handshake::~Handshake() {
  wipe(authorization_);
}

Result<void> Handshake::start() {
  if (gssapi_ != nullptr) {
    // Negotiate: the token for the proxy's HTTP service, with the first request.
    auto token = negotiate_token(*gssapi_, host_);
    if (!token) return fail(token.error());
    authorization_ = "Negotiate " + base64(*token);
  }
  auto r = encode_connect(target_, authorization_, out_);
  wipe(authorization_);
  return r;
}

Result<std::size_t> Handshake::receive(ByteView in) {
  if (done_) return std::size_t{0};
  auto n = parser_.receive(in);
  if (!n) return n;
  if (!parser_.complete()) return n;
  if (auto ec = reply_error(parser_.reply().status)) return fail(ec);
  done_ = true;
  return n;
}

std::string Handshake::detail() const {
  if (!parser_.complete()) return {};
  const Reply& r = parser_.reply();
  if (r.status == 407 || r.status == 401) {
    return r.auth_schemes.empty() ? std::string("no Proxy-Authenticate") : r.auth_schemes;
  }
  return r.status_line;
}

}  // namespace socks5::http
