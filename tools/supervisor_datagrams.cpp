// The supervisor's datagram calls: sendto, sendmsg, sendmmsg, recvfrom, recvmsg, recvmmsg, and
// the UDP associations behind them (see supervisor.cpp).
#include "supervisor_internal.hpp"

namespace socksify::tool::supervised {

// This file's own functions (the shared ones are in supervisor_internal.hpp).
int translate_control(pid_t pid, std::vector<std::uint8_t>& control, std::vector<int>& taken);
void close_assoc(Assoc& a);
int associate(Supervisor& sv, pid_t pid, int family, const socks5::Address& from, int& control,
              sockaddr_storage& relay_out, socklen_t& relay_len, std::size_t& proxy);
void sweep_assocs(Supervisor& sv);
std::shared_ptr<Assoc> ensure_assoc(Supervisor& sv, pid_t pid, int fd, int sock,
                                    const core::SocketFacts& facts, int& error, bool relay = true);
int assoc_error(Supervisor& sv, Assoc& a);
int send_via_relay(const sockaddr_storage& relay, socklen_t relay_len, int from,
                   const core::Destination& d, const std::uint8_t* data, std::size_t len, int flags,
                   std::uint64_t& sent);
socklen_t source_for(Supervisor& sv, Assoc& a, const socks5::Address& src, sockaddr_storage& out);
bool unwrap(Supervisor& sv, Assoc& a, const std::uint8_t* dg, std::size_t len, bool peek,
            std::vector<std::uint8_t>& payload, socks5::Address& source);
void make_local_association(Supervisor& sv, const std::shared_ptr<Assoc>& a);
bool from_relay(Assoc& a, const sockaddr_storage& from, socklen_t flen);
int peek_datagram(Supervisor& sv, Assoc& a, int sock, std::vector<std::uint8_t>& payload,
                  sockaddr_storage& src, socklen_t& src_len);
int deliver(pid_t pid, const seccomp_notif& req, std::uint64_t msg_addr,
            const std::vector<std::uint8_t>& payload, const sockaddr_storage& src,
            socklen_t src_len, int flags, long long& ret);
int try_receive(Supervisor& sv, const seccomp_notif& req, pid_t pid, int sock, Assoc& a, int& e,
                long long& val);
socks5::Bytes udp_header(const core::Destination& d);
socks5::Address bound_of(int sock);

// ---------------------------------------------------------------------------------------------
// Sends with an address: sendto (with one), sendmsg and sendmmsg (always: the address is in
// memory). The supervisor performs every one itself on its duplicate of the program's socket,
// from copies of the program's buffers taken once: nothing the program changes afterwards
// (the address, the descriptor, the data) can change where a datagram goes.

constexpr std::size_t kMaxDatagram = 65536;
constexpr std::size_t kMaxStream = 1 << 20;  // a stream send of more is sent in part
constexpr std::size_t kMaxMessages = 1024;   // UIO_MAXIOV: sendmmsg's own limit

// One message as read from the program: its address (as read), data and ancillary data.
struct Message {
  sockaddr_storage name{};
  socklen_t name_len = 0;
  bool has_name = false;
  std::vector<std::uint8_t> data;
  std::vector<std::uint8_t> control;
};

// Reads the msghdr at `addr` of process `pid` into `m` (data at most `limit`). 0 or an errno.
int read_message(pid_t pid, std::uint64_t addr, std::size_t limit, Message& m) {
  msghdr remote{};
  if (!read_memory(pid, addr, &remote, sizeof remote)) return EFAULT;
  if (remote.msg_name != nullptr && remote.msg_namelen > 0) {
    if (remote.msg_namelen > sizeof m.name) return EINVAL;
    m.name_len = remote.msg_namelen;
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_name), &m.name, m.name_len))
      return EFAULT;
    m.has_name = true;
  }
  if (remote.msg_iovlen > kMaxMessages) return EMSGSIZE;
  std::vector<iovec> iov(remote.msg_iovlen);
  if (!iov.empty() && !read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_iov), iov.data(),
                                   iov.size() * sizeof(iovec)))
    return EFAULT;
  for (const auto& v : iov) {
    const std::size_t at = m.data.size();
    const std::size_t take = std::min(v.iov_len, limit - at);
    m.data.resize(at + take);
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(v.iov_base), m.data.data() + at, take))
      return EFAULT;
    if (m.data.size() >= limit) break;
  }
  if (remote.msg_control != nullptr && remote.msg_controllen > 0) {
    if (remote.msg_controllen > 4096) return EINVAL;
    m.control.resize(remote.msg_controllen);
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_control), m.control.data(),
                     m.control.size()))
      return EFAULT;
  }
  return 0;
}

