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
#include "supervisor.hpp"

namespace {

using socksify::settings::Option;
using socksify::settings::ValueKind;

/// What the command line asked for.
struct CommandLine {
  socksify::settings::Settings settings;
  bool strict = false;
  bool check = false;
  bool activate = false;    // socksify env: print the export lines
  bool deactivate = false;  // socksify off: print the lines that undo them
  bool help = false;
  bool version = false;
  std::optional<std::string> target;  // check's HOST:PORT
  std::vector<std::string> command;
  int verbosity = 0;
  std::string verbosity_flag;
};

// First line of a file, without its newline: passwords stay out of argv and out of `ps`.
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
      // Read here to check the configuration (and for the supervisor); the children get the
      // file's path (SOCKSIFY_PASSWORD_FILE), never the password.
      std::string line;
      if (!socksify::settings::read_first_line(value, line)) {
        return "cannot read password file " + value;
      }
      cl.settings[env] = {line, socksify::settings::kPasswordFileFlag + absolute(value)};
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

// One option as written: `flag` (e.g. "-x", "--proxy"), with its value inline when it had
// one ("--proxy=URI", "-xURI"). Takes the value from the next argument when it needs one.
// Returns "" or the error.
std::string option(const Option& o, const std::string& flag,
                   const std::optional<std::string>& inline_value, int argc, char** argv, int& i,
                   CommandLine& cl) {
  switch (o.kind) {
    case ValueKind::count:
      if (inline_value) return flag + " takes no value";
      ++cl.verbosity;
      cl.verbosity_flag = flag;
      return "";
    case ValueKind::flag:
      if (inline_value) return flag + " takes no value";
      if (o.name == "strict") cl.strict = true;
      cl.settings[std::string(o.env)] = {"1", flag};
      return "";
    case ValueKind::preset: {
      if (inline_value) return flag + " takes no value";
      const std::string_view preset = o.choices;
      const auto eq = preset.find('=');
      cl.settings[std::string(preset.substr(0, eq))] = {std::string(preset.substr(eq + 1)), flag};
      if (o.name == "quiet") cl.verbosity = 0;
      return "";
    }
    default: break;
  }
  std::string value;
  if (inline_value) {
    value = *inline_value;
  } else {
    if (i + 1 >= argc) return flag + " needs a value (" + std::string(o.metavar) + ")";
    value = argv[++i];
  }
  return take(o, flag, value, cl);
}

// Parses argv, as getopt_long would: "--name VALUE", "--name=VALUE", "-x VALUE", "-xVALUE",
// and short flags together ("-vx URI", "-vv"). Returns "" or the one-line error.
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
    if (a.rfind("--", 0) == 0) {
      std::optional<std::string> value;
      if (const auto eq = a.find('='); eq != std::string::npos) {
        value = a.substr(eq + 1);
        a.resize(eq);
      }
      const Option* o = socksify::settings::option_by_flag(a);
      if (o == nullptr) return "unknown option '" + a + "' (see socksify --help)";
      if (std::string e = option(*o, a, value, argc, argv, i, cl); !e.empty()) return e;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      // One or more short flags; the first that takes a value takes the rest of the word.
      for (std::size_t k = 1; k < a.size(); ++k) {
        const std::string flag = std::string("-") + a[k];
        if (flag == "-h") {
          cl.help = true;
          continue;
        }
        const Option* o = socksify::settings::option_by_flag(flag);
        if (o == nullptr) {
          // proxychains4's habit: -f FILE names its configuration file.
          const std::string hint = flag == "-f" ? " (for a configuration file, proxychains4's "
                                                  "included, use -c FILE; see socksify --help)"
                                                : " (see socksify --help)";
          return "unknown option '" + flag + "'" + (a.size() > 2 ? " in '" + a + "'" : "") + hint;
        }
        const bool takes_value = o->kind != ValueKind::count && o->kind != ValueKind::flag &&
                                 o->kind != ValueKind::preset;
        std::optional<std::string> value;
        if (takes_value && k + 1 < a.size()) value = a.substr(k + 1);
        if (std::string e = option(*o, flag, value, argc, argv, i, cl); !e.empty()) return e;
        if (takes_value) break;
      }
      continue;
    }
    // A positional: the subcommand, check's target, or the command to run.
    const bool first = !cl.check && !cl.activate && !cl.deactivate && cl.command.empty();
    if (first && a == "check") {
      cl.check = true;
      continue;
    }
    if (first && a == "env") {
      cl.activate = true;
      continue;
    }
    if (first && a == "off") {
      cl.deactivate = true;
      continue;
    }
    if (cl.activate || cl.deactivate) {
      return std::string(cl.activate ? "env" : "off") + " takes options only (got '" + a + "')";
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
        "usage: socksify [OPTIONS] [--] COMMAND [ARGS...]   run COMMAND through the proxy\n"
        "       socksify [OPTIONS] check [HOST:PORT]        test the proxies (and a CONNECT)\n"
        "       eval \"$(socksify [OPTIONS] env)\"            socksify every later command of\n"
        "                                                   this shell\n"
        "       eval \"$(socksify off)\"                      undo it\n"
        "       socksify --help | --version\n\n"
        "Example: socksify -x socks5h://127.0.0.1:1080 curl https://example.org/\n"
        "(A program named check, env or off runs after --: socksify -x URI -- env.)\n\n"
        "Runs COMMAND with libsocksify.so preloaded, so that its connections go through a\n"
        "SOCKS5 proxy. Each option sets the SOCKSIFY_* variable shown, which the program and\n"
        "its children inherit; the same settings can come from the environment or from the\n"
        "configuration file (socksify.conf(5)). A failed proxied connection prints one line\n"
        "on standard error (-q: none; -v: every connection).\n\nOptions:\n");
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
  if (cl.deactivate) return socksify::tool::print_deactivation();
  if (!cl.check && !cl.activate && cl.command.empty()) {
    std::fprintf(stderr,
                 "socksify: no command to run; usage: socksify [OPTIONS] COMMAND [ARGS...] "
                 "(see socksify --help)\n");
    return 2;
  }
  // The configuration a socksified program would get, checked here: a bad setting fails with
  // one line that names what the user wrote (the flag, the variable or the file line).
  auto config = socksify::settings::load_config(
      [](const char* name) -> const char* { return std::getenv(name); }, cl.settings);
  if (!config) {
    std::fprintf(stderr, "socksify: %s\n", config.error().message.c_str());
    return 2;
  }
  if (const std::string e = socksify::tool::usable(*config); !e.empty()) {
    std::fprintf(stderr, "socksify: %s\n", e.c_str());
    return 2;
  }
  socksify::tool::warn_about(*config);
  if (cl.check) return socksify::tool::run_check({std::move(*config), cl.target});
  if (const std::string e = socksify::tool::proxies_resolve(*config); !e.empty()) {
    std::fprintf(stderr, "socksify: %s\n", e.c_str());
    return 2;
  }
  if (cl.activate) return socksify::tool::print_activation(cl.settings);
  // The seccomp supervisor: asked for, or (auto) for a program the preload cannot reach
  // because it makes its own system calls (static, Go). setuid and setcap programs are
  // reached by neither: they keep the warning (or --strict's refusal).
  socksify::tool::LaunchRequest launch;
  launch.command = std::move(cl.command);
  launch.settings = std::move(cl.settings);
  launch.strict = cl.strict || config->strict;
  if (socksify::tool::use_supervisor(*config, launch.command)) {
    std::fflush(stdout);
    return socksify::tool::run_supervised(launch, *config);
  }
  std::fflush(stdout);
  return socksify::tool::launch(launch);
}
