#include "udp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "real_libc.hpp"
#include "report.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/wire.hpp"

namespace socksify::shim {

/// A UDP ASSOCIATE: its control connection, its relay, and what the program connected to.
struct Association {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // peer and reassembly
  int control = -1;
  int family = AF_INET;  // the program's socket's
  std::size_t proxy = 0;
  sockaddr_storage relay{};
  socklen_t relay_len = 0;
  std::atomic<int> dead{0};  // the errno every send gets once the association ended
  // The program's connect(): its peer, as it named it.
  bool connected = false;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  // Fragments being reassembled (RFC 1928 section 7): their data, the first one's header,
  // the highest position seen, and when the first arrived.
  std::vector<std::uint8_t> frags;
  socks5::Address frag_source;
  int frag_last = 0;
  std::chrono::steady_clock::time_point frag_started{};
  // Stub mode (no proxy): DNS queries to a local stub are answered here (dns_answer.hpp) and
  // the answers delivered as real datagrams from `helper`, a loopback socket of ours; the
  // program sees them come from the stub it asked.
  bool stub = false;
  int helper = -1;
  sockaddr_storage helper_addr{};
  socklen_t helper_len = 0;
  sockaddr_storage stub_addr{};
  socklen_t stub_len = 0;
  // GSSAPI (RFC 1961 section 5): each datagram, header and data, is one wrapped token in the
  // encapsulation frame. The context's sequence numbers make wrap and unwrap one at a time.
  std::unique_ptr<socks5::Protection> protection;
  std::size_t max_plain = 0;  // the largest header + data one token holds
  pthread_mutex_t gss_mu = PTHREAD_MUTEX_INITIALIZER;
};

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReassemblyTimeout = std::chrono::seconds(5);  // at least 5 s, as section 7 asks
constexpr std::size_t kMaxHeader = 4 + 1 + 255 + 2;

pthread_mutex_t g_associating = PTHREAD_MUTEX_INITIALIZER;  // one association made at a time

// The section 7 header for `d` into `out` (kMaxHeader octets); its length.
std::size_t encode_header(const Destination& d, std::uint8_t* out) {
  std::size_t n = 0;
  out[n++] = 0;
  out[n++] = 0;
  out[n++] = 0;  // FRAG: never sent fragmented
  if (!d.name.empty()) {
    out[n++] = 0x03;
    const std::size_t len = std::min<std::size_t>(d.name.size(), 255);
    out[n++] = static_cast<std::uint8_t>(len);
    std::memcpy(out + n, d.name.data(), len);
    n += len;
  } else if (d.family == AF_INET) {
    out[n++] = 0x01;
    std::memcpy(out + n, d.ip.data(), 4);
    n += 4;
  } else {
    out[n++] = 0x04;
    std::memcpy(out + n, d.ip.data(), 16);
    n += 16;
  }
  out[n++] = static_cast<std::uint8_t>(d.port >> 8);
  out[n++] = static_cast<std::uint8_t>(d.port & 0xFF);
  return n;
}

// Sends header + the program's data as one wrapped token (RFC 1961 section 5); returns the
// program's data length.
ssize_t protected_send(int fd, Association& a, const std::uint8_t* header, std::size_t hlen,
                       const msghdr& msg, int flags) {
  socks5::Bytes plain(header, header + hlen);
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) {
    const auto* p = static_cast<const std::uint8_t*>(msg.msg_iov[i].iov_base);
    plain.insert(plain.end(), p, p + msg.msg_iov[i].iov_len);
  }
  // One datagram is one token: a datagram too large for one token cannot be sent.
  if (plain.size() > a.max_plain) {
    errno = EMSGSIZE;
    return -1;
  }
  socks5::Bytes token;
  {
    MutexLock lock(&a.gss_mu);
    auto w = a.protection->wrap(plain, token);
    if (!w) {
      errno = w.error() == socks5::Errc::message_too_long ? EMSGSIZE : EPROTO;
      return -1;
    }
  }
  iovec iov{token.data(), token.size()};
  msghdr out{};
  out.msg_iov = &iov;
  out.msg_iovlen = 1;
  out.msg_control = msg.msg_control;
  out.msg_controllen = msg.msg_controllen;
  const ssize_t n = real().sendmsg(fd, &out, flags & ~MSG_FASTOPEN);
  if (n < 0) return -1;
  return static_cast<ssize_t>(plain.size() - hlen);
}

