#pragma once
// HTTP CONNECT (RFC 9110 §9.3.6), the client side: one request, one reply header. The proxy
// resolves names, so a destination goes as "name:port" (IPv6 literals in brackets).
// Credentials leave with the first request (Basic, RFC 7617), so a tunnel costs one round trip
// after the TCP connect. The reply parser is bounded and strict, and consumes exactly the
// header: octets after its blank line belong to the program (a server that speaks first).
#include <cstdint>
#include <string>
#include <string_view>

#include "socks5/hop.hpp"

namespace socks5::http {

inline constexpr std::size_t kMaxHeader = 16384;  ///< octets of a reply header, all lines
inline constexpr std::size_t kMaxLine = 8192;     ///< octets of one line
inline constexpr std::size_t kMaxFields = 100;    ///< header fields in one reply

/// True if `host` can stand in a request line (letters, digits, '-', '.', '_').
bool sendable_name(std::string_view host) noexcept;

/// "CONNECT host:port HTTP/1.1", Host, an optional Proxy-Authorization value, blank line.
Result<void> encode_connect(const Address& target, std::string_view authorization, Bytes& out);

/// "Basic " + base64(user ":" password).
std::string basic_authorization(std::string_view user, std::string_view password);

/// Standard base64 (RFC 4648 §4) with padding.
std::string base64(ByteView data);

/// What the client needs from a reply header.
struct Reply {
  int status = 0;            ///< 100..599
  std::string status_line;   ///< printable, at most 80 characters
  std::string auth_schemes;  ///< a 407's Proxy-Authenticate schemes, "Basic, Negotiate"
};

/// Reads one reply header incrementally (interim 1xx replies are skipped).
class ReplyParser {
 public:
  /// Consumes octets from the front of `in`, never past the header's blank line.
  Result<std::size_t> receive(ByteView in);
  bool complete() const noexcept { return state_ == State::done; }
  /// True once any octet arrived.
  bool started() const noexcept { return total_ > 0; }
  const Reply& reply() const noexcept { return reply_; }

 private:
  enum class State : std::uint8_t { status, fields, done };
  Result<void> line_done();
  Result<void> status_line();
  Result<void> field_line();
  State state_ = State::status;
  std::string line_;
  std::size_t total_ = 0;
  std::size_t fields_ = 0;
  Reply reply_;
};

/// The error a complete reply means ({} for 2xx).
std::error_code reply_error(int status) noexcept;

/// The hop: CONNECT out, reply header in. Credentials go with the request: Basic from the
/// URI's user, or Negotiate (RFC 4559) with `gssapi`.
class Handshake final : public Hop {
 public:
  Handshake(const ProxyUri& proxy, Address target, const GssapiOptions* gssapi = nullptr);
  ~Handshake() override;
  Result<void> start() override;
  const Bytes& output() const noexcept override { return out_; }
  void clear_output() noexcept override { out_.clear(); }
  Result<std::size_t> receive(ByteView in) override;
  bool done() const noexcept override { return done_; }
  wire::Method method() const noexcept override {
    return gssapi_ != nullptr ? wire::Method::gssapi
           : basic_           ? wire::Method::username_password
                              : wire::Method::none;
  }
  const char* method_text() const noexcept override {
    return gssapi_ != nullptr ? "Negotiate" : basic_ ? "Basic" : "none";
  }
  Errc silence_error() const noexcept override {
    return parser_.started() ? Errc::timed_out : Errc::greeting_unanswered;
  }
  std::string detail() const override;

 private:
  Address target_;
  std::string authorization_;  // the Proxy-Authorization value, wiped when done with
  bool basic_ = false;
  const GssapiOptions* gssapi_ = nullptr;
  std::string host_;  // the proxy's, for Negotiate's service name
  Bytes out_;
  ReplyParser parser_;
  bool done_ = false;
};

}  // namespace socks5::http
