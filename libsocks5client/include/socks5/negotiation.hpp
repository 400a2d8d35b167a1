#pragma once
// The SOCKS5 client handshake as a transport-independent state machine:
// greeting -> method selection -> method sub-negotiation -> request -> reply.
// It says which octets to write (output()) and consumes whatever the server sent (receive()).
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "socks5/auth.hpp"
#include "socks5/hop.hpp"
#include "socks5/stream.hpp"
#include "socks5/wire.hpp"

namespace socks5 {

/// Reads replies (RFC 1928 §6) from a stream, through a protection layer if one is active.
class ReplyReader {
 public:
  /// Consumes octets from `in`; returns the octets used and, once complete, the reply.
  Result<std::size_t> receive(ByteView in, Protection* protection);
  /// The decoded reply once receive() has completed one.
  const std::optional<wire::Reply>& reply() const noexcept { return reply_; }
  /// Forgets the last reply (BIND reads two).
  void reset() noexcept { reply_.reset(); }
  /// Unwrapped octets that followed the reply in its token (application data), taken out.
  Bytes take_rest() noexcept { return std::move(plain_); }

 private:
  Bytes plain_;  // unwrapped octets not yet decoded
  std::optional<wire::Reply> reply_;
};

/// One SOCKS5 handshake up to and including the first reply: the SOCKS5 hop.
class Negotiation final : public Hop {
 public:
  /// `methods` are offered in order of preference. With `pipelining`, a single pipelinable
  /// method lets greeting, credentials and request leave in one write. Without a command the
  /// negotiation ends after authentication (used to probe a proxy).
  Negotiation(std::vector<std::unique_ptr<AuthMethod>> methods,
              std::optional<wire::Command> command, Address destination, bool pipelining);
  /// The same with methods the caller keeps alive for the whole negotiation (stateless ones,
  /// such as a shared NoAuth: no allocation per handshake).
  Negotiation(std::span<AuthMethod* const> methods, std::optional<wire::Command> command,
              Address destination, bool pipelining);
  Negotiation(Negotiation&&) noexcept;
  Negotiation& operator=(Negotiation&&) noexcept;
  ~Negotiation() override;

  /// Produces the first output (greeting, and with pipelining credentials and request).
  Result<void> start() override;
  /// Octets to write now; the caller writes them all and then calls clear_output().
  const Bytes& output() const noexcept override { return out_; }
  void clear_output() noexcept override { out_.clear(); }
  /// Consumes server octets from the front of `in`; returns how many were used. Stops right
  /// after the reply, so octets that follow it (early application data) are left alone.
  Result<std::size_t> receive(ByteView in) override;

  /// True once the (first) reply arrived with REP = succeeded (or auth ended, without command).
  bool done() const noexcept override { return state_ == State::done; }
  /// The method selection is always two octets.
  std::size_t exact_need() const noexcept override { return state_ == State::await_method ? 2 : 0; }
  /// During a method's sub-negotiation, the method says what a close means.
  Errc closed_error() const noexcept override {
    return state_ == State::auth && active_ != nullptr ? active_->closed_error()
                                                       : Errc::connection_closed;
  }
  /// True when everything was sent in one write.
  bool pipelined() const noexcept override { return pipelined_; }
  /// True once the server chose a method.
  bool method_selected() const noexcept { return state_ != State::await_method; }
  bool first_answered() const noexcept override { return method_selected(); }
  bool answered_beyond_first() const noexcept override { return answered_beyond_greeting(); }
  /// Silence from the first octet on says more than "timed out": whatever listens there does
  /// not speak SOCKS5 (or is wedged).
  Errc silence_error() const noexcept override {
    return method_selected() ? Errc::timed_out : Errc::greeting_unanswered;
  }
  /// True once the server answered a message sent after the greeting (the credentials of a
  /// method with a sub-negotiation, or the request).
  bool answered_beyond_greeting() const noexcept {
    return state_ == State::done || (state_ == State::await_reply && method_ != wire::Method::none);
  }
  /// The chosen method (valid once method_selected()).
  wire::Method method() const noexcept override { return method_; }
  const char* method_text() const noexcept override;
  Address bound() const override { return reader_.reply() ? reader_.reply()->bound : Address{}; }
  /// The successful reply (only with a command).
  const wire::Reply& reply() const { return *reader_.reply(); }
  /// Hands over the protection layer (GSSAPI) and the reply reader for later replies.
  std::unique_ptr<Protection> take_protection() override { return std::move(protection_); }
  ReplyReader& reader() noexcept { return reader_; }
  ReplyReader* reply_reader() noexcept override { return &reader_; }

 private:
  enum class State { await_method, auth, await_reply, done };
  Result<void> send_request();

  std::size_t method_count() const noexcept;
  AuthMethod* method_at(std::size_t i) const noexcept;

  std::vector<std::unique_ptr<AuthMethod>> methods_;  // owned ones, or
  std::span<AuthMethod* const> borrowed_;             // the caller's
  AuthMethod* active_ = nullptr;
  std::optional<wire::Command> command_;
  Address destination_;
  bool want_pipelining_;
  bool pipelined_ = false;
  State state_ = State::await_method;
  wire::Method method_ = wire::Method::no_acceptable;
  Bytes out_;
  std::unique_ptr<Protection> protection_;
  ReplyReader reader_;
};

}  // namespace socks5