// Ancillary data as the program meant it: descriptors passed (SCM_RIGHTS) are the program's
// numbers, replaced by the supervisor's duplicates of them (closed by the caller, `taken`);
// credentials (SCM_CREDENTIALS) naming the program's process name this one (the kernel takes
// only the sender's own).
int translate_control(pid_t pid, std::vector<std::uint8_t>& control, std::vector<int>& taken) {
  if (control.empty()) return 0;
  msghdr m{};
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      auto* fds = reinterpret_cast<int*>(CMSG_DATA(c));
      for (std::size_t i = 0; i < n; ++i) {
        int theirs = 0;
        std::memcpy(&theirs, fds + i, sizeof theirs);
        const int ours = take_fd(pid, theirs);
        if (ours < 0) return EBADF;
        taken.push_back(ours);
        std::memcpy(fds + i, &ours, sizeof ours);
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      if (cred.pid == pid) cred.pid = getpid();
      std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// UDP through the proxy (RFC 1928 section 7), for a program's UDP socket: the library's own
// wrapping (the section 7 header, fake addresses sent as names) and unwrapping (reassembly
// and the connected peer's filter, shim/udp_in.hpp). The supervisor holds the association's
// control connection. Sent datagrams leave from the program's socket to the relay; received
// ones are unwrapped by the supervisor when the program asks for them with their source
// (recvfrom with an address, recvmsg, recvmmsg). A socket connected to a destination through
// the proxy is connected to a socket of the supervisor's instead (`local`), which relays both
// ways: then send, write, recv and read need no supervisor at all.

constexpr std::size_t kMaxHeader = 4 + 1 + 255 + 2;

// The section 7 header for `d` (a name when it has one).
socks5::Bytes udp_header(const core::Destination& d) {
  socks5::Bytes out;
  (void)socks5::wire::encode_udp_header(0, core::target_of(d), out);
  return out;
}

// The association of socket `sock` (its cookie), or null.
std::shared_ptr<Assoc> assoc_of(Supervisor& sv, std::uint64_t cookie) {
  std::lock_guard<std::mutex> lock(sv.mu);
  auto it = sv.assocs.find(cookie);
  return it == sv.assocs.end() ? nullptr : it->second;
}

void close_assoc(Assoc& a) {
  if (a.control >= 0) close(a.control);
  if (a.local >= 0) close(a.local);
  if (a.lcontrol >= 0) close(a.lcontrol);
  a.control = a.local = a.lcontrol = -1;
}

// A UDP ASSOCIATE for datagrams from `from` (a socket's bound address; zeros when unknown):
// 0 with the control connection and the relay (in `family`), or the errno (after the
// library's line).
int associate(Supervisor& sv, pid_t pid, int family, const socks5::Address& from, int& control,
              sockaddr_storage& relay_out, socklen_t& relay_len, std::size_t& proxy) {
  if (sv.config.chain == socks5::ChainMode::strict && sv.config.proxies.size() > 1) {
    sv.connector.line(LogLevel::error, pid,
                      "UDP through a strict chain of %zu proxies is not supported",
                      sv.config.proxies.size());
    return EOPNOTSUPP;
  }
  socks5::DialRequest request;
  request.command = socks5::wire::Command::udp_associate;
  request.target = from;
  core::Connector::set_line_pid(pid);
  socks5::Dial dial(sv.connector.plan(), socks5::DialSocket{}, std::move(request),
                    socks5::Deadline::after(sv.config.timeout));
  socks5::run_blocking(dial);
  core::Connector::set_line_pid(0);
  if (dial.step().next != socks5::Dial::Next::done) {
    sv.connector.line(LogLevel::error, pid, "UDP ASSOCIATE failed: %s",
                      settings::failure_text(dial, sv.config).c_str());
    return core::Connector::outcome_errno(dial);
  }
  proxy = dial.proxy();
  const socks5::Address relay = socks5::reachable_bound(dial.bound(), dial.endpoint());
  sockaddr_storage ss{};
  relay_len = 0;
  if (relay.to_sockaddr(ss) != 0 &&
      socks5::fit_family(reinterpret_cast<sockaddr*>(&ss), family, relay_out)) {
    relay_len = relay_out.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  if (relay_len == 0) return EAFNOSUPPORT;
  control = dial.release_fd();
  sv.connector.line(LogLevel::info, pid, "UDP associated via %s: relay %s",
                    sv.connector.proxy_text(proxy).c_str(), relay.to_string().c_str());
  return 0;
}

// The bound address of `sock` as a SOCKS address (zeros when it has no port yet).
socks5::Address bound_of(int sock) {
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
    if (auto addr = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), llen);
        addr && addr->port() != 0) {
      return *addr;
    }
  }
  return socks5::Address::ipv4({0, 0, 0, 0}, 0);
}

// Associations whose socket went: out, when the map doubled. Called with sv.mu held.
void sweep_assocs(Supervisor& sv) {
  if (sv.assocs.size() < sv.assoc_sweep_at) return;
  for (auto it = sv.assocs.begin(); it != sv.assocs.end();) {
    const int sock = take_fd(it->second->pid, it->second->fd);
    const bool live = sock >= 0 && cookie_of(sock) == it->first;
    if (sock >= 0) close(sock);
    if (!live) {
      std::lock_guard<std::mutex> al(it->second->mu);
      close_assoc(*it->second);
      it = sv.assocs.erase(it);
    } else {
      ++it;
    }
  }
  sv.assoc_sweep_at = std::max<std::size_t>(256, 2 * sv.assocs.size());
}

