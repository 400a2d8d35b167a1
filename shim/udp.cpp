#include "udp.hpp"
#include "core_names.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "async_connect.hpp"
#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "pending_connect.hpp"
#include "real_libc.hpp"
#include "report.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/wire.hpp"
#include "udp_in.hpp"

namespace socksify::shim {

/// What the program's socket is connected to (connect()), as the kernel and the library keep
/// it: nothing; a destination through the proxy (the kernel is connected to the relay, and
/// the relay's datagrams are taken only from that peer); a direct one (the kernel is
/// connected to it, and datagrams to it leave as they are).
enum class PeerKind : std::uint8_t { none, proxied, direct };

/// A UDP ASSOCIATE: its control connection, its relay, and what the program connected to.
/// The program's socket is connected to the relay only while its peer is through the proxy;
/// otherwise datagrams for the proxy are sent to the relay by address, and datagrams from
/// anyone else (direct ones) reach the program as they would without the library.
struct Association {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // peer and reassembly
  int control = -1;
  int family = AF_INET;  // the program's socket's
  std::size_t proxy = 0;
  sockaddr_storage relay{};
  socklen_t relay_len = 0;
  std::atomic<int> dead{0};  // the errno every send gets once the association ended
  // The program's connect(): its peer, as it named it, and (proxied) as a destination: its
  // address, or the name behind a fake address, and for a name the address the relay
  // reported for it first (later datagrams must come from the same).
  PeerKind peer_kind = PeerKind::none;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  PeerFilter filter;  // active while peer_kind is proxied (udp_in.hpp)
  // Fragments being reassembled (RFC 1928 section 7, udp_in.hpp).
  Reassembly reassembly;
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
  // A non-blocking socket's association is made in the background (the driver thread,
  // async_connect.hpp): until it is, `making` is set, the fields above that come from the
  // proxy (control, proxy, relay, protection) are not to be read, and datagrams for the proxy
  // wait in `queue` (bounded; then EAGAIN). Once made, the driver sends them, connects the
  // socket to the relay if the program connected it to a proxied peer meanwhile, and clears
  // `making` (release: the fields are then read without the lock).
  std::atomic<bool> making{false};
  PendingConnect* job = nullptr;
  struct Queued {
    std::vector<std::uint8_t> header;
    std::vector<std::uint8_t> data;
    int flags;
  };
  std::vector<Queued> queue;  // under mu
  std::size_t queued_bytes = 0;
  bool connect_relay = false;  // under mu
};

namespace {

using Clock = std::chrono::steady_clock;
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
  out.msg_name = &a.relay;
  out.msg_namelen = a.relay_len;
  out.msg_iov = &iov;
  out.msg_iovlen = 1;
  out.msg_control = msg.msg_control;
  out.msg_controllen = msg.msg_controllen;
  const ssize_t n = real().sendmsg(fd, &out, flags & ~MSG_FASTOPEN);
  if (n < 0) return -1;
  return static_cast<ssize_t>(plain.size() - hlen);
}

// What an association for `fd` asks the proxy: UDP ASSOCIATE from the address the datagrams
// will come from, when known (a bound port), zeros otherwise. Its family in `family`. False
// with errno (and one log line) when no association can be made for the socket.
bool associate_request(int fd, const Runtime& rt, socks5::DialRequest& request, int& family) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (real().getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return false;
  family = local.ss_family;
  if (family != AF_INET && family != AF_INET6) {
    errno = EAFNOSUPPORT;
    return false;
  }
  if (rt.config.chain == socks5::ChainMode::strict && rt.config.proxies.size() > 1) {
    // The relay of the last hop is not reachable from here, and SOCKS has no UDP chaining.
    log_line(LogLevel::error, "UDP through a strict chain of %zu proxies is not supported",
             rt.config.proxies.size());
    errno = EOPNOTSUPP;
    return false;
  }
  socks5::Address from = socks5::Address::ipv4({0, 0, 0, 0}, 0);
  if (auto a = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), local_len)) {
    if (a->port() != 0) from = *a;
  }
  request.command = socks5::wire::Command::udp_associate;
  request.target = from;
  return true;
}