// Makes the association for `fd`: the control connection, UDP ASSOCIATE, and `fd` connected
// to the relay. nullptr with errno on failure (and one log line).
Association* associate(int fd, const Runtime& rt) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return nullptr;
  const int family = local.ss_family;
  if (family != AF_INET && family != AF_INET6) {
    errno = EAFNOSUPPORT;
    return nullptr;
  }
  if (rt.config.chain == socks5::ChainMode::strict && rt.config.proxies.size() > 1) {
    // The relay of the last hop is not reachable from here, and SOCKS has no UDP chaining.
    log_line(LogLevel::error, "UDP through a strict chain of %zu proxies is not supported",
             rt.config.proxies.size());
    errno = EOPNOTSUPP;
    return nullptr;
  }
  // The address the datagrams will come from, when known (a bound port); zeros otherwise.
  socks5::Address from = socks5::Address::ipv4({0, 0, 0, 0}, 0);
  if (auto a = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), local_len)) {
    if (a->port() != 0) from = *a;
  }
  socks5::DialRequest request;
  request.command = socks5::wire::Command::udp_associate;
  request.target = from;
  socks5::Dial dial(rt.plan, socks5::DialSocket{}, std::move(request),
                    socks5::Deadline::after(rt.config.timeout));
  socks5::run_blocking(dial);
  if (dial.step().next != socks5::Dial::Next::done) {
    log_line(LogLevel::error, "UDP ASSOCIATE failed: %s",
             settings::failure_text(dial, rt.config).c_str());
    errno = socks5::to_errno(dial.error());
    if (errno == 0) errno = ECONNREFUSED;
    return nullptr;
  }
  auto* a = new (std::nothrow) Association;
  if (a == nullptr) {
    errno = ENOBUFS;
    return nullptr;
  }
  a->family = family;
  a->proxy = dial.proxy();
  const socks5::Address relay = socks5::reachable_bound(dial.bound(), dial.endpoint());
  a->relay_len = sockaddr_for(relay, family, a->relay);
  a->protection = dial.take_protection();
  if (auto* gss = dynamic_cast<socks5::GssProtection*>(a->protection.get())) {
    gss->set_datagram(true);
    a->max_plain = gss->max_plain();
  }
  a->control = dial.release_fd();
  if (a->relay_len == 0 ||
      real().connect(fd, reinterpret_cast<sockaddr*>(&a->relay), a->relay_len) != 0) {
    const int e = a->relay_len == 0 ? EAFNOSUPPORT : errno;
    log_line(LogLevel::error, "UDP relay %s of proxy %s unusable on this socket: %s",
             relay.to_string().c_str(), proxy_text(rt, a->proxy).c_str(), std::strerror(e));
    real().close(a->control);
    delete a;
    errno = e;
    return nullptr;
  }
  if (log_enabled(LogLevel::info)) {
    log_line(LogLevel::info, "UDP associated via %s: relay %s", proxy_text(rt, a->proxy).c_str(),
             relay.to_string().c_str());
  }
  return a;
}

// 0 while the association lives; the errno to fail with once the proxy has closed (or said
// anything on) the control connection. One poll, no wait.
int association_error(Association& a) {
  if (a.stub) return 0;
  if (const int e = a.dead.load(std::memory_order_acquire); e != 0) return e;
  pollfd p{a.control, POLLIN | POLLRDHUP, 0};
  if (real().poll(&p, 1, 0) == 0) return 0;
  int expected = 0;
  if (a.dead.compare_exchange_strong(expected, ECONNRESET)) {
    const Runtime* rt = runtime_if_ready();
    log_line(LogLevel::error,
             "UDP association with proxy %s ended: the proxy closed its control connection",
             rt != nullptr ? proxy_text(*rt, a.proxy).c_str() : "?");
  }
  return ECONNRESET;
}

