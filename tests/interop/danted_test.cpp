// Interop with Dante's danted: method none and username/password; CONNECT (IPv4, IPv6,
// domain), BIND and UDP ASSOCIATE. danted's egress address is 127.0.0.2, so a target that
// sees 127.0.0.2 was reached by the proxy: the client itself connects from 127.0.0.1.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "interop/fixtures.hpp"
#include "interop/scenarios.hpp"

using namespace testing;
using socks5::Pipelining;

TEST_CASE("danted, method none: CONNECT to IPv4, IPv6 and domain targets", "[danted]") {
  Danted proxy(false);
  Targets t;
  for (auto p : {Pipelining::on, Pipelining::off}) {
    const int expect_waits = p == Pipelining::on ? 1 : 2;
    auto s4 = connect_and_echo(proxy.uri(), t.v4_addr(), p);
    CHECK(s4.method == socks5::wire::Method::none);
    CHECK(s4.waits == expect_waits);
    auto s6 = connect_and_echo(proxy.uri(), t.v6_addr(), p);
    CHECK(s6.waits == expect_waits);
    auto sd = connect_and_echo(proxy.uri(), t.domain_addr(), p);
    CHECK(sd.waits == expect_waits);
  }
  // The proxy itself reached over IPv6 and by host name.
  auto over_v6 = proxy.uri();
  over_v6.host = "::1";
  CHECK(connect_and_echo(over_v6, t.v4_addr(), Pipelining::on).waits == 1);
  auto by_name = proxy.uri();
  by_name.host = "localhost";
  CHECK(connect_and_echo(by_name, t.v4_addr(), Pipelining::on).waits == 1);
  CHECK_THAT(proxy.log(), Catch::Contains(": ::1."));  // a session whose client is ::1

  CHECK(saw(t.v4, "127.0.0.2"));  // the proxy's egress address, never the client's
  CHECK_FALSE(saw(t.v4, "127.0.0.1"));
  CHECK(saw(t.v6, "::1"));  // our socket to the proxy is IPv4: only the proxy speaks IPv6 here
  const std::string log = proxy.log();
  CHECK_THAT(log, Catch::Contains("127.0.0.1." + std::to_string(t.v4.port())));
  // A domain target crosses as a name (ATYP 3): one that only danted can resolve works, and
  // this process cannot resolve it (Dante logs the address it resolved, not the name).
  addrinfo* ai = nullptr;
  const int local = getaddrinfo(kProxyOnlyName, nullptr, nullptr, &ai);
  if (ai != nullptr) freeaddrinfo(ai);
  REQUIRE(local != 0);
  for (auto p : {Pipelining::on, Pipelining::off}) {
    CHECK(connect_and_echo(proxy.uri(), t.proxy_only_addr(), p).waits ==
          (p == Pipelining::on ? 1 : 2));
  }
}

TEST_CASE("danted, username/password: CONNECT and rejection", "[danted]") {
  Danted proxy(true);
  Targets t;
  for (auto p : {Pipelining::on, Pipelining::off}) {
    const int expect_waits = p == Pipelining::on ? 1 : 3;
    auto s4 = connect_and_echo(proxy.uri(true), t.v4_addr(), p);
    CHECK(s4.method == socks5::wire::Method::username_password);
    CHECK(s4.waits == expect_waits);
    CHECK(connect_and_echo(proxy.uri(true), t.v6_addr(), p).waits == expect_waits);
    CHECK(connect_and_echo(proxy.uri(true), t.domain_addr(), p).waits == expect_waits);
  }
  CHECK(saw(t.v4, "127.0.0.2"));
  CHECK(saw(t.v6, "::1"));
  CHECK_THAT(proxy.log(), Catch::Contains(kTestUser));

  auto wrong = proxy.uri(true);
  wrong.password = "not-the-password";
  auto c = socks5::Client::open(wrong);
  REQUIRE(c);
  auto r = c->connect(t.v4_addr());
  REQUIRE_FALSE(r);
  CHECK(r.error() == socks5::Errc::auth_rejected);

  auto anonymous = socks5::Client::open(proxy.uri(false));
  REQUIRE(anonymous);
  auto r2 = anonymous->connect(t.v4_addr());
  REQUIRE_FALSE(r2);
  CHECK(r2.error() == socks5::Errc::no_acceptable_method);
}

