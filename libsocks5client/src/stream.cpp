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

// recv() with MSG_DONTWAIT; EINTR retried, EAGAIN means "poll again". With `poll_first` false
// the octets are known to be queued (they were peeked), so the poll is skipped unless the
// kernel says otherwise.
Result<std::size_t> recv_some(Stream& s, std::uint8_t* buf, std::size_t len, int flags,
                              Deadline deadline, int stall_ms, bool* stalled,
                              bool poll_first = true) {
  for (;;) {
    if (poll_first) {
      pollfd p{s.fd(), POLLIN, 0};
      int timeout = deadline.poll_ms();
      if (timeout == 0) return fail(Errc::timed_out);  // also bounds a server that trickles
      const bool use_stall = stall_ms > 0 && stall_ms < timeout;
      if (use_stall) timeout = stall_ms;
      const int ready = s.sys().poll(&p, 1, timeout);
      if (ready == 0) {
        if (use_stall) {
          *stalled = true;
          return fail(Errc::pipelining_stalled);
        }
        return fail(Errc::timed_out);
      }
      if (ready < 0) {
        if (errno == EINTR) continue;
        return fail_errno(errno);
      }
    }
    poll_first = true;
    const ssize_t n = s.sys().recv(s.fd(), buf, len, flags | MSG_DONTWAIT);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) return fail(Errc::connection_closed);
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return fail_errno(errno);
  }
}

// Removes exactly `len` already-peeked octets from the socket.
Result<void> discard(Stream& s, std::size_t len, Deadline deadline) {
  std::uint8_t sink[512];
  while (len > 0) {
    bool stalled = false;
    auto n =
        recv_some(s, sink, len < sizeof sink ? len : sizeof sink, 0, deadline, 0, &stalled, false);
    if (!n) return fail(n.error());
    len -= *n;
  }
  return {};
}

}  // namespace

Result<void> drive(Stream& s, Machine& m, Deadline deadline, DriveStats* stats,
                   const DriveOptions& options) {
  // Octets taken off the socket that the machine has not used yet: always a prefix of a
  // message it still needs more of, so keeping them is safe. Empty in the common case, where
  // each read holds whole messages and nothing is copied.
  Bytes pending;
  std::uint8_t buf[4096];
  bool sent = false;
  for (;;) {
    if (!m.output().empty()) {
      auto w = s.write_all(m.output(), deadline);
      if (!w) return w;
      m.clear_output();
      sent = true;
    }
    if (m.done()) return {};
    if (sent && stats != nullptr) ++stats->waits;
    sent = false;
    const bool armed = options.stall.count() > 0 && options.stall_armed && options.stall_armed();
    const int stall_ms = armed ? static_cast<int>(options.stall.count()) : 0;
    bool stalled = false;
    // A message of known size is read as it is: reading exactly its octets can never take
    // what follows it. Otherwise peek, so that octets after the final reply (early
    // application data) stay queued, and then take only what the machine used.
    const std::size_t exact = pending.empty() ? m.exact_need() : 0;
    const bool peek = exact == 0 || exact > sizeof buf;
    auto n = recv_some(s, buf, peek ? sizeof buf : exact, peek ? MSG_PEEK : 0, deadline, stall_ms,
                       &stalled);
    if (!n) return fail(n.error());
    const std::size_t old = pending.size();
    if (old > 0) pending.insert(pending.end(), buf, buf + *n);
    auto used = old > 0 ? m.receive(pending) : m.receive(ByteView(buf, *n));
    if (!used) return fail(used.error());
    if (peek) {
      // Only the octets that belong to the handshake leave the socket.
      const std::size_t take = !m.done() ? *n : (*used > old ? *used - old : 0);
      auto d = discard(s, take, deadline);
      if (!d) return d;
    }
    if (m.done()) {
      if (!m.output().empty()) continue;
      return {};
    }
    if (old > 0) {
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
    } else if (*used < *n) {
      pending.assign(buf + *used, buf + *n);
    }
  }
}

}  // namespace socks5
