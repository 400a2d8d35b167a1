// Interop with microsocks (CONNECT only), with and without RFC 1929. microsocks reads one
// message per recv() and drops the rest, so a pipelined handshake stalls: the client notices,
// retries one message per round trip, and remembers the proxy.
#include <algorithm>

#include "interop/fixtures.hpp"
#include "interop/scenarios.hpp"

using namespace testing;
using socks5::Pipelining;

namespace {

void check_microsocks(bool with_auth) {
  Microsocks proxy(with_auth);
  Microsocks proxy6(with_auth, true);
  Targets t;
  const int per_round = with_auth ? 3 : 2;
  socks5::reset_pipelining_memory();
  for (const auto& dst : {t.v4_addr(), t.v6_addr(), t.domain_addr()}) {
    auto s = connect_and_echo(dst.type() == socks5::AddressType::ipv6 ? proxy6.uri() : proxy.uri(),
                              dst, Pipelining::off);
    CHECK(s.waits == per_round);
    CHECK(s.method ==
          (with_auth ? socks5::wire::Method::username_password : socks5::wire::Method::none));
  }
  // Automatic mode: the first CONNECT stalls and falls back; later ones go straight to the
  // one-message-per-round-trip handshake.
  auto first = connect_and_echo(proxy.uri(), t.v4_addr(), Pipelining::automatic);
  CHECK(first.fell_back);
  CHECK(first.waits == 1 + per_round);
  auto second = connect_and_echo(proxy.uri(), t.v4_addr(), Pipelining::automatic);
  CHECK_FALSE(second.fell_back);
  CHECK_FALSE(second.pipelined);
  CHECK(second.waits == per_round);
  socks5::reset_pipelining_memory();
  // Proof: every IPv4 connection (the address, the name, the automatic ones) came from
  // microsocks' egress address 127.0.0.3, never from our own 127.0.0.1; the IPv6 one from ::1
  // (our socket to the proxy is IPv4).
  const auto peers = t.v4.peers();
  CHECK(peers.size() == 4);
  CHECK(std::count(peers.begin(), peers.end(), "127.0.0.3") ==
        static_cast<std::ptrdiff_t>(peers.size()));
  CHECK(saw(t.v6, "::1"));
}

}  // namespace

TEST_CASE("microsocks, method none: CONNECT to IPv4, IPv6 and domain", "[microsocks]") {
  check_microsocks(false);
}

TEST_CASE("microsocks, username/password: CONNECT to IPv4, IPv6 and domain", "[microsocks]") {
  check_microsocks(true);
  Microsocks proxy(true);
  Targets t;
  auto wrong = proxy.uri();
  wrong.password = "nope";
  socks5::ClientOptions o;
  o.pipelining = Pipelining::off;
  auto c = socks5::Client::open(wrong, o);
  REQUIRE(c);
  auto r = c->connect(t.v4_addr());
  REQUIRE_FALSE(r);
  CHECK(r.error() == socks5::Errc::auth_rejected);
}

TEST_CASE("microsocks: BIND is refused with a clear error", "[microsocks]") {
  Microsocks proxy(false);
  socks5::ClientOptions o;
  o.pipelining = Pipelining::off;
  auto c = socks5::Client::open(proxy.uri(), o);
  REQUIRE(c);
  auto r = c->bind(socks5::Address::ipv4({127, 0, 0, 1}, 0));
  REQUIRE_FALSE(r);
  INFO(r.error().message());
  CHECK(r.error() == socks5::Errc::command_not_supported);
}
