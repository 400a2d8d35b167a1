// Interop with OpenSSH's dynamic forwarding (`ssh -D`, CONNECT only). sshd logs each
// direct-tcpip channel with its target at LogLevel DEBUG1: the proof that the connection
// went through sshd.
#include "interop/fixtures.hpp"
#include "interop/scenarios.hpp"

using namespace testing;
using socks5::Pipelining;

TEST_CASE("ssh -D: CONNECT to IPv4, IPv6 and domain targets", "[ssh]") {
  SshDynamic proxy;
  Targets t;
  for (auto p : {Pipelining::on, Pipelining::off}) {
    const int expect_waits = p == Pipelining::on ? 1 : 2;
    CHECK(connect_and_echo(proxy.uri(), t.v4_addr(), p).waits == expect_waits);
    CHECK(connect_and_echo(proxy.uri(), t.v6_addr(), p).waits == expect_waits);
    CHECK(connect_and_echo(proxy.uri(), t.domain_addr(), p).waits == expect_waits);
  }
  CHECK(saw(t.v6, "::1"));
  const std::string log = proxy.sshd_log();
  const std::string port = std::to_string(t.v4.port());
  CHECK_THAT(log, Catch::Contains("target 127.0.0.1 port " + port));
  CHECK_THAT(log, Catch::Contains("target localhost port " + port));
  CHECK_THAT(log, Catch::Contains("target ::1 port " + std::to_string(t.v6.port())));
}
