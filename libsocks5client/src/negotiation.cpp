#include "socks5/negotiation.hpp"

#include "socks5/error.hpp"

namespace socks5 {

Result<std::size_t> ReplyReader::receive(ByteView in, Protection* protection) {
  if (protection == nullptr) {
    auto r = wire::decode_reply(in);
    if (!r) return fail(r.error());
    if (!*r) return std::size_t{0};
    reply_ = std::move((*r)->value);
    return (*r)->size;
  }
  // Wrapped: unwrap whole messages one at a time until the plaintext holds a reply, so that
  // nothing after the reply's own message is consumed.
  std::size_t used = 0;
  for (;;) {
    auto r = wire::decode_reply(plain_);
    if (!r) return fail(r.error());
    if (*r) {
      reply_ = std::move((*r)->value);
      plain_.erase(plain_.begin(), plain_.begin() + static_cast<std::ptrdiff_t>((*r)->size));
      return used;
    }
    auto n = protection->unwrap(in.subspan(used), plain_);
    if (!n) return fail(n.error());
    if (*n == 0) return used;
    used += *n;
  }
}

Negotiation::Negotiation(std::vector<std::unique_ptr<AuthMethod>> methods,
                         std::optional<wire::Command> command, Address destination, bool pipelining)
    : methods_(std::move(methods)),
      command_(command),
      destination_(std::move(destination)),
      want_pipelining_(pipelining) {}

Negotiation::Negotiation(std::span<AuthMethod* const> methods, std::optional<wire::Command> command,
                         Address destination, bool pipelining)
    : borrowed_(methods),
      command_(command),
      destination_(std::move(destination)),
      want_pipelining_(pipelining) {}

std::size_t Negotiation::method_count() const noexcept {
  return methods_.empty() ? borrowed_.size() : methods_.size();
}

AuthMethod* Negotiation::method_at(std::size_t i) const noexcept {
  return methods_.empty() ? borrowed_[i] : methods_[i].get();
}

Negotiation::Negotiation(Negotiation&&) noexcept = default;
Negotiation& Negotiation::operator=(Negotiation&&) noexcept = default;
Negotiation::~Negotiation() = default;

Result<void> Negotiation::start() {
  const std::size_t count = method_count();
  if (count == 0) return fail(Errc::invalid_argument);
  if (count > 255) return fail(Errc::message_too_long);
  wire::Method ids[255];
  std::size_t n = 0;
  for (std::size_t i = 0; i < count; ++i) ids[n++] = method_at(i)->id();
  // Greeting, credentials and request together fit in one small allocation.
  out_.reserve(3 + n + 3 + 255 + 255 + 4 + 1 + 255 + 2);
  auto g = wire::encode_greeting(std::span<const wire::Method>(ids, n), out_);
  if (!g) return g;
  // One write instead of one per round trip: valid only when the server has exactly one
  // choice (so the method sub-negotiation can be sent blind) and that method needs at most
  // one message each way and no protection layer.
  pipelined_ = want_pipelining_ && count == 1 && method_at(0)->pipelinable();
  if (pipelined_) {
    auto b = method_at(0)->begin(out_);
    if (!b) return fail(b.error());
    return send_request();
  }
  return {};
}

Result<void> Negotiation::send_request() {
  if (!command_) {
    if (state_ == State::await_reply) state_ = State::done;
    return {};
  }
  Bytes plain;
  auto r = wire::encode_request(*command_, destination_, protection_ ? plain : out_);
  if (!r || !protection_) return r;
  return protection_->wrap(plain, out_);
}

const char* Negotiation::method_text() const noexcept {
  switch (method_) {
    case wire::Method::none: return "none";
    case wire::Method::username_password: return "username/password";
    case wire::Method::gssapi: return "gssapi";
    default: return "?";
  }
}

Result<std::size_t> Negotiation::receive(ByteView in) {
  std::size_t used = 0;
  while (state_ != State::done) {
    ByteView rest = in.subspan(used);
    switch (state_) {
      case State::await_method: {
        auto sel = wire::decode_method_selection(rest);
        // The first octet from the server is not SOCKS version 5: another protocol is
        // speaking (an HTTP server's "HTTP/1.1 400", an SSH banner...).
        if (!sel) return fail(sel.error() == Errc::bad_version ? Errc::not_socks5 : sel.error());
        if (!*sel) return used;
        used += (*sel)->size;
        method_ = (*sel)->value;
        if (method_ == wire::Method::no_acceptable) return fail(Errc::no_acceptable_method);
        for (std::size_t i = 0; i < method_count(); ++i) {
          if (method_at(i)->id() == method_) active_ = method_at(i);
        }
        if (active_ == nullptr) return fail(Errc::unexpected_method);
        state_ = State::auth;
        if (!pipelined_) {
          auto b = active_->begin(out_);
          if (!b) return fail(b.error());
          if (*b) {
            state_ = State::await_reply;
            auto s = send_request();
            if (!s) return fail(s.error());
          }
        } else if (method_ == wire::Method::none) {
          state_ = command_ ? State::await_reply : State::done;
        }
        break;
      }
      case State::auth: {
        auto p = active_->on_input(rest, out_);
        if (!p) return fail(p.error());
        used += p->consumed;
        if (!p->done) {
          if (p->consumed == 0) return used;
          break;
        }
        protection_ = active_->take_protection();
        state_ = State::await_reply;
        if (!pipelined_ || !command_) {
          auto s = send_request();
          if (!s) return fail(s.error());
        }
        break;
      }
      case State::await_reply: {
        auto n = reader_.receive(rest, protection_.get());
        if (!n) return fail(n.error());
        used += *n;
        if (!reader_.reply()) return used;
        if (auto ec = reply_error(reader_.reply()->rep)) return fail(ec);
        state_ = State::done;
        break;
      }
      case State::done: break;
    }
  }
  return used;
}

}  // namespace socks5