// The association of the program's socket `sock` (its entry, and with `relay` the UDP
// ASSOCIATE for its own datagrams), made now (blocking: by a worker) when it has none. Null
// with `error` set when it cannot be made (after one line, the library's).
std::shared_ptr<Assoc> ensure_assoc(Supervisor& sv, pid_t pid, int fd, int sock,
                                    const core::SocketFacts& facts, int& error, bool relay) {
  const std::uint64_t cookie = cookie_of(sock);
  std::shared_ptr<Assoc> a;
  {
    std::lock_guard<std::mutex> lock(sv.mu);
    auto& slot = sv.assocs[cookie];
    if (!slot) {
      slot = std::make_shared<Assoc>();
      slot->pid = pid;
      slot->fd = fd;
      slot->cookie = cookie;
      slot->family = facts.family;
      sweep_assocs(sv);
    }
    a = slot;
  }
  if (!relay) return a;
  std::unique_lock<std::mutex> lock(a->mu);
  a->made_cv.wait(lock, [&] { return !a->making; });
  if (a->control >= 0 || a->error != 0) {
    error = a->error;
    return error == 0 ? a : nullptr;
  }
  a->making = true;
  lock.unlock();
  int control = -1;
  sockaddr_storage relay_addr{};
  socklen_t relay_len = 0;
  std::size_t proxy = 0;
  error = associate(sv, pid, facts.family, bound_of(sock), control, relay_addr, relay_len, proxy);
  lock.lock();
  a->making = false;
  if (error == 0) {
    a->control = control;
    a->relay = relay_addr;
    a->relay_len = relay_len;
    a->proxy = proxy;
  }
  lock.unlock();
  a->made_cv.notify_all();
  return error == 0 ? a : nullptr;
}

// The association's control connection ended (the proxy closed it): its errno, once said.
int assoc_error(Supervisor& sv, Assoc& a) {
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.error != 0) return a.error;
  pollfd p{a.control, POLLIN | POLLRDHUP, 0};
  if (a.control < 0 || poll(&p, 1, 0) == 0) return 0;
  a.error = ECONNRESET;
  sv.connector.line(LogLevel::error, a.pid,
                    "UDP association with proxy %s ended: the proxy closed its control connection",
                    sv.connector.proxy_text(a.proxy).c_str());
  return a.error;
}

// One datagram for `d` to the relay `relay`: the header and the data, from socket `from`.
int send_via_relay(const sockaddr_storage& relay, socklen_t relay_len, int from,
                   const core::Destination& d, const std::uint8_t* data, std::size_t len, int flags,
                   std::uint64_t& sent) {
  const socks5::Bytes header = udp_header(d);
  iovec iov[2] = {{const_cast<std::uint8_t*>(header.data()), header.size()},
                  {const_cast<std::uint8_t*>(data), len}};
  msghdr m{};
  m.msg_name = const_cast<sockaddr_storage*>(&relay);
  m.msg_namelen = relay_len;
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  const ssize_t n = sendmsg(from, &m, (flags & ~MSG_FASTOPEN) | MSG_NOSIGNAL);
  if (n < 0) return errno;
  sent =
      n >= static_cast<ssize_t>(header.size()) ? static_cast<std::uint64_t>(n) - header.size() : 0;
  return 0;
}

