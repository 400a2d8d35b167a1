// The hosts file rule (core/hosts_file.hpp): names and aliases, case, comments, both families,
// malformed lines.
#include <catch2/catch.hpp>

#include "hosts_file.hpp"

using socksify::core::hosts_lookup;
using socksify::core::HostsAnswer;

TEST_CASE("hosts file: a name, its aliases, both families, in file order", "[hosts]") {
  const char* text =
      "# comment line\n"
      "127.0.0.1\tlocalhost\n"
      "10.1.2.3   intranet.corp.example  wiki   # a comment after the names\n"
      "fd00::5 intranet.corp.example\n"
      "10.1.2.4 INTRANET.corp.example.\n"
      "not-an-address intranet.corp.example\n"
      "10.9.9.9\n"
      "\n";
  HostsAnswer a;
  REQUIRE(hosts_lookup(text, "intranet.corp.example", a));
  REQUIRE(a.count4 == 2);
  CHECK(a.v4[0] == std::array<std::uint8_t, 4>{10, 1, 2, 3});
  CHECK(a.v4[1] == std::array<std::uint8_t, 4>{10, 1, 2, 4});
  REQUIRE(a.count6 == 1);
  CHECK(a.v6[0][0] == 0xfd);
  CHECK(a.v6[0][15] == 5);
  // An alias, any case, a trailing dot.
  CHECK(hosts_lookup(text, "WIKI.", a));
  CHECK(a.count4 == 1);
  // Not listed, a name only in a comment, empty.
  CHECK_FALSE(hosts_lookup(text, "comment", a));
  CHECK_FALSE(hosts_lookup(text, "corp.example", a));
  CHECK_FALSE(hosts_lookup(text, "", a));
  CHECK(a.empty());
}

TEST_CASE("hosts file: at most 8 addresses of a family, no end-of-line needed", "[hosts]") {
  std::string text;
  for (int i = 0; i < 12; ++i) text += "10.0.0." + std::to_string(i) + " many\n";
  text += "10.0.1.1 last";
  HostsAnswer a;
  REQUIRE(hosts_lookup(text, "many", a));
  CHECK(a.count4 == HostsAnswer::kMax);
  CHECK(a.v4[7][3] == 7);
  REQUIRE(hosts_lookup(text, "last", a));
  CHECK(a.v4[0][2] == 1);
}