// The proxies (by index; the last bit for the rest) whose UDP ASSOCIATE failure this process
// has reported: a program that opens many UDP sockets (a browser opened 15 for one page)
// gets one line per proxy, not one per socket. Each socket still fails.
constinit std::atomic<std::uint64_t> g_udp_failures_said{0};

void say_udp_failure(const Runtime& rt, const socks5::Dial& dial) {
  const std::size_t i = dial.proxy();
  const std::uint64_t bit = std::uint64_t{1} << (i < 63 ? i : 63);
  if ((g_udp_failures_said.fetch_or(bit, std::memory_order_relaxed) & bit) != 0) return;
  log_line(LogLevel::error, "UDP ASSOCIATE failed: %s (said once per proxy in this process)",
           settings::failure_text(dial, rt.config).c_str());
}

// Fills `a` from its finished UDP ASSOCIATE: the relay, the control connection, the
// protection. 0, or the errno it failed with (after its line, once per proxy).
int settle(Association& a, const Runtime& rt, socks5::Dial& dial) {
  if (dial.step().next != socks5::Dial::Next::done) {
    say_udp_failure(rt, dial);
    const int e = socks5::to_errno(dial.error());
    return e != 0 ? e : ECONNREFUSED;
  }
  a.proxy = dial.proxy();
  const socks5::Address relay = socks5::reachable_bound(dial.bound(), dial.endpoint());
  a.relay_len = sockaddr_for(relay, a.family, a.relay);
  if (a.relay_len == 0) {
    log_line(LogLevel::error, "UDP relay %s of proxy %s unusable on this socket: %s",
             relay.to_string().c_str(), proxy_text(rt, a.proxy).c_str(),
             std::strerror(EAFNOSUPPORT));
    return EAFNOSUPPORT;
  }
  a.protection = dial.take_protection();
  if (auto* gss = dynamic_cast<socks5::GssProtection*>(a.protection.get())) {
    gss->set_datagram(true);
    a.max_plain = gss->max_plain();
  }
  a.control = dial.release_fd();
  if (log_enabled(LogLevel::info)) {
    log_line(LogLevel::info, "UDP associated via %s: relay %s", proxy_text(rt, a.proxy).c_str(),
             relay.to_string().c_str());
  }
  return 0;
}

ssize_t via_relay(int fd, Association& a, const std::uint8_t* header, std::size_t hlen,
                  const msghdr& msg, int flags);

// The driver made (or failed to make) a non-blocking socket's association (`p.job`):
// datagrams that waited leave, in order, on `p.work_fd` (a dup of the program's socket).
bool association_made(PendingConnect& p, int e, bool forked_child) {
  auto* a = static_cast<Association*>(p.job);
  if (forked_child) {
    // Forked while the parent's driver made it: this process's copy is never finished.
    log_line(LogLevel::error,
             "a UDP association was being made when the process forked: the socket fails in "
             "the child");
    MutexLock lock(&a->mu);
    a->dead.store(ECONNABORTED, std::memory_order_release);
    a->queue.clear();
    a->making.store(false, std::memory_order_release);
    return false;
  }
  const Runtime& rt = runtime();
  if (e == 0) {
    e = settle(*a, rt, p.dial);
  } else {
    say_udp_failure(rt, p.dial);
  }
  MutexLock lock(&a->mu);
  if (e == 0) {
    if (a->connect_relay && a->peer_kind == PeerKind::proxied) {
      real().connect(p.work_fd, reinterpret_cast<sockaddr*>(&a->relay), a->relay_len);
    }
    for (auto& q : a->queue) {
      iovec iov{q.data.data(), q.data.size()};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      (void)via_relay(p.work_fd, *a, q.header.data(), q.header.size(), m, q.flags | MSG_DONTWAIT);
    }
  } else {
    a->dead.store(e, std::memory_order_release);
  }
  a->queue.clear();
  a->queued_bytes = 0;
  a->making.store(false, std::memory_order_release);
  return false;
}

