// Fake DNS: ranges, reverse lookups, a million names, sharing with forked children.
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "config.hpp"
#include "fake_dns.hpp"
#include "fd_table.hpp"

using namespace socksify::shim;

namespace {

FakeDns* make() {
  static FakeDns* dns =
      FakeDns::create(*parse_cidr("198.18.0.0/15"), *parse_cidr("fd5f:636b:7366::/48"));
  return dns;
}

std::string text4(const std::uint8_t* a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, a, buf, sizeof buf);
  return buf;
}

}  // namespace

TEST_CASE("fake DNS: stable addresses in range, reverse lookup, case-insensitive", "[shim][dns]") {
  FakeDns* dns = make();
  REQUIRE(dns != nullptr);
  auto a = dns->lookup_or_add("Example.ORG.");
  auto b = dns->lookup_or_add("example.org");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->index == b->index);
  std::uint8_t v4[4], v6[16];
  dns->address4(*a, v4);
  dns->address6(*a, v6);
  CHECK(text4(v4).rfind("198.1", 0) == 0);
  CHECK(dns->in_range(AF_INET, v4));
  char name[256];
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "example.org");
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "example.org");
  // Addresses never handed out are not fake, even inside the range.
  std::uint8_t unused[4] = {198, 19, 255, 254};
  CHECK_FALSE(dns->name_of(AF_INET, unused, name, sizeof name));
  std::uint8_t outside[4] = {8, 8, 8, 8};
  CHECK_FALSE(dns->name_of(AF_INET, outside, name, sizeof name));
  CHECK_FALSE(dns->lookup_or_add(""));
  CHECK_FALSE(dns->lookup_or_add(std::string(256, 'a')));
  CHECK(dns->lookup_or_add(std::string(255, 'a')));
}

TEST_CASE("fake DNS: a million names, IPv4 recycled oldest-first, IPv6 never", "[shim][dns]") {
  FakeDns* dns = make();
  const std::uint32_t before = dns->size();
  FakeName first{}, last{};
  for (int i = 0; i < 1000000; ++i) {
    auto n = dns->lookup_or_add("host-" + std::to_string(i) + ".million.test");
    REQUIRE(n);
    if (i == 0) first = *n;
    last = *n;
  }
  CHECK(dns->size() == before + 1000000);
  char name[256];
  std::uint8_t v6[16], v4[4];
  dns->address6(first, v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
  dns->address4(last, v4);
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "host-999999.million.test");
  // Looking the first name up again gives it its IPv4 address back.
  auto again = dns->lookup_or_add("host-0.million.test");
  REQUIRE(again);
  dns->address4(*again, v4);
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
}

TEST_CASE("fake DNS: a forked child's names are seen by the parent", "[shim][dns]") {
  FakeDns* dns = make();
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto n = dns->lookup_or_add("made-in-child.test");
    _exit(n ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto n = dns->lookup_or_add("made-in-child.test");
  REQUIRE(n);
  std::uint8_t v4[4];
  dns->address4(*n, v4);
  char name[256];
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "made-in-child.test");
}

TEST_CASE("fd table: set, copy, clear, ranges", "[shim][fd]") {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(443);
  inet_pton(AF_INET, "198.18.0.7", &in.sin_addr);
  fd_set_proxied(5000, reinterpret_cast<sockaddr*>(&in), sizeof in);
  FdInfo i = fd_get(5000);
  CHECK(i.kind == FdKind::proxied);
  CHECK(i.peer_len == sizeof in);
  CHECK(std::memcmp(&i.peer, &in, sizeof in) == 0);
  fd_copy(5000, 70000);
  CHECK(fd_get(70000).kind == FdKind::proxied);
  fd_copy(5001, 70000);  // dup2 of an unknown fd over a known one forgets it
  CHECK(fd_get(70000).kind == FdKind::none);
  fd_set_proxied(5002, reinterpret_cast<sockaddr*>(&in), sizeof in);
  fd_clear_range(4000, 5001);
  CHECK(fd_get(5000).kind == FdKind::none);
  CHECK(fd_get(5002).kind == FdKind::proxied);
  fd_clear(5002);
  CHECK(fd_get(5002).kind == FdKind::none);
  CHECK(fd_get(-1).kind == FdKind::none);
  CHECK(fd_get(1 << 30).kind == FdKind::none);
  fd_clear_range(0, ~0u);  // must terminate
}