ssize_t fail(int e) {
  errno = e;
  return -1;
}

// Copies `data` into the program's iovecs; returns how much fit.
std::size_t scatter(const msghdr& msg, const std::uint8_t* data, std::size_t len) {
  std::size_t done = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen && done < len; ++i) {
    const std::size_t n = std::min(len - done, msg.msg_iov[i].iov_len);
    if (n > 0) std::memcpy(msg.msg_iov[i].iov_base, data + done, n);
    done += n;
  }
  return done;
}

std::size_t capacity(const msghdr& msg) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) n += msg.msg_iov[i].iov_len;
  return n;
}

// The source the program sees: its connected peer if it has one, else the header's address
// in the socket's family (a name: the fake address it stands for, when there is one).
void set_source(Association& a, const socks5::Address& src, msghdr* msg) {
  if (msg->msg_name == nullptr) return;
  sockaddr_storage ss{};
  socklen_t len = 0;
  {
    MutexLock lock(&a.mu);
    if (a.connected) {
      ss = a.peer;
      len = a.peer_len;
    }
  }
  if (len == 0 && src.is_ip()) len = sockaddr_for(src, a.family, ss);
  if (len == 0 && !src.is_ip()) {
    const Runtime* rt = runtime_if_ready();
    if (rt != nullptr && rt->dns != nullptr) {
      if (auto n = rt->dns->lookup_or_add(src.host())) {
        if (a.family == AF_INET && n->has_v4()) {
          sockaddr_in in{};
          in.sin_family = AF_INET;
          in.sin_port = htons(src.port());
          rt->dns->address4(*n, reinterpret_cast<std::uint8_t*>(&in.sin_addr));
          std::memcpy(&ss, &in, sizeof in);
          len = sizeof in;
        } else if (a.family == AF_INET6) {
          sockaddr_in6 in6{};
          in6.sin6_family = AF_INET6;
          in6.sin6_port = htons(src.port());
          rt->dns->address6(*n, in6.sin6_addr.s6_addr);
          std::memcpy(&ss, &in6, sizeof in6);
          len = sizeof in6;
        }
      }
    }
  }
  const socklen_t n = std::min(msg->msg_namelen, len);
  std::memcpy(msg->msg_name, &ss, n);
  msg->msg_namelen = len;
}

// A fragment (FRAG != 0) of a datagram: queued; true with the whole datagram in `out` (and
// its source) when this one ends the sequence. Called with a.mu held.
bool reassemble(Association& a, std::uint8_t frag, const socks5::Address& src,
                const std::uint8_t* data, std::size_t len, std::vector<std::uint8_t>& out,
                socks5::Address& out_src) {
  const int position = frag & 0x7F;
  const bool last = (frag & 0x80) != 0;
  const auto now = Clock::now();
  // A position not above the last one starts a new sequence, as does a stale queue.
  if (position <= a.frag_last || (a.frag_last > 0 && now - a.frag_started > kReassemblyTimeout)) {
    a.frags.clear();
    a.frag_last = 0;
  }
  if (a.frag_last == 0) {
    a.frag_started = now;
    a.frag_source = src;
  }
  a.frags.insert(a.frags.end(), data, data + len);
  a.frag_last = position;
  if (!last) return false;
  out.swap(a.frags);
  out_src = a.frag_source;
  a.frags.clear();
  a.frag_last = 0;
  return true;
}

bool same_address(const sockaddr_storage& a, socklen_t alen, const void* b, socklen_t blen) {
  return alen == blen && std::memcmp(&a, b, alen) == 0;
}

// The loopback address of `family` at port 0.
socklen_t loopback_any(int family, sockaddr_storage& out) {
  out = sockaddr_storage{};
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  in6->sin6_family = AF_INET6;
  in6->sin6_addr = in6addr_loopback;
  return sizeof(sockaddr_in6);
}