// Makes the association for `fd`: the control connection and UDP ASSOCIATE (the relay is sent
// to by address). A blocking socket waits for it (within the deadline); a non-blocking one
// (or a MSG_DONTWAIT send) gets it at once, made in the background. nullptr with errno on
// failure (and one log line).
Association* associate(int fd, const Runtime& rt, bool dontwait) {
  socks5::DialRequest request;
  int family = AF_INET;
  if (!associate_request(fd, rt, request, family)) return nullptr;
  auto* a = new (std::nothrow) Association;
  if (a == nullptr) {
    errno = ENOBUFS;
    return nullptr;
  }
  a->family = family;
  const auto deadline = socks5::Deadline::after(rt.config.timeout);
  if (!dontwait) {
    const int fl = real().fcntl(fd, F_GETFL);
    dontwait = fl >= 0 && (fl & O_NONBLOCK) != 0;
  }
  if (dontwait) {
    const int work = real().fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (work >= 0) {
      a->making.store(true, std::memory_order_relaxed);
      a->job = async_job(rt, request, deadline, association_made, a, work);
      if (a->job != nullptr) return a;
      a->making.store(false, std::memory_order_relaxed);
      real().close(work);
    }
  }
  // Blocking (or no driver): made here.
  socks5::Dial dial(rt.plan(), socks5::DialSocket{}, std::move(request), deadline);
  socks5::run_blocking(dial);
  if (const int e = settle(*a, rt, dial); e != 0) {
    delete a;
    errno = e;
    return nullptr;
  }
  return a;
}

// 0 while the association lives; the errno to fail with once the proxy has closed (or said
// anything on) the control connection. One poll, no wait.
int association_error(Association& a) {
  if (a.stub) return 0;
  if (const int e = a.dead.load(std::memory_order_acquire); e != 0) return e;
  if (a.making.load(std::memory_order_acquire)) return 0;
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

// Copies the program's iovecs into `out` (n octets, their total).
void scatter_from(const msghdr& msg, std::uint8_t* out, std::size_t n) {
  std::size_t done = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen && done < n; ++i) {
    const std::size_t k = std::min(n - done, msg.msg_iov[i].iov_len);
    if (k > 0) std::memcpy(out + done, msg.msg_iov[i].iov_base, k);
    done += k;
  }
}

std::size_t capacity(const msghdr& msg) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) n += msg.msg_iov[i].iov_len;
  return n;
}

