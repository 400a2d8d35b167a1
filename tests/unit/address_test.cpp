#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>

#include "socks5/address.hpp"

using socks5::Address;
using socks5::AddressType;

TEST_CASE("host:port parsing", "[address]") {
  auto a = Address::parse_host_port("127.0.0.1:80");
  REQUIRE(a);
  CHECK(a->type() == AddressType::ipv4);
  CHECK(a->to_string() == "127.0.0.1:80");
  auto b = Address::parse_host_port("[::1]:443");
  REQUIRE(b);
  CHECK(b->type() == AddressType::ipv6);
  CHECK(b->to_string() == "[::1]:443");
  auto c = Address::parse_host_port("example.org:8080");
  REQUIRE(c);
  CHECK(c->type() == AddressType::domain);
  CHECK(c->host() == "example.org");
  CHECK_FALSE(Address::parse_host_port("example.org"));
  CHECK_FALSE(Address::parse_host_port("::1:80"));
  CHECK_FALSE(Address::parse_host_port("[::1]80"));
  CHECK_FALSE(Address::parse_host_port("h:99999"));
  CHECK_FALSE(Address::parse_host_port(":80"));
  CHECK_FALSE(Address::parse_host_port("[nothex]:80"));
}

TEST_CASE("sockaddr round trip", "[address]") {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(9);
  inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
  auto a = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof in6);
  REQUIRE(a);
  CHECK(a->to_string() == "[2001:db8::5]:9");
  sockaddr_storage ss{};
  CHECK(a->to_sockaddr(ss) == sizeof(sockaddr_in6));
  CHECK(ss.ss_family == AF_INET6);
  CHECK(Address::domain("x", 1).to_sockaddr(ss) == 0);
  sockaddr_in short_sa{};
  short_sa.sin_family = AF_INET;
  CHECK_FALSE(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&short_sa), 4));
  sockaddr un{};
  un.sa_family = AF_UNIX;
  CHECK_FALSE(Address::from_sockaddr(&un, sizeof un));
  CHECK(Address::ipv4({0, 0, 0, 0}, 1).is_unspecified());
  CHECK(Address::ipv6({}, 1).is_unspecified());
  CHECK_FALSE(Address::ipv4({127, 0, 0, 1}, 1).is_unspecified());
}
