// socksify: run a program through a SOCKS5 proxy (`socksify [options] COMMAND...`), or test a
// proxy (`socksify check`).
#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "check.hpp"
#include "launch.hpp"

namespace {

// First line of a file, without its newline: passwords stay out of argv and out of `ps`.
bool read_password_file(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, out);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

bool has_password(const std::string& uri_text) {
  auto u = socks5::parse_proxy_uri(uri_text);
  return u && u->password;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Index of "--" or of the first argument that is neither an option nor an option's value
// (argc if none). "check" there is our subcommand, not a command to run.
int command_start(int argc, char** argv) {
  static const char* const kWithValue[] = {
      "-x",          "--proxy",    "--dns",     "-r",           "--rule",          "--fake-net4",
      "--fake-net6", "--log-file", "--timeout", "--pipelining", "--password-file", "-c",
      "--config"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") return i;
    if (a.empty() || a[0] != '-') return a == "check" ? argc : i;
    for (const char* opt : kWithValue) {
      if (a == opt) {
        ++i;  // its value
        break;
      }
    }
  }
  return argc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run a program through a SOCKS5 proxy, or test a proxy.", "socksify"};
  app.set_version_flag("--version", std::string("socksify ") + SOCKSIFY_VERSION);
  app.footer(
      "Proxy URIs: socks5://[user[:password]@]host[:port] (names resolved locally) or\n"
      "socks5h://... (remote DNS: the proxy resolves names). Default port 1080.\n"
      "Environment: SOCKSIFY_PROXY, SOCKSIFY_PASSWORD and the other SOCKSIFY_* settings\n"
      "(see socksify(1)).");

  // Options for running a command.
  std::vector<std::string> proxies;
  std::string dns;
  std::vector<std::string> rules;
  std::string fake4, fake6, log_file, password_file, pipelining, config_file;
  int timeout_ms = 0;
  int verbosity = 0;
  bool strict = false;
  app.add_option("-x,--proxy", proxies,
                 "proxy URI; repeat for failover (default: $SOCKSIFY_PROXY)");
  app.add_option("--dns", dns, "remote (names go to the proxy) or local")
      ->check(CLI::IsMember({"remote", "local"}));
  app.add_option("-r,--rule", rules,
                 "policy rule, first match wins: 'direct 10.0.0.0/8', 'reject port 25', "
                 "'proxy .example.org', 'default direct'");
  app.add_option("--fake-net4", fake4, "IPv4 range for remote-DNS fake addresses (198.18.0.0/15)");
  app.add_option("--fake-net6", fake6, "IPv6 range for fake addresses (fd5f:636b:7366::/48)");
  app.add_flag("-v,--verbose", verbosity, "-v: one line per connection; -vv: debug");
  app.add_option("--log-file", log_file, "write log lines to FILE instead of stderr");
  app.add_option("--timeout", timeout_ms, "deadline of each proxy step in milliseconds")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--pipelining", pipelining, "auto, on or off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--password-file", password_file,
                 "password for the proxy URI's user, from the first line of FILE");
  app.add_option("-c,--config", config_file,
                 "configuration file (TOML, socksify.conf(5)); default: $SOCKSIFY_CONF, "
                 "$XDG_CONFIG_HOME/socksify/socksify.conf, /etc/socksify.conf");
  app.add_flag("--strict", strict,
               "refuse to run programs the shim cannot reach (static, setuid, setcap)");

  // `socksify check`
  std::string check_proxy;
  std::string check_password_file;
  std::string check_pipelining = "auto";
  int check_timeout_ms = 10000;
  std::string target;
  auto* check = app.add_subcommand(
      "check",
      "Connect to the proxy, show the method, handshake time and waits for the server; "
      "with HOST:PORT, CONNECT through it and report the result.");
  check->add_option("-x,--proxy", check_proxy, "proxy URI (default: $SOCKSIFY_PROXY)");
  check->add_option("--password-file", check_password_file,
                    "read the password for the URI's user from the first line of FILE");
  check
      ->add_option("--pipelining", check_pipelining,
                   "send greeting, credentials and request in one write: auto, on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  check->add_option("--timeout", check_timeout_ms, "deadline of each step in milliseconds")
      ->check(CLI::Range(1, 3600000));
  check->add_option("target", target, "HOST:PORT to CONNECT to through the proxy");

  // Everything from the first positional (or after "--") on is the command and its arguments;
  // only what comes before it is ours to parse.
  const int split = command_start(argc, argv);
  std::vector<std::string> command(argv + split, argv + argc);
  if (split < argc && std::string(argv[split]) == "--") command.erase(command.begin());
  CLI11_PARSE(app, split < argc ? split : argc, argv);

  if (check->parsed()) {
    const bool from_argv = !check_proxy.empty();
    if (check_proxy.empty()) {
      if (const char* p = env("SOCKSIFY_PROXY")) check_proxy = p;
    }
    if (check_proxy.empty()) {
      std::fprintf(stderr, "socksify: no proxy: give --proxy URI or set SOCKSIFY_PROXY\n");
      return 2;
    }
    auto uri = socks5::parse_proxy_uri(check_proxy);
    if (!uri) {
      std::fprintf(stderr, "socksify: invalid proxy URI (at offset %zu): %s\n",
                   uri.error().position, uri.error().message.c_str());
      return 2;
    }
    if (from_argv && uri->password) {
      std::fprintf(stderr,
                   "socksify: warning: a password on the command line is visible to other users "
                   "(ps); use SOCKSIFY_PASSWORD or --password-file\n");
    }
    if (uri->user && !uri->password) {
      std::string pw;
      if (!check_password_file.empty()) {
        if (!read_password_file(check_password_file, pw)) {
          std::fprintf(stderr, "socksify: cannot read password file %s\n",
                       check_password_file.c_str());
          return 2;
        }
        uri->password = std::move(pw);
      } else if (const char* p = env("SOCKSIFY_PASSWORD")) {
        uri->password = p;
      }
    }
    socksify::tool::CheckRequest request;
    request.proxy = std::move(*uri);
    if (!target.empty()) request.target = target;
    request.options.timeout = std::chrono::milliseconds(check_timeout_ms);
    request.options.pipelining = check_pipelining == "on"    ? socks5::Pipelining::on
                                 : check_pipelining == "off" ? socks5::Pipelining::off
                                                             : socks5::Pipelining::automatic;
    const int rc = socksify::tool::run_check(request);
    std::fflush(stdout);
    return rc;
  }

  socksify::tool::LaunchRequest launch;
  launch.command = std::move(command);
  if (launch.command.empty()) {
    std::fprintf(stderr, "socksify: no command to run (see socksify --help)\n");
    return 2;
  }
  launch.strict = strict;
  if (!proxies.empty()) {
    for (const auto& p : proxies) {
      if (has_password(p)) {
        std::fprintf(stderr,
                     "socksify: warning: a password on the command line is visible to other "
                     "users (ps); use SOCKSIFY_PASSWORD or --password-file\n");
        break;
      }
    }
    launch.env["SOCKSIFY_PROXY"] = join(proxies, " ");
  }
  if (!password_file.empty()) {
    std::string pw;
    if (!read_password_file(password_file, pw)) {
      std::fprintf(stderr, "socksify: cannot read password file %s\n", password_file.c_str());
      return 2;
    }
    launch.env["SOCKSIFY_PASSWORD"] = pw;
  }
  if (!config_file.empty()) {
    // Absolute, so that children that change directory still find it.
    char buf[PATH_MAX];
    launch.env["SOCKSIFY_CONF"] = realpath(config_file.c_str(), buf) != nullptr ? buf : config_file;
  }
  if (!dns.empty()) launch.env["SOCKSIFY_DNS"] = dns;
  if (!rules.empty()) launch.env["SOCKSIFY_RULES"] = join(rules, "; ");
  if (!fake4.empty()) launch.env["SOCKSIFY_FAKE_NET4"] = fake4;
  if (!fake6.empty()) launch.env["SOCKSIFY_FAKE_NET6"] = fake6;
  if (verbosity > 0) launch.env["SOCKSIFY_LOG"] = verbosity >= 2 ? "debug" : "info";
  if (!log_file.empty()) launch.env["SOCKSIFY_LOG_FILE"] = log_file;
  if (timeout_ms > 0) launch.env["SOCKSIFY_TIMEOUT"] = std::to_string(timeout_ms);
  if (!pipelining.empty()) launch.env["SOCKSIFY_PIPELINING"] = pipelining;
  std::fflush(stdout);
  return socksify::tool::launch(launch);
}