// The source the program sees for a datagram the relay reported from `src`: its peer as it
// named it (connected), else the address in the socket's family; a name, the fake address it
// stands for.
socklen_t source_for(Supervisor& sv, Assoc& a, const socks5::Address& src, sockaddr_storage& out) {
  out = sockaddr_storage{};
  if (a.connected) {
    out = a.peer;
    return a.peer_len;
  }
  if (src.is_ip()) {
    sockaddr_storage ss{};
    if (src.to_sockaddr(ss) == 0 ||
        !socks5::fit_family(reinterpret_cast<sockaddr*>(&ss), a.family, out)) {
      return 0;
    }
    return out.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  if (sv.dns == nullptr) return 0;
  auto n = sv.dns->lookup_or_add(src.host());
  if (!n) return 0;
  if (a.family == AF_INET && n->has_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_port = htons(src.port());
    sv.dns->address4(*n, reinterpret_cast<std::uint8_t*>(&in->sin_addr));
    return sizeof *in;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(src.port());
  sv.dns->address6(*n, in6->sin6_addr.s6_addr);
  return sizeof *in6;
}

// A datagram the relay sent, unwrapped: its payload and source. False when it is not one for
// the program (malformed, a fragment that does not end a sequence, not from the peer).
bool unwrap(Supervisor& sv, Assoc& a, const std::uint8_t* dg, std::size_t len, bool peek,
            std::vector<std::uint8_t>& payload, socks5::Address& source) {
  auto h = socks5::wire::decode_udp_header(socks5::ByteView(dg, len));
  if (!h) return false;
  std::lock_guard<std::mutex> lock(a.mu);
  if (h->value.frag == 0) {
    if (!core::from_peer(a.filter, h->value.destination)) return false;
    payload.assign(dg + h->size, dg + len);
    source = h->value.destination;
    return true;
  }
  const auto outcome = a.reassembly.feed(h->value.frag, h->value.destination,
                                         socks5::ByteView(dg + h->size, len - h->size), peek,
                                         Clock::now(), payload, source);
  (void)sv;
  return outcome == core::Reassembly::Outcome::complete && core::from_peer(a.filter, source);
}

// `local`'s UDP ASSOCIATE (a worker's: it blocks for the proxy), then the datagrams that
// waited for it.
void make_local_association(Supervisor& sv, const std::shared_ptr<Assoc>& a) {
  int control = -1;
  sockaddr_storage relay{};
  socklen_t relay_len = 0;
  std::size_t proxy = 0;
  int local = -1;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    local = a->local;
  }
  const int e = local < 0 ? EBADF
                          : associate(sv, a->pid, a->family, bound_of(local), control, relay,
                                      relay_len, proxy);
  std::lock_guard<std::mutex> lock(a->mu);
  a->lmaking = false;
  if (e != 0 || a->local != local) {
    if (control >= 0) close(control);
    a->lqueue.clear();
    if (e != 0) a->error = e;
    return;
  }
  a->lcontrol = control;
  a->lrelay = relay;
  a->lrelay_len = relay_len;
  a->proxy = proxy;
  for (const auto& dg : a->lqueue) {
    std::uint64_t sent = 0;
    (void)send_via_relay(a->lrelay, a->lrelay_len, a->local, a->peer_dest, dg.data(), dg.size(),
                         MSG_DONTWAIT, sent);
  }
  a->lqueue.clear();
}

// Did `from` come from `a`'s relaying socket's relay? (Written by a worker when the
// association is made.)
bool from_relay(Assoc& a, const sockaddr_storage& from, socklen_t flen) {
  std::lock_guard<std::mutex> lock(a.mu);
  return a.lcontrol >= 0 && flen == a.lrelay_len && std::memcmp(&from, &a.lrelay, flen) == 0;
}

// The supervisor's side of a socket connected through the proxy: what the program sends
// (arriving here) goes wrapped to the relay; what the relay sends comes back unwrapped, from
// here, so the program's own recv and read see only the payload.
struct LocalRelay final : LoopItem {
  bool local_relay() const noexcept override { return true; }
  std::shared_ptr<Assoc> a;
  bool registered = false;
  void on_event(Supervisor& sv, std::uint32_t) override {
    std::uint8_t buf[kMaxDatagram + kMaxHeader];
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      const ssize_t n = recvfrom(a->local, buf, sizeof buf, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) break;
      if (flen == a->prog_len && std::memcmp(&from, &a->prog_addr, flen) == 0) {
        std::unique_lock<std::mutex> lock(a->mu);
        if (a->error != 0) continue;
        if (a->lcontrol < 0) {
          // The first datagram: the association is made by a worker; this one waits.
          if (a->lqueue.size() < 64) a->lqueue.emplace_back(buf, buf + n);
          if (!a->lmaking) {
            a->lmaking = true;
            std::shared_ptr<Assoc> keep = a;
            auto carrying = std::make_shared<Carrying>(sv);
            post(sv, [&sv, keep, carrying] { make_local_association(sv, keep); });
          }
          continue;
        }
        lock.unlock();
        std::uint64_t sent = 0;
        (void)send_via_relay(a->lrelay, a->lrelay_len, a->local, a->peer_dest, buf,
                             static_cast<std::size_t>(n), 0, sent);
      } else if (from_relay(*a, from, flen)) {
        std::vector<std::uint8_t> payload;
        socks5::Address source;
        if (unwrap(sv, *a, buf, static_cast<std::size_t>(n), false, payload, source)) {
          sendto(a->local, payload.data(), payload.size(), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&a->prog_addr), a->prog_len);
        }
      }  // anyone else: dropped
    }
    std::lock_guard<std::mutex> lock(a->mu);
    if (a->local >= 0 && a->connected) {
      arm(sv, this, a->local, EPOLLIN, registered);
    } else {
      done = true;
    }
  }
  void on_timeout(Supervisor&) override {}
};

// connect() of a UDP socket to a destination through the proxy: the socket is connected to a
// socket of the supervisor's that relays (its association is made with the first datagram:
// connect() sends nothing, as the kernel's does not). Answers the notification.
void connect_udp_proxied(Supervisor& sv, std::uint64_t id, pid_t pid, int fd, int sock,
                         const core::SocketFacts& facts, const sockaddr_storage& dst, socklen_t len,
                         const core::Destination& d) {
  int e = 0;
  std::shared_ptr<Assoc> a = ensure_assoc(sv, pid, fd, sock, facts, e, false);
  LocalRelay* relay = nullptr;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    if (a->local < 0) {
      // Any address (it sends to the relay), the loopback one for the program to reach.
      a->local = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      sockaddr_storage any{};
      any.ss_family = static_cast<sa_family_t>(a->family);
      const socklen_t any_len = a->family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      sockaddr_storage here{};
      socklen_t here_len = sizeof here;
      if (a->local < 0 || bind(a->local, reinterpret_cast<sockaddr*>(&any), any_len) != 0 ||
          getsockname(a->local, reinterpret_cast<sockaddr*>(&here), &here_len) != 0) {
        e = errno;
      } else if (a->family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&here)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      } else {
        reinterpret_cast<sockaddr_in6*>(&here)->sin6_addr = in6addr_loopback;
      }
      a->prog_len = sizeof a->prog_addr;
      if (e == 0 &&
          (connect(sock, reinterpret_cast<sockaddr*>(&here), here_len) != 0 ||
           getsockname(sock, reinterpret_cast<sockaddr*>(&a->prog_addr), &a->prog_len) != 0)) {
        e = errno;
      }
      if (e != 0 && a->local >= 0) {
        close(a->local);
        a->local = -1;
      }
      if (e == 0) relay = new LocalRelay;
    }
    if (e == 0) {
      a->connected = true;
      a->peer = dst;
      a->peer_len = len;
      a->peer_name = {};
      if (!d.name.empty()) {
        std::memcpy(a->peer_name.data(), d.name.data(),
                    std::min(d.name.size(), a->peer_name.size() - 1));
      }
      a->peer_dest = d;
      a->peer_dest.name = a->peer_name.data();
      a->filter = core::PeerFilter{};
      a->filter.active = true;
      a->filter.family = d.family;
      a->filter.ip = d.ip;
      a->filter.port = d.port;
      a->filter.name = a->peer_name;
    }
  }
  if (relay != nullptr) {
    relay->a = a;
    arm(sv, relay, a->local, EPOLLIN, relay->registered);
    sv.items.push_back(relay);
  }
  close(sock);
  reply(sv.listener, id, e);
}

