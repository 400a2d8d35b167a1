#include "bind.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "fake_dns.hpp"
#include "guard.hpp"
#include "hooks/hooks.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "policy.hpp"
#include "protected.hpp"
#include "real_libc.hpp"
#include "report.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/wire.hpp"

namespace socksify::shim {

/// A listening socket through the proxy.
struct Binding {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // one accept at a time
  int family = AF_INET;                            // the program's socket's
  sockaddr_storage local{};  // the first reply: where the proxy listens for the program
  socklen_t local_len = 0;
  socks5::Address target;  // the BIND request's DST (the expected peer, or zeros)
  std::size_t proxy = 0;
  sockaddr_storage requested{};  // the address the program bound the socket to
  socklen_t requested_len = 0;
  bool listening = false;  // listen() was called (a BIND made at bind() time waits for it)
  bool failed = false;     // a new BIND after an accept failed: the socket is unusable
  // GSSAPI above level clear: the control connection's protection layer. The second reply
  // is one token, and the accepted connection goes to a relay (protected.hpp).
  std::unique_ptr<socks5::Protection> protection;
};

namespace {

// Looks for a connection through the proxy whose local address is `d`'s address: the
// program is listening beside it (active FTP). Its destination becomes the expected peer.
struct Beside {
  Destination d;
  bool kernel_check = true;  // also compare with the kernel's local end of each connection
  bool found = false;
  bool reported = false;  // it matched the proxy's BND address, not a local one
  socks5::Address peer = socks5::Address::ipv4({0, 0, 0, 0}, 0);
};

bool same_ip(const Destination& a, const Destination& b) {
  const std::size_t n = a.family == AF_INET ? 4 : 16;
  return a.family == b.family && std::memcmp(a.ip.data(), b.ip.data(), n) == 0;
}

void look_beside(int fd, Session& s, void* ctx) {
  auto* b = static_cast<Beside*>(ctx);
  if (b->found || s.kind.load(std::memory_order_acquire) != SessionKind::proxied) return;
  // Beside it: its address as the program sees it (the proxy's BND address, what
  // getsockname() reports), or the kernel's local end of it.
  Destination reported;
  bool match =
      s.local_len > 0 &&
      destination_from(reinterpret_cast<const sockaddr*>(&s.local), s.local_len, reported) &&
      same_ip(reported, b->d);
  b->reported = match;
  if (!match && b->kernel_check) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
    Destination local;
    if (!destination_from(reinterpret_cast<sockaddr*>(&ss), len, local)) return;
    match = same_ip(local, b->d);
  }
  if (!match) return;
  b->found = true;
  if (auto p =
          socks5::Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&s.peer), s.peer_len)) {
    b->peer = *p;
  }
}

// Sends BIND through the proxy; on success the control connection (ours, close-on-exec,
// non-blocking) and where the proxy listens, in `family`.
int issue_bind(const Runtime& rt, const socks5::Address& target, int family, int& control,
               sockaddr_storage& local, socklen_t& local_len, std::size_t& proxy,
               std::unique_ptr<socks5::Protection>& protection) {
  socks5::DialRequest request;
  request.command = socks5::wire::Command::bind;
  request.target = target;
  socks5::Dial dial(rt.plan, socks5::DialSocket{}, std::move(request),
                    socks5::Deadline::after(rt.config.timeout));
  socks5::run_blocking(dial);
  if (dial.step().next != socks5::Dial::Next::done) {
    log_line(LogLevel::error, "BIND failed: %s", settings::failure_text(dial, rt.config).c_str());
    const int e = socks5::to_errno(dial.error());
    return e != 0 ? e : ECONNREFUSED;
  }
  proxy = dial.proxy();
  const socks5::Address at = socks5::reachable_bound(dial.bound(), dial.endpoint());
  local_len = sockaddr_for(at, family, local);
  protection = dial.take_protection();
  control = dial.release_fd();
  if (local_len == 0) {
    real().close(control);
    return EAFNOSUPPORT;
  }
  return 0;
}

