// classify(): every decision the shim makes, from one pure function, without sockets.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "config.hpp"
#include "policy.hpp"
#include "socks5/error.hpp"

using namespace socksify::core;
using socks5::Errc;
using socksify::settings::parse_config;

namespace {

Config config(std::map<std::string, std::string> env) {
  auto c = parse_config([env = std::move(env)](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  REQUIRE(c);
  return *c;
}

Destination v4(const char* ip, std::uint16_t port) {
  Destination d;
  d.family = AF_INET;
  inet_pton(AF_INET, ip, d.ip.data());
  d.port = port;
  return d;
}

Destination named(std::string_view name, std::uint16_t port) {
  Destination d = v4("198.18.0.1", port);
  d.name = name;
  return d;
}

Destination name_only(std::string_view name) {
  Destination d;
  d.name = name;
  return d;
}

Action act(const Config& c, Operation op, const Destination& d, Context ctx = {}) {
  return classify(c, op, d, ctx).action;
}

}  // namespace

TEST_CASE("policy, connect: first match wins, loopback direct, proxies direct, fail-closed",
          "[shim][policy]") {
  const Config c = config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"},
                           {"SOCKSIFY_RULES",
                            "reject port 25; direct 192.168.0.0/16; proxy 127.0.0.2; "
                            "direct .corp.example; reject *.ads.example"}});
  const auto op = Operation::connect;
  CHECK(act(c, op, v4("127.0.0.1", 1080)) == Action::direct);  // the proxy itself
  CHECK(std::string(classify(c, op, v4("127.0.0.1", 1080)).why) == "the proxy itself");
  CHECK(act(c, op, v4("127.0.0.1", 8080)) == Action::direct);  // loopback
  CHECK(act(c, op, v4("127.0.0.2", 8080)) == Action::proxy);   // a rule beats loopback
  CHECK(act(c, op, v4("192.168.1.9", 80)) == Action::direct);
  const Verdict smtp = classify(c, op, v4("192.168.1.9", 25));  // first match
  CHECK(smtp.action == Action::reject);
  CHECK(smtp.rule == 1);
  CHECK(smtp.refusal == Refusal::rejected_by_rule);
  CHECK(refusal_errno(smtp.refusal) == EACCES);
  CHECK(act(c, op, v4("203.0.113.5", 443)) == Action::proxy);  // the default
  CHECK(classify(c, op, v4("203.0.113.5", 443)).rule == -1);
  CHECK(act(c, op, named("git.corp.example", 443)) == Action::direct);
  CHECK(act(c, op, named("corp.example", 443)) == Action::direct);
  CHECK(act(c, op, named("notcorp.example", 443)) == Action::proxy);
  CHECK(act(c, op, named("x.ads.example", 80)) == Action::reject);
  // CIDR rules never match the meaningless fake address of a name.
  CHECK(act(c, op, named("host.test", 80)) == Action::proxy);
  // DNS over TCP to a loopback stub goes through the proxy in remote-DNS mode.
  CHECK(act(c, op, v4("127.0.0.53", 53)) == Action::proxy);
  // An address a direct domain rule resolved goes direct.
  Context by_name;
  by_name.direct_by_name = true;
  CHECK(act(c, op, v4("203.0.113.5", 443), by_name) == Action::direct);
  Destination lo6;
  lo6.family = AF_INET6;
  lo6.ip[15] = 1;
  lo6.port = 80;
  CHECK(act(c, op, lo6) == Action::direct);
  // `default reject` refuses with the rule errno.
  const Config closed = config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"},
                                {"SOCKSIFY_RULES", "default reject; proxy port 443"}});
  CHECK(classify(closed, op, v4("203.0.113.5", 80)).refusal == Refusal::rejected_by_rule);
  CHECK(act(closed, op, v4("203.0.113.5", 443)) == Action::proxy);
}

