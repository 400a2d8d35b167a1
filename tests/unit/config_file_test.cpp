// The TOML configuration file: keys, types, precise file:line errors, environment precedence.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "config_file.hpp"
#include "support/peers.hpp"

using namespace socksify::settings;

namespace {

socks5::Result<Config, ConfigError> load(const std::map<std::string, std::string>& env) {
  return load_config([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

}  // namespace

TEST_CASE("config file: every key, and the environment wins", "[shim][config]") {
  testing::TempDir dir;
  testing::write_file(dir.file("pw"), "from-file\n");
  testing::write_file(
      dir.file("socksify.conf"),
      "# comment\n"
      "proxies = [\"socks5h://alice@127.0.0.1:1080\", \"socks5h://[::1]:1081\"]\n"
      "password_file = \"" +
          dir.file("pw") +
          "\"\n"
          "rules = [\"direct 10.0.0.0/8\", \"reject port 25\", \"default direct\"]\n"
          "dns = \"local\"\n"
          "fake_net4 = \"100.64.0.0/10\"\n"
          "fake_net6 = \"fd00:1::/48\"\n"
          "log = \"debug\"\n"
          "log_file = \"/tmp/x.log\"\n"
          "timeout_ms = 1234\n"
          "pipelining = \"off\"\n"
          "chain = \"strict\"\n");
  auto c = load({{"SOCKSIFY_CONF", dir.file("socksify.conf")}});
  REQUIRE(c);
  CHECK(c->proxies.size() == 2);
  CHECK(*c->proxies[0].password == "from-file");
  CHECK_FALSE(c->remote_dns);
  CHECK(c->rules.size() == 2);
  CHECK(c->default_action == Action::direct);
  CHECK(c->fake4.prefix == 10);
  CHECK(c->log_level == LogLevel::debug);
  CHECK(c->timeout.count() == 1234);
  CHECK(c->pipelining == socks5::Pipelining::off);
  CHECK(c->chain == socks5::ChainMode::strict);
  auto over = load({{"SOCKSIFY_CONF", dir.file("socksify.conf")},
                    {"SOCKSIFY_PROXY", "socks5://10.1.1.1:9"},
                    {"SOCKSIFY_DNS", "remote"}});
  REQUIRE(over);
  REQUIRE(over->proxies.size() == 1);
  CHECK(over->proxies[0].host == "10.1.1.1");
  CHECK(over->remote_dns);
}

TEST_CASE("config file: XDG location, then /etc, none is fine", "[shim][config]") {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("xdg/socksify"));
  testing::write_file(dir.file("xdg/socksify/socksify.conf"), "proxy = \"socks5h://127.0.0.9\"\n");
  auto c = load({{"XDG_CONFIG_HOME", dir.file("xdg")}});
  REQUIRE(c);
  CHECK(c->proxies[0].host == "127.0.0.9");
  // The search with a controlled system file (the host's /etc plays no part).
  const std::string system = dir.file("etc/socksify.conf");
  auto home_only = [&](const char* n) -> const char* {
    return std::string(n) == "HOME" ? dir.path().c_str() : nullptr;
  };
  auto xdg_env = [&](const char* n) -> const char* {
    static std::string xdg;
    xdg = dir.file("xdg");
    return std::string(n) == "XDG_CONFIG_HOME" ? xdg.c_str() : nullptr;
  };
  // Neither ~/.config nor the system file: none, which is fine.
  CHECK_FALSE(find_config_file(home_only, {}, system));
  // Then the system file.
  std::filesystem::create_directories(dir.file("etc"));
  testing::write_file(system, "proxy = \"socks5h://127.0.0.8\"\n");
  CHECK(find_config_file(home_only, {}, system) == std::optional<std::string>(system));
  // The user's file wins over it.
  CHECK(find_config_file(xdg_env, {}, system) ==
        std::optional<std::string>(dir.file("xdg/socksify/socksify.conf")));
  // ~/.config when XDG_CONFIG_HOME is unset.
  std::filesystem::create_directories(dir.file(".config/socksify"));
  testing::write_file(dir.file(".config/socksify/socksify.conf"),
                      "proxy = \"socks5h://127.0.0.7\"\n");
  CHECK(find_config_file(home_only, {}, system) ==
        std::optional<std::string>(dir.file(".config/socksify/socksify.conf")));
  // SOCKSIFY_CONF over all of them, even a file that does not exist (reading it fails then).
  auto named = [&](const char* n) -> const char* {
    return std::string(n) == "SOCKSIFY_CONF" ? "/nonexistent/named.conf" : home_only(n);
  };
  CHECK(find_config_file(named, {}, system) ==
        std::optional<std::string>("/nonexistent/named.conf"));
}

TEST_CASE("config file: errors name the file, the line and the problem", "[shim][config]") {
  testing::TempDir dir;
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"proxy = \"socks5h://p\"\nbogus = 1\n", ":2:9: unknown key 'bogus'"},
      {"proxy = \"socks5h://p\"\nrules = \"direct *\"\n",
       ":2:9: 'rules' must be a list of strings"},
      {"proxy = \"socks5h://p\"\nrules = [\"direct *\", 3]\n", ":2:22: 'rules' must be a list"},
      {"proxy = \"socks5h://p\"\ntimeout_ms = \"fast\"\n",
       ":2:14: 'timeout_ms' must be an integer"},
      {"proxy = \"socks5h://p\"\ndns = [1\n", ":2:"},
      {"proxy = \"socks5h://p\"\nlog = \"loud\"\n", ":2: log: 'loud': expected quiet"},
      {"proxies = [\"ftp://p\"]\n",
       ":1: proxies: 'ftp://p': invalid proxy URI at offset 0: unsupported scheme"},
      {"proxy = \"socks5h://p\"\nchain = \"loop\"\n",
       ":2: chain: 'loop': expected failover or strict"},
      {"proxy = \"socks5h://p\"\npassword_file = \"/nonexistent/pw\"\n",
       "cannot read password_file"},
      // Both spellings of the proxy setting: an error naming both lines, not one ignored.
      {"proxy = \"socks5h://a\"\nproxies = [\"socks5h://b\"]\n",
       ":1:9: 'proxy' and 'proxies' (line 2) are both set: keep one ('proxies' takes a list)"},
  };
  for (const auto& c : cases) {
    testing::write_file(dir.file("bad.conf"), c.text);
    auto r = load({{"SOCKSIFY_CONF", dir.file("bad.conf")}});
    INFO(c.text);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::StartsWith(dir.file("bad.conf")));
    CHECK_THAT(r.error().message, Catch::Contains(c.message));
  }
  auto missing = load({{"SOCKSIFY_CONF", dir.file("nope.conf")}});
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message,
             Catch::EndsWith("nope.conf: cannot read the configuration file: No such file or "
                             "directory"));
}

