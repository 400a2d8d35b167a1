#include "launch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "config.hpp"
#include "config_file.hpp"
#include "options.hpp"
#include "program.hpp"

namespace socksify::tool {
namespace {}  // namespace

std::string resolve_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  const std::string_view p(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    const std::string_view dir = p.substr(start, end - start);
    const std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::string preload_list(const std::string& shim, const char* old) {
  // Sanitizer runtimes must stay first (they refuse to load otherwise); then us; then the rest.
  std::string front, back;
  std::string list = old != nullptr ? old : "";
  std::size_t start = 0;
  while (start < list.size()) {
    auto end = list.find_first_of(": ", start);
    if (end == std::string::npos) end = list.size();
    const std::string entry = list.substr(start, end - start);
    start = end + 1;
    if (entry.empty() || entry == shim) continue;
    const bool sanitizer = entry.find("libasan") != std::string::npos ||
                           entry.find("libtsan") != std::string::npos ||
                           entry.find("clang_rt.") != std::string::npos;
    std::string& target = sanitizer ? front : back;
    if (!target.empty()) target += ":";
    target += entry;
  }
  std::string out = front;
  if (!out.empty()) out += ":";
  out += shim;
  if (!back.empty()) out += ":" + back;
  return out;
}

std::string unreachable_reason(const std::string& path) {
  return settings::reach_text(settings::program_reach(path.c_str()));
}

std::string self_path() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  return n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string();
}

std::string find_shim() {
  if (const char* s = std::getenv("SOCKSIFY_SHIM"); s != nullptr && *s != '\0') {
    char buf[PATH_MAX];
    return realpath(s, buf) != nullptr ? std::string(buf) : "";
  }
  // /proc/self/exe is already absolute and canonical: only ".." needs folding, lexically, so
  // start-up costs one access() per candidate instead of a readlink() per path component.
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "";
  std::string dir(exe, static_cast<std::size_t>(n));
  dir.resize(dir.rfind('/'));
  // Installed: where this build installs the library, relative to where it installs us.
  std::string_view rel = SOCKSIFY_SHIM_FROM_BIN;
  std::string base = dir;
  while (rel.rfind("../", 0) == 0) {
    rel.remove_prefix(3);
    base.resize(base.rfind('/'));
  }
  std::string candidate = base + "/" + std::string(rel);
  if (access(candidate.c_str(), R_OK) == 0) return candidate;
  // The build tree: tools/socksify next to shim/libsocksify.so.
  candidate = dir.substr(0, dir.rfind('/')) + "/shim/libsocksify.so";
  if (access(candidate.c_str(), R_OK) == 0) return candidate;
  return "";
}

std::string usable(const settings::Config& config) {
  if (!config.log_file.empty()) {
    // Lines a program cannot write would be lost without a word: say so now.
    const int fd = open(config.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return "cannot write the log file " + config.log_file + ": " + std::strerror(errno);
    }
    close(fd);
  }
  return "";
}

std::vector<std::pair<std::string, std::string>> exported(const settings::Settings& cli) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, s] : cli) {
    if (name == "SOCKSIFY_PASSWORD" && s.origin.rfind(settings::kPasswordFileFlag, 0) == 0) {
      // --password-file: the path, never the password.
      out.emplace_back(settings::kPasswordFileEnv,
                       s.origin.substr(std::string_view(settings::kPasswordFileFlag).size()));
    } else {
      out.emplace_back(name, s.value);
    }
  }
  return out;
}

std::string proxies_resolve(const settings::Config& config) {
  for (const auto& p : config.proxies) {
    if (!p.unix_path.empty()) continue;
    unsigned char buf[16];
    if (inet_pton(AF_INET, p.host.c_str(), buf) == 1 ||
        inet_pton(AF_INET6, p.host.c_str(), buf) == 1) {
      continue;
    }
    // Only a definite "no such name" stops the program: a resolver that is down for now
    // (EAI_AGAIN) may be back by the time the program connects.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(p.host.c_str(), nullptr, &hints, &res);
    if (res != nullptr) freeaddrinfo(res);
    if (rc == EAI_NONAME
#ifdef EAI_NODATA
        || rc == EAI_NODATA
#endif
    ) {
      return "proxy " + p.to_string() + ": its host name '" + p.host + "' does not resolve (" +
             gai_strerror(rc) + ")";
    }
  }
  return "";
}

void warn_about(const settings::Config& config) {
  if (config.log_level == settings::LogLevel::quiet) return;
  for (const auto& p : config.proxies) {
    if (p.user && !p.password) {
      std::fprintf(stderr,
                   "socksify: warning: %s names user '%s' but no password; set "
                   "SOCKSIFY_PASSWORD or use --password-file (an empty password is sent)\n",
                   p.to_string().c_str(), p.user->c_str());
    }
  }
}

namespace {

// 'text' for a POSIX shell.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

bool is_shim_entry(std::string_view entry) {
  const auto slash = entry.rfind('/');
  return entry.substr(slash == std::string_view::npos ? 0 : slash + 1) == "libsocksify.so";
}

}  // namespace