TEST_CASE("policy, datagrams: through the proxy (UDP ASSOCIATE), DNS never leaks",
          "[shim][policy]") {
  const Config remote = config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"},
                                {"SOCKSIFY_RULES", "direct 10.0.0.0/8; reject port 9"}});
  const auto op = Operation::datagram;
  const Verdict dns = classify(remote, op, v4("127.0.0.53", 53));
  CHECK(dns.action == Action::reject);
  CHECK(dns.refusal == Refusal::dns_would_leak);
  CHECK(refusal_errno(dns.refusal) == EACCES);
  CHECK(act(remote, op, v4("203.0.113.5", 443)) == Action::proxy);
  CHECK(act(remote, op, named("quic.example", 443)) == Action::proxy);
  // A DNS server the program chose is reached through the proxy, never direct.
  CHECK(act(remote, op, v4("203.0.113.53", 53)) == Action::proxy);
  CHECK(act(remote, op, v4("10.0.0.53", 53)) == Action::direct);  // a direct rule says so
  CHECK(classify(remote, op, v4("203.0.113.5", 9)).refusal == Refusal::rejected_by_rule);
  CHECK(act(remote, op, v4("10.1.2.3", 443)) == Action::direct);
  CHECK(act(remote, op, v4("127.0.0.1", 5353)) == Action::direct);
  // UDP port 53 is not TCP port 53: no "dns over tcp" rule for datagrams to other ports.
  const Config local = config({{"SOCKSIFY_PROXY", "socks5://127.0.0.1:1080"}});
  CHECK(act(local, op, v4("127.0.0.53", 53)) == Action::direct);  // local DNS is wanted
}

TEST_CASE("policy, names: fake addresses, localhost, direct domains, resolver queries",
          "[shim][policy]") {
  const Config remote = config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"},
                                {"SOCKSIFY_RULES", "direct .corp.example; reject .ads.example"}});
  CHECK(act(remote, Operation::resolve, name_only("example.org")) == Action::proxy);
  // Rejected names still get a fake address: the connect is refused, with EACCES.
  CHECK(act(remote, Operation::resolve, name_only("x.ads.example")) == Action::proxy);
  const Verdict corp = classify(remote, Operation::resolve, name_only("git.corp.example"));
  CHECK(corp.action == Action::direct);
  CHECK(corp.rule == 1);
  // RFC 6761: answered as loopback here, never asked of a DNS server.
  for (const char* n : {"localhost", "localhost.", "app.localhost", "A.B.LOCALHOST."}) {
    INFO(n);
    CHECK(act(remote, Operation::resolve, name_only(n)) == Action::loopback);
  }
  CHECK(act(remote, Operation::resolve, name_only("localhost.example")) == Action::proxy);
  CHECK(act(remote, Operation::dns_query, name_only("example.org")) == Action::reject);
  CHECK(classify(remote, Operation::dns_query, name_only("example.org")).refusal ==
        Refusal::dns_would_leak);
  CHECK(act(remote, Operation::dns_query, name_only("a.corp.example")) == Action::direct);
  // Reverse lookups: fake addresses answer from the table; proxied addresses get no local
  // lookup; direct ones (loopback) do.
  Context fake;
  fake.fake = true;
  CHECK(act(remote, Operation::reverse, v4("198.18.0.9", 0), fake) == Action::proxy);
  CHECK(act(remote, Operation::reverse, v4("203.0.113.5", 0)) == Action::reject);
  CHECK(act(remote, Operation::reverse, v4("127.0.0.1", 0)) == Action::direct);
  // Local-DNS mode leaves every name to the local resolver.
  const Config local = config({{"SOCKSIFY_PROXY", "socks5://127.0.0.1:1080"}});
  CHECK(act(local, Operation::resolve, name_only("localhost")) == Action::direct);
  CHECK(act(local, Operation::resolve, name_only("example.org")) == Action::direct);
  CHECK(act(local, Operation::dns_query, name_only("example.org")) == Action::direct);
  CHECK(act(local, Operation::reverse, v4("203.0.113.5", 0)) == Action::direct);
  CHECK(act(local, Operation::listen, v4("0.0.0.0", 8080)) == Action::direct);
}

