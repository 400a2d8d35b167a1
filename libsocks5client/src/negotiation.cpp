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

Negotiation::Negotiation(Negotiation&&) noexcept = default;
Negotiation& Negotiation::operator=(Negotiation&&) noexcept = default;
Negotiation::~Negotiation() = default;

Result<void> Negotiation::start() {
  if (methods_.empty()) return fail(Errc::invalid_argument);
  if (methods_.size() > 255) return fail(Errc::message_too_long);
  wire::Method ids[255];
  std::size_t n = 0;
  for (const auto& m : methods_) ids[n++] = m->id();
  // Greeting, credentials and request together fit in one small allocation.
  out_.reserve(3 + n + 3 + 255 + 255 + 4 + 1 + 255 + 2);
  auto g = wire::encode_greeting(std::span<const wire::Method>(ids, n), out_);
  if (!g) return g;
  // One write instead of one per round trip: valid only when the server has exactly one
  // choice (so the method sub-negotiation can be sent blind) and that method needs at most
  // one message each way and no protection layer.
  pipelined_ = want_pipelining_ && methods_.size() == 1 && methods_.front()->pipelinable();
  if (pipelined_) {
    auto b = methods_.front()->begin(out_);
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

Result<std::size_t> Negotiation::receive(ByteView in) {
  std::size_t used = 0;
  while (state_ != State::done) {
    ByteView rest = in.subspan(used);
    switch (state_) {
      case State::await_method: {
        auto sel = wire::decode_method_selection(rest);
        if (!sel) return fail(sel.error());
        if (!*sel) return used;
        used += (*sel)->size;
        method_ = (*sel)->value;
        if (method_ == wire::Method::no_acceptable) return fail(Errc::no_acceptable_method);
        for (auto& m : methods_) {
          if (m->id() == method_) active_ = m.get();
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