// Stub mode for `fd`. Without the library such a socket is on loopback, connected to the stub
// (glibc's resolver connects it): only the stub's datagrams reach it. Here it is connected to
// the helper instead, a loopback socket of ours that delivers the answers, so it is on
// loopback and hears nobody else (the kernel filters by its peer); the helper is connected
// back to it. getpeername still says the stub (the session answers it).
Association* make_stub(int fd, const sockaddr* stub, socklen_t stub_len) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return nullptr;
  const int family = local.ss_family;
  if (family != AF_INET && family != AF_INET6) {
    errno = EAFNOSUPPORT;
    return nullptr;
  }
  auto* a = new (std::nothrow) Association;
  if (a == nullptr) {
    errno = ENOBUFS;
    return nullptr;
  }
  a->stub = true;
  a->family = family;
  a->helper = real().socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage helper{};
  const socklen_t helper_len = loopback_any(family, helper);
  a->helper_len = sizeof a->helper_addr;
  sockaddr_storage me{};
  socklen_t me_len = sizeof me;
  // The helper on loopback; the program's socket connected to it (the kernel binds it to
  // loopback if it was not bound); the helper connected back to the program's address.
  if (a->helper < 0 ||
      real().bind(a->helper, reinterpret_cast<sockaddr*>(&helper), helper_len) != 0 ||
      real().getsockname(a->helper, reinterpret_cast<sockaddr*>(&a->helper_addr), &a->helper_len) !=
          0 ||
      real().connect(fd, reinterpret_cast<sockaddr*>(&a->helper_addr), a->helper_len) != 0 ||
      real().getsockname(fd, reinterpret_cast<sockaddr*>(&me), &me_len) != 0 ||
      real().connect(a->helper, reinterpret_cast<sockaddr*>(&me), me_len) != 0) {
    const int e = errno;
    release_association(a);
    errno = e;
    return nullptr;
  }
  a->stub_len = std::min<socklen_t>(stub_len, sizeof a->stub_addr);
  std::memcpy(&a->stub_addr, stub, a->stub_len);
  return a;
}

// A query for a name a direct rule keeps local: asked of the stub itself from a socket of
// ours (the program's hears only the helper), its answer handed over through the helper.
// Bounded: the local stub answers in milliseconds, or (forwarding upstream) within the
// resolver's own retry time; after kStubForward the query is dropped as a lost datagram is.
constexpr int kStubForwardMs = 2000;

void forward_to_stub(Association& a, const std::uint8_t* q, std::size_t n) {
  sockaddr_storage to = a.stub_addr;
  const int out = real().socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (out < 0) return;
  std::uint8_t answer[4096];
  if (real().connect(out, reinterpret_cast<sockaddr*>(&to), a.stub_len) == 0 &&
      real().send(out, q, n, 0) == static_cast<ssize_t>(n)) {
    pollfd p{out, POLLIN, 0};
    if (real().poll(&p, 1, kStubForwardMs) == 1) {
      const ssize_t got = real().recv(out, answer, sizeof answer, MSG_DONTWAIT);
      // The answer must be to this query (its ID): anything else is dropped.
      if (got >= 12 && n >= 2 && answer[0] == q[0] && answer[1] == q[1]) {
        (void)!real().send(a.helper, answer, static_cast<std::size_t>(got), MSG_DONTWAIT);
      }
    }
  }
  real().close(out);
}

