#include "policy.hpp"

#include <cerrno>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace socksify::core {

using settings::Rule;
using socks5::Errc;

bool is_loopback(int family, const std::uint8_t* ip) noexcept {
  if (family == AF_INET) return ip[0] == 127;
  static const std::uint8_t kLo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return family == AF_INET6 && std::memcmp(ip, kLo6, 16) == 0;
}

socks5::Address target_of(const Destination& d) {
  if (!d.name.empty()) return socks5::Address::domain(std::string(d.name), d.port);
  if (d.family == AF_INET) {
    return socks5::Address::ipv4({d.ip[0], d.ip[1], d.ip[2], d.ip[3]}, d.port);
  }
  return socks5::Address::ipv6(d.ip, d.port);
}

bool is_unspecified(int family, const std::uint8_t* ip) noexcept {
  static const std::uint8_t kZero[16] = {};
  return (family == AF_INET || family == AF_INET6) &&
         std::memcmp(ip, kZero, family == AF_INET ? 4 : 16) == 0;
}

bool domain_matches(std::string_view name, std::string_view suffix) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // absolute form
  if (name.size() < suffix.size()) return false;
  const std::size_t off = name.size() - suffix.size();
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = name[off + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return off == 0 || name[off - 1] == '.';
}

bool is_localhost_name(std::string_view name) noexcept {
  return domain_matches(name, "localhost");
}

bool destination_from(const sockaddr* sa, socklen_t len, Destination& dst) noexcept {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    dst.family = AF_INET;
    std::memcpy(dst.ip.data(), &in.sin_addr, 4);
    dst.port = ntohs(in.sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof in6);
    dst.port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      dst.family = AF_INET;
      std::memcpy(dst.ip.data(), &in6.sin6_addr.s6_addr[12], 4);
    } else {
      dst.family = AF_INET6;
      std::memcpy(dst.ip.data(), &in6.sin6_addr, 16);
    }
    return true;
  }
  return false;
}

namespace {

// The octets of a sockaddr_in at `sa` (the caller checked it holds 16).
void read_v4(const sockaddr* sa, Destination& dst) {
  sockaddr_in in{};
  std::memcpy(&in, sa, sizeof in);
  dst.family = AF_INET;
  std::memcpy(dst.ip.data(), &in.sin_addr, 4);
  dst.port = ntohs(in.sin_port);
}

// The first 24 octets of a sockaddr_in6 at `sa` (family, port, flow info, address: RFC 2133's
// layout; sin6_scope_id, when there, does not change the destination). v4-mapped: IPv4.
bool read_v6(const sockaddr* sa, Destination& dst) {
  sockaddr_in6 in6{};
  std::memcpy(&in6, sa, offsetof(sockaddr_in6, sin6_scope_id));
  dst.port = ntohs(in6.sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
    dst.family = AF_INET;
    std::memcpy(dst.ip.data(), &in6.sin6_addr.s6_addr[12], 4);
    return true;
  }
  dst.family = AF_INET6;
  std::memcpy(dst.ip.data(), &in6.sin6_addr, 16);
  return false;
}

constexpr socklen_t kLenV4 = sizeof(sockaddr_in);
constexpr socklen_t kLenV6Min = offsetof(sockaddr_in6, sin6_scope_id);  // 24 (RFC 2133)

AddressReading refused(int e) {
  AddressReading r;
  r.kind = AddressReading::Kind::refused;
  r.error = e;
  return r;
}

AddressReading found(bool mapped = false) {
  AddressReading r;
  r.kind = AddressReading::Kind::destination;
  r.v4_mapped = mapped;
  return r;
}

AddressReading unspecified() {
  AddressReading r;
  r.kind = AddressReading::Kind::unspecified;
  return r;
}

bool is_udp_facts(const SocketFacts& f) {
  return f.type == SOCK_DGRAM && (f.protocol == IPPROTO_UDP || f.protocol == IPPROTO_UDPLITE);
}

}  // namespace