TEST_CASE("config file: the command line wins over the environment and the file",
          "[shim][config]") {
  testing::TempDir dir;
  testing::write_file(dir.file("c.conf"), "proxy = \"socks5h://10.0.0.1\"\ndns = \"local\"\n");
  Settings cli;
  cli["SOCKSIFY_CONF"] = {dir.file("c.conf"), "-c"};
  cli["SOCKSIFY_DNS"] = {"remote", "--dns"};
  auto c = load_config(
      [](const char* n) -> const char* {
        return std::string(n) == "SOCKSIFY_DNS" ? "local" : nullptr;
      },
      cli);
  REQUIRE(c);
  CHECK(c->proxies[0].host == "10.0.0.1");  // the file named by -c
  CHECK(c->remote_dns);                     // --dns over the environment over the file
}

TEST_CASE("config file: proxychains4's format is read as it is", "[shim][config]") {
  testing::TempDir dir;
  const std::string path = dir.file("proxychains4.conf");
  testing::write_file(path,
                      "# proxychains.conf  VER 4.x\n"
                      "strict_chain\n"
                      "#dynamic_chain\n"
                      "quiet_mode\n"
                      "proxy_dns\n"
                      "remote_dns_subnet 224\n"
                      "tcp_read_time_out 15000\n"
                      "tcp_connect_time_out 8000\n"
                      "localnet 127.0.0.0/255.0.0.0\n"
                      "localnet 10.0.0.0/8\n"
                      "localnet ::1/128\n"
                      "\n"
                      "[ProxyList]\n"
                      "# add proxy here ...\n"
                      "socks5 \t127.0.0.1 1080\n"
                      "socks5  10.1.2.3 1081 alice s3cr:t@\n");
  auto c = load({{"SOCKSIFY_CONF", path}});
  INFO((c ? "" : c.error().message));
  REQUIRE(c);
  REQUIRE(c->proxies.size() == 2);
  CHECK(c->proxies[0].to_string() == "socks5h://127.0.0.1:1080");
  CHECK(c->proxies[1].host == "10.1.2.3");
  CHECK(c->proxies[1].user == std::optional<std::string>("alice"));
  CHECK(c->proxies[1].password == std::optional<std::string>("s3cr:t@"));
  CHECK(c->chain == socks5::ChainMode::strict);
  CHECK(c->remote_dns);
  CHECK(c->log_level == LogLevel::quiet);
  CHECK(c->timeout == std::chrono::milliseconds(8000));
  CHECK(c->rules.size() == 3);
  CHECK(c->rules[0].action == Action::direct);
  CHECK(c->rules[0].net.prefix == 8);
  CHECK(c->rules[2].net.prefix == 128);
  CHECK(c->fake4.prefix == 8);
  CHECK(c->fake4.bytes[0] == 224);

  // Without proxy_dns, names are resolved locally (socks5://).
  testing::write_file(path, "dynamic_chain\n[ProxyList]\nsocks5 127.0.0.1 1080\n");
  c = load({{"SOCKSIFY_CONF", path}});
  REQUIRE(c);
  CHECK(c->proxies[0].to_string() == "socks5://127.0.0.1:1080");
  CHECK_FALSE(c->remote_dns);
  CHECK(c->chain == socks5::ChainMode::failover);

  // proxychains-ng's other two ways of resolving through the proxy (a helper program, a
  // daemon at an address) both mean what proxy_dns means here: the proxy gets the name.
  for (const char* other : {"proxy_dns_old\n", "proxy_dns_daemon 127.0.0.1:1053\n"}) {
    INFO(other);
    testing::write_file(path, std::string(other) + "[ProxyList]\nsocks5 127.0.0.1 1080\n");
    c = load({{"SOCKSIFY_CONF", path}});
    REQUIRE(c);
    CHECK(c->proxies[0].to_string() == "socks5h://127.0.0.1:1080");
    CHECK(c->remote_dns);
  }

  // http and socks4 entries, with their user and password (SOCKS4: the user id alone);
  // proxy_dns makes socks4 socks4a, as socks5 socks5h.
  for (const bool dns : {false, true}) {
    testing::write_file(path, std::string(dns ? "proxy_dns\n" : "") +
                                  "[ProxyList]\n"
                                  "http 10.0.0.1 3128 bob pw%\n"
                                  "socks4 10.0.0.2 1080 carol ignored\n"
                                  "socks4 10.0.0.3 1081\n");
    c = load({{"SOCKSIFY_CONF", path}});
    INFO((c ? "" : c.error().message));
    REQUIRE(c);
    REQUIRE(c->proxies.size() == 3);
    CHECK(c->proxies[0].to_string(true) == "http://bob:pw%25@10.0.0.1:3128");
    CHECK(c->proxies[1].to_string(true) ==
          std::string(dns ? "socks4a" : "socks4") + "://carol@10.0.0.2:1080");
    CHECK_FALSE(c->proxies[1].password);
    CHECK(c->proxies[2].to_string() ==
          std::string(dns ? "socks4a" : "socks4") + "://10.0.0.3:1081");
    CHECK(c->remote_dns == dns);
  }

  // What socksify cannot do is named, with the line.
  const std::pair<std::string, std::string> bad[] = {
      {"[ProxyList]\nraw 127.0.0.1 1080\n", ":2: raw proxies are not supported"},
      {"[ProxyList]\nhttp 127.0.0.1\n", ":2: expected: http HOST PORT [USER PASSWORD]"},
      {"random_chain\n[ProxyList]\nsocks5 127.0.0.1 1080\n", ":1: random_chain is not supported"},
      {"localnet 10.0.0.0:80/255.0.0.0\n[ProxyList]\nsocks5 127.0.0.1 1080\n",
       ":1: localnet: a port in localnet is not supported"},
      {"localnet 10.0.0.0/255.0.255.0\n[ProxyList]\nsocks5 127.0.0.1 1080\n", "is not contiguous"},
      {"dnat 1.1.1.1 1.1.1.2\n[ProxyList]\nsocks5 127.0.0.1 1080\n", ":1: dnat is not supported"},
      {"[ProxyList]\nsocks5 127.0.0.1 99999\n", ":2: invalid port '99999'"},
      {"[ProxyList]\n", "no proxy in its [ProxyList]"},
  };
  for (const auto& [text, message] : bad) {
    testing::write_file(path, text);
    auto r = load({{"SOCKSIFY_CONF", path}});
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(message));
    CHECK_THAT(r.error().message, Catch::StartsWith(path));
  }
}

