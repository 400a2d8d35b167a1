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

// Settings for running a command, from the fast parser or from CLI11.
struct RunOptions {
  std::vector<std::string> proxies;
  std::string dns;
  std::vector<std::string> rules;
  std::string fake4, fake6, log_file, password_file, pipelining, config_file;
  int timeout_ms = 0;
  int verbosity = 0;
  bool strict = false;
};

int run_command(const RunOptions& o, std::vector<std::string> command) {
  socksify::tool::LaunchRequest launch;
  launch.command = std::move(command);
  if (launch.command.empty()) {
    std::fprintf(stderr, "socksify: no command to run (see socksify --help)\n");
    return 2;
  }
  launch.strict = o.strict;
  if (!o.proxies.empty()) {
    for (const auto& p : o.proxies) {
      if (has_password(p)) {
        std::fprintf(stderr,
                     "socksify: warning: a password on the command line is visible to other "
                     "users (ps); use SOCKSIFY_PASSWORD or --password-file\n");
        break;
      }
    }
    launch.env["SOCKSIFY_PROXY"] = join(o.proxies, " ");
  }
  if (!o.password_file.empty()) {
    std::string pw;
    if (!read_password_file(o.password_file, pw)) {
      std::fprintf(stderr, "socksify: cannot read password file %s\n", o.password_file.c_str());
      return 2;
    }
    launch.env["SOCKSIFY_PASSWORD"] = pw;
  }
  if (!o.config_file.empty()) {
    // Absolute, so that children that change directory still find it.
    char buf[PATH_MAX];
    launch.env["SOCKSIFY_CONF"] =
        realpath(o.config_file.c_str(), buf) != nullptr ? buf : o.config_file;
  }
  if (!o.dns.empty()) launch.env["SOCKSIFY_DNS"] = o.dns;
  if (!o.rules.empty()) launch.env["SOCKSIFY_RULES"] = join(o.rules, "; ");
  if (!o.fake4.empty()) launch.env["SOCKSIFY_FAKE_NET4"] = o.fake4;
  if (!o.fake6.empty()) launch.env["SOCKSIFY_FAKE_NET6"] = o.fake6;
  if (o.verbosity > 0) launch.env["SOCKSIFY_LOG"] = o.verbosity >= 2 ? "debug" : "info";
  if (!o.log_file.empty()) launch.env["SOCKSIFY_LOG_FILE"] = o.log_file;
  if (o.timeout_ms > 0) launch.env["SOCKSIFY_TIMEOUT"] = std::to_string(o.timeout_ms);
  if (!o.pipelining.empty()) launch.env["SOCKSIFY_PIPELINING"] = o.pipelining;
  std::fflush(stdout);
  return socksify::tool::launch(launch);
}

// The common case, `socksify [options] COMMAND...` with well-formed options, parsed without
// building the CLI11 application: the wrapper runs before every socksified program, and
// constructing the full CLI costs more than the rest of the wrapper together. Anything
// unusual (help, version, `check`, an unknown option, a bad value) returns false, and CLI11
// parses it and reports the error in its usual words.
bool fast_parse(int argc, char** argv, int split, RunOptions& o) {
  if (split >= argc) return false;
  for (int i = 1; i < split; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
      has_value = true;
    }
    auto take = [&](std::string& out) {
      if (!has_value) {
        if (i + 1 >= split) return false;
        value = argv[++i];
      }
      out = value;
      return true;
    };
    std::string v;
    if (a == "-v" || a == "--verbose") {
      ++o.verbosity;
    } else if (a == "-vv") {
      o.verbosity += 2;
    } else if (a == "--strict") {
      o.strict = true;
    } else if (a == "-x" || a == "--proxy") {
      if (!take(v)) return false;
      o.proxies.push_back(v);
    } else if (a == "-r" || a == "--rule") {
      if (!take(v)) return false;
      o.rules.push_back(v);
    } else if (a == "--dns") {
      if (!take(o.dns) || (o.dns != "remote" && o.dns != "local")) return false;
    } else if (a == "--pipelining") {
      if (!take(o.pipelining) ||
          (o.pipelining != "auto" && o.pipelining != "on" && o.pipelining != "off")) {
        return false;
      }
    } else if (a == "--timeout") {
      if (!take(v)) return false;
      char* end = nullptr;
      const long t = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || t < 1 || t > 3600000) return false;
      o.timeout_ms = static_cast<int>(t);
    } else if (a == "--fake-net4") {
      if (!take(o.fake4)) return false;
    } else if (a == "--fake-net6") {
      if (!take(o.fake6)) return false;
    } else if (a == "--log-file") {
      if (!take(o.log_file)) return false;
    } else if (a == "--password-file") {
      if (!take(o.password_file)) return false;
    } else if (a == "-c" || a == "--config") {
      if (!take(o.config_file)) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Everything from the first positional (or after "--") on is the command and its arguments;
  // only what comes before it is ours to parse.
  const int split = command_start(argc, argv);
  std::vector<std::string> command(argv + split, argv + argc);
  if (split < argc && std::string(argv[split]) == "--") command.erase(command.begin());
  {
    RunOptions fast;
    if (fast_parse(argc, argv, split, fast)) return run_command(fast, std::move(command));
  }

  CLI::App app{"Run a program through a SOCKS5 proxy, or test a proxy.", "socksify"};
  app.set_version_flag("--version", std::string("socksify ") + SOCKSIFY_VERSION);
  app.footer(
      "Proxy URIs: socks5://[user[:password]@]host[:port] (names resolved locally) or\n"
      "socks5h://... (remote DNS: the proxy resolves names). Default port 1080.\n"
      "Environment: SOCKSIFY_PROXY, SOCKSIFY_PASSWORD and the other SOCKSIFY_* settings\n"
      "(see socksify(1)).");

  // Options for running a command.
  RunOptions o;
  app.add_option("-x,--proxy", o.proxies,
                 "proxy URI; repeat for failover (default: $SOCKSIFY_PROXY)");
  app.add_option("--dns", o.dns, "remote (names go to the proxy) or local")
      ->check(CLI::IsMember({"remote", "local"}));
  app.add_option("-r,--rule", o.rules,
                 "policy rule, first match wins: 'direct 10.0.0.0/8', 'reject port 25', "
                 "'proxy .example.org', 'default direct'");
  app.add_option("--fake-net4", o.fake4,
                 "IPv4 range for remote-DNS fake addresses (198.18.0.0/15)");
  app.add_option("--fake-net6", o.fake6, "IPv6 range for fake addresses (fd5f:636b:7366::/48)");
  app.add_flag("-v,--verbose", o.verbosity, "-v: one line per connection; -vv: debug");
  app.add_option("--log-file", o.log_file, "write log lines to FILE instead of stderr");
  app.add_option("--timeout", o.timeout_ms, "deadline of each proxy step in milliseconds")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--pipelining", o.pipelining, "auto, on or off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--password-file", o.password_file,
                 "password for the proxy URI's user, from the first line of FILE");
  app.add_option("-c,--config", o.config_file,
                 "configuration file (TOML, socksify.conf(5)); default: $SOCKSIFY_CONF, "
                 "$XDG_CONFIG_HOME/socksify/socksify.conf, /etc/socksify.conf");
  app.add_flag("--strict", o.strict,
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

  return run_command(o, std::move(command));
}