// The source the program sees for a datagram the relay reported from `src`: its connected
// peer as it named it when the datagram is from that peer, else the header's address in the
// socket's family (a name: the fake address it stands for, when there is one).
void set_source(Association& a, const socks5::Address& src, msghdr* msg) {
  if (msg->msg_name == nullptr) return;
  sockaddr_storage ss{};
  socklen_t len = 0;
  {
    MutexLock lock(&a.mu);
    if (a.peer_kind == PeerKind::proxied) {
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

// The program's peer, kept with the association; through the proxy (`d` given), also as the
// filter of the relay's datagrams. Called with a.mu held.
void set_peer(Association& a, PeerKind kind, const sockaddr* addr, socklen_t len,
              const Destination* d) {
  a.peer_kind = kind;
  a.peer_len = std::min<socklen_t>(len, sizeof a.peer);
  std::memcpy(&a.peer, addr, a.peer_len);
  a.filter = PeerFilter{};
  if (d != nullptr) {
    a.filter.active = true;
    a.filter.family = d->family;
    a.filter.ip = d->ip;
    a.filter.port = d->port;
    const std::size_t n = std::min(d->name.size(), a.filter.name.size() - 1);
    if (n > 0) std::memcpy(a.filter.name.data(), d->name.data(), n);
  }
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
  // A background association still under way: the driver lets go of it first (it never
  // calls back after this).
  cancel_job(a->job);
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

SessionRef udp_of(int fd) noexcept {
  return associated(fd, session_of);
}

SessionRef udp_session(int fd, const Runtime& rt, bool dontwait) noexcept {
  if (SessionRef s = udp_of(fd)) return s;
  MutexLock lock(&g_associating);
  if (SessionRef s = udp_of(fd)) return s;  // another thread made it meanwhile
  g_release_association = release_association;
  return attach(fd, associate(fd, rt, dontwait));
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
  set_peer(*a, PeerKind::direct, addr, len, nullptr);
  return 0;
}

namespace {

// Header + the program's datagram to the relay (by address), wrapped when protected; the
// program's data length.
ssize_t via_relay(int fd, Association& a, const std::uint8_t* header, std::size_t hlen,
                  const msghdr& msg, int flags) {
  if (a.protection) return protected_send(fd, a, header, hlen, msg, flags);
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
  iov[0] = iovec{const_cast<std::uint8_t*>(header), hlen};
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) iov[i + 1] = msg.msg_iov[i];
  msghdr out{};
  out.msg_name = &a.relay;
  out.msg_namelen = a.relay_len;
  out.msg_iov = iov;
  out.msg_iovlen = msg.msg_iovlen + 1;
  out.msg_control = msg.msg_control;
  out.msg_controllen = msg.msg_controllen;
  const ssize_t n = real().sendmsg(fd, &out, flags & ~MSG_FASTOPEN);
  if (n < 0) return -1;
  return n >= static_cast<ssize_t>(hlen) ? n - static_cast<ssize_t>(hlen) : 0;
}

// At most this much waits for a background association (then EAGAIN).
constexpr std::size_t kQueueDatagrams = 64;
constexpr std::size_t kQueueBytes = 1 << 20;

// A datagram for the proxy while the association is being made: kept (copied) to leave when
// it is made. Its length, or -1 with errno (EAGAIN when the queue is full); 0 in `queued`
// when the association was made meanwhile (the caller sends it itself).
ssize_t enqueue(Association& a, const std::uint8_t* header, std::size_t hlen, const msghdr& msg,
                int flags, bool& queued) {
  MutexLock lock(&a.mu);
  queued = a.making.load(std::memory_order_acquire);
  if (!queued) return 0;
  const std::size_t n = capacity(msg);
  if (n > kMaxPayload) return fail(EMSGSIZE);
  if (a.queue.size() >= kQueueDatagrams || a.queued_bytes + n > kQueueBytes) return fail(EAGAIN);
  Association::Queued q;
  q.header.assign(header, header + hlen);
  q.data.resize(n);
  scatter_from(msg, q.data.data(), n);
  q.flags = flags & ~(MSG_FASTOPEN | MSG_DONTWAIT);
  a.queued_bytes += n;
  a.queue.push_back(std::move(q));
  return static_cast<ssize_t>(n);
}

}  // namespace

ssize_t udp_send(int fd, Session& s, const Runtime& rt, const Destination& d, const msghdr& msg,
                 int flags) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  if (a->stub) return stub_query(*a, rt, msg);
  if (const int e = association_error(*a); e != 0) return fail(e);
  std::uint8_t header[kMaxHeader];
  const std::size_t hlen = encode_header(d, header);
  if (a->making.load(std::memory_order_acquire)) {
    bool queued = false;
    const ssize_t n = enqueue(*a, header, hlen, msg, flags, queued);
    if (queued) return n;
    if (const int e = association_error(*a); e != 0) return fail(e);  // it failed meanwhile
  }
  return via_relay(fd, *a, header, hlen, msg, flags);
}

ssize_t udp_send_connected(int fd, Session& s, const Runtime& rt, const msghdr& msg,
                           int flags) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  PeerKind kind = PeerKind::none;
  Destination d;
  char name[256] = {};
  {
    MutexLock lock(&a->mu);
    kind = a->peer_kind;
    if (kind == PeerKind::proxied) {
      d.family = a->filter.family;
      d.ip = a->filter.ip;
      d.port = a->filter.port;
      std::memcpy(name, a->filter.name.data(), sizeof name);
    }
  }
  if (a->stub) {
    // A stub socket's peer (when it connected) is the stub: its queries are answered here.
    if (kind == PeerKind::none) return fail(EDESTADDRREQ);
    return stub_query(*a, rt, msg);
  }
  switch (kind) {
    case PeerKind::none: return fail(EDESTADDRREQ);
    case PeerKind::direct: {
      // Connected directly: the kernel sends to that peer, as without the library.
      msghdr plain = msg;
      plain.msg_name = nullptr;
      plain.msg_namelen = 0;
      return real().sendmsg(fd, &plain, flags);
    }
    case PeerKind::proxied: break;
  }
  d.name = name;
  return udp_send(fd, s, rt, d, msg, flags);
}

namespace {

// How long a receive may wait, as the program asked: a blocking call under SO_RCVTIMEO ends
// when its time is up, however many datagrams the library dropped meanwhile (fragments,
// forgeries); a deadline of the caller's (recvmmsg's timeout) likewise.
class ReceiveWait {
 public:
  ReceiveWait(int fd, int flags, const Clock::time_point* until)
      : fd_(fd), flags_(flags), start_(Clock::now()) {
    if (until != nullptr) {
      until_ = *until;
      bounded_ = true;
    }
  }
  // The flags for the next read: non-blocking once the wait is the library's to bound.
  int read_flags(int flags) const { return bounded_ ? flags | MSG_DONTWAIT : flags; }
  // Before the next read: when bounded, wait for something to read until the deadline. False
  // with errno set (EAGAIN when the time is up, EINTR for a signal) when there is nothing.
  bool before_read() {
    if (!bounded_ || !blocking()) return true;
    for (;;) {
      const auto left = until_ - Clock::now();
      if (left <= Clock::duration::zero()) {
        errno = EAGAIN;
        return false;
      }
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      pollfd p{fd_, POLLIN, 0};
      const int r = real().poll(&p, 1, ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms));
      if (r > 0) return true;
      if (r < 0) return false;
    }
  }
  // A datagram was dropped: from now on the program's own receive timeout, if it has one,
  // bounds the call from its start.
  void dropped() {
    if (bounded_ || !blocking()) return;
    timeval tv{};
    socklen_t len = sizeof tv;
    if (real().getsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0 ||
        (tv.tv_sec == 0 && tv.tv_usec == 0)) {
      return;  // no timeout: the next read waits as the kernel's would
    }
    until_ = start_ + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    bounded_ = true;
  }
  // A read that found nothing: wait again (bounded, blocking) or report it.
  bool retry_after_eagain() const { return bounded_ && blocking(); }

 private:
  bool blocking() const {
    if ((flags_ & MSG_DONTWAIT) != 0) return false;
    if (blocking_ < 0) {
      const int fl = real().fcntl(fd_, F_GETFL);
      blocking_ = fl >= 0 && (fl & O_NONBLOCK) == 0 ? 1 : 0;
    }
    return blocking_ == 1;
  }
  int fd_;
  int flags_;
  Clock::time_point start_;
  Clock::time_point until_{};
  bool bounded_ = false;
  mutable int blocking_ = -1;
};

// A datagram as the kernel delivered it (not from the relay: a direct one), to the program.
ssize_t deliver_plain(msghdr* msg, const std::uint8_t* buf, std::size_t held, std::size_t total,
                      const msghdr& in, const sockaddr_storage& src, int flags) {
  const std::size_t copied = scatter(*msg, buf, std::min(held, capacity(*msg)));
  if (msg->msg_name != nullptr) {
    std::memcpy(msg->msg_name, &src, std::min(msg->msg_namelen, in.msg_namelen));
    msg->msg_namelen = in.msg_namelen;
  }
  msg->msg_controllen = in.msg_controllen;
  msg->msg_flags = (in.msg_flags & ~MSG_TRUNC) | (copied < total ? MSG_TRUNC : 0);
  return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? total : copied);
}

}  // namespace