// Puts `control` in the program's descriptor `fd`, with fd's close-on-exec and O_NONBLOCK.
int install(int control, int fd) {
  const int fd_flags = real().fcntl(fd, F_GETFD);
  const int status = real().fcntl(fd, F_GETFL);
  const int ctl_status = real().fcntl(control, F_GETFL);
  if (status >= 0 && ctl_status >= 0) {
    real().fcntl(control, F_SETFL, (ctl_status & ~O_NONBLOCK) | (status & O_NONBLOCK));
  }
  const int r = real().dup3(control, fd, fd_flags >= 0 && (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
  const int e = errno;
  real().close(control);
  errno = e;
  return r < 0 ? -1 : 0;
}

bool blocking(int fd) {
  const int fl = real().fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK) == 0;
}

// Reads the second reply off `fd`, leaving what follows it (the peer's first octets).
// 0 with the reply, or an errno (EAGAIN for a non-blocking socket that has no whole reply).
int second_reply(int fd, socks5::wire::Reply& reply) {
  std::uint8_t buf[4 + 1 + 255 + 2];
  for (;;) {
    const ssize_t n = real().recv(fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0) return errno;
    if (n == 0) return ECONNABORTED;  // the proxy gave up on the BIND
    auto r = socks5::wire::decode_reply(socks5::ByteView(buf, static_cast<std::size_t>(n)));
    if (!r) return EPROTO;
    if (*r) {
      reply = (*r)->value;
      (void)!real().recv(fd, buf, (*r)->size, 0);
      return 0;
    }
    // Part of a reply: the rest is on its way.
    if (!blocking(fd)) return EAGAIN;
    pollfd p{fd, POLLIN, 0};
    real().poll(&p, 1, 100);
  }
}

// The same through a protection layer: the second reply is exactly one token (RFC 1961
// section 5), taken whole off `fd`; plaintext after the reply in that token goes to `rest`.
int second_reply_protected(int fd, socks5::Protection& protection, socks5::wire::Reply& reply,
                           socks5::Bytes& rest) {
  socks5::Bytes token(4 + 0xFFFF);
  for (;;) {
    ssize_t n = real().recv(fd, token.data(), 4, MSG_PEEK);
    if (n < 0) return errno;
    if (n == 0) return ECONNABORTED;
    std::size_t want = 4;
    if (n == 4) want = 4 + ((std::size_t{token[2]} << 8) | token[3]);
    if (n == 4) n = real().recv(fd, token.data(), want, MSG_PEEK);
    if (n < 0) return errno;
    if (static_cast<std::size_t>(n) == want && want > 4) {
      (void)!real().recv(fd, token.data(), want, 0);
      socks5::Bytes plain;
      auto used = protection.unwrap(socks5::ByteView(token.data(), want), plain);
      if (!used || *used != want) return EPROTO;
      auto r = socks5::wire::decode_reply(plain);
      if (!r || !*r) return EPROTO;
      reply = (*r)->value;
      rest.assign(plain.begin() + static_cast<std::ptrdiff_t>((*r)->size), plain.end());
      return 0;
    }
    // Part of the token: the rest is on its way.
    if (!blocking(fd)) return EAGAIN;
    pollfd p{fd, POLLIN, 0};
    real().poll(&p, 1, 100);
  }
}

}  // namespace

void release_binding(Binding* b) noexcept {
  delete b;
}

namespace {

enum class When : unsigned char { bind, listen };

// Decides for a socket bound to its current local address and, if the policy sends it
// through the proxy, puts a BIND behind `fd`. 1: not for the proxy (left to the kernel);
// 0: done; -1 with errno. At bind() time only a socket beside a proxied connection is taken
// (its address is what a protocol announces next: active FTP reads it back before listen);
// at listen() time the listen mode decides for the rest.
// Loopback and wildcard addresses: never beside a proxied connection.
bool anywhere_or_loopback(const Destination& d) {
  const std::size_t n = d.family == AF_INET ? 4 : 16;
  return is_loopback(d.family, d.ip.data()) ||
         std::all_of(d.ip.begin(), d.ip.begin() + static_cast<long>(n),
                     [](std::uint8_t b) { return b == 0; });
}

int start_binding(int fd, When when, const sockaddr* requested, socklen_t requested_len) {
  // bind() to loopback or to a wildcard address (what servers do): nothing to look at, not
  // even the socket's type.
  if (when == When::bind && requested != nullptr) {
    Destination quick;
    if (!destination_from(requested, requested_len, quick) || anywhere_or_loopback(quick)) {
      return 1;
    }
  }
  const int type = socket_type(fd);
  if (type < 0 || (type & 0xF) != SOCK_STREAM) return 1;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (requested != nullptr) {
    if (requested_len > static_cast<socklen_t>(sizeof ss)) return 1;
    std::memcpy(&ss, requested, requested_len);
    len = requested_len;
  } else if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return 1;
  }
  Beside beside;
  if (!destination_from(reinterpret_cast<sockaddr*>(&ss), len, beside.d)) return 1;
  Guard guard;
  const Runtime& rt = runtime();
  if (rt.config.listen == settings::ListenMode::local) return 1;
  // An address a program read from getsockname() of a proxied connection is the proxy's (no
  // system call to compare); after the kernel's bind, its local ends are compared too.
  beside.kernel_check = requested == nullptr;
  if (!anywhere_or_loopback(beside.d)) for_each_session(look_beside, &beside);
  if (when == When::bind && !beside.found) return 1;
  // Only an address the program got from getsockname() of a proxied connection (the proxy's)
  // is taken before the kernel's bind; a local one was bound first.
  if (requested != nullptr && !beside.reported) return 1;
  Context ctx;
  ctx.beside_proxied = beside.found;
  const Verdict v = classify(rt.config, Operation::listen, beside.d, ctx);
  if (v.action != Action::proxy) return 1;
  auto* b = new (std::nothrow) Binding;
  if (b == nullptr) {
    errno = ENOBUFS;
    return -1;
  }
  b->family = ss.ss_family;
  b->target = beside.peer;
  b->requested = ss;
  b->requested_len = len;
  b->listening = when == When::listen;
  int control = -1;
  const int e = issue_bind(rt, b->target, b->family, control, b->local, b->local_len, b->proxy,
                           b->protection);
  if (e != 0 || install(control, fd) != 0) {
    const int err = e != 0 ? e : errno;
    delete b;
    errno = err;
    return -1;
  }
  g_release_binding = release_binding;
  SessionRef s = session_create(SessionKind::listening, socket_cookie(fd), nullptr, 0);
  if (!s) {
    delete b;
    errno = ENOBUFS;
    return -1;
  }
  s->binding.store(b, std::memory_order_release);
  session_attach(fd, s.get());
  if (log_enabled(LogLevel::info)) {
    const auto at =
        socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&b->local), b->local_len);
    log_line(LogLevel::info, "listen via %s (%s): the proxy listens at %s",
             proxy_text(rt, b->proxy).c_str(), v.why, at ? at->to_string().c_str() : "?");
  }
  return 0;
}

