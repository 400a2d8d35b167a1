#pragma once
// Authentication methods (RFC 1928 §3). The interface already fits GSSAPI (RFC 1961): several
// token round trips, then a protection layer that wraps every later message.
#include <cstddef>
#include <memory>
#include <string>

#include "socks5/error.hpp"
#include "socks5/wire.hpp"

namespace socks5 {

/// A per-message protection layer negotiated by an auth method (RFC 1961 §5 encapsulation).
class Protection {
 public:
  virtual ~Protection() = default;
  /// Appends the protected form of `plain` to `out`.
  virtual Result<void> wrap(ByteView plain, Bytes& out) = 0;
  /// Decodes one protected message from the front of `in`, appending its plaintext to
  /// `plain`. Returns the octets consumed, 0 when `in` does not yet hold a whole message.
  virtual Result<std::size_t> unwrap(ByteView in, Bytes& plain) = 0;
};

/// Progress of a method's sub-negotiation after one call.
struct AuthProgress {
  std::size_t consumed = 0;  ///< server octets used
  bool done = false;         ///< sub-negotiation finished successfully
};

/// One authentication method's client side, as a pure state machine.
class AuthMethod {
 public:
  virtual ~AuthMethod() = default;
  /// The METHOD octet this object implements.
  virtual wire::Method id() const noexcept = 0;
  /// True if its first message may be sent before the server has chosen it, and the
  /// sub-negotiation has at most one message each way (so the request can follow at once).
  virtual bool pipelinable() const noexcept = 0;
  /// Appends the first client message (if any) to `out`. Returns true if the sub-negotiation
  /// is already complete (method "none").
  virtual Result<bool> begin(Bytes& out) = 0;
  /// Consumes server octets from `in`; may append client messages to `out`.
  virtual Result<AuthProgress> on_input(ByteView in, Bytes& out) = 0;
  /// After completion: the protection layer, or nullptr when traffic is not wrapped.
  virtual std::unique_ptr<Protection> take_protection() { return nullptr; }
  /// What the server closing the connection now means (a refusal, for methods whose servers
  /// close instead of answering).
  virtual Errc closed_error() const noexcept { return Errc::connection_closed; }
};

/// Method X'00': no authentication.
class NoAuth final : public AuthMethod {
 public:
  wire::Method id() const noexcept override { return wire::Method::none; }
  bool pipelinable() const noexcept override { return true; }
  Result<bool> begin(Bytes&) override { return true; }
  Result<AuthProgress> on_input(ByteView, Bytes&) override { return AuthProgress{0, true}; }
};

/// Method X'02': username/password (RFC 1929).
class UserPassAuth final : public AuthMethod {
 public:
  UserPassAuth(std::string user, std::string password)
      : user_(std::move(user)), password_(std::move(password)) {}
  ~UserPassAuth() override;
  wire::Method id() const noexcept override { return wire::Method::username_password; }
  bool pipelinable() const noexcept override { return true; }
  Result<bool> begin(Bytes& out) override;
  Result<AuthProgress> on_input(ByteView in, Bytes& out) override;

 private:
  std::string user_;
  std::string password_;
};

}  // namespace socks5