// A query to the stub: answered here (or, for a name a direct rule keeps local, asked of the
// stub itself). Returns the query's length as the send would.
ssize_t stub_query(Association& a, const Runtime& rt, const msghdr& msg) {
  std::uint8_t q[4096];
  std::size_t n = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen && n < sizeof q; ++i) {
    const std::size_t k = std::min(sizeof q - n, msg.msg_iov[i].iov_len);
    std::memcpy(q + n, msg.msg_iov[i].iov_base, k);
    n += k;
  }
  const std::size_t total = capacity(msg);
  std::uint8_t out[4096 + 32];
  const StubReply r = answer_stub_query(rt.config, rt.dns, std::span<const std::uint8_t>(q, n),
                                        std::span<std::uint8_t>(out));
  if (r.kind == StubReply::Kind::not_query) {
    log_line(LogLevel::info, "a message to the local DNS stub that is not a query: dropped");
    return static_cast<ssize_t>(total);
  }
  if (r.kind == StubReply::Kind::pass_on) {
    forward_to_stub(a, q, n);
    return static_cast<ssize_t>(total);
  }
  if (r.length > 0) (void)!real().send(a.helper, out, r.length, MSG_DONTWAIT);
  log_line(LogLevel::debug, "answered the local DNS stub's query for %s (type %u) here", r.name,
           static_cast<unsigned>(r.qtype));
  return static_cast<ssize_t>(total);
}

}  // namespace

void release_association(Association* a) noexcept {
  if (a == nullptr) return;
  if (a->control >= 0) real().close(a->control);
  if (a->helper >= 0) real().close(a->helper);
  delete a;
}

namespace {

// The udp session of `fd` as `lookup` finds it (verified or not), else an empty ref.
SessionRef associated(int fd, SessionRef (*lookup)(int) noexcept) {
  SessionKind hint{};
  if (!session_kind_hint(fd, hint) || hint != SessionKind::udp) return SessionRef{};
  SessionRef s = lookup(fd);
  if (!s || s->kind.load(std::memory_order_acquire) != SessionKind::udp) return SessionRef{};
  if (s->udp.load(std::memory_order_acquire) == nullptr) return SessionRef{};
  return s;
}

// A new udp session for `fd` owning `a` (nullptr: the making failed, errno set).
SessionRef attach(int fd, Association* a) {
  if (a == nullptr) return SessionRef{};
  SessionRef s = session_create(SessionKind::udp, socket_cookie(fd), nullptr, 0);
  if (!s) {
    release_association(a);
    errno = ENOBUFS;
    return SessionRef{};
  }
  s->udp.store(a, std::memory_order_release);
  session_attach(fd, s.get());
  return s;
}

}  // namespace

SessionRef udp_of_unverified(int fd) noexcept {
  return associated(fd, session_peek);
}

SessionRef udp_of(int fd) noexcept {
  return associated(fd, session_of);
}

SessionRef udp_session(int fd, const Runtime& rt) noexcept {
  if (SessionRef s = udp_of(fd)) return s;
  MutexLock lock(&g_associating);
  if (SessionRef s = udp_of(fd)) return s;  // another thread made it meanwhile
  g_release_association = release_association;
  return attach(fd, associate(fd, rt));
}

SessionRef stub_session(int fd, const sockaddr* stub, socklen_t stub_len) noexcept {
  if (SessionRef s = udp_of(fd)) return s;
  MutexLock lock(&g_associating);
  if (SessionRef s = udp_of(fd)) return s;
  g_release_association = release_association;
  return attach(fd, make_stub(fd, stub, stub_len));
}

bool is_stub(Session& s) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  return a != nullptr && a->stub;
}

int stub_connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  SessionRef s = stub_session(fd, addr, len);
  if (!s) return -1;
  Association* a = s->udp.load(std::memory_order_acquire);
  if (!a->stub) {
    errno = EISCONN;  // associated with the proxy already
    return -1;
  }
  MutexLock lock(&a->mu);
  a->peer_len = std::min<socklen_t>(len, sizeof a->peer);
  std::memcpy(&a->peer, addr, a->peer_len);
  a->connected = true;
  return 0;
}