socklen_t canonical_peer(int socket_family, const sockaddr* sa, socklen_t len,
                         sockaddr_storage& out) noexcept {
  out = sockaddr_storage{};
  if (sa->sa_family == AF_INET6) {
    std::memcpy(&out, sa, std::min<std::size_t>(len, sizeof(sockaddr_in6)));
    return sizeof(sockaddr_in6);
  }
  sockaddr_in in{};
  std::memcpy(&in, sa, sizeof in);
  in.sin_family = AF_INET;
  std::memset(in.sin_zero, 0, sizeof in.sin_zero);
  // On an IPv6 socket, v4-mapped.
  const int family = socket_family == AF_INET6 ? AF_INET6 : AF_INET;
  socks5::fit_family(reinterpret_cast<const sockaddr*>(&in), family, out);
  return family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

bool read_usual_address(const sockaddr* sa, socklen_t len, Destination& dst) noexcept {
  if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) return false;
  if (sa->sa_family == AF_INET && len >= kLenV4) {
    read_v4(sa, dst);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    read_v6(sa, dst);
    return true;
  }
  return false;
}

AddressReading read_address(const SocketFacts& facts, AddressUse use, const sockaddr* sa,
                            socklen_t len, Destination& dst) noexcept {
  if (sa == nullptr) return refused(EFAULT);
  // Every path reads the family first (inet_stream_connect, inet_dgram_connect,
  // udpv6_sendmsg); a shorter address is refused.
  if (len < static_cast<socklen_t>(sizeof(sa_family_t))) return refused(EINVAL);
  const int family = sa->sa_family;
  const bool v6 = facts.family == AF_INET6;
  const bool stream = facts.type == SOCK_STREAM;
  if (use == AddressUse::connect) {
    if (family == AF_UNSPEC) return unspecified();  // disconnect
    if (!v6) {
      // tcp_v4_pre_connect / __ip4_datagram_connect: the length, then the family.
      if (len < kLenV4) return refused(EINVAL);
      if (family != AF_INET) return refused(EAFNOSUPPORT);
      read_v4(sa, dst);
      return found();
    }
    // __ip6_datagram_connect (UDP, raw, ping): AF_INET connects the IPv6 socket to IPv4.
    if (!stream && family == AF_INET) {
      if (len < kLenV4) return refused(EINVAL);
      read_v4(sa, dst);
      return found();
    }
    // tcp_v6_pre_connect / tcp_v6_connect and the rest of __ip6_datagram_connect.
    if (len < kLenV6Min) return refused(EINVAL);
    if (family != AF_INET6) return refused(EAFNOSUPPORT);
    return found(read_v6(sa, dst));
  }
  // Sending with an address.
  if (!v6) {
    // udp_sendmsg, raw_sendmsg and ping's: AF_UNSPEC is read as AF_INET (udp, raw).
    if (len < kLenV4) return refused(EINVAL);
    if (family != AF_INET && family != AF_UNSPEC) return refused(EAFNOSUPPORT);
    read_v4(sa, dst);
    if (dst.port == 0 && is_udp_facts(facts)) return refused(EINVAL);
    return found();
  }
  if (is_udp_facts(facts)) {
    // udpv6_sendmsg.
    switch (family) {
      case AF_INET:
        if (len < kLenV4) return refused(EINVAL);
        read_v4(sa, dst);
        if (dst.port == 0) return refused(EINVAL);
        return found();
      case AF_INET6: {
        if (len < kLenV6Min) return refused(EINVAL);
        const bool mapped = read_v6(sa, dst);
        if (dst.port == 0) return refused(EINVAL);
        return found(mapped);
      }
      case AF_UNSPEC: return unspecified();  // as if no address: the connected peer
      default: return refused(EINVAL);
    }
  }
  // rawv6_sendmsg (AF_UNSPEC read as AF_INET6) and ping's (which wants AF_INET6: reading
  // AF_UNSPEC as IPv6 too can only refuse more, never send elsewhere).
  if (len < kLenV6Min) return refused(EINVAL);
  if (family != AF_INET6 && family != AF_UNSPEC) return refused(EAFNOSUPPORT);
  return found(read_v6(sa, dst));
}

