#include <catch2/catch.hpp>

#include "socks5/uri.hpp"

using socks5::parse_proxy_uri;

TEST_CASE("proxy URIs that parse", "[uri]") {
  auto a = parse_proxy_uri("socks5://proxy.example");
  REQUIRE(a);
  CHECK_FALSE(a->remote_dns);
  CHECK(a->host == "proxy.example");
  CHECK(a->port == 1080);
  CHECK_FALSE(a->user);

  auto b = parse_proxy_uri("socks5h://alice:s%40cr%3At@127.0.0.1:9050/");
  REQUIRE(b);
  CHECK(b->remote_dns);
  CHECK(b->host == "127.0.0.1");
  CHECK(b->port == 9050);
  CHECK(*b->user == "alice");
  CHECK(*b->password == "s@cr:t");
  CHECK(b->to_string() == "socks5h://alice:***@127.0.0.1:9050");
  CHECK(b->to_string(true) == "socks5h://alice:s%40cr%3At@127.0.0.1:9050");

  auto c = parse_proxy_uri("SOCKS5://[::1]:1081");
  REQUIRE(c);
  CHECK(c->host == "::1");
  CHECK(c->port == 1081);
  CHECK(c->to_string() == "socks5://[::1]:1081");

  auto d = parse_proxy_uri("socks5://bob@[fe80::1]");
  REQUIRE(d);
  CHECK(d->host == "fe80::1");
  CHECK(d->port == 1080);
  CHECK(*d->user == "bob");
  CHECK_FALSE(d->password);

  auto e = parse_proxy_uri("socks5://u:@h:1");  // empty password is a password
  REQUIRE(e);
  CHECK(*e->password == "");
  auto f = parse_proxy_uri("socks5://u:p@ss@h");  // the last '@' ends the user info
  REQUIRE(f);
  CHECK(*f->password == "p@ss");
  CHECK(f->host == "h");
}

TEST_CASE("malformed proxy URIs get precise messages", "[uri]") {
  struct Case {
    const char* text;
    const char* message;
    std::size_t position;
  };
  const Case cases[] = {
      {"", "empty proxy URI", 0},
      {"proxy:1080", "missing scheme", 0},
      {"http://proxy:8080", "unsupported scheme 'http'", 0},
      {"socks4://proxy", "unsupported scheme 'socks4'", 0},
      {"socks5://", "missing host", 9},
      {"socks5://user@", "missing host", 14},
      {"socks5://@host", "empty user name", 9},
      {"socks5://:pw@host", "empty user name", 9},
      {"socks5://host:", "empty port", 14},
      {"socks5://host:0", "port out of range", 14},
      {"socks5://host:65536", "port out of range", 14},
      {"socks5://host:12a", "port must be a decimal number", 16},
      {"socks5://host:-1", "port must be a decimal number", 14},
      {"socks5://::1:1080", "IPv6 literal must be in brackets", 9},
      {"socks5://[::1", "unterminated '['", 9},
      {"socks5://[::g]:1", "invalid IPv6 address '::g'", 10},
      {"socks5://[]:1", "invalid IPv6 address ''", 10},
      {"socks5://[::1]x", "expected ':' or end after ']'", 14},
      {"socks5://ho st", "invalid character ' ' in host", 11},
      {"socks5://host/path", "unexpected path", 13},
      {"socks5://host?x=1", "unexpected path", 13},
      {"socks5://u%zz@host", "invalid percent-encoding in user name", 10},
      {"socks5://u:p%4@host", "truncated percent-encoding in password", 12},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = parse_proxy_uri(c.text);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::StartsWith(c.message));
    CHECK(r.error().position == c.position);
  }
  const std::string long_user = "socks5://" + std::string(256, 'u') + "@h";
  auto r = parse_proxy_uri(long_user);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("longer than 255"));
}
