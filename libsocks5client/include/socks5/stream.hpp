#pragma once
// The blocking driver: runs a handshake machine over a connected stream socket with an absolute
// deadline. poll-based, EINTR-safe, handles short reads and writes, never blocks past the
// deadline even on a blocking socket, and never reads past the end of the handshake.
#include <chrono>
#include <cstdint>

#include "socks5/error.hpp"
#include "socks5/syscalls.hpp"
#include "socks5/wire.hpp"

namespace socks5 {

/// An absolute point in time on the monotonic clock.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  /// A deadline `d` from now.
  static Deadline after(std::chrono::milliseconds d) { return Deadline(Clock::now() + d); }
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at() const noexcept { return at_; }
  bool expired() const noexcept { return Clock::now() >= at_; }
  /// Milliseconds left, rounded up, for poll(); 0 when expired.
  int poll_ms() const noexcept;

 private:
  Clock::time_point at_;
};

/// Anything the driver can run: produces output, consumes input, says when it is done.
class Machine {
 public:
  virtual ~Machine() = default;
  virtual const Bytes& output() const noexcept = 0;
  virtual void clear_output() noexcept = 0;
  /// Consumes octets from the front of `in`; returns how many were used.
  virtual Result<std::size_t> receive(ByteView in) = 0;
  virtual bool done() const noexcept = 0;
  /// The exact size of the next message when it is known before any of it arrives (0 if
  /// not): drive() then reads exactly that many octets instead of peeking first.
  virtual std::size_t exact_need() const noexcept { return 0; }
  /// What end of stream from the server means now.
  virtual Errc closed_error() const noexcept { return Errc::connection_closed; }
};

/// What one drive() did.
struct DriveStats {
  int waits = 0;  ///< times the client sent something and then had to wait for the server
};

/// A connected stream socket plus the syscalls used on it.
class Stream {
 public:
  Stream(int fd, const Syscalls& sys) : fd_(fd), sys_(&sys) {}
  int fd() const noexcept { return fd_; }
  const Syscalls& sys() const noexcept { return *sys_; }
  /// Writes all of `data` (MSG_NOSIGNAL), waiting with poll as needed.
  Result<void> write_all(ByteView data, Deadline deadline);
  /// Waits until readable (or error/hangup). Fails with timed_out at the deadline.
  Result<void> wait(short events, Deadline deadline);

 private:
  int fd_;
  const Syscalls* sys_;
};

/// Moves a Machine's octets over a stream socket WITHOUT blocking (MSG_DONTWAIT, so the
/// socket's own O_NONBLOCK flag never matters and is never touched). Both the blocking driver
/// (drive) and the dialer run machines through it; a caller waits for what run() asks and
/// calls it again. It polls before every read (a read is tried only once the caller has seen
/// the socket readable), reads a message of known size exactly, and otherwise peeks and takes
/// only the octets the machine used: what the server sends after the last message stays in
/// the socket for the application.
class Pump {
 public:
  enum class Want : unsigned char { done, readable, writable };
  /// Progress as far as possible. `readable`: the caller saw POLLIN/POLLHUP/POLLERR since the
  /// last call.
  Result<Want> run(Machine& m, int fd, const Syscalls& sys, bool readable);
  /// Times the client sent something and then had to wait for the server.
  int waits() const noexcept { return waits_; }
  /// Ready for another machine (the next hop of a chain).
  void reset() noexcept;
  /// The octets of the last read from the socket (what a failed machine choked on).
  ByteView last_read() const noexcept { return {buf_, last_}; }

 private:
  Result<void> feed(Machine& m, std::size_t got, bool peeked);
  Bytes pending_;            // octets taken off the socket that the machine has not used yet
  std::size_t out_off_ = 0;  // octets of m.output() already sent
  std::size_t discard_ = 0;  // peeked octets still to take off the socket
  bool sent_ = false;        // something was sent since the last wait
  bool readable_ = false;    // a read may be tried without waiting first
  int waits_ = 0;
  std::size_t last_ = 0;  // octets in buf_ from the last read
  std::uint8_t buf_[4096];
};

/// Runs `m` over `s` until m.done(), an error, or the deadline. Octets the server sent after the
/// machine finished stay in the socket for the application.
Result<void> drive(Stream& s, Machine& m, Deadline deadline, DriveStats* stats = nullptr);

}  // namespace socks5