namespace {

bool is_proxy(const Config& config, const Destination& dst) {
  for (const auto& p : config.proxies) {
    if (p.port != dst.port) continue;
    std::uint8_t buf[16];
    const int fam = p.host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    if (fam == dst.family && inet_pton(fam, p.host.c_str(), buf) == 1 &&
        std::memcmp(buf, dst.ip.data(), fam == AF_INET ? 4 : 16) == 0) {
      return true;
    }
  }
  return false;
}

bool matches(const Rule& r, const Destination& dst) {
  switch (r.kind) {
    case Rule::Kind::any: return true;
    case Rule::Kind::cidr:
      return dst.name.empty() && dst.family != 0 && r.net.contains(dst.family, dst.ip.data());
    case Rule::Kind::port: return dst.port >= r.port_lo && dst.port <= r.port_hi;
    case Rule::Kind::domain: return !dst.name.empty() && domain_matches(dst.name, r.suffix);
  }
  return false;
}

constexpr Verdict direct(const char* why) {
  return Verdict{Action::direct, why, -1, Refusal::none};
}

constexpr Verdict refuse(Refusal why_code, const char* why, int rule = -1) {
  return Verdict{Action::reject, why, rule, why_code};
}

// The connection order (see policy.hpp). `tcp` adds the DNS-over-TCP rule.
Verdict route(const Config& config, const Destination& dst, const Context& ctx, bool tcp) {
  if (dst.name.empty() && is_proxy(config, dst)) return direct("the proxy itself");
  if (ctx.direct_by_name) return direct("a direct domain rule");
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& r = config.rules[i];
    if (!matches(r, dst)) continue;
    const int n = static_cast<int>(i + 1);
    if (r.action == Action::reject) return refuse(Refusal::rejected_by_rule, "rule", n);
    return Verdict{r.action, "rule", n, Refusal::none};
  }
  // A local stub resolver forwards what it gets: DNS over TCP is never sent direct.
  if (config.remote_dns && tcp && dst.port == 53) {
    return Verdict{Action::proxy, "dns over tcp", -1, Refusal::none};
  }
  if (dst.name.empty() && !ctx.fake && is_loopback(dst.family, dst.ip.data())) {
    return direct("loopback");
  }
  // 0.0.0.0 and :: as a destination are this host to the kernel.
  if (dst.name.empty() && !ctx.fake && is_unspecified(dst.family, dst.ip.data())) {
    return direct("this host (an unspecified address)");
  }
  if (config.default_action == Action::reject) return refuse(Refusal::rejected_by_rule, "default");
  return Verdict{config.default_action, "default", -1, Refusal::none};
}

// The first domain rule that matches a name (1-based), or 0.
int by_name(const Config& config, std::string_view name) {
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& r = config.rules[i];
    if (r.kind == Rule::Kind::domain && domain_matches(name, r.suffix)) {
      return static_cast<int>(i + 1);
    }
  }
  return 0;
}

// A domain rule that sends the name direct: the local resolver may be asked about it.
bool direct_by_rule(const Config& config, std::string_view name, Verdict& v) {
  const int n = by_name(config, name);
  if (n == 0 || config.rules[static_cast<std::size_t>(n - 1)].action != Action::direct) {
    return false;
  }
  v = Verdict{Action::direct, "rule", n, Refusal::none};
  return true;
}

}  // namespace