// What a datagram to `m`'s address gets: kDirect (sent as it is), kConnected (as if it had no
// address: the socket's peer), kProxy (through the association, to `d`), or an errno.
constexpr int kDirect = 0;
constexpr int kConnected = -1;
constexpr int kProxy = -2;

int datagram_route(Supervisor& sv, pid_t pid, const core::SocketFacts& facts, int sock,
                   const Message& m, core::Destination& d, std::array<char, 256>& name) {
  const core::AddressReading r = core::read_address(
      facts, core::AddressUse::send, reinterpret_cast<const sockaddr*>(&m.name), m.name_len, d);
  if (r.kind == core::AddressReading::Kind::refused) return r.error;
  if (r.kind == core::AddressReading::Kind::unspecified) return kConnected;
  if (v6only(sock, r)) return ENETUNREACH;
  core::Context ctx;
  if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) {
    ctx.fake = true;
    if (sv.dns->name_of(d.family, d.ip.data(), name.data(), name.size())) d.name = name.data();
  }
  const core::Verdict v = core::classify(sv.config, core::Operation::datagram, d, ctx);
  if (v.action == Action::reject) {
    sv.connector.report_refusal(v, d, "UDP", pid);
    return core::refusal_errno(v.refusal);
  }
  if (v.action == Action::direct || v.action == Action::loopback) return kDirect;
  if (facts.type == SOCK_DGRAM && facts.protocol == IPPROTO_UDP) {
    // In remote-DNS mode a query to a name server goes to the responder, which answers it.
    if (d.port == 53 && sv.responder >= 0 && !(v.rule > 0)) return kConnected - 10;
    return kProxy;
  }
  // ICMP ("ping" sockets) and raw sockets: SOCKS carries only UDP. Never sent direct.
  const core::Verdict refused{Action::reject, v.why, v.rule, core::Refusal::udp_not_proxied};
  sv.connector.report_refusal(refused, d, "datagram", pid);
  return ENETUNREACH;
}

// A send notification with every message copied once from the program: performed later (by
// a worker, when it needs an association or may block) from these copies only.
struct SendJob {
  std::uint64_t id = 0;
  int nr = 0;
  pid_t pid = 0;
  int fd = -1;
  int sock = -1;
  core::SocketFacts facts;
  int flags = 0;
  std::vector<Message> msgs;
  std::uint64_t vec = 0;  // sendmmsg: where the program's mmsghdr array is (msg_len back)
  int error = 0;          // reading the messages failed at msgs.size() (0: all read)
};

