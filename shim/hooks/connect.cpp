// connect(): gathers the facts (socket type, destination, the name behind a fake address),
// asks the policy, and acts: direct, refused, or through the proxies (proxy_connect.hpp).
#include "core_names.hpp"
#include "hooks/hooks.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "bind.hpp"
#include "direct_names.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"
#include "session.hpp"
#include "udp.hpp"

namespace socksify::shim {
namespace {

// A fake address under a "direct" rule (e.g. a port rule): resolve the name here and connect.
int connect_direct_by_name(int fd, int family, const Destination& d) {
  addrinfo hints{};
  hints.ai_family = family == AF_INET ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = family == AF_INET6 ? (AI_V4MAPPED | AI_ALL) : 0;
  addrinfo* list = nullptr;
  const std::string name(d.name);
  const std::string port = std::to_string(d.port);
  int rc = 0;
  {
    ResolverScope scope;
    rc = real().getaddrinfo(name.c_str(), port.c_str(), &hints, &list);
  }
  if (rc != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  rc = -1;
  errno = EHOSTUNREACH;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != family) continue;
    rc = real().connect(fd, ai->ai_addr, ai->ai_addrlen);
    break;
  }
  const int e = errno;
  real().freeaddrinfo(list);
  errno = e;
  return rc;
}

int refuse(const Verdict& v, const Destination& d, const char* what) {
  log_refusal(v, d, what);
  errno = refusal_errno(v.refusal);
  return -1;
}

// connect() reached while this thread is inside the shim: a signal handler interrupted our
// work, or the local resolver we called is making its own connections. No allocation, no
// lock: classify as usual, with what can be known without the fake-DNS table's lock.
int nested_connect(int fd, const sockaddr* addr, socklen_t len, Destination d, int type) {
  const Runtime* rt = runtime_if_ready();
  Context ctx;
  ctx.nested = true;
  ctx.in_resolver = in_resolver();
  ctx.in_kerberos = in_kerberos();
  if (rt == nullptr) {
    // Not initialised yet (this thread is initialising): only loopback can be judged.
    if (ctx.in_resolver || is_loopback(d.family, d.ip.data())) {
      return real().connect(fd, addr, len);
    }
    errno = ENETUNREACH;
    return -1;
  }
  char name[256];
  describe_fake(*rt, d, ctx, name);
  const Operation op = type == SOCK_STREAM ? Operation::connect : Operation::datagram;
  const Verdict v = classify(rt->config, op, d, ctx);
  if (v.action == Action::direct) return real().connect(fd, addr, len);
  return refuse(v, d, "connect");
}

// -v: a direct connection, with its destination and why it is direct.
void log_direct(const Verdict& v, const Destination& d) {
  runtime().connector.report_direct(v, d);
}

}  // namespace

void log_refusal(const Verdict& v, const Destination& d, const char* what) noexcept {
  const Runtime* rt = runtime_if_ready();
  if (rt != nullptr) rt->connector.report_refusal(v, d, what);
}

int socket_type(int fd) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  if (real().getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}

bool socket_facts(int fd, SocketFacts& facts, bool protocol) noexcept {
  socklen_t len = sizeof facts.family;
  if (real().getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &facts.family, &len) != 0) return false;
  len = sizeof facts.type;
  if (real().getsockopt(fd, SOL_SOCKET, SO_TYPE, &facts.type, &len) != 0) return false;
  facts.type &= 0xF;
  facts.protocol = 0;
  len = sizeof facts.protocol;
  if (protocol && real().getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &facts.protocol, &len) != 0) {
    return false;
  }
  return true;
}

bool v6only_refuses(int fd, const AddressReading& r) noexcept {
  if (!r.v4_mapped) return false;
  int only = 0;
  socklen_t len = sizeof only;
  if (real().getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, &len) != 0 || only == 0) {
    return false;
  }
  errno = ENETUNREACH;
  return true;
}

bool local_stub_query(const Runtime& rt, const Destination& d) noexcept {
  return rt.config.remote_dns && d.port == 53 && d.name.empty() && d.family != 0 &&
         is_loopback(d.family, d.ip.data());
}

bool is_udp(int fd, int type) noexcept {
  if ((type & 0xF) != SOCK_DGRAM) return false;
  int protocol = 0;
  socklen_t len = sizeof protocol;
  return real().getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
         protocol == IPPROTO_UDP;
}

