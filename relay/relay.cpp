#include "relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "socks5/error.hpp"

namespace socksify::relay {
namespace {

using socks5::Bytes;
using socks5::ByteView;

void put32(std::uint32_t v, Bytes& out) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t get32(ByteView in, std::size_t at) {
  return (std::uint32_t{in[at]} << 24) | (std::uint32_t{in[at + 1]} << 16) |
         (std::uint32_t{in[at + 2]} << 8) | std::uint32_t{in[at + 3]};
}

constexpr std::size_t kHeader = 4 + 1 + 2 + 4 + 4 + 1;
constexpr std::uint32_t kMaxPart = 1u << 20;  // far above any exported context

// Octets read from one side per system call. Large reads amortise the calls; a token holds
// at most 64 KiB, so one read from the program becomes several tokens.
constexpr std::size_t kChunk = 256 * 1024;
// Octets read from one side and not yet written to the other, at most (then that side waits).
constexpr std::size_t kMaxPending = 1024 * 1024;

void make_nonblocking(int fd) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// Ends a TCP connection with a reset instead of a FIN, so the other end sees ECONNRESET and
// never mistakes a broken stream for a complete one.
void reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  shutdown(fd, SHUT_RDWR);
}

// Octets waiting to be written to one side.
struct Queue {
  Bytes data;
  std::size_t off = 0;
  bool empty() const { return off >= data.size(); }
  std::size_t pending() const { return data.size() - off; }
  // Drops what was sent: all of it, or (to keep moves rare) the front once it is the larger
  // part.
  void compact() {
    if (off == 0) return;
    if (off < data.size() && off < data.size() / 2) return;
    if (off >= data.size()) {
      data.clear();
    } else {
      data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(off));
    }
    off = 0;
  }
  // Sends what it can; false on a hard error (errno set).
  bool flush(int fd) {
    while (!empty()) {
      const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return false;
    }
    compact();
    return true;
  }
};

}  // namespace

Bytes encode_setup(const Setup& s) {
  Bytes out{'S',
            'R',
            'L',
            '2',
            static_cast<std::uint8_t>(s.level),
            static_cast<std::uint8_t>(s.peer_port >> 8),
            static_cast<std::uint8_t>(s.peer_port)};
  put32(static_cast<std::uint32_t>(s.context.size()), out);
  put32(static_cast<std::uint32_t>(s.rest.size()), out);
  out.push_back(static_cast<std::uint8_t>(s.kind));
  out.insert(out.end(), s.context.begin(), s.context.end());
  out.insert(out.end(), s.rest.begin(), s.rest.end());
  return out;
}

socks5::Result<std::size_t> decode_setup(ByteView in, Setup& out) {
  using socks5::Errc;
  if (in.size() < kHeader) return std::size_t{0};
  if (std::memcmp(in.data(), "SRL2", 4) != 0) return socks5::fail(Errc::bad_version);
  if (in[4] > 2) return socks5::fail(Errc::invalid_argument);
  if (in[15] < static_cast<std::uint8_t>(Kind::gssapi) ||
      in[15] > static_cast<std::uint8_t>(Kind::tls)) {
    return socks5::fail(Errc::invalid_argument);
  }
  const std::uint32_t ctx = get32(in, 7);
  const std::uint32_t rest = get32(in, 11);
  if (ctx > kMaxPart || rest > kMaxPart) return socks5::fail(Errc::message_too_long);
  const std::size_t total = kHeader + ctx + rest;
  if (in.size() < total) return std::size_t{0};
  out.level = static_cast<socks5::GssLevel>(in[4]);
  out.kind = static_cast<Kind>(in[15]);
  out.peer_port = static_cast<std::uint16_t>((in[5] << 8) | in[6]);
  out.context.assign(in.begin() + kHeader, in.begin() + static_cast<std::ptrdiff_t>(kHeader + ctx));
  out.rest.assign(in.begin() + static_cast<std::ptrdiff_t>(kHeader + ctx),
                  in.begin() + static_cast<std::ptrdiff_t>(total));
  return total;
}

socks5::Result<void> PlainLayer::wrap(ByteView plain, Bytes& out) {
  out.insert(out.end(), plain.begin(), plain.end());
  return {};
}

socks5::Result<std::size_t> PlainLayer::unwrap(ByteView in, Bytes& plain) {
  plain.insert(plain.end(), in.begin(), in.end());
  return in.size();
}

