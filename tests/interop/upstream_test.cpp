// The upstream protocols other than SOCKS5, against real servers: tinyproxy (HTTP CONNECT,
// without and with Basic) and danted speaking SOCKS4 and SOCKS4a. tinyproxy's egress address
// is 127.0.0.4 and danted's 127.0.0.2, so a target that sees it was reached through the
// proxy; a name only the proxy resolves proves the name crossed.
#include <netdb.h>
#include <sys/socket.h>

#include "interop/fixtures.hpp"
#include "interop/scenarios.hpp"

using namespace testing;
using socks5::Pipelining;

namespace {

// CONNECT through `proxy` and the failure, if any.
std::error_code connect_error(const socks5::ProxyUri& proxy, const socks5::Address& dst) {
  auto c = socks5::Client::open(proxy);
  REQUIRE(c);
  auto r = c->connect(dst);
  return r ? std::error_code() : r.error();
}

}  // namespace

TEST_CASE("tinyproxy: HTTP CONNECT to IPv4, IPv6 and a name only the proxy resolves",
          "[tinyproxy][http]") {
  Tinyproxy proxy(false);
  Targets t;
  addrinfo* ai = nullptr;
  const int local = getaddrinfo(kProxyOnlyName, nullptr, nullptr, &ai);
  if (ai != nullptr) freeaddrinfo(ai);
  REQUIRE(local != 0);  // this process cannot resolve it
  for (const auto& dst : {t.v4_addr(), t.proxy_only_addr()}) {
    auto s = connect_and_echo(proxy.uri(), dst, Pipelining::automatic);
    CHECK(s.method == socks5::wire::Method::none);
    CHECK(std::string(s.method_text) == "none");
    CHECK(s.waits == 1);  // the CONNECT and its answer: one round trip
  }
  CHECK(saw(t.v4, "127.0.0.4"));  // tinyproxy's Bind address, never the client's
  CHECK_FALSE(saw(t.v4, "127.0.0.1"));
  const std::string log = proxy.log();
  CHECK_THAT(log, Catch::Contains("CONNECT 127.0.0.1:" + std::to_string(t.v4.port())));
  CHECK_THAT(log, Catch::Contains(std::string("CONNECT ") + kProxyOnlyName + ":"));
}

TEST_CASE("tinyproxy: an IPv6 destination goes in brackets", "[tinyproxy][http]") {
  // Without Bind (its Bind address is IPv4): the proxy's log shows the request it got, and
  // that it connected onwards.
  Tinyproxy proxy(false, false);
  Targets t;
  CHECK(connect_and_echo(proxy.uri(), t.v6_addr(), Pipelining::automatic).waits == 1);
  CHECK(saw(t.v6, "::1"));
  const std::string log = proxy.log();
  CHECK_THAT(log, Catch::Contains("CONNECT [::1]:" + std::to_string(t.v6.port())));
  CHECK_THAT(log, Catch::Contains("Established connection to host \"::1\""));
}

TEST_CASE("tinyproxy with Basic: credentials go with the first request, a 407 names the method",
          "[tinyproxy][http]") {
  Tinyproxy proxy(true);
  Targets t;
  auto s = connect_and_echo(proxy.uri(true), t.v4_addr(), Pipelining::automatic);
  CHECK(std::string(s.method_text) == "Basic");
  CHECK(s.waits == 1);
  CHECK(saw(t.v4, "127.0.0.4"));

  // Without credentials, and with a wrong password: a 407 that asks for Basic.
  for (bool wrong : {false, true}) {
    auto u = proxy.uri(wrong);
    if (wrong) u.password = "not-the-password";
    auto c = socks5::Client::open(u);
    REQUIRE(c);
    auto r = c->connect(t.v4_addr());
    REQUIRE_FALSE(r);
    CHECK(r.error() == socks5::Errc::http_auth_required);
    CHECK(socks5::to_errno(r.error()) == EACCES);
  }
}

TEST_CASE("tinyproxy: a destination that refuses is the proxy's answer, with its status",
          "[tinyproxy][http]") {
  Tinyproxy proxy(false);
  const auto closed = socks5::Address::ipv4({127, 0, 0, 1}, free_port());
  const auto ec = connect_error(proxy.uri(), closed);
  INFO(ec.message());
  CHECK(socks5::is_destination_failure(ec));
  CHECK(socks5::to_errno(ec) != 0);
}

TEST_CASE("danted: SOCKS4 to an address", "[danted][socks4]") {
  Danted proxy(false);
  Targets t;
  auto v4 = proxy.uri();
  v4.scheme = socks5::Scheme::socks4;
  v4.user = "someone";  // the user id, not checked by danted
  auto s = connect_and_echo(v4, t.v4_addr(), Pipelining::automatic);
  CHECK(s.waits == 1);
  CHECK(saw(t.v4, "127.0.0.2"));
  CHECK_FALSE(saw(t.v4, "127.0.0.1"));

  // A name to a plain SOCKS4 proxy and an IPv6 address: refused before sending.
  CHECK(connect_error(v4, t.proxy_only_addr()) == socks5::Errc::target_not_expressible);
  CHECK(connect_error(v4, t.v6_addr()) == socks5::Errc::target_not_expressible);
  // A refused destination is danted's SOCKS4 reply 91.
  CHECK(connect_error(v4, socks5::Address::ipv4({127, 0, 0, 1}, free_port())) ==
        socks5::Errc::socks4_rejected);
}

TEST_CASE("ssh -D: SOCKS4a sends a name only the proxy side resolves", "[ssh][socks4]") {
  // danted answers SOCKS4 but not 4a (it connects to 0.0.0.1); OpenSSH's ssh -D speaks both.
  SshDynamic proxy;
  Targets t;
  auto v4a = proxy.uri();
  v4a.scheme = socks5::Scheme::socks4a;
  CHECK(connect_and_echo(v4a, t.proxy_only_addr(), Pipelining::automatic).waits == 1);
  CHECK(connect_and_echo(v4a, t.v4_addr(), Pipelining::automatic).waits == 1);
  // sshd opened the channel to the name it was given (and only it resolves that name).
  CHECK_THAT(proxy.sshd_log(), Catch::Contains(std::string("target ") + kProxyOnlyName));
  CHECK(connect_error(v4a, t.v6_addr()) == socks5::Errc::target_not_expressible);
}