SessionRef binding_session(int fd) {
  SessionKind hint{};
  if (!session_kind_hint(fd, hint) || hint != SessionKind::listening) return SessionRef{};
  SessionRef s = session_of(fd);
  if (!s || s->binding.load(std::memory_order_acquire) == nullptr) return SessionRef{};
  return s;
}

}  // namespace

int bind_bound(int fd, const sockaddr* addr, socklen_t len) noexcept {
  // Loopback and wildcard binds (servers) are left alone without a system call.
  Destination d;
  if (!destination_from(addr, len, d) || anywhere_or_loopback(d)) return 0;
  const int r = start_binding(fd, When::bind, nullptr, 0);
  return r == 1 ? 0 : r;
}

int bind_proxy_address(int fd, const sockaddr* addr, socklen_t len) noexcept {
  return start_binding(fd, When::bind, addr, len);
}

int bind_listen(int fd, int backlog) noexcept {
  (void)backlog;
  if (SessionRef s = binding_session(fd)) {
    Binding* b = s->binding.load(std::memory_order_acquire);
    MutexLock lock(&b->mu);
    b->listening = true;  // the BIND made at bind() time is the listening socket now
    return 0;
  }
  return start_binding(fd, When::listen, nullptr, 0);
}

int bind_undo(int fd) noexcept {
  SessionRef s = binding_session(fd);
  if (!s) return 0;
  Binding* b = s->binding.load(std::memory_order_acquire);
  sockaddr_storage requested{};
  socklen_t requested_len = 0;
  {
    MutexLock lock(&b->mu);
    if (b->listening) {
      errno = EISCONN;  // connect() on a listening socket
      return -1;
    }
    requested = b->requested;
    requested_len = b->requested_len;
  }
  // Bound beside a proxied connection, then connected instead of listening: a plain socket
  // bound to what the program asked for takes the BIND's place.
  const int fresh = real().socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fresh < 0) return -1;
  const int one = 1;
  real().setsockopt(fresh, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // (An address that is the proxy's, not this host's, is not bound: the kernel picks.)
  if (real().bind(fresh, reinterpret_cast<sockaddr*>(&requested), requested_len) != 0 &&
      errno != EADDRNOTAVAIL) {
    const int e = errno;
    real().close(fresh);
    errno = e;
    return -1;
  }
  if (install(fresh, fd) != 0) {
    const int e = errno;
    real().close(fresh);
    errno = e;
    return -1;
  }
  session_detach(fd);
  return 0;
}

