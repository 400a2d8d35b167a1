// Fake DNS: ranges, reverse lookups, a million names, sharing with forked children.
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "config.hpp"
#include "fake_dns.hpp"

using namespace socksify::core;
using socksify::settings::parse_cidr;

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

TEST_CASE("fake DNS: a million names, none of them ever changes meaning", "[shim][dns]") {
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
  CHECK(FakeDns::capacity() == 2097152u);
  CHECK(dns->capacity4() == 131070u);  // a /15 without its network and broadcast addresses
  char name[256];
  std::uint8_t v6[16], v4[4];
  // Every name keeps its IPv6 address; the first ones keep their IPv4 address too.
  dns->address6(first, v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
  dns->address6(last, v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "host-999999.million.test");
  REQUIRE(first.has_v4());
  dns->address4(first, v4);
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
  // The IPv4 range ran out long before the millionth name: it got none, and no IPv4 address
  // was handed out twice (the first name's address still means the first name).
  CHECK_FALSE(last.has_v4());
  auto again = dns->lookup_or_add("host-0.million.test");
  REQUIRE(again);
  CHECK(again->index == first.index);
  CHECK(again->v4 == first.v4);
  std::uint8_t high[4];
  FakeName top{0, dns->capacity4()};
  dns->address4(top, high);
  CHECK(text4(high) == "198.19.255.254");  // the last usable address of the /15
}

TEST_CASE("fake DNS: a forked child's names are seen by the parent", "[shim][dns]") {
  // A table of its own (kept for the life of the process, as the library keeps its table).
  static FakeDns* dns =
      FakeDns::create(*parse_cidr("198.18.0.0/15"), *parse_cidr("fd5f:636b:7366::/48"));
  REQUIRE(dns != nullptr);
  const std::uint32_t before = dns->size();
  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child adds the name and tells the parent the address it got: nothing more.
    std::uint8_t v4[4] = {};
    auto n = dns->lookup_or_add("made-in-child.test");
    if (n) dns->address4(*n, v4);
    const bool sent = write(pipefd[1], v4, sizeof v4) == static_cast<ssize_t>(sizeof v4);
    _exit(n && sent ? 0 : 1);
  }
  close(pipefd[1]);
  std::uint8_t v4[4] = {};
  const ssize_t got = read(pipefd[0], v4, sizeof v4);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == static_cast<ssize_t>(sizeof v4));
  // The parent only reads: the name behind the child's address, and the table's size. With a
  // table private to each process, neither holds.
  CHECK(dns->size() == before + 1);
  char name[256] = {};
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "made-in-child.test");
}

TEST_CASE("fake DNS: a small IPv4 range runs out, then names are IPv6 only", "[shim][dns]") {
  static FakeDns* dns = FakeDns::create(*parse_cidr("198.18.7.0/24"), *parse_cidr("fd00:7::/48"));
  REQUIRE(dns != nullptr);
  CHECK(dns->capacity4() == 254u);
  std::vector<FakeName> names;
  for (int i = 0; i < 300; ++i) {
    std::string name = std::to_string(i);  // (built by appending: GCC 12 misreports "n" + ...)
    name.insert(0, 1, 'n');
    name.append(".small.test");
    auto n = dns->lookup_or_add(name);
    REQUIRE(n);
    names.push_back(*n);
  }
  CHECK(names[253].has_v4());
  CHECK_FALSE(names[254].has_v4());
  CHECK_FALSE(names[299].has_v4());
  // Each of the 254 IPv4 addresses still names the one name it was given.
  char name[256];
  for (int i = 0; i < 254; ++i) {
    std::uint8_t v4[4];
    dns->address4(names[static_cast<std::size_t>(i)], v4);
    REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
    std::string want = std::to_string(i);
    want.insert(0, 1, 'n');
    want.append(".small.test");
    CHECK(std::string(name) == want);
  }
  std::uint8_t v6[16];
  dns->address6(names[299], v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "n299.small.test");
}