// The lines that make the shell itself socksified (POSIX sh: bash, zsh, dash...). A shell
// that evaluates `socksify env` was started without the library, so its own exec of a static
// or Go program would go unseen: an interactive one restarts itself once (the same program,
// a login shell again if it was one; its environment, with the library preloaded now, and
// its rc files run again); a script gets a warning. A shell that cannot load the library
// (setuid, or the library missing) is restarted once only.
constexpr const char* kRestartShell = R"sh(if grep -qs /libsocksify.so /proc/$$/maps; then :
elif [ "${SOCKSIFY_RESTARTED-}" = "$$" ]; then
  echo "socksify: warning: this shell cannot load libsocksify.so: static and Go programs it starts itself go direct" >&2
else
  case $- in
    *i*) export SOCKSIFY_RESTARTED=$$
      socksify_shell=$(readlink /proc/$$/exe)
      if [ -x "$socksify_shell" ]; then
        case $0 in -*) exec "$socksify_shell" -l ;; *) exec "$socksify_shell" ;; esac
      fi
      echo "socksify: warning: cannot restart this shell ($socksify_shell): static and Go programs it starts itself go direct" >&2
      unset socksify_shell ;;
    *) [ "${SOCKSIFY_LOG-}" = quiet ] || echo "socksify: warning: this shell itself is not socksified (socksify env in a script): static and Go programs it starts itself go direct; run the script as socksify ... sh SCRIPT instead" >&2 ;;
  esac
fi
)sh";

int print_activation(const settings::Settings& cli) {
  const std::string shim_path = find_shim();
  if (shim_path.empty()) {
    std::fprintf(stderr, "socksify: cannot find libsocksify.so (set SOCKSIFY_SHIM)\n");
    return 2;
  }
  std::printf(
      "# socksify: every later command of this shell goes through the proxy; "
      "eval \"$(socksify off)\" undoes it\n");
  std::printf("export LD_PRELOAD=%s\n",
              shell_quote(preload_list(shim_path, std::getenv("LD_PRELOAD"))).c_str());
  for (const auto& [name, value] : exported(cli)) {
    std::printf("export %s=%s\n", name.c_str(), shell_quote(value).c_str());
  }
  // Static and Go programs go to the supervisor, run by this command (as the wrapper does).
  if (const std::string self = self_path(); !self.empty()) {
    std::printf("export SOCKSIFY_WRAPPER=%s\n", shell_quote(self).c_str());
  }
  std::printf("unset SOCKSIFY_OFF\n%s", kRestartShell);
  return 0;
}

int print_deactivation() {
  std::string rest;
  const std::string_view old =
      std::getenv("LD_PRELOAD") != nullptr ? std::getenv("LD_PRELOAD") : "";
  std::size_t start = 0;
  while (start <= old.size()) {
    auto end = old.find_first_of(": ", start);
    if (end == std::string_view::npos) end = old.size();
    const std::string_view entry = old.substr(start, end - start);
    start = end + 1;
    if (entry.empty() || is_shim_entry(entry)) continue;
    if (!rest.empty()) rest += ":";
    rest.append(entry);
  }
  if (rest.empty()) {
    std::printf("unset LD_PRELOAD\n");
  } else {
    std::printf("export LD_PRELOAD=%s\n", shell_quote(rest).c_str());
  }
  std::string names;
  for (const auto& o : settings::options()) {
    if (o.env.empty()) continue;
    names += " ";
    names.append(o.env);
  }
  std::printf("unset%s SOCKSIFY_INHERIT SOCKSIFY_WRAPPER SOCKSIFY_RESTARTED\n", names.c_str());
  // The shell may have the library loaded (it was restarted with it): what it starts from now
  // on is not socksified, static and Go programs included, and gets no warning.
  std::printf("export SOCKSIFY_OFF=1\n");
  return 0;
}

int launch(const LaunchRequest& request) {
  const std::string shim_path = find_shim();
  if (shim_path.empty()) {
    std::fprintf(stderr, "socksify: cannot find libsocksify.so (set SOCKSIFY_SHIM)\n");
    return 2;
  }
  const std::string program = resolve_in_path(request.command.front());
  if (program.empty()) {
    std::fprintf(stderr, "socksify: %s: command not found\n", request.command.front().c_str());
    return 127;
  }
  if (const std::string why = unreachable_reason(program); !why.empty()) {
    if (request.strict) {
      std::fprintf(stderr, "socksify: refusing to run %s: it %s (--strict)\n", program.c_str(),
                   why.c_str());
      return 126;
    }
    std::fprintf(stderr, "socksify: warning: %s %s\n", program.c_str(), why.c_str());
  }
  for (const auto& [name, value] : exported(request.settings)) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  unsetenv("SOCKSIFY_OFF");  // (left by `socksify off` in the shell this runs from)
  setenv("LD_PRELOAD", preload_list(shim_path, std::getenv("LD_PRELOAD")).c_str(), 1);
  // So that the library can run a static or Go program the socksified one starts under the
  // supervisor (this command, --mode supervisor).
  if (const std::string self = self_path(); !self.empty()) {
    setenv("SOCKSIFY_WRAPPER", self.c_str(), 1);
  }
  std::vector<char*> argv;
  argv.reserve(request.command.size() + 1);
  for (const auto& a : request.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  std::fprintf(stderr, "socksify: cannot run %s: %s\n", program.c_str(), std::strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

}  // namespace socksify::tool