int on_connect(int fd, const sockaddr* addr, socklen_t len, bool* direct_fastopen) noexcept {
  // No address, or not an internet socket (a UNIX socket, not a socket at all): the kernel's
  // business (nothing can reach the network through it).
  SocketFacts facts;
  if (addr == nullptr || !socket_facts(fd, facts, false) || !is_inet(facts)) {
    return real().connect(fd, addr, len);
  }
  // The address is read once: the kernel gets the copy the policy judged, whatever another
  // thread writes to the program's memory meanwhile. Longer than any address: the kernel's
  // EINVAL (it reads nothing).
  sockaddr_storage own;
  if (len > sizeof own) return real().connect(fd, addr, len);
  std::memcpy(&own, addr, len);
  addr = reinterpret_cast<const sockaddr*>(&own);
  // The address exactly as the kernel reads it: what it would refuse is refused here (never
  // sent through the proxy, never "not an address, so direct").
  Destination d;
  const AddressReading reading = read_address(facts, AddressUse::connect, addr, len, d);
  if (reading.kind == AddressReading::Kind::refused) {
    errno = reading.error;
    return -1;
  }
  if (reading.kind == AddressReading::Kind::unspecified) {
    // A datagram socket with a UDP association forgets its peer and keeps the relay.
    if (SessionRef s = udp_of(fd)) return udp_disconnect(fd, *s.get(), addr, len);
    // Dissolving the association: what the shim knew about the old one goes with it.
    session_detach(fd);
    return real().connect(fd, addr, len);
  }
  if (v6only_refuses(fd, reading)) return -1;
  if (inside()) return nested_connect(fd, addr, len, d, facts.type);
  const int type = facts.type;
  // What the library keeps and reports (getpeername) is the address as the kernel would have
  // it: full length, and v4-mapped on an IPv6 socket. A direct connect still gets the
  // program's own octets.
  sockaddr_storage canon;
  const socklen_t canon_len = canonical_peer(facts.family, addr, len, canon);
  const auto* peer = reinterpret_cast<const sockaddr*>(&canon);
  Guard guard;
  const Runtime& rt = runtime();
  Context ctx;
  char name[256];
  describe_fake(rt, d, ctx, name);
  if ((type & 0xF) != SOCK_STREAM) {
    // Datagram sockets (UDP, ICMP, raw): connect() only sets the default destination; the
    // datagram policy decides. Through the proxy, the socket stays connected to the relay and
    // the destination becomes the association's peer (udp.hpp).
    if (!ctx.fake && local_stub_query(rt, d) && is_udp(fd, type)) {
      return stub_connect(fd, peer, canon_len);  // its queries are answered here
    }
    const Verdict v = classify(rt.config, Operation::datagram, d, ctx);
    if (v.action == Action::proxy && is_udp(fd, type)) {
      return udp_connect(fd, rt, peer, canon_len, d);
    }
    if (v.action == Action::proxy) {
      // ICMP and raw sockets: SOCKS carries only UDP.
      return refuse(Verdict{Action::reject, v.why, v.rule, Refusal::udp_not_proxied}, d,
                    "datagram");
    }
    if (v.action != Action::direct) return refuse(v, d, "UDP");
    // An associated socket keeps its association (datagrams sent to proxied destinations by
    // address still go through it); its datagrams without an address go to this peer.
    if (SessionRef s = udp_of(fd)) return udp_connect_direct(fd, *s.get(), peer, canon_len);
    return real().connect(fd, addr, len);
  }
  if (SessionKind hint{}; session_kind_hint(fd, hint)) {
    // A socket bound beside a proxied connection got a BIND at bind() time: connecting
    // instead of listening gives it back its plain socket first.
    if (hint == SessionKind::listening && bind_undo(fd) != 0) return -1;
    if (SessionRef s = session_of(fd); s && s->kind.load() != SessionKind::listening) {
      if (s->kind.load(std::memory_order_acquire) == SessionKind::connecting) {
        return resume_connect(fd, *s.get());
      }
      errno = EISCONN;  // what the kernel says for a second connect on a connected socket
      return -1;
    }
  }
  ctx.direct_by_name = d.name.empty() && is_direct_by_name(d.family, d.ip.data());
  const Verdict v = classify(rt.config, Operation::connect, d, ctx);
  switch (v.action) {
    case Action::direct:
      if (log_enabled(LogLevel::info)) log_direct(v, d);
      if (!d.name.empty()) return connect_direct_by_name(fd, facts.family, d);
      if (direct_fastopen != nullptr) {
        *direct_fastopen = true;  // the kernel sends the data with the SYN itself
        return 0;
      }
      return real().connect(fd, addr, len);
    case Action::proxy: return proxied_connect(rt, fd, d, peer, canon_len, v);
    case Action::reject:
    case Action::loopback: break;
  }
  return refuse(v, d, "connect");
}

}  // namespace socksify::shim

extern "C" SOCKSIFY_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  return socksify::shim::on_connect(fd, addr, len, nullptr);
}