ssize_t udp_send(int fd, Session& s, const Runtime& rt, const Destination& d, const msghdr& msg,
                 int flags) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  if (a->stub) return stub_query(*a, rt, msg);
  if (const int e = association_error(*a); e != 0) return fail(e);
  std::uint8_t header[kMaxHeader];
  const std::size_t hlen = encode_header(d, header);
  if (a->protection) return protected_send(fd, *a, header, hlen, msg, flags);
  // The header in front of the program's own iovecs: no copy of the data.
  constexpr std::size_t kInline = 16;
  iovec inline_iov[kInline + 1];
  iovec* iov = inline_iov;
  std::unique_ptr<iovec[]> more;
  if (msg.msg_iovlen > kInline) {
    more.reset(new (std::nothrow) iovec[msg.msg_iovlen + 1]);
    if (!more) return fail(ENOBUFS);
    iov = more.get();
  }
  iov[0] = iovec{header, hlen};
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) iov[i + 1] = msg.msg_iov[i];
  msghdr out{};
  out.msg_iov = iov;
  out.msg_iovlen = msg.msg_iovlen + 1;
  out.msg_control = msg.msg_control;
  out.msg_controllen = msg.msg_controllen;
  const ssize_t n = real().sendmsg(fd, &out, flags & ~MSG_FASTOPEN);
  if (n < 0) return -1;
  return n >= static_cast<ssize_t>(hlen) ? n - static_cast<ssize_t>(hlen) : 0;
}

ssize_t udp_send_connected(int fd, Session& s, const Runtime& rt, const msghdr& msg,
                           int flags) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  {
    MutexLock lock(&a->mu);
    if (a->connected) {
      peer = a->peer;
      peer_len = a->peer_len;
    }
  }
  if (peer_len == 0) return fail(EDESTADDRREQ);
  Destination d;
  if (!destination_from(reinterpret_cast<sockaddr*>(&peer), peer_len, d)) return fail(EINVAL);
  Context ctx;
  char name[256];
  describe_fake(rt, d, ctx, name);
  return udp_send(fd, s, rt, d, msg, flags);
}