// Sends one message as the program asked: 0 with the octets sent in `sent`, or the errno.
int send_one(Supervisor& sv, SendJob& job, Message& m, std::shared_ptr<Assoc>& assoc,
             std::uint64_t& sent) {
  const pid_t pid = job.pid;
  const int sock = job.sock;
  const auto& facts = job.facts;
  const int flags = job.flags;
  const bool inet = core::is_inet(facts);
  bool with_name = m.has_name;
  if (inet && m.has_name) {
    if (facts.type == SOCK_STREAM) {
      if ((flags & MSG_FASTOPEN) != 0) return EOPNOTSUPP;  // a connect the supervisor would make
      with_name = false;                                   // tcp_sendmsg ignores the address
    } else {
      core::Destination d;
      std::array<char, 256> name{};
      const int route = datagram_route(sv, pid, facts, sock, m, d, name);
      if (route > 0) return route;
      if (route == kConnected) with_name = false;
      if (route == kConnected - 10) {
        // A DNS query in remote-DNS mode: to the responder (it answers from the fake table).
        m.name = sv.responder_addr;
        m.name_len = sv.responder_len;
      }
      if (route == kProxy) {
        if (!assoc) {
          int e = 0;
          assoc = ensure_assoc(sv, pid, job.fd, sock, facts, e);
          if (!assoc) return e;
        }
        if (const int e = assoc_error(sv, *assoc); e != 0) return e;
        if (m.data.size() + kMaxHeader > kMaxDatagram + kMaxHeader) return EMSGSIZE;
        return send_via_relay(assoc->relay, assoc->relay_len, sock, d, m.data.data(), m.data.size(),
                              flags, sent);
      }
    }
  }
  sockaddr_un un{};
  socklen_t un_len = 0;
  if (!inet && with_name && m.name.ss_family == AF_UNIX) {
    if (!unix_in_program(pid, m.name, m.name_len, un, un_len)) return ENAMETOOLONG;
  }
  std::vector<int> taken;
  if (const int e = translate_control(pid, m.control, taken); e != 0) {
    for (const int t : taken) close(t);
    return e;
  }
  iovec one{m.data.data(), m.data.size()};
  msghdr out{};
  if (with_name) {
    out.msg_name = un_len != 0 ? static_cast<void*>(&un) : static_cast<void*>(&m.name);
    out.msg_namelen = un_len != 0 ? un_len : m.name_len;
  }
  out.msg_iov = &one;
  out.msg_iovlen = 1;
  out.msg_control = m.control.empty() ? nullptr : m.control.data();
  out.msg_controllen = m.control.size();
  const ssize_t n = sendmsg(sock, &out, flags | MSG_NOSIGNAL);
  const int e = n < 0 ? errno : 0;
  for (const int t : taken) close(t);
  if (n < 0) return e;
  sent = static_cast<std::uint64_t>(n);
  return 0;
}

// Performs a job and answers it.
void run_job(Supervisor& sv, SendJob& job) {
  std::shared_ptr<Assoc> assoc = assoc_of(sv, cookie_of(job.sock));
  int e = 0;
  std::uint64_t val = 0;
  std::size_t done = 0;
  for (; done < job.msgs.size(); ++done) {
    std::uint64_t n = 0;
    const int err = send_one(sv, job, job.msgs[done], assoc, n);
    if (err != 0) {
      if (done == 0) e = err;
      break;
    }
    if (job.nr == SYS_sendmmsg) {
      const auto len = static_cast<unsigned>(n);
      const std::uint64_t at = job.vec + done * sizeof(mmsghdr) + offsetof(mmsghdr, msg_len);
      if (!write_memory(job.pid, at, &len, sizeof len)) {
        if (done == 0) e = EFAULT;
        break;
      }
    } else {
      val = n;
    }
  }
  if (done == job.msgs.size() && job.error != 0 && done == 0) e = job.error;
  if (job.nr == SYS_sendmmsg && e == 0) val = done;
  close(job.sock);
  reply(sv.listener, job.id, e, static_cast<long long>(val));
}

// Whether any message of `job` goes through the proxy (then a worker runs it: the association
// may have to be made).
bool needs_proxy(Supervisor& sv, SendJob& job) {
  if (!core::is_inet(job.facts) || job.facts.type == SOCK_STREAM) return false;
  for (const Message& m : job.msgs) {
    if (!m.has_name) continue;
    core::Destination d;
    core::Context ctx;
    const core::AddressReading r =
        core::read_address(job.facts, core::AddressUse::send,
                           reinterpret_cast<const sockaddr*>(&m.name), m.name_len, d);
    if (r.kind != core::AddressReading::Kind::destination) continue;
    if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) ctx.fake = true;
    const core::Verdict v = core::classify(sv.config, core::Operation::datagram, d, ctx);
    if (v.action == Action::proxy) return true;
  }
  return false;
}

void on_send(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int fd = static_cast<int>(req.data.args[0]);
  const int sock = take_checked(sv, req, pid, fd);
  if (sock < 0) return;
  auto job = std::make_shared<SendJob>();
  job->id = req.id;
  job->nr = static_cast<int>(req.data.nr);
  job->pid = pid;
  job->fd = fd;
  job->sock = sock;
  job->facts = facts_of(sock);
  // A UNIX socket of a single-threaded program: sent by the program itself (its credentials,
  // exactly), as for connect.
  if (!core::is_inet(job->facts) && threads_of(pid) == 1) {
    close(sock);
    reply_continue(sv.listener, req.id);
    return;
  }
  job->flags = static_cast<int>(
      job->nr == SYS_sendto ? req.data.args[3] : req.data.args[job->nr == SYS_sendmsg ? 2 : 3]);
  const std::size_t limit = job->facts.type == SOCK_STREAM ? kMaxStream : kMaxDatagram;
  // Every message copied now, once.
  if (job->nr == SYS_sendto) {
    Message m;
    m.name_len = static_cast<socklen_t>(req.data.args[5]);
    const auto size = std::min(static_cast<std::size_t>(req.data.args[2]), limit);
    if (m.name_len > sizeof m.name) {
      job->error = EINVAL;
    } else if (!read_memory(pid, req.data.args[4], &m.name, m.name_len)) {
      job->error = EFAULT;
    } else {
      m.has_name = true;
      m.data.resize(size);
      if (!read_memory(pid, req.data.args[1], m.data.data(), size)) {
        job->error = EFAULT;
      } else {
        job->msgs.push_back(std::move(m));
      }
    }
  } else if (job->nr == SYS_sendmsg) {
    Message m;
    job->error = read_message(pid, req.data.args[1], limit, m);
    if (job->error == 0) job->msgs.push_back(std::move(m));
  } else {  // sendmmsg: every message, as the kernel takes them (at most UIO_MAXIOV)
    job->vec = req.data.args[1];
    const auto vlen = std::min<std::size_t>(req.data.args[2], kMaxMessages);
    for (std::size_t i = 0; i < vlen; ++i) {
      Message m;
      job->error =
          read_message(pid, job->vec + i * sizeof(mmsghdr) + offsetof(mmsghdr, msg_hdr), limit, m);
      if (job->error != 0) break;
      job->msgs.push_back(std::move(m));
    }
  }
  // What may wait (a blocking socket's full buffer, an association to make) is a worker's;
  // the rest is sent here.
  if (blocking(sock) || needs_proxy(sv, *job)) {
    auto carrying = std::make_shared<Carrying>(sv);
    post(sv, [&sv, job, carrying] { run_job(sv, *job); });
    return;
  }
  run_job(sv, *job);
}

