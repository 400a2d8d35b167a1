#pragma once
// Per-socket sessions: what the shim owns for a socket it manages, and the fd table that
// points to them.
//
// A Session belongs to the socket (the open file description), not to an fd number: dup*,
// fcntl(F_DUPFD*) and fork share it; the last close of the last fd releases it and what it
// owns. Each session records the socket's identity (SO_COOKIE, unique for the life of the
// system), so state that outlived its socket by a path no hook sees (a raw syscall(SYS_close),
// fclose() of an fdopen() stream, a closefrom() in another library) is noticed and dropped the
// next time it matters, instead of answering for a new socket that got the same number.
//
// Lookups are lock-free: the fd table is an array of 32-bit session indices in lazily mapped
// chunks (one load for an fd that is not ours), sessions live in type-stable pools (never
// unmapped), and a reference is taken with increment-if-live and re-validated. close() of an
// fd that was never ours costs one relaxed load. The tables are plain process memory, so a
// forked child inherits them as it inherits the sockets; exec keeps what it must through the
// environment (exec.cpp).
#include <sys/socket.h>

#include <atomic>
#include <cstdint>

#include "core_names.hpp"
#include "socks5/address.hpp"

namespace socksify::shim {

/// What a session is.
enum class SessionKind : std::uint8_t {
  proxied,     ///< a TCP stream connected through the proxy
  connecting,  ///< a proxied connect() returned early (a signal, SO_SNDTIMEO): see connect.cpp
  udp,         ///< a datagram socket with a UDP association through the proxy (udp.hpp)
  listening,   ///< a listening socket through the proxy: its fd holds a BIND (bind.hpp)
};

struct PendingConnect;  // connect.cpp: the dial of an interrupted connect()
struct Association;     // udp.cpp: a UDP ASSOCIATE's control connection and relay
struct Binding;         // bind.cpp: what a listening socket through the proxy knows

/// One managed socket.
struct Session {
  std::atomic<std::uint32_t> refs;       ///< table references + holders; 0 = free
  std::atomic<std::uint32_t> next_free;  ///< pool free list link
  std::uint32_t index;                   ///< its own index in the pools (fixed)
  std::atomic<SessionKind> kind;
  std::uint64_t cookie;   ///< SO_COOKIE of the socket (0 if unknown: never verified)
  sockaddr_storage peer;  ///< what getpeername() reports: the address the program asked for
  socklen_t peer_len;
  /// What getsockname() reports for a proxied connection: the proxy's BND address (where the
  /// world sees the connection come from); 0 = the kernel's answer. Set before attach.
  sockaddr_storage local;
  socklen_t local_len;
  std::atomic<PendingConnect*> pending;  ///< owned; kind connecting only
  std::atomic<Association*> udp;         ///< owned; kind udp only
  std::atomic<Binding*> binding;         ///< owned; kind listening only
};

/// A counted reference to a session.
class SessionRef {
 public:
  SessionRef() = default;
  explicit SessionRef(Session* s) noexcept : s_(s) {}
  SessionRef(SessionRef&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  SessionRef& operator=(SessionRef&& o) noexcept;
  SessionRef(const SessionRef&) = delete;
  SessionRef& operator=(const SessionRef&) = delete;
  ~SessionRef();
  Session* get() const noexcept { return s_; }
  Session* operator->() const noexcept { return s_; }
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  Session* s_ = nullptr;
};

/// A new session (one reference, the caller's), or an empty ref when memory is exhausted.
SessionRef session_create(SessionKind kind, std::uint64_t cookie, const sockaddr* peer,
                          socklen_t peer_len) noexcept;
/// The session `fd` points to, without checking that the socket is still the same one.
SessionRef session_peek(int fd) noexcept;
/// A hint: the kind of the session `fd` points to (false when none), read without taking a
/// reference or checking the socket. Callers confirm with session_of() before acting on it;
/// it exists so that the calls that are almost never about a session stay one or two loads.
bool session_kind_hint(int fd, SessionKind& kind) noexcept;
/// The session of `fd` if it belongs to the socket `fd` is now, as `cookie_of(fd)` tells
/// (asked only when `fd` has a session); a stale one is dropped.
SessionRef session_verified(int fd, std::uint64_t (*cookie_of)(int) noexcept) noexcept;
/// Points `fd` at `s` (the table takes its own reference), releasing what was there.
void session_attach(int fd, Session* s) noexcept;
/// Forgets `fd` (close).
void session_detach(int fd) noexcept;
/// Forgets every fd in [first, last] (close_range, closefrom).
void session_detach_range(unsigned first, unsigned last) noexcept;
/// `to` shares the session of `from` (dup family), or forgets its own when `from` has none.
void session_copy(int from, int to) noexcept;
/// True once any fd was ever attached (a cheap test before doing anything else).
bool sessions_in_use() noexcept;
/// Sessions alive now (created and not yet released).
std::uint32_t sessions_live() noexcept;
/// Calls `f(fd, session)` for each fd that points to a session (not verified).
void for_each_session(void (*f)(int fd, Session& s, void* ctx), void* ctx) noexcept;

// In the preloaded library (sockets.cpp), with the real getsockopt:
/// The socket's identity (SO_COOKIE); 0 when it has none (not a socket).
std::uint64_t socket_cookie(int fd) noexcept;
/// The session of `fd`, verified against the socket `fd` is now (one getsockopt, only when
/// `fd` has a session).
SessionRef session_of(int fd) noexcept;
/// `a` as a sockaddr for a socket of `family` (an IPv4 address v4-mapped for an IPv6 socket);
/// its length, or 0 when it does not fit.
socklen_t sockaddr_for(const socks5::Address& a, int family, sockaddr_storage& out) noexcept;

/// Frees what a session owns beyond itself (set at init by the preloaded library).
extern void (*g_release_pending)(PendingConnect*) noexcept;
extern void (*g_release_association)(Association*) noexcept;
extern void (*g_release_binding)(Binding*) noexcept;

}  // namespace socksify::shim
