#pragma once
// Method X'01': GSS-API authentication (RFC 1961) with Kerberos 5, and its per-message
// protection. The GSS-API library (MIT's libgssapi_krb5.so.2) is loaded with dlopen on first
// use, so programs that never choose GSSAPI never load Kerberos.
//
//   client                                   server
//   greeting offering X'01'        ->
//                                  <-        method X'01'
//   [01 01 len token] (AP-REQ)     ->                          RFC 1961 §3 (mtyp 1)
//                                  <-        [01 01 len token] (AP-REP, mutual authentication)
//   [01 02 len wrap(level)]        ->                          §4 (mtyp 2, conf_req = 0)
//                                  <-        [01 02 len wrap(level)]
//   [01 03 len wrap(request)]      ->                          §5 (mtyp 3): everything after
//                                  <-        [01 03 len wrap(reply)]   the level exchange,
//   ... data, one token per chunk ...                                  unless the level is clear
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "socks5/auth.hpp"
#include "socks5/stream.hpp"
#include "socks5/syscalls.hpp"

namespace socks5 {

/// The protection level (RFC 1961 §4). `clear` is Dante's extension (no per-message
/// protection after authentication); servers accept it only when configured to.
enum class GssLevel : std::uint8_t { clear = 0, integrity = 1, confidentiality = 2 };

/// "clear", "integrity" or "confidentiality".
std::string_view gss_level_name(GssLevel level) noexcept;

/// How to authenticate with GSS-API.
struct GssapiOptions {
  /// The server's name: empty for "rcmd@<proxy host>"; "service@host" (or a bare service
  /// name, completed with "@<proxy host>") is a host-based service name; a name with '/' is a
  /// Kerberos principal ("rcmd/proxy.example@REALM").
  std::string service;
  GssLevel level = GssLevel::integrity;  ///< the level to ask for; the server must agree
  /// Called with true before and false after each call into the GSS-API library that may
  /// reach the KDC (a socksifier marks that traffic as its own: it goes direct). Optional.
  void (*library_scope)(bool enter) noexcept = nullptr;
};

/// The name the client asks a ticket for, as configured (see GssapiOptions::service).
std::string gssapi_target(const GssapiOptions& options, std::string_view proxy_host);

/// The first (and only) token of HTTP Negotiate (RFC 4559) toward `proxy_host`: SPNEGO with
/// Kerberos, for the service `options.service` ("HTTP@<proxy host>" when empty). The
/// context is not continued: a proxy answers the CONNECT with its status, and the request
/// completes in one round trip. KDC traffic happens inside, within `options.library_scope`.
Result<Bytes> negotiate_token(const GssapiOptions& options, std::string_view proxy_host);

/// The service name an HTTP proxy is asked a ticket for ("HTTP@host" by default).
std::string negotiate_target(const GssapiOptions& options, std::string_view proxy_host);

/// A protection layer that can also hand its security context to another process.
class GssProtection : public Protection {
 public:
  /// The level in force (integrity or confidentiality).
  virtual GssLevel level() const noexcept = 0;
  /// The largest plaintext that fits in one token (wrap() splits larger input).
  virtual std::size_t max_plain() const noexcept = 0;
  /// Datagram mode (UDP, RFC 1961 §5): tokens may be lost, reordered or repeated, as
  /// datagrams are. Stream mode (the default) refuses any token out of sequence.
  virtual void set_datagram(bool datagram) noexcept = 0;
  /// Exports the security context (gss_export_sec_context); this object is unusable after.
  virtual Result<Bytes> export_context() = 0;
};

/// Imports a context exported by GssProtection::export_context() in this or another process.
Result<std::unique_ptr<GssProtection>> import_gss_protection(ByteView exported, GssLevel level);

/// True if the GSS-API library can be loaded (loads it).
bool gssapi_available() noexcept;

/// Loads another GSS-API library instead of libgssapi_krb5.so.2 (tests use a scripted one).
/// Takes effect only before the first use.
void gssapi_use_library(const char* soname) noexcept;

/// The GSS-API library's own words for the last failure on this thread (major and minor
/// status, e.g. "No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)"),
/// empty if none.
const std::string& gssapi_last_status();

/// A connected stream through a protection layer (the CONNECT of a Client that negotiated
/// GSSAPI above level clear): whole tokens out, plaintext in. Blocking, with deadlines.
class ProtectedStream {
 public:
  ProtectedStream(int fd, Protection& protection, const Syscalls& sys = Syscalls::libc())
      : fd_(fd), protection_(&protection), sys_(&sys) {}
  /// Wraps and sends all of `data` (tokens of at most 64 KiB each).
  Result<void> write(ByteView data, Deadline deadline);
  /// Appends the plaintext of at least one token to `out`; returns the octets appended, 0 at
  /// the end of the stream. A stream that ends inside a token is Errc::connection_closed.
  Result<std::size_t> read(Bytes& out, Deadline deadline);

 private:
  int fd_;
  Protection* protection_;
  const Syscalls* sys_;
  Bytes in_;  // octets received, not yet a whole token
};

/// Method X'01' (RFC 1961): context establishment with mutual authentication, then the
/// protection-level sub-negotiation. The level the server returns is checked here: anything
/// but the level asked for is refused (Errc::gssapi_level_refused).
class GssapiAuth final : public AuthMethod {
 public:
  GssapiAuth(GssapiOptions options, std::string proxy_host);
  ~GssapiAuth() override;
  GssapiAuth(const GssapiAuth&) = delete;
  GssapiAuth& operator=(const GssapiAuth&) = delete;
  wire::Method id() const noexcept override { return wire::Method::gssapi; }
  bool pipelinable() const noexcept override { return false; }
  Result<bool> begin(Bytes& out) override;
  Result<AuthProgress> on_input(ByteView in, Bytes& out) override;
  std::unique_ptr<Protection> take_protection() override;
  Errc closed_error() const noexcept override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace socks5