// ---------------------------------------------------------------------------------------------
// Receives with a source (recvfrom with an address, recvmsg, recvmmsg): on a socket with an
// association, the supervisor takes the datagram and unwraps it; on any other, the program's
// own receive goes on (it sends nothing anywhere).

// Reads the datagram at the head of `sock` without taking it, and what the program should get
// of it. 1: `payload` and `src` hold it; 0: dropped (taken off: not for the program); -1 with
// errno (EAGAIN: nothing there).
int peek_datagram(Supervisor& sv, Assoc& a, int sock, std::vector<std::uint8_t>& payload,
                  sockaddr_storage& src, socklen_t& src_len) {
  std::vector<std::uint8_t> buf(kMaxDatagram + kMaxHeader);
  sockaddr_storage from{};
  socklen_t flen = sizeof from;
  const ssize_t n = recvfrom(sock, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &flen);
  if (n < 0) return -1;
  if (a.connected) {
    // From the supervisor's relaying socket: the payload already; the source is the peer.
    payload.assign(buf.begin(), buf.begin() + n);
    src = a.peer;
    src_len = a.peer_len;
    return 1;
  }
  if (!(flen == a.relay_len && std::memcmp(&from, &a.relay, flen) == 0)) {
    payload.assign(buf.begin(), buf.begin() + n);  // a direct datagram, as it is
    src = from;
    src_len = flen;
    return 1;
  }
  socks5::Address source;
  if (!unwrap(sv, a, buf.data(), static_cast<std::size_t>(n), true, payload, source)) {
    (void)recv(sock, buf.data(), 1, MSG_DONTWAIT);
    return 0;
  }
  src_len = source_for(sv, a, source, src);
  return 1;
}

// Delivers `payload` and `src` into the program's recvmsg-style message at `msg_addr` (or, for
// recvfrom, its buffer and address arguments). 0 with the length to return in `ret`, or an
// errno.
int deliver(pid_t pid, const seccomp_notif& req, std::uint64_t msg_addr,
            const std::vector<std::uint8_t>& payload, const sockaddr_storage& src,
            socklen_t src_len, int flags, long long& ret) {
  std::vector<iovec> iov;
  std::uint64_t name = 0, name_len_at = 0;
  if (req.data.nr == SYS_recvfrom) {
    iov.push_back(iovec{reinterpret_cast<void*>(req.data.args[1]),
                        static_cast<std::size_t>(req.data.args[2])});
    name = req.data.args[4];
    name_len_at = req.data.args[5];
  } else {
    msghdr m{};
    if (!read_memory(pid, msg_addr, &m, sizeof m)) return EFAULT;
    if (m.msg_iovlen > kMaxMessages) return EMSGSIZE;
    iov.resize(m.msg_iovlen);
    if (!iov.empty() && !read_memory(pid, reinterpret_cast<std::uint64_t>(m.msg_iov), iov.data(),
                                     iov.size() * sizeof(iovec)))
      return EFAULT;
    name = reinterpret_cast<std::uint64_t>(m.msg_name);
    name_len_at = name != 0 ? msg_addr + offsetof(msghdr, msg_namelen) : 0;
  }
  std::size_t done = 0;
  for (const auto& v : iov) {
    if (done >= payload.size()) break;
    const std::size_t n = std::min(v.iov_len, payload.size() - done);
    if (!write_memory(pid, reinterpret_cast<std::uint64_t>(v.iov_base), payload.data() + done, n))
      return EFAULT;
    done += n;
  }
  if (name != 0 && name_len_at != 0) {
    socklen_t room = 0;
    if (!read_memory(pid, name_len_at, &room, sizeof room)) return EFAULT;
    if (!write_memory(pid, name, &src, std::min(room, src_len)) ||
        !write_memory(pid, name_len_at, &src_len, sizeof src_len))
      return EFAULT;
  }
  if (req.data.nr != SYS_recvfrom) {
    const int mflags = done < payload.size() ? MSG_TRUNC : 0;
    const std::size_t no_control = 0;
    if (!write_memory(pid, msg_addr + offsetof(msghdr, msg_flags), &mflags, sizeof mflags) ||
        !write_memory(pid, msg_addr + offsetof(msghdr, msg_controllen), &no_control,
                      sizeof no_control))
      return EFAULT;
  }
  ret = static_cast<long long>((flags & MSG_TRUNC) != 0 ? payload.size() : done);
  return 0;
}