bool bind_sockname(int fd, sockaddr* addr, socklen_t* len) noexcept {
  SessionKind hint{};
  if (!session_kind_hint(fd, hint)) return false;
  if (hint == SessionKind::proxied) {
    // A connection through the proxy: the proxy's BND address, as the SOCKS library calls
    // of old did (Rgetsockname); the kernel's answer when the proxy left it unspecified.
    SessionRef p = session_of(fd);
    if (!p || p->kind.load(std::memory_order_acquire) != SessionKind::proxied ||
        p->local_len == 0) {
      return false;
    }
    const socklen_t n = std::min(*len, p->local_len);
    std::memcpy(addr, &p->local, n);
    *len = p->local_len;
    return true;
  }
  SessionRef s = binding_session(fd);
  if (!s) return false;
  Binding* b = s->binding.load(std::memory_order_acquire);
  MutexLock lock(&b->mu);
  const socklen_t n = std::min(*len, b->local_len);
  std::memcpy(addr, &b->local, n);
  *len = b->local_len;
  return true;
}

int bind_accept(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  SessionRef s = binding_session(fd);
  if (!s) return -2;
  Binding* b = s->binding.load(std::memory_order_acquire);
  MutexLock lock(&b->mu);
  if (b->failed || !b->listening) {
    errno = EINVAL;  // as accept() on a socket that does not listen
    return -1;
  }
  socks5::wire::Reply reply;
  socks5::Bytes rest;
  const int got = b->protection ? second_reply_protected(fd, *b->protection, reply, rest)
                                : second_reply(fd, reply);
  if (got != 0) {
    errno = got;
    return -1;
  }
  Guard guard;
  const Runtime& rt = runtime();
  // Protected: the connection goes to a relay, and the program gets a socket of its own
  // connected to it (the new BIND below gets a new context).
  std::unique_ptr<socks5::Protection> protection = std::move(b->protection);
  if (const auto ec = socks5::reply_error(reply.rep)) {
    log_line(LogLevel::error, "BIND via %s: the proxy reports %s", proxy_text(rt, b->proxy).c_str(),
             ec.message().c_str());
  }
  // The connection itself becomes the accepted descriptor (or, protected, the relay's).
  int conn = real().fcntl(fd, (flags & SOCK_CLOEXEC) != 0 ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
  if (conn < 0) return -1;
  int relay_error = 0;
  if (protection && !socks5::reply_error(reply.rep)) {
    const int proxy = conn;
    conn =
        real().socket(b->family, SOCK_STREAM | ((flags & SOCK_CLOEXEC) != 0 ? SOCK_CLOEXEC : 0), 0);
    const int e = conn < 0 ? errno
                           : relay_stream(conn, b->family, proxy, *protection, std::move(rest),
                                          socks5::Deadline::after(rt.config.timeout));
    if (conn < 0) real().close(proxy);
    if (e != 0) {
      if (conn >= 0) real().close(conn);
      conn = -1;
      relay_error = e;
    }
  }
  // A BIND takes one connection: the listening descriptor gets a new one.
  int control = -1;
  const int e = issue_bind(rt, b->target, b->family, control, b->local, b->local_len, b->proxy,
                           b->protection);
  if (e == 0 && install(control, fd) == 0) {
    // A new socket behind the descriptor: a new session (with its identity) takes the binding.
    SessionRef next = session_create(SessionKind::listening, socket_cookie(fd), nullptr, 0);
    if (next) {
      next->binding.store(s->binding.exchange(nullptr, std::memory_order_acq_rel),
                          std::memory_order_release);
      session_attach(fd, next.get());
    }
  } else {
    // No new BIND: the descriptor must not stay an alias of the accepted connection.
    b->failed = true;
    const int fresh = real().socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fresh >= 0) install(fresh, fd);
    log_line(LogLevel::error, "listening socket through %s lost: a new BIND failed",
             proxy_text(rt, b->proxy).c_str());
  }
  if (conn < 0) {
    errno = relay_error;
    return -1;
  }
  const int status = real().fcntl(conn, F_GETFL);
  if (status >= 0) {
    real().fcntl(conn, F_SETFL,
                 (status & ~O_NONBLOCK) | ((flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0));
  }
  if (const auto ec = socks5::reply_error(reply.rep)) {
    real().close(conn);
    errno = socks5::to_errno(ec);
    return -1;
  }
  sockaddr_storage peer{};
  const socklen_t peer_len = sockaddr_for(reply.bound, b->family, peer);
  SessionRef c = session_create(SessionKind::proxied, socket_cookie(conn),
                                reinterpret_cast<sockaddr*>(&peer), peer_len);
  if (c) session_attach(conn, c.get());
  if (addr != nullptr && len != nullptr) {
    const socklen_t n = std::min(*len, peer_len);
    std::memcpy(addr, &peer, n);
    *len = peer_len;
  }
  if (log_enabled(LogLevel::info)) {
    log_line(LogLevel::info, "accepted %s via %s", reply.bound.to_string().c_str(),
             proxy_text(rt, b->proxy).c_str());
  }
  return conn;
}

}  // namespace socksify::shim