ssize_t udp_receive(int fd, Session& s, msghdr* msg, int flags,
                    const std::chrono::steady_clock::time_point* until) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return fail(EBADF);
  if (a->stub) {
    // Answers come from our helper: the program sees them come from the stub it asked.
    const socklen_t room = msg->msg_namelen;
    const ssize_t n = real().recvmsg(fd, msg, flags);
    if (n >= 0 && msg->msg_name != nullptr &&
        same_address(a->helper_addr, a->helper_len, msg->msg_name, msg->msg_namelen)) {
      MutexLock lock(&a->mu);
      const bool connected = a->peer_kind != PeerKind::none;
      const sockaddr_storage& src = connected ? a->peer : a->stub_addr;
      const socklen_t src_len = connected ? a->peer_len : a->stub_len;
      std::memcpy(msg->msg_name, &src, std::min(room, src_len));
      msg->msg_namelen = src_len;
    }
    return n;
  }
  const std::size_t want = capacity(*msg);
  const bool peeking = (flags & MSG_PEEK) != 0;
  // Room for the program's data (never more than a datagram holds) and the largest header;
  // the stack for small reads. A wrapped datagram is only usable whole: room for the largest
  // token then.
  std::uint8_t small[2048];
  std::uint8_t* buf = small;
  std::unique_ptr<std::uint8_t[]> big;
  // (What the proxy's reply set up, the protection among it, is read only once the
  // association is made: the driver may be filling it in.)
  const bool made_before = !a->making.load(std::memory_order_acquire);
  const std::size_t room =
      made_before && a->protection ? 4 + 0xFFFF : std::min(want, kMaxPayload) + kMaxHeader;
  if (room > sizeof small) {
    big.reset(new (std::nothrow) std::uint8_t[room]);
    if (!big) return fail(ENOBUFS);
    buf = big.get();
  }
  ReceiveWait wait(fd, flags, until);
  for (;;) {
    if (!wait.before_read()) return -1;
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
    const ssize_t got =
        real().recvmsg(fd, &in, wait.read_flags((flags | MSG_TRUNC) & ~MSG_WAITALL));
    if (got < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait.retry_after_eagain()) continue;
      return -1;
    }
    std::size_t total = static_cast<std::size_t>(got);
    std::size_t held = std::min(total, room);
    // Not from the relay: a datagram from a direct peer (the socket is not connected to the
    // relay unless its peer is through the proxy), the program's as it is; but a socket
    // connected through the proxy hears only the relay (the association may still be in the
    // making, the socket not yet connected to it).
    bool made = !a->making.load(std::memory_order_acquire);
    if (!made) {
      // The driver may be sending the queued datagrams right now: it holds `mu` from the
      // first one until `making` clears, and a reply can arrive before that. Wait for it to
      // finish, then look again (before the driver took `mu`, nothing had gone to the relay:
      // the datagram is a direct peer's).
      MutexLock lock(&a->mu);
      made = !a->making.load(std::memory_order_acquire);
    }
    if (!made || !same_address(a->relay, a->relay_len, &src, in.msg_namelen)) {
      bool proxied_peer = false;
      {
        MutexLock lock(&a->mu);
        proxied_peer = a->peer_kind == PeerKind::proxied;
      }
      if (!proxied_peer) return deliver_plain(msg, buf, held, total, in, src, flags);
      if (peeking) real().recv(fd, buf, 1, MSG_DONTWAIT);
      wait.dropped();
      continue;
    }
    bool keep = false;  // delivered (or, peeking, left queued)
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
      if (used && *used == held) {
        total = held = plain.size();
        keep = true;
      }
    } else {
      keep = true;
    }
    // The datagram as the relay sent it (unwrapped when protected).
    const std::uint8_t* dg = a->protection ? plain.data() : buf;
    auto h = socks5::wire::decode_udp_header(socks5::ByteView(dg, keep ? held : 0));
    if (keep && h) {
      const std::size_t start = h->size;
      const std::size_t data_len = total - start;  // the datagram's real payload length
      const std::size_t have = held - start;       // what of it is here
      if (h->value.frag != 0) {
        // A fragment: kept until its sequence is whole, then delivered as one datagram. A
        // fragment larger than this receive's room cannot be kept whole: it ends the sequence.
        std::vector<std::uint8_t> whole;
        socks5::Address whole_source;
        bool done = false;
        {
          MutexLock lock(&a->mu);
          if (have < data_len) {
            a->reassembly.abandon();
          } else {
            done = a->reassembly.feed(h->value.frag, h->value.destination,
                                      socks5::ByteView(dg + start, have), peeking, Clock::now(),
                                      whole, whole_source) == Reassembly::Outcome::complete;
          }
          done = done && from_peer(a->filter, whole_source);
          // A fragment taken into the sequence (or dropped) leaves the socket even when
          // peeked; a final one that completed a peek stays for the read that follows.
          if (peeking && !done) real().recv(fd, buf, 1, MSG_DONTWAIT);
        }
        if (done) {
          const std::size_t copied = scatter(*msg, whole.data(), whole.size());
          set_source(*a, whole_source, msg);
          msg->msg_controllen = in.msg_controllen;
          msg->msg_flags = copied < whole.size() ? MSG_TRUNC : 0;
          return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? whole.size() : copied);
        }
        wait.dropped();
        continue;
      }
      bool mine = false;
      {
        MutexLock lock(&a->mu);
        mine = from_peer(a->filter, h->value.destination);
      }
      if (mine) {
        const std::size_t copied = scatter(*msg, dg + start, std::min(have, data_len));
        set_source(*a, h->value.destination, msg);
        msg->msg_controllen = in.msg_controllen;
        msg->msg_flags = (in.msg_flags & ~MSG_TRUNC) | (copied < data_len ? MSG_TRUNC : 0);
        return static_cast<ssize_t>((flags & MSG_TRUNC) != 0 ? data_len : copied);
      }
    }
    // Not a datagram for the program (a malformed one, a forged token, one from another
    // source than its peer): dropped, taken off the socket if only peeked.
    if (peeking) real().recv(fd, buf, 1, MSG_DONTWAIT);
    wait.dropped();
  }
}

