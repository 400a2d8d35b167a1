#pragma once
// The blocking driver: runs a handshake machine over a connected stream socket with an absolute
// deadline. poll-based, EINTR-safe, handles short reads and writes, never blocks past the
// deadline even on a blocking socket, and never reads past the end of the handshake.
#include <chrono>
#include <cstdint>
#include <functional>

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
};

/// What one drive() did.
struct DriveStats {
  int waits = 0;  ///< times the client sent something and then had to wait for the server
};

/// Options for drive().
struct DriveOptions {
  /// While this returns true, a silence longer than `stall` ends the drive with
  /// Errc::pipelining_stalled (detects servers that drop pipelined octets).
  std::function<bool()> stall_armed;
  std::chrono::milliseconds stall{0};
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

/// Runs `m` over `s` until m.done(), an error, or the deadline. Octets the server sent after the
/// machine finished stay in the socket for the application.
Result<void> drive(Stream& s, Machine& m, Deadline deadline, DriveStats* stats = nullptr,
                   const DriveOptions& options = {});

}  // namespace socks5
