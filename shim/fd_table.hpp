#pragma once
// Per-fd state, indexed by fd, in lazily mmapped chunks. Lock-free: close() runs for every fd
// of the process and must stay cheap. Inherited by fork() with the rest of memory.
#include <sys/socket.h>

#include <atomic>
#include <cstdint>

namespace socksify::shim {

/// What the shim knows about one fd.
enum class FdKind : std::uint32_t {
  none = 0,     ///< not ours: everything passes through
  proxied = 1,  ///< a TCP socket connected through the proxy; peer = the app's destination
};

/// A snapshot of one fd's state.
struct FdInfo {
  FdKind kind = FdKind::none;
  sockaddr_storage peer{};  ///< what getpeername() reports
  socklen_t peer_len = 0;
};

/// Records that `fd` is proxied to `peer` (the address the application connected to).
void fd_set_proxied(int fd, const sockaddr* peer, socklen_t len) noexcept;
/// Reads the state of `fd` (kind none if unknown or out of range).
FdInfo fd_get(int fd) noexcept;
/// Forgets `fd` (close).
void fd_clear(int fd) noexcept;
/// Forgets fds in [first, last] (close_range).
void fd_clear_range(unsigned first, unsigned last) noexcept;
/// Copies the state of `from` to `to` (dup family); clears `to` when `from` is unknown.
void fd_copy(int from, int to) noexcept;

}  // namespace socksify::shim