Verdict classify(const Config& config, Operation op, const Destination& dst,
                 const Context& ctx) noexcept {
  // The local resolver, asked by the shim itself because the policy allowed it: its own
  // traffic (to name servers, nscd, mDNS...) goes as it would without us.
  if (ctx.nested && ctx.in_resolver && (op == Operation::connect || op == Operation::datagram)) {
    return direct("the local resolver's own traffic");
  }
  // The same for Kerberos, asked by the shim's GSSAPI handshake: the KDC must be reached
  // directly (as the proxy itself is).
  if (ctx.nested && ctx.in_kerberos && (op == Operation::connect || op == Operation::datagram)) {
    return direct("the Kerberos library's own traffic (the KDC)");
  }
  Verdict v;
  switch (op) {
    case Operation::connect: v = route(config, dst, ctx, true); break;
    case Operation::datagram:
      // A DNS query over UDP: in local-DNS mode that is what is wanted. In remote-DNS mode a
      // query to a loopback stub would be forwarded by it to the local network: refused. A
      // query to a server the program chose goes as any datagram does: through the proxy
      // (UDP ASSOCIATE), unless a rule says otherwise.
      if (dst.port == 53 && !config.remote_dns) {
        v = direct("local dns");
        break;
      }
      if (dst.port == 53 && dst.name.empty() && !ctx.fake &&
          is_loopback(dst.family, dst.ip.data())) {
        v = refuse(Refusal::dns_would_leak, "dns over udp to a local stub");
        break;
      }
      v = route(config, dst, ctx, false);
      break;
    case Operation::listen:
      // Loopback listeners are for this host; the rest follows the listen mode.
      if (config.listen == settings::ListenMode::local) return direct("local listening socket");
      if (dst.family != 0 && is_loopback(dst.family, dst.ip.data())) {
        return direct("loopback listening socket");
      }
      if (config.listen == settings::ListenMode::proxy) {
        v = Verdict{Action::proxy, "listen through the proxy", -1, Refusal::none};
      } else if (ctx.beside_proxied) {
        v = Verdict{Action::proxy, "bound beside a proxied connection", -1, Refusal::none};
      } else {
        return direct("local listening socket");
      }
      break;
    case Operation::resolve: {
      if (!config.remote_dns) return direct("local dns");
      if (is_localhost_name(dst.name)) {
        return Verdict{Action::loopback, "localhost (RFC 6761)", -1, Refusal::none};
      }
      if (direct_by_rule(config, dst.name, v)) return v;
      // Names a reject rule matches get a fake address too: the connect is what is refused,
      // with EACCES, which says more than a failed lookup.
      return Verdict{Action::proxy, "remote dns", -1, Refusal::none};
    }
    case Operation::reverse: {
      if (ctx.fake) return Verdict{Action::proxy, "a fake address", -1, Refusal::none};
      if (!config.remote_dns) return direct("local dns");
      // Asking the local resolver about an address that goes through the proxy would tell the
      // local DNS where the program is going: only addresses routed direct are looked up.
      const Verdict r = route(config, dst, ctx, true);
      if (r.action == Action::direct) return r;
      return refuse(Refusal::dns_would_leak, "reverse lookup of a proxied address");
    }
    case Operation::dns_query:
      if (!config.remote_dns) return direct("local dns");
      if (direct_by_rule(config, dst.name, v)) return v;
      return refuse(Refusal::dns_would_leak, "resolver query in remote-DNS mode");
  }
  // A signal handler that interrupted the shim's own work on this thread: what would need
  // the proxy is refused (never sent direct); the rest is decided as usual.
  if (ctx.nested && v.action == Action::proxy) {
    return refuse(Refusal::reentrant_call, "inside the library (signal handler)", v.rule);
  }
  return v;
}

int refusal_errno(Refusal r) noexcept {
  switch (r) {
    case Refusal::udp_not_proxied:
    case Refusal::reentrant_call: return ENETUNREACH;
    case Refusal::none:
    case Refusal::rejected_by_rule:
    case Refusal::dns_would_leak: return EACCES;
  }
  return EACCES;
}

const char* refusal_text(Refusal r) noexcept {
  switch (r) {
    case Refusal::none: return "refused";
    case Refusal::rejected_by_rule: return "rejected by a rule";
    case Refusal::udp_not_proxied:
      return "only UDP datagrams go through the proxy (not ICMP or raw ones)";
    case Refusal::dns_would_leak: return "DNS query refused: it would reach the local resolver";
    case Refusal::reentrant_call:
      return "refused: a signal handler interrupted the library's own work on this thread";
  }
  return "refused";
}

}  // namespace socksify::core
