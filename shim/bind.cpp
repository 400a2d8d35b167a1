#include "bind.hpp"
#include "core_names.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <string>

#include "async_connect.hpp"
#include "fake_dns.hpp"
#include "guard.hpp"
#include "hooks/hooks.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "pending_connect.hpp"
#include "policy.hpp"
#include "protected.hpp"
#include "real_libc.hpp"
#include "report.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/wire.hpp"

namespace socksify::shim {

/// A listening socket through the proxy. The program's descriptor is a real listening socket
/// of the library's on loopback, so that every wait API treats it as one: the driver thread
/// (async_connect.hpp) keeps a BIND open at the proxy; when a peer arrives it hands the
/// connection over through `chan` (SCM_RIGHTS, with the second reply) and rings the doorbell:
/// a connection of its own to the loopback listener, which makes it readable. accept() takes
/// the doorbell connection off the listener (closes it) and returns the handed-over one. A
/// forked child shares the listener and the channel, so pre-forked servers accept from it too;
/// the process that listened keeps the BINDs going.
struct Binding {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // local, listening, owed, job
  int family = AF_INET;                            // the program's socket's
  sockaddr_storage local{};  // the current BIND's first reply: where the proxy listens
  socklen_t local_len = 0;
  socks5::Address target;  // the BIND request's DST (the expected peer, or zeros)
  std::size_t proxy = 0;
  sockaddr_storage requested{};  // the address the program bound the socket to
  socklen_t requested_len = 0;
  bool listening = false;   // listen() was called (a BIND made at bind() time waits for it)
  int owed = 0;             // doorbells not rung yet (a peer came before listen())
  sockaddr_storage door{};  // the loopback listener's address (the doorbell's)
  socklen_t door_len = 0;
  int chan_rx = -1;               // accept() reads hand-overs here
  int chan_tx = -1;               // the driver writes them here
  PendingConnect* job = nullptr;  // the BIND under way in the driver (this process's)
  int failures = 0;               // BINDs failed in a row (the next waits longer)
  // The next BIND's first reply is awaited (the one before took its peer): getsockname()
  // waits for it (bounded), so that it names where the proxy listens now.
  bool rebinding = false;
  pthread_cond_t made = PTHREAD_COND_INITIALIZER;
  // GSSAPI above level clear: the current BIND's protection layer. The second reply is one
  // token, and the accepted connection goes to a relay (protected.hpp).
  std::unique_ptr<socks5::Protection> protection;
};

/// What the driver hands over per peer (with the connection, SCM_RIGHTS, when error is 0).
struct Handover {
  int error = 0;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  std::size_t proxy = 0;  // the proxy that BIND went through (for accept's line)
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
  socks5::Dial dial(rt.plan(), socks5::DialSocket{}, std::move(request),
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

// Reads the second reply off the control connection `fd` (non-blocking), leaving what
// follows it (the peer's first octets). 0 with the reply, or an errno (EAGAIN: not whole yet).
int second_reply(int fd, socks5::wire::Reply& reply) {
  std::uint8_t buf[4 + 1 + 255 + 2];
  const ssize_t n = real().recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EWOULDBLOCK ? EAGAIN : errno;
  if (n == 0) return ECONNABORTED;  // the proxy gave up on the BIND
  auto r = socks5::wire::decode_reply(socks5::ByteView(buf, static_cast<std::size_t>(n)));
  if (!r) return EPROTO;
  if (!*r) return EAGAIN;  // part of a reply: the rest is on its way
  reply = (*r)->value;
  (void)!real().recv(fd, buf, (*r)->size, MSG_DONTWAIT);
  return 0;
}

// The same through a protection layer: the second reply is exactly one token (RFC 1961
// section 5), taken whole off `fd`; plaintext after the reply in that token goes to `rest`.
int second_reply_protected(int fd, socks5::Protection& protection, socks5::wire::Reply& reply,
                           socks5::Bytes& rest) {
  socks5::Bytes token(4 + 0xFFFF);
  ssize_t n = real().recv(fd, token.data(), 4, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EWOULDBLOCK ? EAGAIN : errno;
  if (n == 0) return ECONNABORTED;
  if (n < 4) return EAGAIN;
  const std::size_t want = 4 + ((std::size_t{token[2]} << 8) | token[3]);
  n = real().recv(fd, token.data(), want, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EWOULDBLOCK ? EAGAIN : errno;
  if (static_cast<std::size_t>(n) < want) return EAGAIN;
  (void)!real().recv(fd, token.data(), want, MSG_DONTWAIT);
  socks5::Bytes plain;
  auto used = protection.unwrap(socks5::ByteView(token.data(), want), plain);
  if (!used || *used != want) return EPROTO;
  auto r = socks5::wire::decode_reply(plain);
  if (!r || !*r) return EPROTO;
  reply = (*r)->value;
  rest.assign(plain.begin() + static_cast<std::ptrdiff_t>((*r)->size), plain.end());
  return 0;
}

// The doorbell: a connection of the library's to the program's loopback listener, which makes
// it readable (accept() takes it off and closes it). Before listen() (a BIND made at bind()
// time whose peer came early) it is owed until then. Called with b.mu held.
void ring(Binding& b) {
  if (!b.listening) {
    ++b.owed;
    return;
  }
  const int d = real().socket(b.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (d < 0) return;
  // Loopback: the kernel completes it at once, unless the listener's queue is full.
  const timeval bound{1, 0};
  real().setsockopt(d, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  if (real().connect(d, reinterpret_cast<sockaddr*>(&b.door), b.door_len) != 0) ++b.owed;
  real().close(d);
}

// Sends one hand-over (and the connection `conn`, when >= 0) to whoever accepts next.
void hand_over(Binding& b, const Handover& h, int conn) {
  iovec iov{const_cast<Handover*>(&h), sizeof h};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (conn >= 0) {
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &conn, sizeof conn);
  }
  (void)!real().sendmsg(b.chan_tx, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

bool peer_ready(PendingConnect& p, short events);

// How long the next BIND waits after `failures` in a row: none, then 250 ms doubling to 10 s.
std::chrono::steady_clock::time_point next_start(int failures) {
  const auto now = std::chrono::steady_clock::now();
  if (failures == 0) return now;
  const int shift = std::min(failures - 1, 6);
  return now + std::min<std::chrono::milliseconds>(std::chrono::milliseconds(250L << shift),
                                                   std::chrono::seconds(10));
}

bool bind_made(PendingConnect& p, int e, bool forked_child);

// The job goes on with a new BIND (the one before took its connection, or failed), started
// by the driver at `at`. Called with p.mu held, from the driver.
void rebind(PendingConnect& p, Binding& b, std::chrono::steady_clock::time_point at) {
  const Runtime& rt = runtime();
  socks5::DialRequest request;
  request.command = socks5::wire::Command::bind;
  request.target = b.target;
  p.dial.~Dial();
  new (&p.dial) socks5::Dial(rt.plan(), socks5::DialSocket{}, std::move(request),
                             socks5::Deadline(at + rt.config.timeout));
  p.on_done = bind_made;
  p.on_ready = nullptr;
  p.delayed = true;
  p.until = at;
  b.rebinding = true;
}

// The driver: a new BIND's dial ended. Its first reply is where the proxy listens now; the
// control connection is then watched for the second.
bool bind_made(PendingConnect& p, int e, bool forked_child) {
  if (forked_child) return false;  // the parent's driver runs this listener's BINDs
  auto* b = static_cast<Binding*>(p.job);
  const Runtime& rt = runtime();
  MutexLock lock(&b->mu);
  if (e == 0) {
    const socks5::Address at = socks5::reachable_bound(p.dial.bound(), p.dial.endpoint());
    sockaddr_storage local{};
    const socklen_t local_len = sockaddr_for(at, b->family, local);
    if (local_len != 0) {
      b->local = local;
      b->local_len = local_len;
      b->proxy = p.dial.proxy();
      b->protection = p.dial.take_protection();
      watch(p, p.dial.release_fd(), peer_ready);
      b->rebinding = false;
      pthread_cond_broadcast(&b->made);
      if (b->failures > 0) {
        log_line(LogLevel::error,
                 "listening socket through %s works again: the proxy listens at %s",
                 proxy_text(rt, b->proxy).c_str(), at.to_string().c_str());
      }
      return true;
    }
  }
  // Refused, or the proxy unreachable: said once (and again when it works), retried later.
  if (b->failures++ == 0) {
    log_line(LogLevel::error, "BIND failed: %s; retrying",
             e == 0 ? "an unusable address in the reply"
                    : settings::failure_text(p.dial, rt.config).c_str());
  }
  rebind(p, *b, next_start(b->failures));
  return true;
}

// The driver: the control connection of the current BIND is readable (the second reply: a
// peer connected, or the proxy gave up). The connection goes to whoever accepts next, the
// doorbell rings, and the next BIND starts.
bool peer_ready(PendingConnect& p, short events) {
  (void)events;
  auto* b = static_cast<Binding*>(p.job);
  if (b == nullptr) return true;
  const Runtime& rt = runtime();
  const int control = p.watch_fd;
  socks5::wire::Reply reply;
  socks5::Bytes rest;
  int e = b->protection ? second_reply_protected(control, *b->protection, reply, rest)
                        : second_reply(control, reply);
  if (e == EAGAIN) return false;  // not whole yet
  unwatch(p);  // the connection leaves the driver (its number may be reused at once)
  Handover h;
  h.proxy = b->proxy;  // the driver's own (it writes b->proxy too)
  int conn = -1;
  if (e == 0 && socks5::reply_error(reply.rep)) {
    const auto ec = socks5::reply_error(reply.rep);
    log_line(LogLevel::error, "BIND via %s: the proxy reports %s", proxy_text(rt, b->proxy).c_str(),
             ec.message().c_str());
    e = socks5::to_errno(ec);
    if (e == 0) e = ECONNABORTED;
  }
  if (e == 0) {
    conn = control;
    if (b->protection) {
      // Protected: the connection goes to a relay, and the program gets a socket of its own
      // connected to it.
      const int mine = real().socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const int r = mine < 0
                        ? errno
                        : relay_stream(mine, b->family, control, *b->protection, std::move(rest),
                                       socks5::Deadline::after(rt.config.timeout));
      conn = r == 0 ? mine : -1;
      if (r != 0 && mine >= 0) real().close(mine);
      if (r != 0) e = r;
    }
    h.peer_len = sockaddr_for(reply.bound, b->family, h.peer);
  } else {
    real().close(control);
    if (e != ECONNABORTED && e != EPROTO) e = ECONNABORTED;
    log_line(LogLevel::error, "listening socket through %s: the proxy ended the BIND (%s)",
             proxy_text(rt, b->proxy).c_str(), std::strerror(e));
  }
  h.error = conn >= 0 ? 0 : (e != 0 ? e : ECONNABORTED);
  {
    MutexLock lock(&b->mu);
    hand_over(*b, h, conn);
    if (conn >= 0) real().close(conn);
    ring(*b);
    b->failures = h.error == 0 ? 0 : b->failures + 1;
    rebind(p, *b, next_start(b->failures));
  }
  return false;  // the job goes on (its next BIND)
}

}  // namespace

void release_binding(Binding* b) noexcept {
  if (b == nullptr) return;
  cancel_job(b->job);  // the driver lets go first (never calls back after this)
  if (b->chan_rx >= 0) real().close(b->chan_rx);
  if (b->chan_tx >= 0) real().close(b->chan_tx);
  delete b;
}

namespace {

enum class When : unsigned char { bind, listen };

// Loopback and wildcard addresses: never beside a proxied connection.
bool anywhere_or_loopback(const Destination& d) {
  const std::size_t n = d.family == AF_INET ? 4 : 16;
  return is_loopback(d.family, d.ip.data()) ||
         std::all_of(d.ip.begin(), d.ip.begin() + static_cast<long>(n),
                     [](std::uint8_t b) { return b == 0; });
}

// The program's listener: a socket of the library's on loopback in `family`, listening when
// `listen` (with `backlog`), put in the program's descriptor; its address in b.door.
int make_listener(Binding& b, int fd, bool listen, int backlog) {
  const int l = real().socket(b.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) return errno;
  sockaddr_storage lo{};
  socklen_t lo_len = 0;
  if (b.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&lo);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lo_len = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&lo);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    lo_len = sizeof *in6;
  }
  b.door_len = sizeof b.door;
  if (real().bind(l, reinterpret_cast<sockaddr*>(&lo), lo_len) != 0 ||
      (listen && real().listen(l, std::max(backlog, 64)) != 0) ||
      real().getsockname(l, reinterpret_cast<sockaddr*>(&b.door), &b.door_len) != 0) {
    const int e = errno;
    real().close(l);
    return e;
  }
  return install(l, fd) == 0 ? 0 : errno;
}

// Decides for a socket bound to its current local address and, if the policy sends it
// through the proxy, makes it a listener through the proxy. 1: not for the proxy (left to the
// kernel); 0: done; -1 with errno. At bind() time only a socket beside a proxied connection
// is taken (its address is what a protocol announces next: active FTP reads it back before
// listen); at listen() time the listen mode decides for the rest.
int start_binding(int fd, When when, const sockaddr* requested, socklen_t requested_len,
                  int backlog) {
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
  // The first BIND here (getsockname must name where the proxy listens from now on); the
  // ones after it in the background.
  int control = -1;
  int e = issue_bind(rt, b->target, b->family, control, b->local, b->local_len, b->proxy,
                     b->protection);
  int chan[2] = {-1, -1};
  if (e == 0 && real().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) != 0) {
    e = errno;
  }
  b->chan_rx = chan[0];
  b->chan_tx = chan[1];
  if (e == 0) e = make_listener(*b, fd, b->listening, backlog);
  if (e == 0) {
    b->job = async_watch(rt, control, peer_ready, b);
    if (b->job == nullptr) e = EAGAIN;  // no driver thread (the BINDs need one)
  }
  if (e != 0) {
    if (control >= 0 && b->job == nullptr) real().close(control);
    release_binding(b);
    errno = e;
    return -1;
  }
  g_release_binding = release_binding;
  SessionRef s = session_create(SessionKind::listening, socket_cookie(fd), nullptr, 0);
  if (!s) {
    release_binding(b);
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
  const int r = start_binding(fd, When::bind, nullptr, 0, 0);
  return r == 1 ? 0 : r;
}

int bind_proxy_address(int fd, const sockaddr* addr, socklen_t len) noexcept {
  return start_binding(fd, When::bind, addr, len, 0);
}

int bind_listen(int fd, int backlog) noexcept {
  if (SessionRef s = binding_session(fd)) {
    Binding* b = s->binding.load(std::memory_order_acquire);
    MutexLock lock(&b->mu);
    if (!b->listening) {
      // The BIND made at bind() time: its loopback listener listens now, and the peers that
      // came meanwhile are announced.
      if (real().listen(fd, std::max(backlog, 64)) != 0) return -1;
      b->listening = true;
      for (int owed = b->owed; owed > 0; --owed) {
        --b->owed;
        ring(*b);
      }
    }
    return 0;
  }
  return start_binding(fd, When::listen, nullptr, 0, backlog);
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
  if (b->rebinding) {
    // The next BIND is under way in this process's driver: its address, when it comes
    // (within the dial's deadline; else the last one).
    Guard guard;
    const auto limit = std::chrono::system_clock::now() + runtime().config.timeout;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(limit.time_since_epoch());
    timespec until{static_cast<time_t>(ns.count() / 1000000000),
                   static_cast<long>(ns.count() % 1000000000)};
    while (b->rebinding && b->job != nullptr &&
           pthread_cond_timedwait(&b->made, &b->mu, &until) == 0) {
    }
  }
  const socklen_t n = std::min(*len, b->local_len);
  std::memcpy(addr, &b->local, n);
  *len = b->local_len;
  return true;
}

int bind_accept(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  SessionRef s = binding_session(fd);
  if (!s) return -2;
  Binding* b = s->binding.load(std::memory_order_acquire);
  {
    MutexLock lock(&b->mu);
    if (!b->listening) {
      errno = EINVAL;  // as accept() on a socket that does not listen
      return -1;
    }
  }
  // The doorbell: the kernel's own accept on the loopback listener, blocking or not as the
  // program's socket is (and interrupted by signals as it is).
  const int door = real().accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (door < 0) return -1;
  real().close(door);
  // Its hand-over was sent before it rang (a foreign connection to the loopback listener
  // finds none: ECONNABORTED, and the real one's doorbell still comes).
  Handover h;
  iovec iov{&h, sizeof h};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  const ssize_t n = real().recvmsg(
      b->chan_rx, &m, MSG_DONTWAIT | ((flags & SOCK_CLOEXEC) != 0 ? MSG_CMSG_CLOEXEC : 0));
  int conn = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(&conn, CMSG_DATA(c), sizeof conn);
    }
  }
  if (n != static_cast<ssize_t>(sizeof h) || h.error != 0 || conn < 0) {
    if (conn >= 0) real().close(conn);
    errno = n == static_cast<ssize_t>(sizeof h) && h.error != 0 ? h.error : ECONNABORTED;
    return -1;
  }
  const int status = real().fcntl(conn, F_GETFL);
  if (status >= 0) {
    real().fcntl(conn, F_SETFL,
                 (status & ~O_NONBLOCK) | ((flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0));
  }
  SessionRef c = session_create(SessionKind::proxied, socket_cookie(conn),
                                reinterpret_cast<sockaddr*>(&h.peer), h.peer_len);
  if (c) session_attach(conn, c.get());
  if (addr != nullptr && len != nullptr) {
    const socklen_t k = std::min(*len, h.peer_len);
    std::memcpy(addr, &h.peer, k);
    *len = h.peer_len;
  }
  if (log_enabled(LogLevel::info)) {
    Guard guard;
    const Runtime& rt = runtime();
    const auto peer =
        socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&h.peer), h.peer_len);
    log_line(LogLevel::info, "accepted %s via %s", peer ? peer->to_string().c_str() : "?",
             proxy_text(rt, h.proxy).c_str());
  }
  return conn;
}

}  // namespace socksify::shim
