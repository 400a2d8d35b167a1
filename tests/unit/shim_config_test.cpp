// The shim's configuration and policy, without a process around them.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <map>

#include "config.hpp"
#include "launch.hpp"
#include "policy.hpp"

using namespace socksify::shim;

namespace {

socks5::Result<Config, ConfigError> parse(std::map<std::string, std::string> env) {
  return parse_config([env = std::move(env)](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

Destination v4(const char* ip, std::uint16_t port) {
  Destination d;
  d.family = AF_INET;
  inet_pton(AF_INET, ip, d.ip.data());
  d.port = port;
  return d;
}

Destination named(std::string_view name, std::uint16_t port) {
  Destination d = v4("198.18.0.1", port);
  d.name = name;
  return d;
}

}  // namespace

TEST_CASE("config from the environment", "[shim][config]") {
  auto c = parse(
      {{"SOCKSIFY_PROXY", "socks5h://alice@127.0.0.1:1080, socks5://[::1]:1081"},
       {"SOCKSIFY_PASSWORD", "pw"},
       {"SOCKSIFY_RULES", "direct 10.0.0.0/8; reject port 25\nproxy .Example.ORG; default direct"},
       {"SOCKSIFY_LOG", "info"},
       {"SOCKSIFY_TIMEOUT", "2500"}});
  REQUIRE(c);
  REQUIRE(c->proxies.size() == 2);
  CHECK(c->remote_dns);  // from the first proxy's scheme
  CHECK(*c->proxies[0].password == "pw");
  CHECK_FALSE(c->proxies[1].password);
  CHECK(c->rules.size() == 3);
  CHECK(c->default_action == Action::direct);
  CHECK(c->rules[2].suffix == "example.org");
  CHECK(c->log_level == LogLevel::info);
  CHECK(c->timeout.count() == 2500);
  CHECK(c->fake4.prefix == 15);
  CHECK(c->fake6.prefix == 48);

  auto local = parse({{"SOCKSIFY_PROXY", "socks5h://p"}, {"SOCKSIFY_DNS", "local"}});
  REQUIRE(local);
  CHECK_FALSE(local->remote_dns);
}

TEST_CASE("bad configurations give one precise line", "[shim][config]") {
  struct Case {
    std::map<std::string, std::string> env;
    const char* message;
  };
  const Case cases[] = {
      {{}, "no proxy: set SOCKSIFY_PROXY"},
      {{{"SOCKSIFY_PROXY", "http://p"}}, "SOCKSIFY_PROXY: 'http://p': unsupported scheme"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_DNS", "maybe"}}, "SOCKSIFY_DNS: 'maybe'"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "allow all"}},
       "SOCKSIFY_RULES: rule 'allow all': expected direct, proxy, reject or default first"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "direct port 0"}}, "bad port"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "direct port 9-3"}}, "bad port"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "direct 10.0.0.0/33"}}, "bad network"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "direct"}}, "nothing to match"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_RULES", "default sideways"}}, "default needs"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_FAKE_NET4", "224.0.0.0/40"}},
       "SOCKSIFY_FAKE_NET4"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_FAKE_NET6", "10.0.0.0/8"}},
       "SOCKSIFY_FAKE_NET6"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_LOG", "loud"}}, "SOCKSIFY_LOG: 'loud'"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_TIMEOUT", "0"}}, "SOCKSIFY_TIMEOUT"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_PIPELINING", "yes"}}, "SOCKSIFY_PIPELINING"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.env);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(c.message));
    CHECK(r.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("policy: first match wins, loopback direct, proxies direct, fail-closed default",
          "[shim][policy]") {
  auto c = parse({{"SOCKSIFY_PROXY", "socks5h://127.0.0.1:1080"},
                  {"SOCKSIFY_RULES",
                   "reject port 25; direct 192.168.0.0/16; proxy 127.0.0.2; direct .corp.example; "
                   "reject *.ads.example"}});
  REQUIRE(c);
  CHECK(classify(*c, v4("127.0.0.1", 1080)).action == Action::direct);  // the proxy itself
  CHECK(std::string(classify(*c, v4("127.0.0.1", 1080)).why) == "the proxy itself");
  CHECK(classify(*c, v4("127.0.0.1", 8080)).action == Action::direct);  // loopback
  CHECK(classify(*c, v4("127.0.0.2", 8080)).action == Action::proxy);   // rule beats loopback
  CHECK(classify(*c, v4("192.168.1.9", 80)).action == Action::direct);
  CHECK(classify(*c, v4("192.168.1.9", 25)).action == Action::reject);  // first match
  CHECK(classify(*c, v4("203.0.113.5", 443)).action == Action::proxy);  // default
  CHECK(classify(*c, v4("203.0.113.5", 443)).rule == -1);
  CHECK(classify(*c, named("git.corp.example", 443)).action == Action::direct);
  CHECK(classify(*c, named("corp.example", 443)).action == Action::direct);
  CHECK(classify(*c, named("notcorp.example", 443)).action == Action::proxy);
  CHECK(classify(*c, named("x.ads.example", 80)).action == Action::reject);
  // CIDR rules never match the meaningless fake address of a name.
  CHECK(classify(*c, named("host.test", 80)).action == Action::proxy);
  // DNS over TCP to a loopback stub goes through the proxy in remote-DNS mode.
  CHECK(classify(*c, v4("127.0.0.53", 53)).action == Action::proxy);
  CHECK(classify_name(*c, "a.corp.example") == Action::direct);
  CHECK_FALSE(classify_name(*c, "example.org"));

  Destination lo6;
  lo6.family = AF_INET6;
  lo6.ip[15] = 1;
  lo6.port = 80;
  CHECK(classify(*c, lo6).action == Action::direct);
}

TEST_CASE("v4-mapped IPv6 destinations are classified as IPv4", "[shim][policy]") {
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  m.sin6_port = htons(80);
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
  Destination d;
  REQUIRE(destination_from(reinterpret_cast<sockaddr*>(&m), sizeof m, d));
  CHECK(d.family == AF_INET);
  CHECK(d.ip[0] == 127);
  CHECK(d.port == 80);
  CHECK_FALSE(destination_from(reinterpret_cast<sockaddr*>(&m), 8, d));
  CHECK(domain_matches("A.Example.Org.", "example.org"));
  CHECK_FALSE(domain_matches("badexample.org", "example.org"));
}

TEST_CASE("LD_PRELOAD: sanitizer runtimes first, then the shim, then the rest", "[shim][tool]") {
  using socksify::tool::preload_list;
  CHECK(preload_list("/s/libsocksify.so", nullptr) == "/s/libsocksify.so");
  CHECK(preload_list("/s/libsocksify.so", "/x/libfoo.so") == "/s/libsocksify.so:/x/libfoo.so");
  CHECK(preload_list("/s/libsocksify.so", "/x/libfoo.so /usr/lib/libasan.so.8:/s/libsocksify.so") ==
        "/usr/lib/libasan.so.8:/s/libsocksify.so:/x/libfoo.so");
}