int udp_connect(int fd, const Runtime& rt, const sockaddr* addr, socklen_t len,
                const Destination& d) noexcept {
  SessionRef s = udp_session(fd, rt);
  if (!s) return -1;
  Association* a = s->udp.load(std::memory_order_acquire);
  MutexLock lock(&a->mu);
  // The kernel hears only the relay now, as it would hear only the peer (once the relay is
  // known, when the association is still being made).
  a->connect_relay = a->making.load(std::memory_order_acquire);
  if (!a->connect_relay &&
      real().connect(fd, reinterpret_cast<const sockaddr*>(&a->relay), a->relay_len) != 0) {
    return -1;
  }
  set_peer(*a, PeerKind::proxied, addr, len, &d);
  return 0;
}

int udp_connect_direct(int fd, Session& s, const sockaddr* addr, socklen_t len) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr || a->stub) return real().connect(fd, addr, len);
  if (real().connect(fd, addr, len) != 0) return -1;
  MutexLock lock(&a->mu);
  set_peer(*a, PeerKind::direct, addr, len, nullptr);
  return 0;
}

int udp_disconnect(int fd, Session& s, const sockaddr* addr, socklen_t len) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return real().connect(fd, addr, len);
  // A stub socket stays connected to the library's helper: only the program's peer goes.
  if (!a->stub && real().connect(fd, addr, len) != 0) return -1;
  MutexLock lock(&a->mu);
  a->peer_kind = PeerKind::none;
  a->peer_len = 0;
  return 0;
}

bool udp_peer(Session& s, sockaddr* addr, socklen_t* len) noexcept {
  Association* a = s.udp.load(std::memory_order_acquire);
  if (a == nullptr) return false;
  MutexLock lock(&a->mu);
  if (a->peer_kind == PeerKind::none) return false;
  const socklen_t n = std::min(*len, a->peer_len);
  std::memcpy(addr, &a->peer, n);
  *len = a->peer_len;
  return true;
}

}  // namespace socksify::shim
