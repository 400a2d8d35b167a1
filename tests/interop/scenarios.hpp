#pragma once
// Shared interop scenarios: CONNECT to IPv4, IPv6 and domain targets, with proof that the
// connection was made by the proxy and not by the client.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "interop/fixtures.hpp"
#include "socks5/client.hpp"
#include "socks5/error.hpp"
#include "support/peers.hpp"

namespace testing {

/// Echo targets on 127.0.0.1 and ::1, and a domain name for the IPv4 one.
struct Targets {
  TcpEcho v4{"127.0.0.1"};
  TcpEcho v6{"::1"};
  socks5::Address v4_addr() const { return socks5::Address::ipv4({127, 0, 0, 1}, v4.port()); }
  socks5::Address v6_addr() const {
    std::array<std::uint8_t, 16> lo{};
    lo[15] = 1;
    return socks5::Address::ipv6(lo, v6.port());
  }
  /// "localhost" resolves to 127.0.0.1 here; the PROXY resolves it (ATYP domain).
  socks5::Address domain_addr() const { return socks5::Address::domain("localhost", v4.port()); }
  /// A name only the Danted fixture resolves (fixtures.hpp): for the IPv4 target.
  socks5::Address proxy_only_addr() const {
    return socks5::Address::domain(kProxyOnlyName, v4.port());
  }
};

/// Opens a client, CONNECTs, checks that data echoes, returns the handshake statistics.
inline socks5::HandshakeStats connect_and_echo(const socks5::ProxyUri& proxy,
                                               const socks5::Address& dst,
                                               socks5::Pipelining pipelining) {
  socks5::ClientOptions o;
  o.pipelining = pipelining;
  o.timeout = std::chrono::seconds(10);
  auto c = socks5::Client::open(proxy, o);
  REQUIRE(c);
  auto r = c->connect(dst);
  INFO("CONNECT " << dst.to_string() << " via " << proxy.to_string());
  REQUIRE(r);
  CHECK(echo_roundtrip(c->fd(), "ping " + dst.to_string()) == "ping " + dst.to_string());
  return c->stats();
}

/// True if the echo server saw a client whose address is `host`.
inline bool saw(TcpEcho& echo, const std::string& host) {
  const auto peers = echo.peers();
  return std::find(peers.begin(), peers.end(), host) != peers.end();
}

}  // namespace testing
