#include <catch2/catch.hpp>

#include "socks5/uri.hpp"

using socks5::parse_proxy_uri;

TEST_CASE("proxy URIs that parse", "[uri]") {
  auto a = parse_proxy_uri("socks5://proxy.example");
  REQUIRE(a);
  CHECK_FALSE(a->remote_dns());
  CHECK(a->host == "proxy.example");
  CHECK(a->port == 1080);
  CHECK_FALSE(a->user);

  auto b = parse_proxy_uri("socks5h://alice:s%40cr%3At@127.0.0.1:9050/");
  REQUIRE(b);
  CHECK(b->remote_dns());
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
      // One slash, or none, after a known scheme: said as such, not "missing scheme".
      {"socks5h:/127.0.0.1:1080", "expected '//' after 'socks5h:': write socks5h://HOST[:PORT]", 8},
      {"HTTP:proxy:3128", "expected '//' after 'HTTP:': write http://HOST[:PORT]", 5},
      {"ftp://proxy:8080", "unsupported scheme 'ftp'", 0},
      {"socks6://proxy", "unsupported scheme 'socks6'", 0},
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
      {"socks5://host/path", "unexpected path after the host", 13},
      {"socks5://host?x=1", "unexpected query or fragment", 13},
      {"socks5://host/#x", "unexpected query or fragment", 14},
      {"socks4://id:pw@host", "SOCKS4 has a user id but no password", 11},
      {"socks4a://a%00b@host", "a SOCKS4 user id cannot contain a NUL", 10},
      {"http://a%3Ab:pw@host", "an HTTP user name cannot contain ':'", 7},
      {"http://localhost/run/s", "a Unix socket path is only for socks5", 16},
      {"socks5h://localhost:1/run/s", "a Unix socket path takes no port", 21},
      {"socks5h://localhost/run/%00", "a NUL octet in the socket path", 19},
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

TEST_CASE("every scheme: its default port, whether names go to the proxy, and its text", "[uri]") {
  struct Case {
    const char* text;
    socks5::Scheme scheme;
    std::uint16_t port;
    bool remote;
    const char* again;
  };
  const Case cases[] = {
      {"socks5://h", socks5::Scheme::socks5, 1080, false, "socks5://h:1080"},
      {"socks5h://h", socks5::Scheme::socks5h, 1080, true, "socks5h://h:1080"},
      {"socks4://h", socks5::Scheme::socks4, 1080, false, "socks4://h:1080"},
      {"socks4a://id@h:1", socks5::Scheme::socks4a, 1, true, "socks4a://id@h:1"},
      {"http://h", socks5::Scheme::http, 1080, true, "http://h:1080"},
      {"HTTPS://u:p@[::1]", socks5::Scheme::https, 443, true, "https://u:***@[::1]:443"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto u = parse_proxy_uri(c.text);
    REQUIRE(u);
    CHECK(u->scheme == c.scheme);
    CHECK(u->port == c.port);
    CHECK(u->remote_dns() == c.remote);
    CHECK(u->to_string() == c.again);
    CHECK(u->unix_path.empty());
  }
}

TEST_CASE("a SOCKS5 proxy on a Unix socket, in curl's form", "[uri]") {
  auto u = parse_proxy_uri("socks5h://localhost/run/tor/socks");
  REQUIRE(u);
  CHECK(u->scheme == socks5::Scheme::socks5h);
  CHECK(u->unix_path == "/run/tor/socks");
  CHECK(u->to_string() == "socks5h://localhost/run/tor/socks");
  auto again = parse_proxy_uri(u->to_string());
  REQUIRE(again);
  CHECK(again->unix_path == u->unix_path);
  auto spaced = parse_proxy_uri("socks5://me@LOCALHOST/tmp/a%20b.sock");
  REQUIRE(spaced);
  CHECK(spaced->unix_path == "/tmp/a b.sock");
  CHECK(spaced->to_string() == "socks5://me@localhost/tmp/a%20b.sock");
  auto too_long = parse_proxy_uri("socks5h://localhost/" + std::string(107, 'x'));
  REQUIRE_FALSE(too_long);
  CHECK_THAT(too_long.error().message, Catch::Contains("longer than 107"));
  CHECK(parse_proxy_uri("socks5h://localhost/" + std::string(106, 'x')));
  auto other = parse_proxy_uri("socks5h://proxy/run/s");
  REQUIRE_FALSE(other);
  CHECK_THAT(other.error().message, Catch::Contains("socks5h://localhost/PATH"));
}