ssize_t udp_receive(int fd, Session& s, msghdr* msg, int flags, bool verified) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  if (a->stub) {
    // Answers come from our helper: the program sees them come from the stub it asked.
    const socklen_t room = msg->msg_namelen;
    const ssize_t n = real().recvmsg(fd, msg, flags);
    if (n >= 0 && msg->msg_name != nullptr &&
        same_address(a->helper_addr, a->helper_len, msg->msg_name, msg->msg_namelen)) {
      MutexLock lock(&a->mu);
      const sockaddr_storage& src = a->connected ? a->peer : a->stub_addr;
      const socklen_t src_len = a->connected ? a->peer_len : a->stub_len;
      std::memcpy(msg->msg_name, &src, std::min(room, src_len));
      msg->msg_namelen = src_len;
    }
    return n;
  }
  const std::size_t want = capacity(*msg);
  // Room for the program's data and the largest header; the stack for small reads. A wrapped
  // datagram is only usable whole: room for the largest token then.
  std::uint8_t small[2048];
  std::uint8_t* buf = small;
  std::unique_ptr<std::uint8_t[]> big;
  const std::size_t room = a->protection ? 4 + 0xFFFF : want + kMaxHeader;
  if (room > sizeof small) {
    big.reset(new (std::nothrow) std::uint8_t[room]);
    if (!big) return fail(ENOBUFS);
    buf = big.get();
  }
  for (;;) {
    iovec iov{buf, room};
    msghdr in{};
    sockaddr_storage src{};
    in.msg_name = &src;
    in.msg_namelen = sizeof src;
    in.msg_iov = &iov;
    in.msg_iovlen = 1;
    in.msg_control = msg->msg_control;
    in.msg_controllen = msg->msg_controllen;
    // MSG_TRUNC: the datagram's real length, even when it did not fit.
    const ssize_t got = real().recvmsg(fd, &in, (flags | MSG_TRUNC) & ~MSG_WAITALL);
    if (got < 0) return -1;
    std::size_t total = static_cast<std::size_t>(got);
    std::size_t held = std::min(total, room);
    const bool peeking = (flags & MSG_PEEK) != 0;
    // The socket is connected to the relay, so every datagram comes from it. One that does
    // not means the descriptor is not the associated socket any more (closed by a path no
    // hook saw, the number reused): checked then, and the datagram is the program's as is.
    if (!same_address(a->relay, a->relay_len, &src, in.msg_namelen)) {
      if (!verified && session_of(fd).get() != &s) {
        const std::size_t copied = scatter(*msg, buf, std::min(held, want));
        if (msg->msg_name != nullptr) {
          std::memcpy(msg->msg_name, &src, std::min(msg->msg_namelen, in.msg_namelen));
          msg->msg_namelen = in.msg_namelen;
        }
        msg->msg_controllen = in.msg_controllen;
        msg->msg_flags = in.msg_flags;
        return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? total : copied);
      }
      verified = true;
      if (peeking) real().recv(fd, buf, 1, MSG_DONTWAIT);
      continue;  // not from the relay: dropped
    }
    socks5::Bytes plain;
    if (a->protection) {
      // One token per datagram: unwrapped (verified, and at confidentiality decrypted) before
      // anything in it is believed; one that fails is dropped like any forged datagram.
      // (A peeked datagram stays queued and is unwrapped again when read: datagram mode
      // takes a repeated token, as UDP may repeat one.)
      socks5::Result<std::size_t> used = std::size_t{0};
      {
        MutexLock lock(&a->gss_mu);
        used = a->protection->unwrap(socks5::ByteView(buf, held), plain);
      }
      if (!used || *used != held) continue;
      total = held = plain.size();
    }
    // The datagram as the relay sent it (unwrapped when protected).
    const std::uint8_t* dg = a->protection ? plain.data() : buf;
    auto h = socks5::wire::decode_udp_header(socks5::ByteView(dg, held));
    if (!h) {
      // Not a datagram from a SOCKS relay: dropped (taken off the socket if only peeked).
      if (peeking) real().recv(fd, buf, 1, MSG_DONTWAIT);
      continue;
    }
    const std::size_t start = h->size;
    const std::size_t data_len = total - start;  // the datagram's real payload length
    const std::size_t have = held - start;       // what of it is here
    if (h->value.frag != 0) {
      // A fragment: kept until its sequence is whole, then delivered as one datagram.
      std::vector<std::uint8_t> whole;
      socks5::Address whole_source;
      bool done = false;
      {
        MutexLock lock(&a->mu);
        if (peeking) real().recv(fd, buf, 1, MSG_DONTWAIT);  // fragments are always taken
        done = reassemble(*a, h->value.frag, h->value.destination, dg + start, have, whole,
                          whole_source);
      }
      if (!done) continue;
      const std::size_t copied = scatter(*msg, whole.data(), whole.size());
      set_source(*a, whole_source, msg);
      msg->msg_controllen = in.msg_controllen;
      msg->msg_flags = copied < whole.size() ? MSG_TRUNC : 0;
      return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? whole.size() : copied);
    }
    const std::size_t copied = scatter(*msg, dg + start, std::min(have, data_len));
    set_source(*a, h->value.destination, msg);
    msg->msg_controllen = in.msg_controllen;
    msg->msg_flags = (in.msg_flags & ~MSG_TRUNC) | (copied < data_len ? MSG_TRUNC : 0);
    return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? data_len : copied);
  }
}

int udp_connect(int fd, const Runtime& rt, const sockaddr* addr, socklen_t len) noexcept {
  SessionRef s = udp_session(fd, rt);
  if (!s) return -1;
  Association* a = s->udp.load(std::memory_order_acquire);
  MutexLock lock(&a->mu);
  a->peer_len = std::min<socklen_t>(len, sizeof a->peer);
  std::memcpy(&a->peer, addr, a->peer_len);
  a->connected = true;
  return 0;
}

void udp_disconnect(Session& s) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return;
  MutexLock lock(&a->mu);
  a->connected = false;
  a->peer_len = 0;
}

bool udp_peer(Session& s, sockaddr* addr, socklen_t* len) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return false;
  MutexLock lock(&a->mu);
  if (!a->connected) return false;
  const socklen_t n = std::min(*len, a->peer_len);
  std::memcpy(addr, &a->peer, n);
  *len = a->peer_len;
  return true;
}

}  // namespace socksify::shim