End run_relay(int plain, int wrapped, socks5::Protection& protection, ByteView rest) {
  make_nonblocking(plain);
  make_nonblocking(wrapped);
  Queue to_proxy;    // tokens
  Queue to_program;  // plaintext
  to_program.data.assign(rest.begin(), rest.end());
  // Octets from the proxy not yet unwrapped: [in_begin, in_end) of a buffer allocated once
  // (never zero-filled: a resize per read would clear 256 KiB each time).
  constexpr std::size_t kInSize = 2 * kChunk;
  std::unique_ptr<std::uint8_t[]> in(new std::uint8_t[kInSize]);
  std::size_t in_begin = 0, in_end = 0;
  std::unique_ptr<std::uint8_t[]> chunk(new std::uint8_t[kChunk]);
  to_program.data.reserve(kInSize);
  to_proxy.data.reserve(kInSize);
  bool program_eof = false, proxy_eof = false;
  bool proxy_shut = false, program_shut = false;
  auto abort_both = [&](End why) {
    if (why != End::program_gone) reset(plain);
    if (why != End::proxy_reset) reset(wrapped);
    return why;
  };
  for (;;) {
    if (!to_program.flush(plain)) return abort_both(End::program_gone);
    if (!to_proxy.flush(wrapped)) return abort_both(End::proxy_reset);
    // A direction ends once its sender finished and everything it sent was passed on.
    if (program_eof && to_proxy.empty() && !proxy_shut) {
      shutdown(wrapped, SHUT_WR);
      proxy_shut = true;
    }
    if (proxy_eof && to_program.empty() && !program_shut) {
      shutdown(plain, SHUT_WR);
      program_shut = true;
    }
    if (proxy_shut && program_shut) return End::done;
    // Read a side only while what was read from it before and is not passed on yet stays
    // under a bound: the other side's pace holds this one back (TCP's flow control, end to
    // end), and meanwhile one token is unwrapped while the last is still being delivered.
    pollfd p[2] = {{plain, 0, 0}, {wrapped, 0, 0}};
    if (!program_eof && to_proxy.pending() < kMaxPending) p[0].events |= POLLIN;
    if (!to_program.empty()) p[0].events |= POLLOUT;
    if (!proxy_eof && to_program.pending() < kMaxPending) p[1].events |= POLLIN;
    if (!to_proxy.empty()) p[1].events |= POLLOUT;
    const int n = poll(p, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return abort_both(End::proxy_reset);
    }
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && (p[0].events & POLLIN) != 0) {
      const ssize_t got = recv(plain, chunk.get(), kChunk, MSG_DONTWAIT);
      if (got > 0) {
        auto w =
            protection.wrap(ByteView(chunk.get(), static_cast<std::size_t>(got)), to_proxy.data);
        if (!w) return abort_both(End::bad_token);
      } else if (got == 0) {
        program_eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return abort_both(End::program_gone);
      }
    } else if ((p[0].revents & POLLERR) != 0) {
      return abort_both(End::program_gone);
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && (p[1].events & POLLIN) != 0) {
      if (in_begin > 0 && in_end + kChunk > kInSize) {
        // Move the partial token to the front so a whole read fits after it.
        std::memmove(in.get(), in.get() + in_begin, in_end - in_begin);
        in_end -= in_begin;
        in_begin = 0;
      }
      const ssize_t got = recv(wrapped, in.get() + in_end, kInSize - in_end, MSG_DONTWAIT);
      if (got > 0) {
        in_end += static_cast<std::size_t>(got);
        for (;;) {
          auto used =
              protection.unwrap(ByteView(in.get() + in_begin, in_end - in_begin), to_program.data);
          if (!used) return abort_both(End::bad_token);
          if (*used == 0) break;
          in_begin += *used;
        }
        if (in_begin == in_end) in_begin = in_end = 0;
      } else if (got == 0) {
        // The proxy ended the stream: between tokens that is the end of the data; inside one
        // it is a truncation the program must not mistake for a complete response.
        if (in_begin != in_end) return abort_both(End::proxy_reset);
        proxy_eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return abort_both(End::proxy_reset);
      }
    } else if ((p[1].revents & POLLERR) != 0) {
      return abort_both(End::proxy_reset);
    }
  }
}

}  // namespace socksify::relay