TEST_CASE("config file and environment: GSSAPI settings", "[shim][config]") {
  testing::TempDir dir;
  testing::write_file(dir.file("socksify.conf"),
                      "proxies = [\"socks5h://proxy.example:1080\"]\n"
                      "auth = \"gssapi\"\n"
                      "gssapi_service = \"socks/proxy.example@EXAMPLE.ORG\"\n"
                      "gssapi_protection = \"confidentiality\"\n");
  auto c = load({{"SOCKSIFY_CONF", dir.file("socksify.conf")}});
  REQUIRE(c);
  REQUIRE(c->gssapi);
  CHECK(c->gssapi->service == "socks/proxy.example@EXAMPLE.ORG");
  CHECK(c->gssapi->level == socks5::GssLevel::confidentiality);
  // The environment wins, as for every setting.
  auto over =
      load({{"SOCKSIFY_CONF", dir.file("socksify.conf")}, {"SOCKSIFY_GSSAPI_PROTECTION", "clear"}});
  REQUIRE(over);
  CHECK(over->gssapi->level == socks5::GssLevel::clear);
  // The default: none / username, no GSSAPI; the level's default is integrity.
  auto plain = load({{"SOCKSIFY_PROXY", "socks5h://p:1080"}});
  REQUIRE(plain);
  CHECK_FALSE(plain->gssapi);
  auto defaults = load({{"SOCKSIFY_PROXY", "socks5h://p:1080"}, {"SOCKSIFY_AUTH", "gssapi"}});
  REQUIRE(defaults);
  CHECK(defaults->gssapi->level == socks5::GssLevel::integrity);
  CHECK(socks5::gssapi_target(*defaults->gssapi, "p") == "rcmd@p");
  // Refusals: a level that does not exist, GSSAPI settings without the method, a user in the
  // URI (the user is the ticket's).
  auto bad = load({{"SOCKSIFY_PROXY", "socks5h://p:1080"},
                   {"SOCKSIFY_AUTH", "gssapi"},
                   {"SOCKSIFY_GSSAPI_PROTECTION", "secret"}});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("SOCKSIFY_GSSAPI_PROTECTION"));
  auto orphan = load({{"SOCKSIFY_PROXY", "socks5h://p:1080"}, {"SOCKSIFY_GSSAPI_SERVICE", "x"}});
  REQUIRE_FALSE(orphan);
  CHECK_THAT(orphan.error().message, Catch::Contains("but SOCKSIFY_AUTH is not gssapi"));
  auto user = load({{"SOCKSIFY_PROXY", "socks5h://alice@p:1080"}, {"SOCKSIFY_AUTH", "gssapi"}});
  REQUIRE_FALSE(user);
  CHECK_THAT(user.error().message, Catch::Contains("the user is the one of the Kerberos ticket"));
}
