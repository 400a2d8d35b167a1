// The settings home: the option table, the layers (file < environment < command line), the
// parsed Config and its errors; no process around them.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "config.hpp"
#include "launch.hpp"
#include "options.hpp"
#include "support/peers.hpp"

using namespace socksify::settings;

namespace {

socks5::Result<Config, ConfigError> parse(std::map<std::string, std::string> env) {
  return parse_config([env = std::move(env)](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
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
  CHECK(c->chain == socks5::ChainMode::failover);

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
      {{},
       "no proxy: give one with socksify -x URI, SOCKSIFY_PROXY=URI, or proxy = \"URI\" in a "
       "configuration file (-c FILE"},
      {{{"SOCKSIFY_PROXY", "ftp://p"}},
       "SOCKSIFY_PROXY: 'ftp://p': invalid proxy URI at offset 0: unsupported scheme"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_DNS", "maybe"}},
       "SOCKSIFY_DNS: 'maybe': expected remote or local"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_CHAIN", "random"}},
       "SOCKSIFY_CHAIN: 'random': expected failover or strict"},
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
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_TIMEOUT", "0"}},
       "SOCKSIFY_TIMEOUT: '0': expected an integer from 1 to 3600000"},
      {{{"SOCKSIFY_PROXY", "socks5://p"}, {"SOCKSIFY_PIPELINING", "yes"}}, "SOCKSIFY_PIPELINING"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.env);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(c.message));
    CHECK(r.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("LD_PRELOAD: sanitizer runtimes first, then the shim, then the rest", "[shim][tool]") {
  using socksify::tool::preload_list;
  CHECK(preload_list("/s/libsocksify.so", nullptr) == "/s/libsocksify.so");
  CHECK(preload_list("/s/libsocksify.so", "/x/libfoo.so") == "/s/libsocksify.so:/x/libfoo.so");
  CHECK(preload_list("/s/libsocksify.so", "/x/libfoo.so /usr/lib/libasan.so.8:/s/libsocksify.so") ==
        "/usr/lib/libasan.so.8:/s/libsocksify.so:/x/libfoo.so");
}

TEST_CASE("chain: strict or failover, and remote DNS follows the resolving proxy", "[config]") {
  auto strict = parse({{"SOCKSIFY_PROXY", "socks5://a:1 socks5://b:2 socks5h://c:3"},
                       {"SOCKSIFY_CHAIN", "strict"}});
  REQUIRE(strict);
  CHECK(strict->chain == socks5::ChainMode::strict);
  CHECK(strict->proxies.size() == 3);
  CHECK(strict->remote_dns);  // the last hop resolves names in a strict chain
  auto failover = parse({{"SOCKSIFY_PROXY", "socks5://a:1 socks5h://b:2"}});
  REQUIRE(failover);
  CHECK(failover->chain == socks5::ChainMode::failover);
  CHECK_FALSE(failover->remote_dns);  // the first proxy decides in failover
  // No silent limit on the number of proxies.
  std::string many;
  for (int i = 1; i <= 40; ++i) many += "socks5://10.0.0." + std::to_string(i) + ":1080 ";
  auto forty = parse({{"SOCKSIFY_PROXY", many}});
  REQUIRE(forty);
  CHECK(forty->proxies.size() == 40);
}

TEST_CASE("errors name what the user wrote: a flag, a variable or a file line", "[config]") {
  Settings s;
  s["SOCKSIFY_PROXY"] = {"socks5://p", "-x"};
  s["SOCKSIFY_DNS"] = {"sideways", "--dns"};
  auto r = parse_config(s);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "--dns: 'sideways': expected remote or local");
  s["SOCKSIFY_DNS"] = {"remote", "/etc/socksify.conf:3: dns"};
  s["SOCKSIFY_PIPELINING"] = {"sometimes", "/etc/socksify.conf:4: pipelining"};
  r = parse_config(s);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "/etc/socksify.conf:4: pipelining: 'sometimes': expected auto, on or off");
  // Layers: the command line over the environment over the file.
  Settings file{{"SOCKSIFY_DNS", {"local", "f:1: dns"}}, {"SOCKSIFY_LOG", {"info", "f:2: log"}}};
  overlay(file, Settings{{"SOCKSIFY_DNS", {"remote", "SOCKSIFY_DNS"}}});
  overlay(file, Settings{{"SOCKSIFY_LOG", {"debug", "-vv"}}});
  CHECK(file["SOCKSIFY_DNS"].value == "remote");
  CHECK(file["SOCKSIFY_LOG"].origin == "-vv");
}

TEST_CASE("the option table: one row per setting, names unique, lookups agree", "[config]") {
  std::set<std::string_view> envs, keys, flags;
  for (const Option& o : options()) {
    INFO(o.name);
    CHECK_FALSE(o.help.empty());
    if (!o.env.empty()) {
      CHECK(o.env.rfind("SOCKSIFY_", 0) == 0);
      CHECK(envs.insert(o.env).second);
      CHECK(option_by_env(o.env) == &o);
    }
    for (auto k : {o.key, o.list_key}) {
      if (k.empty()) continue;
      CHECK(keys.insert(k).second);
      CHECK(option_by_key(k) == &o);
    }
    std::string_view f = o.flags;
    while (!f.empty()) {
      const auto comma = f.find(',');
      const std::string_view one = f.substr(0, comma);
      CHECK(one.front() == '-');
      CHECK(flags.insert(one).second);
      CHECK(option_by_flag(one) == &o);
      f = comma == std::string_view::npos ? std::string_view{} : f.substr(comma + 1);
    }
    if (o.kind == ValueKind::choice) CHECK_FALSE(o.choices.empty());
    if (o.kind == ValueKind::integer) CHECK(o.min < o.max);
  }
  // The fixed interfaces of the chain issue.
  const Option* chain = option_by_flag("--chain");
  REQUIRE(chain != nullptr);
  CHECK(chain->env == "SOCKSIFY_CHAIN");
  CHECK(chain->key == "chain");
  CHECK(valid_value(*chain, "strict"));
  CHECK(valid_value(*chain, "failover"));
  CHECK_FALSE(valid_value(*chain, "dynamic"));
  CHECK(option_by_flag("-x")->env == "SOCKSIFY_PROXY");
}

TEST_CASE("the man pages cover every row of the option table", "[config][docs]") {
  const std::string page = testing::read_file(SOCKSIFY_SOURCE_DIR "/man/socksify.1");
  const std::string conf = testing::read_file(SOCKSIFY_SOURCE_DIR "/man/socksify.conf.5");
  REQUIRE_FALSE(page.empty());
  REQUIRE_FALSE(conf.empty());
  auto roff = [](std::string_view flag) {
    std::string out;
    for (char c : flag) out += c == '-' ? std::string("\\-") : std::string(1, c);
    return out;
  };
  for (const Option& o : options()) {
    INFO(o.name);
    if (!o.env.empty()) CHECK_THAT(page, Catch::Contains(std::string(o.env)));
    std::string_view f = o.flags;
    while (!f.empty()) {
      const auto comma = f.find(',');
      CHECK_THAT(page, Catch::Contains(roff(f.substr(0, comma))));
      f = comma == std::string_view::npos ? std::string_view{} : f.substr(comma + 1);
    }
    for (auto k : {o.key, o.list_key}) {
      if (!k.empty()) CHECK_THAT(conf, Catch::Contains(std::string(k)));
    }
  }
}

TEST_CASE("the bash and zsh completions offer every flag and every choice", "[config]") {
  const std::string bash = testing::read_file(SOCKSIFY_SOURCE_DIR "/completions/socksify.bash");
  const std::string zsh = testing::read_file(SOCKSIFY_SOURCE_DIR "/completions/_socksify");
  REQUIRE_FALSE(bash.empty());
  REQUIRE_FALSE(zsh.empty());
  for (const Option& o : options()) {
    INFO(o.name);
    std::string_view f = o.flags;
    while (!f.empty()) {
      const auto comma = f.find(',');
      const std::string flag(f.substr(0, comma));
      CHECK_THAT(bash, Catch::Contains(flag + " ") || Catch::Contains(flag + ")") ||
                           Catch::Contains(flag + "\n"));
      CHECK_THAT(zsh, Catch::Contains(flag));
      f = comma == std::string_view::npos ? std::string_view{} : f.substr(comma + 1);
    }
    if (o.kind == ValueKind::choice) {
      std::string words(o.choices);
      for (char& c : words) c = c == '|' ? ' ' : c;
      CHECK_THAT(bash, Catch::Contains("\"" + words + "\""));
      CHECK_THAT(zsh, Catch::Contains("(" + words + ")"));
    }
  }
}
