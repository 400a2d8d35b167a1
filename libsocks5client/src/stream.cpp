#include "socks5/stream.hpp"

#include <cerrno>

#include "socks5/error.hpp"

namespace socks5 {

int Deadline::poll_ms() const noexcept {
  const auto left = at_ - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

Result<void> Stream::wait(short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = sys_->poll(&p, 1, deadline.poll_ms());
    if (n > 0) return {};
    if (n == 0) return fail(Errc::timed_out);
    if (errno != EINTR) return fail_errno(errno);
  }
}

Result<void> Stream::write_all(ByteView data, Deadline deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        sys_->send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto w = wait(POLLOUT, deadline);
      if (!w) return w;
      continue;
    }
    return fail_errno(n < 0 ? errno : EIO);
  }
  return {};
}

namespace {

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK;
}

}  // namespace

void Pump::reset() noexcept {
  pending_.clear();
  out_off_ = 0;
  discard_ = 0;
  sent_ = false;
  readable_ = false;
  waits_ = 0;
  last_ = 0;
}

Result<void> Pump::feed(Machine& m, std::size_t got, bool peeked) {
  const std::size_t old = pending_.size();
  if (old > 0) pending_.insert(pending_.end(), buf_, buf_ + got);
  auto used = old > 0 ? m.receive(pending_) : m.receive(ByteView(buf_, got));
  if (!used) return fail(used.error());
  // Only the octets that belong to the handshake leave the socket: all of a peek while the
  // machine wants more (the rest is kept in pending_), else just what it used.
  if (peeked) discard_ = !m.done() ? got : (*used > old ? *used - old : 0);
  if (m.done()) {
    pending_.clear();
  } else if (old > 0) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(*used));
  } else if (*used < got) {
    pending_.assign(buf_ + *used, buf_ + got);
  }
  return {};
}

Result<Pump::Want> Pump::run(Machine& m, int fd, const Syscalls& sys, bool readable) {
  if (readable) readable_ = true;
  for (;;) {
    while (discard_ > 0) {
      std::uint8_t sink[512];
      const ssize_t n =
          sys.recv(fd, sink, discard_ < sizeof sink ? discard_ : sizeof sink, MSG_DONTWAIT);
      if (n > 0) {
        discard_ -= static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0) return fail(m.closed_error());
      if (errno == EINTR) continue;
      if (would_block(errno)) return Want::readable;  // peeked octets gone: another reader
      return fail_errno(errno);
    }
    const Bytes& out = m.output();
    while (out_off_ < out.size()) {
      const ssize_t n =
          sys.send(fd, out.data() + out_off_, out.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_off_ += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && would_block(errno)) return Want::writable;
      return fail_errno(n < 0 ? errno : EIO);
    }
    if (!out.empty()) {
      m.clear_output();
      out_off_ = 0;
      sent_ = true;
    }
    if (m.done()) return Want::done;
    if (!readable_) {
      if (sent_) ++waits_;
      sent_ = false;
      return Want::readable;
    }
    // A message of known size is read as it is: reading exactly its octets can never take
    // what follows it. Otherwise peek, so that octets after the final reply (early
    // application data) stay queued, and then take only what the machine used.
    const std::size_t exact = pending_.empty() ? m.exact_need() : 0;
    const bool peek = exact == 0 || exact > sizeof buf_;
    const ssize_t n =
        sys.recv(fd, buf_, peek ? sizeof buf_ : exact, (peek ? MSG_PEEK : 0) | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!would_block(errno)) return fail_errno(errno);
      readable_ = false;
      continue;
    }
    if (n == 0) return fail(m.closed_error());
    last_ = static_cast<std::size_t>(n);
    readable_ = false;  // wait before the next read, unless what was peeked is still queued
    auto f = feed(m, static_cast<std::size_t>(n), peek);
    if (!f) return fail(f.error());
  }
}

Result<void> drive(Stream& s, Machine& m, Deadline deadline, DriveStats* stats) {
  Pump pump;
  bool readable = false;
  auto finish = [&](Result<void> r) {
    if (stats != nullptr) stats->waits += pump.waits();
    return r;
  };
  for (;;) {
    auto want = pump.run(m, s.fd(), s.sys(), readable);
    if (!want) return finish(fail(want.error()));
    if (*want == Pump::Want::done) return finish({});
    readable = false;
    const int timeout = deadline.poll_ms();
    if (timeout == 0) return finish(fail(Errc::timed_out));  // also bounds a server that trickles
    pollfd p{s.fd(), static_cast<short>(*want == Pump::Want::readable ? POLLIN : POLLOUT), 0};
    const int n = s.sys().poll(&p, 1, timeout);
    if (n == 0) return finish(fail(Errc::timed_out));
    if (n < 0) {
      if (errno == EINTR) continue;
      return finish(fail_errno(errno));
    }
    readable = *want == Pump::Want::readable;
  }
}

}  // namespace socks5