TEST_CASE("danted: BIND, a peer connects to the announced address, data both ways", "[danted]") {
  Danted proxy(false);
  auto c = socks5::Client::open(proxy.uri());
  REQUIRE(c);
  // DST is the peer we expect to connect (RFC 1928 §6 BIND): the loopback host.
  auto listen_at = c->bind(socks5::Address::ipv4({127, 0, 0, 1}, 0));
  REQUIRE(listen_at);
  INFO("proxy listens at " << listen_at->to_string());
  REQUIRE(listen_at->port() != 0);
  CHECK(listen_at->host_string() == "127.0.0.2");

  // The "server side" of the application protocol connects to the rendezvous address.
  sockaddr_storage ss{};
  const socklen_t len = listen_at->to_sockaddr(ss);
  const int peer = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(connect(peer, reinterpret_cast<sockaddr*>(&ss), len) == 0);
  sockaddr_storage mine{};
  socklen_t mine_len = sizeof mine;
  getsockname(peer, reinterpret_cast<sockaddr*>(&mine), &mine_len);
  auto peer_addr = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&mine), mine_len);

  auto connected = c->accept_bind();
  REQUIRE(connected);
  CHECK(*connected == *peer_addr);  // second reply names the peer that connected

  const std::string up = "from client";
  REQUIRE(send(c->fd(), up.data(), up.size(), 0) == static_cast<ssize_t>(up.size()));
  char buf[64] = {};
  pollfd p{peer, POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  CHECK(std::string(buf, static_cast<std::size_t>(recv(peer, buf, sizeof buf, 0))) == up);
  const std::string down = "from peer";
  REQUIRE(send(peer, down.data(), down.size(), 0) == static_cast<ssize_t>(down.size()));
  pollfd q{c->fd(), POLLIN, 0};
  REQUIRE(poll(&q, 1, 5000) == 1);
  char buf2[64] = {};
  CHECK(std::string(buf2, static_cast<std::size_t>(recv(c->fd(), buf2, sizeof buf2, 0))) == down);
  close(peer);
}

TEST_CASE("danted: UDP ASSOCIATE, datagrams to an echo server and back", "[danted]") {
  Danted proxy(false);
  UdpEcho echo("127.0.0.1");  // exact address: danted drops replies from any other
  const int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(u, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  socklen_t llen = sizeof local;
  getsockname(u, reinterpret_cast<sockaddr*>(&local), &llen);
  auto me = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), llen);

  auto c = socks5::Client::open(proxy.uri());
  REQUIRE(c);
  auto relay = c->udp_associate(*me);
  REQUIRE(relay);
  INFO("relay at " << relay->to_string());
  CHECK_FALSE(relay->is_unspecified());
  sockaddr_storage rs{};
  const socklen_t rlen = relay->to_sockaddr(rs);
  REQUIRE(rlen > 0);

  const auto target = socks5::Address::ipv4({127, 0, 0, 1}, echo.port());
  for (int i = 0; i < 3; ++i) {
    const std::string payload = "datagram " + std::to_string(i);
    socks5::Bytes dgram;
    REQUIRE(socks5::wire::encode_udp_header(0, target, dgram));
    dgram.insert(dgram.end(), payload.begin(), payload.end());
    REQUIRE(sendto(u, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&rs), rlen) ==
            static_cast<ssize_t>(dgram.size()));
    pollfd p{u, POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);
    socks5::Bytes in(2048);
    const ssize_t n = recv(u, in.data(), in.size(), 0);
    REQUIRE(n > 0);
    in.resize(static_cast<std::size_t>(n));
    auto h = socks5::wire::decode_udp_header(in);
    REQUIRE(h);
    CHECK(h->value.frag == 0);
    CHECK(h->value.destination == target);  // the reply says where it came from
    CHECK(std::string(in.begin() + static_cast<std::ptrdiff_t>(h->size), in.end()) == payload);
  }
  close(u);
}

TEST_CASE("chaining: CONNECT through danted to microsocks, then microsocks' handshake",
          "[danted][microsocks]") {
  Danted first(false);
  Microsocks second(false);
  Targets t;
  auto a = socks5::Client::open(first.uri());
  REQUIRE(a);
  REQUIRE(a->connect(socks5::Address::ipv4({127, 0, 0, 1}, second.port())));
  socks5::ClientOptions o;
  o.pipelining = Pipelining::off;  // microsocks mishandles pipelining (see doc/benchmarks.md)
  auto b = socks5::Client::adopt(a->release(), second.uri(), o);
  REQUIRE(b.connect(t.v4_addr()));
  CHECK(echo_roundtrip(b.fd(), "chained") == "chained");
  CHECK_THAT(first.log(), Catch::Contains("127.0.0.1." + std::to_string(second.port())));
  // The target was reached by the last hop (microsocks' egress), not by danted or by us.
  CHECK(saw(t.v4, "127.0.0.3"));
  CHECK_FALSE(saw(t.v4, "127.0.0.2"));
}
