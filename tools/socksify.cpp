// socksify: run a program through a SOCKS5 proxy (`socksify [options] COMMAND...`), or test
// the configured proxies (`socksify [options] check [options] [HOST:PORT]`).
//
// The command line is parsed from the option table (settings/options.hpp), the same table the
// configuration file and the environment are read with: each option becomes the SOCKSIFY_*
// setting a socksified program (and its children) inherits.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "config_file.hpp"
#include "launch.hpp"
#include "options.hpp"

namespace {

using socksify::settings::Option;
using socksify::settings::ValueKind;

/// What the command line asked for.
struct CommandLine {
  socksify::settings::Settings settings;
  bool strict = false;
  bool check = false;
  bool help = false;
  bool version = false;
  std::optional<std::string> target;  // check's HOST:PORT
  std::vector<std::string> command;
  int verbosity = 0;
  std::string verbosity_flag;
};

// First line of a file, without its newline: passwords stay out of argv and out of `ps`.
bool read_first_line(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[4096];
  const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!got) return false;
  out = buf;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return true;
}

// Absolute, so that children that change directory still find it.
std::string absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

bool has_password(std::string_view uri_text) {
  auto u = socks5::parse_proxy_uri(uri_text);
  return u && u->password;
}

// Records one option's value as its SOCKSIFY_* setting. Returns "" or an error message.
std::string take(const Option& o, std::string_view flag, const std::string& value,
                 CommandLine& cl) {
  const std::string env(o.env);
  const std::string origin(flag);
  switch (o.kind) {
    case ValueKind::list: {
      auto& s = cl.settings[env];
      if (!s.value.empty()) s.value += o.join;
      s.value += value;
      s.origin = origin;
      if (o.name == "proxy" && has_password(value)) {
        std::fprintf(stderr,
                     "socksify: warning: a password on the command line is visible to other "
                     "users (ps); use SOCKSIFY_PASSWORD or --password-file\n");
      }
      return "";
    }
    case ValueKind::secret: {
      std::string line;
      if (!read_first_line(value, line)) return "cannot read password file " + value;
      cl.settings[env] = {line, origin + " " + value};
      return "";
    }
    case ValueKind::path: cl.settings[env] = {absolute(value), origin}; return "";
    case ValueKind::choice:
    case ValueKind::integer:
      if (!socksify::settings::valid_value(o, value)) {
        return origin + ": '" + value + "': " + socksify::settings::expected_text(o);
      }
      cl.settings[env] = {value, origin};
      return "";
    default: cl.settings[env] = {value, origin}; return "";
  }
}

// Parses argv. Returns "" or the one-line error.
std::string parse(int argc, char** argv, CommandLine& cl) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      cl.command.assign(argv + i + 1, argv + argc);
      break;
    }
    if (a == "-h" || a == "--help") {
      cl.help = true;
      continue;
    }
    if (a == "--version") {
      cl.version = true;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string value;
      bool inline_value = false;
      if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = a.substr(eq + 1);
        a.resize(eq);
        inline_value = true;
      }
      if (a == "-vv") {
        cl.verbosity += 2;
        cl.verbosity_flag = a;
        continue;
      }
      const Option* o = socksify::settings::option_by_flag(a);
      if (o == nullptr) return "unknown option '" + a + "' (see socksify --help)";
      if (o->kind == ValueKind::count) {
        ++cl.verbosity;
        cl.verbosity_flag = a;
        continue;
      }
      if (o->kind == ValueKind::flag) {
        cl.strict = true;
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= argc) return a + " needs a value (" + std::string(o->metavar) + ")";
        value = argv[++i];
      }
      if (std::string e = take(*o, a, value, cl); !e.empty()) return e;
      continue;
    }
    // A positional: the subcommand, check's target, or the command to run.
    if (!cl.check && cl.command.empty() && a == "check") {
      cl.check = true;
      continue;
    }
    if (cl.check) {
      if (cl.target) return "check takes one HOST:PORT (got '" + *cl.target + "' and '" + a + "')";
      cl.target = a;
      continue;
    }
    cl.command.assign(argv + i, argv + argc);
    break;
  }
  if (cl.verbosity > 0) {
    cl.settings["SOCKSIFY_LOG"] = {cl.verbosity >= 2 ? "debug" : "info", cl.verbosity_flag};
  }
  return "";
}

void print_help(bool check) {
  if (check) {
    std::printf(
        "usage: socksify [OPTIONS] check [OPTIONS] [HOST:PORT]\n\n"
        "Connects to each configured proxy (or through the whole chain with --chain strict)\n"
        "and shows the method the server chose, the handshake time and the waits for the\n"
        "server; with HOST:PORT, also CONNECTs through it and reports the result or the exact\n"
        "failure. Uses the same configuration as a socksified program: the options, the\n"
        "SOCKSIFY_* environment and the configuration file.\n\nOptions:\n");
  } else {
    std::printf(
        "usage: socksify [OPTIONS] [--] COMMAND [ARGS...]\n"
        "       socksify [OPTIONS] check [HOST:PORT]\n"
        "       socksify --help | --version\n\n"
        "Runs COMMAND with libsocksify.so preloaded, so that its connections go through a\n"
        "SOCKS5 proxy. Each option sets the SOCKSIFY_* variable shown, which the program and\n"
        "its children inherit; the same settings can come from the environment or from the\n"
        "configuration file (socksify.conf(5)).\n\nOptions:\n");
  }
  for (const Option& o : socksify::settings::options()) {
    if (o.flags.empty()) continue;
    std::string head = "  ";
    std::string_view flags = o.flags;
    while (!flags.empty()) {
      const auto comma = flags.find(',');
      head.append(flags.substr(0, comma));
      flags = comma == std::string_view::npos ? std::string_view{} : flags.substr(comma + 1);
      if (!flags.empty()) head.append(", ");
    }
    if (!o.metavar.empty()) {
      head.push_back(' ');
      head.append(o.metavar);
    }
    std::printf("%-28s %.*s", head.c_str(), static_cast<int>(o.help.size()), o.help.data());
    if (!o.env.empty()) std::printf(" [%.*s]", static_cast<int>(o.env.size()), o.env.data());
    std::printf("\n");
  }
  std::printf(
      "\nProxy URIs: socks5://[user[:password]@]host[:port] (names resolved locally) or\n"
      "socks5h://... (remote DNS: the proxy resolves names). Default port 1080.\n"
      "Exit status: the program's own; 2 for a usage or configuration error; 126/127 when the\n"
      "program cannot be run. See socksify(1).\n");
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine cl;
  if (const std::string e = parse(argc, argv, cl); !e.empty()) {
    std::fprintf(stderr, "socksify: %s\n", e.c_str());
    return 2;
  }
  if (cl.help) {
    print_help(cl.check);
    return 0;
  }
  if (cl.version) {
    std::printf("socksify %s\n", SOCKSIFY_VERSION);
    return 0;
  }
  if (cl.check) {
    auto config = socksify::settings::load_config(
        [](const char* name) -> const char* { return std::getenv(name); }, cl.settings);
    if (!config) {
      std::fprintf(stderr, "socksify: %s\n", config.error().message.c_str());
      return 2;
    }
    return socksify::tool::run_check({std::move(*config), cl.target});
  }
  if (cl.command.empty()) {
    std::fprintf(stderr, "socksify: no command to run (see socksify --help)\n");
    return 2;
  }
  socksify::tool::LaunchRequest launch;
  launch.command = std::move(cl.command);
  launch.settings = std::move(cl.settings);
  launch.strict = cl.strict;
  std::fflush(stdout);
  return socksify::tool::launch(launch);
}
