#include "config_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// Header-only, without exceptions: nothing extra to load into the host process, and errors
// come back as values.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#define TOML_FLOAT_CHARCONV 1
#define TOML_INT_CHARCONV 1
#include <toml++/toml.h>

namespace socksify::shim {
namespace {

using socks5::unexpected;

// Reads a whole file with plain POSIX calls: <fstream> would drag the iostream and locale
// machinery (static constructors, relocations) into every socksified process.
bool slurp(const std::string& path, std::string& out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return n == 0;
}

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

ConfigError at(const std::string& path, const toml::source_region& where, const std::string& what) {
  return ConfigError{path + ":" + std::to_string(where.begin.line) + ":" +
                     std::to_string(where.begin.column) + ": " + what};
}

// Keys of the file, the variable each one sets, and whether it holds a list.
struct Key {
  const char* name;
  const char* variable;
  bool list;
};
constexpr Key kKeys[] = {
    {"proxies", "SOCKSIFY_PROXY", true},
    {"proxy", "SOCKSIFY_PROXY", false},
    {"dns", "SOCKSIFY_DNS", false},
    {"rules", "SOCKSIFY_RULES", true},
    {"fake_net4", "SOCKSIFY_FAKE_NET4", false},
    {"fake_net6", "SOCKSIFY_FAKE_NET6", false},
    {"log", "SOCKSIFY_LOG", false},
    {"log_file", "SOCKSIFY_LOG_FILE", false},
    {"timeout_ms", "SOCKSIFY_TIMEOUT", false},
    {"pipelining", "SOCKSIFY_PIPELINING", false},
    {"password_file", "", false},
};

}  // namespace

std::optional<std::string> find_config_file(const EnvLookup& env) {
  if (const char* c = env("SOCKSIFY_CONF"); c != nullptr && *c != '\0') return std::string(c);
  std::string xdg;
  if (const char* x = env("XDG_CONFIG_HOME"); x != nullptr && *x == '/') {
    xdg = x;
  } else if (const char* h = env("HOME"); h != nullptr && *h == '/') {
    xdg = std::string(h) + "/.config";
  }
  if (!xdg.empty() && exists(xdg + "/socksify/socksify.conf"))
    return xdg + "/socksify/socksify.conf";
  if (exists("/etc/socksify.conf")) return std::string("/etc/socksify.conf");
  return std::nullopt;
}

socks5::Result<FileSettings, ConfigError> read_config_file(const std::string& path) {
  std::string text;
  if (!slurp(path, text)) {
    return unexpected(ConfigError{path + ": cannot read the configuration file"});
  }
  toml::parse_result parsed = toml::parse(text, path);
  if (!parsed) {
    const auto& e = parsed.error();
    return unexpected(at(path, e.source(), std::string(e.description())));
  }
  const toml::table& root = parsed.table();
  FileSettings out;
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    const Key* spec = nullptr;
    for (const auto& candidate : kKeys) {
      if (key == candidate.name) spec = &candidate;
    }
    if (spec == nullptr) return unexpected(at(path, node.source(), "unknown key '" + key + "'"));
    std::string value;
    if (spec->list) {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) {
        return unexpected(at(path, node.source(), "'" + key + "' must be a list of strings"));
      }
      for (const auto& item : *arr) {
        const auto* s = item.as_string();
        if (s == nullptr) {
          return unexpected(at(path, item.source(), "'" + key + "' must be a list of strings"));
        }
        if (!value.empty()) value += key == "rules" ? "\n" : " ";
        value += s->get();
      }
    } else if (key == "timeout_ms") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > 3600000) {
        return unexpected(
            at(path, node.source(), "'timeout_ms' must be an integer from 1 to 3600000"));
      }
      value = std::to_string(i->get());
    } else {
      const auto* s = node.as_string();
      if (s == nullptr)
        return unexpected(at(path, node.source(), "'" + key + "' must be a string"));
      value = s->get();
    }
    if (key == "password_file") {
      std::string line;
      if (!slurp(value, line) || line.empty()) {
        return unexpected(at(path, node.source(), "cannot read password_file '" + value + "'"));
      }
      line = line.substr(0, line.find_first_of("\r\n"));
      out["SOCKSIFY_PASSWORD"] = line;
      continue;
    }
    // The settings are validated as a whole by parse_config; remember where each came from.
    out[spec->variable] = value;
    out[std::string(spec->variable) + "@"] = path + ":" + std::to_string(node.source().begin.line);
  }
  return out;
}

socks5::Result<Config, ConfigError> load_config(const EnvLookup& env) {
  FileSettings file;
  const auto path = find_config_file(env);
  if (path) {
    auto r = read_config_file(*path);
    if (!r) return unexpected(r.error());
    file = std::move(*r);
  }
  auto overlay = [&](const char* name) -> const char* {
    if (const char* v = env(name); v != nullptr && *v != '\0') return v;
    auto it = file.find(name);
    return it != file.end() ? it->second.c_str() : nullptr;
  };
  auto c = parse_config(overlay);
  if (!c && path) {
    // Point at the file line that set the offending value, when it came from the file.
    std::string msg = c.error().message;
    for (const auto& [var, where] : file) {
      if (where.empty() || var.back() == '@') continue;
      auto loc = file.find(var + "@");
      if (loc != file.end() && msg.rfind(var, 0) == 0 && env(var.c_str()) == nullptr) {
        msg = loc->second + ": " + msg;
        break;
      }
    }
    return unexpected(ConfigError{msg});
  }
  return c;
}

}  // namespace socksify::shim