// A receive waiting in the loop for the program's blocking socket (within its SO_RCVTIMEO);
// given up when the program's call went (a signal interrupted it).
struct RecvOp final : LoopItem {
  seccomp_notif req{};
  pid_t pid = 0;
  int sock = -1;
  std::shared_ptr<Assoc> a;
  bool registered = false;
  Clock::time_point deadline = Clock::time_point::max();
  void on_event(Supervisor& sv, std::uint32_t) override;
  void on_timeout(Supervisor& sv) override;
  void end(Supervisor& sv, int e, long long val) {
    if (registered) epoll_ctl(sv.ep, EPOLL_CTL_DEL, sock, nullptr);
    close(sock);
    reply(sv.listener, req.id, e, val);
    done = true;
  }
};

// One receive (recvfrom, recvmsg, or the first of recvmmsg): 1 answered (`e`, `val`), 0 must
// wait.
int try_receive(Supervisor& sv, const seccomp_notif& req, pid_t pid, int sock, Assoc& a, int& e,
                long long& val) {
  const int nr = static_cast<int>(req.data.nr);
  const int flags = static_cast<int>(req.data.args[nr == SYS_recvfrom ? 3 : 2]);
  const std::uint64_t msg_addr =
      nr == SYS_recvmmsg ? req.data.args[1] + offsetof(mmsghdr, msg_hdr) : req.data.args[1];
  for (int round = 0; round < 64; ++round) {
    std::vector<std::uint8_t> payload;
    sockaddr_storage src{};
    socklen_t src_len = 0;
    const int got = peek_datagram(sv, a, sock, payload, src, src_len);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        e = errno;
        return 1;
      }
      return 0;
    }
    if (got == 0) continue;  // dropped: the next one
    // The program's call may have gone meanwhile: the datagram stays queued for it then.
    if (!still_valid(sv.listener, req.id)) {
      e = EINTR;
      return 1;
    }
    long long ret = 0;
    e = deliver(pid, req, msg_addr, payload, src, src_len, flags, ret);
    if (e == 0 && (flags & MSG_PEEK) == 0) {
      std::uint8_t one;
      (void)recv(sock, &one, 1, MSG_DONTWAIT | MSG_TRUNC);  // taken
    }
    if (nr == SYS_recvmmsg && e == 0) {
      const auto len = static_cast<unsigned>(ret);
      write_memory(pid, req.data.args[1] + offsetof(mmsghdr, msg_len), &len, sizeof len);
      ret = 1;  // one message (the rest: the program's next call)
    }
    val = ret;
    return 1;
  }
  return 0;
}

void RecvOp::on_event(Supervisor& sv, std::uint32_t) {
  int e = 0;
  long long val = 0;
  if (try_receive(sv, req, pid, sock, *a, e, val) != 0) {
    end(sv, e == EINTR ? 0 : e, val);
    return;
  }
  arm(sv, this, sock, EPOLLIN, registered);
}

void RecvOp::on_timeout(Supervisor& sv) {
  if (Clock::now() >= deadline) {
    end(sv, EAGAIN, 0);  // the program's SO_RCVTIMEO
    return;
  }
  if (!still_valid(sv.listener, req.id)) {
    end(sv, EINTR, 0);
    return;
  }
  until = std::min(deadline, Clock::now() + std::chrono::seconds(1));  // looks again
}

void on_receive(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int sock = take_fd(pid, static_cast<int>(req.data.args[0]));
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  std::shared_ptr<Assoc> a = assoc_of(sv, cookie_of(sock));
  if (!a || !still_valid(sv.listener, req.id)) {
    close(sock);
    reply_continue(sv.listener, req.id);  // not the supervisor's: the kernel's receive
    return;
  }
  int e = 0;
  long long val = 0;
  if (try_receive(sv, req, pid, sock, *a, e, val) != 0) {
    close(sock);
    reply(sv.listener, req.id, e, val);
    return;
  }
  const int nr = static_cast<int>(req.data.nr);
  const int flags = static_cast<int>(req.data.args[nr == SYS_recvfrom ? 3 : 2]);
  if ((flags & MSG_DONTWAIT) != 0 || !blocking(sock)) {
    close(sock);
    reply(sv.listener, req.id, EAGAIN);
    return;
  }
  auto* op = new RecvOp;
  op->req = req;
  op->pid = pid;
  op->sock = sock;
  op->a = a;
  timeval tv{};
  socklen_t tlen = sizeof tv;
  if (getsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, &tlen) == 0 &&
      (tv.tv_sec != 0 || tv.tv_usec != 0)) {
    op->deadline =
        Clock::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  }
  op->until = std::min(op->deadline, Clock::now() + std::chrono::seconds(1));
  arm(sv, op, sock, EPOLLIN, op->registered);
  sv.items.push_back(op);
}

// A socket connected through the proxy connects elsewhere (or dissolves): the supervisor's
// relaying socket goes (the association stays for datagrams sent by address).
}  // namespace socksify::tool::supervised