TEST_CASE("policy, nested calls: a signal handler inside the library never bypasses it",
          "[shim][policy]") {
  const Config c = config(
      {{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"}, {"SOCKSIFY_RULES", "reject port 25"}});
  Context nested;
  nested.nested = true;
  const Verdict v = classify(c, Operation::connect, v4("203.0.113.5", 443), nested);
  CHECK(v.action == Action::reject);
  CHECK(v.refusal == Refusal::reentrant_call);
  CHECK(refusal_errno(v.refusal) == ENETUNREACH);
  CHECK(act(c, Operation::connect, v4("127.0.0.1", 8080), nested) == Action::direct);
  CHECK(classify(c, Operation::connect, v4("127.0.0.1", 25), nested).refusal ==
        Refusal::rejected_by_rule);
  // The local resolver, asked by the library itself: its own traffic goes as without us.
  Context resolver = nested;
  resolver.in_resolver = true;
  CHECK(act(c, Operation::datagram, v4("192.0.2.53", 53), resolver) == Action::direct);
  CHECK(act(c, Operation::connect, v4("192.0.2.53", 53), resolver) == Action::direct);
}

TEST_CASE("v4-mapped IPv6 destinations are classified as IPv4", "[shim][policy]") {
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  m.sin6_port = htons(80);
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
  Destination d;
  REQUIRE(destination_from(reinterpret_cast<sockaddr*>(&m), sizeof m, d));
  CHECK(d.family == AF_INET);
  CHECK(d.ip[0] == 127);
  CHECK(d.port == 80);
  CHECK_FALSE(destination_from(reinterpret_cast<sockaddr*>(&m), 8, d));
  CHECK(domain_matches("A.Example.Org.", "example.org"));
  CHECK_FALSE(domain_matches("badexample.org", "example.org"));
  CHECK(is_localhost_name("x.localhost."));
  CHECK_FALSE(is_localhost_name("notlocalhost"));
}

namespace {

SocketFacts facts(int family, int type, int protocol = 0) {
  SocketFacts f;
  f.family = family;
  f.type = type;
  f.protocol = protocol;
  return f;
}

}  // namespace

TEST_CASE("read_address: the kernel's reading of every address shape", "[shim][policy]") {
  using K = AddressReading::Kind;
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(7100);
  inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(53);
  inet_pton(AF_INET, "192.0.2.9", &in.sin_addr);
  char big[64] = {};  // an address followed by more octets than its type has
  const auto* sa6 = reinterpret_cast<const sockaddr*>(&in6);
  const auto* sa4 = reinterpret_cast<const sockaddr*>(&in);
  const SocketFacts tcp6 = facts(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
  const SocketFacts udp6 = facts(AF_INET6, SOCK_DGRAM, IPPROTO_UDP);
  const SocketFacts tcp4 = facts(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  const SocketFacts udp4 = facts(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  const SocketFacts raw6 = facts(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  Destination d;
  // IPv6, 24 octets (no scope id): a destination for connect and send alike.
  for (auto use : {AddressUse::connect, AddressUse::send}) {
    for (const auto& f : {tcp6, udp6}) {
      d = Destination{};
      const AddressReading r = read_address(f, use, sa6, 24, d);
      CHECK(r.kind == K::destination);
      CHECK(d.family == AF_INET6);
      CHECK(d.port == 7100);
      CHECK(d.ip[15] == 7);
    }
  }
  // 23 octets: EINVAL everywhere; on an IPv4 socket an IPv6 address is EAFNOSUPPORT.
  CHECK(read_address(tcp6, AddressUse::connect, sa6, 23, d).error == EINVAL);
  CHECK(read_address(udp6, AddressUse::send, sa6, 23, d).error == EINVAL);
  CHECK(read_address(tcp4, AddressUse::connect, sa6, 28, d).error == EAFNOSUPPORT);
  CHECK(read_address(udp4, AddressUse::send, sa6, 28, d).error == EAFNOSUPPORT);
  // IPv4, longer than sockaddr_in: its first 16 octets.
  std::memcpy(big, &in, sizeof in);
  d = Destination{};
  REQUIRE(read_address(tcp4, AddressUse::connect, reinterpret_cast<sockaddr*>(big), 20, d).kind ==
          K::destination);
  CHECK(d.family == AF_INET);
  CHECK(d.port == 53);
  CHECK(read_address(tcp4, AddressUse::connect, sa4, 15, d).error == EINVAL);
  // AF_INET on an IPv6 socket: IPv4 for UDP (connect and send), EINVAL for TCP (too short
  // for the IPv6 minimum, checked first).
  CHECK(read_address(udp6, AddressUse::connect, sa4, 16, d).kind == K::destination);
  CHECK(d.family == AF_INET);
  CHECK(read_address(udp6, AddressUse::send, sa4, 16, d).kind == K::destination);
  CHECK(read_address(tcp6, AddressUse::connect, sa4, 16, d).error == EINVAL);
  // AF_UNSPEC: connect dissolves; udp_sendmsg reads it as AF_INET; udpv6_sendmsg as no
  // address; rawv6 as AF_INET6.
  sockaddr_in unspec = in;
  unspec.sin_family = AF_UNSPEC;
  const auto* sau = reinterpret_cast<const sockaddr*>(&unspec);
  CHECK(read_address(udp4, AddressUse::connect, sau, 16, d).kind == K::unspecified);
  CHECK(read_address(tcp6, AddressUse::connect, sau, 2, d).kind == K::unspecified);
  d = Destination{};
  CHECK(read_address(udp4, AddressUse::send, sau, 16, d).kind == K::destination);
  CHECK(d.family == AF_INET);
  CHECK(d.port == 53);
  CHECK(read_address(udp6, AddressUse::send, sau, 16, d).kind == K::unspecified);
  sockaddr_in6 unspec6 = in6;
  unspec6.sin6_family = AF_UNSPEC;
  CHECK(read_address(raw6, AddressUse::send, reinterpret_cast<sockaddr*>(&unspec6), 24, d).kind ==
        K::destination);
  // Port 0 on UDP: EINVAL (udp_sendmsg).
  sockaddr_in zero = in;
  zero.sin_port = 0;
  CHECK(read_address(udp4, AddressUse::send, reinterpret_cast<sockaddr*>(&zero), 16, d).error ==
        EINVAL);
  // Shorter than a family: EINVAL; another family on an internet socket: refused.
  CHECK(read_address(udp4, AddressUse::connect, sa4, 1, d).error == EINVAL);
  sockaddr_storage unix_like{};
  unix_like.ss_family = AF_UNIX;
  CHECK(
      read_address(udp6, AddressUse::send, reinterpret_cast<sockaddr*>(&unix_like), 110, d).error ==
      EINVAL);
  CHECK(read_address(tcp4, AddressUse::connect, reinterpret_cast<sockaddr*>(&unix_like), 110, d)
            .error == EAFNOSUPPORT);
  // v4-mapped: IPv4, marked (an IPV6_V6ONLY socket refuses it).
  sockaddr_in6 mapped = in6;
  inet_pton(AF_INET6, "::ffff:192.0.2.9", &mapped.sin6_addr);
  const AddressReading m =
      read_address(tcp6, AddressUse::connect, reinterpret_cast<sockaddr*>(&mapped), 24, d);
  CHECK(m.v4_mapped);
  CHECK(d.family == AF_INET);
  // The usual shapes read without facts; the others need them.
  CHECK(read_usual_address(sa4, 16, d));
  CHECK(read_usual_address(sa6, 28, d));
  CHECK_FALSE(read_usual_address(sa6, 24, d));
  CHECK_FALSE(read_usual_address(sau, 16, d));
}

TEST_CASE("the unspecified address as a destination is this host", "[shim][policy]") {
  const Config c = config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"}});
  CHECK(act(c, Operation::connect, v4("0.0.0.0", 80)) == Action::direct);
  CHECK(act(c, Operation::datagram, v4("0.0.0.0", 80)) == Action::direct);
  Destination any6;
  any6.family = AF_INET6;
  any6.port = 80;
  CHECK(act(c, Operation::connect, any6) == Action::direct);
  // A rule still wins.
  const Config r =
      config({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"}, {"SOCKSIFY_RULES", "proxy port 80"}});
  CHECK(act(r, Operation::connect, v4("0.0.0.0", 80)) == Action::proxy);
}
