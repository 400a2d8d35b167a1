#include "config_file.hpp"

#include "options.hpp"
#include "proxychains.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

// Header-only, without exceptions: nothing extra to load into the host process, and errors
// come back as values.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#define TOML_FLOAT_CHARCONV 1
#define TOML_INT_CHARCONV 1
#include <toml++/toml.h>

namespace socksify::settings {
namespace {

using socks5::unexpected;

// Reads a whole file with stdio: <fstream> would drag the iostream and locale machinery
// (static constructors, relocations) into every socksified process, and stdio closes its
// descriptor with the C library's internal close, so the preloaded library's close hook is
// not involved.
// Reads a whole file; on failure errno says why.
bool slurp(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool ok = std::ferror(f) == 0;
  const int saved = errno;
  std::fclose(f);
  errno = ok ? 0 : (saved != 0 ? saved : EIO);
  return ok;
}

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

ConfigError at(const std::string& path, const toml::source_region& where, const std::string& what) {
  return ConfigError{path + ":" + std::to_string(where.begin.line) + ":" +
                     std::to_string(where.begin.column) + ": " + what};
}

}  // namespace

std::optional<std::string> find_config_file(const EnvLookup& env, const Settings& layered,
                                            const std::string& system_file) {
  if (auto it = layered.find("SOCKSIFY_CONF"); it != layered.end() && !it->second.value.empty()) {
    return it->second.value;
  }
  if (const char* c = env("SOCKSIFY_CONF"); c != nullptr && *c != '\0') return std::string(c);
  std::string xdg;
  if (const char* x = env("XDG_CONFIG_HOME"); x != nullptr && *x == '/') {
    xdg = x;
  } else if (const char* h = env("HOME"); h != nullptr && *h == '/') {
    xdg = std::string(h) + "/.config";
  }
  if (!xdg.empty() && exists(xdg + "/socksify/socksify.conf"))
    return xdg + "/socksify/socksify.conf";
  if (exists(system_file)) return system_file;
  return std::nullopt;
}

socks5::Result<Settings, ConfigError> read_config_file(const std::string& path) {
  std::string text;
  if (!slurp(path, text)) {
    return unexpected(
        ConfigError{path + ": cannot read the configuration file: " + std::strerror(errno)});
  }
  // A user coming from proxychains4 points -c at its file: read that format too.
  if (looks_like_proxychains(text)) return read_proxychains(path, text);
  toml::parse_result parsed = toml::parse(text, path);
  if (!parsed) {
    const auto& e = parsed.error();
    return unexpected(at(path, e.source(), std::string(e.description())));
  }
  const toml::table& root = parsed.table();
  Settings out;
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    const Option* spec = option_by_key(key);
    if (spec == nullptr || spec->env.empty()) {
      return unexpected(at(path, node.source(), "unknown key '" + key + "'"));
    }
    std::string value;
    if (key == spec->list_key) {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) {
        return unexpected(at(path, node.source(), "'" + key + "' must be a list of strings"));
      }
      for (const auto& item : *arr) {
        const auto* s = item.as_string();
        if (s == nullptr) {
          return unexpected(at(path, item.source(), "'" + key + "' must be a list of strings"));
        }
        if (!value.empty()) value += spec->join;
        value += s->get();
      }
    } else if (spec->kind == ValueKind::integer) {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < spec->min || i->get() > spec->max) {
        return unexpected(at(path, node.source(),
                             "'" + key + "' must be an integer from " + std::to_string(spec->min) +
                                 " to " + std::to_string(spec->max)));
      }
      value = std::to_string(i->get());
    } else if (spec->kind == ValueKind::flag) {
      const auto* b = node.as_boolean();
      if (b == nullptr)
        return unexpected(at(path, node.source(), "'" + key + "' must be true or false"));
      value = b->get() ? "1" : "0";
    } else {
      const auto* s = node.as_string();
      if (s == nullptr)
        return unexpected(at(path, node.source(), "'" + key + "' must be a string"));
      value = s->get();
    }
    const std::string origin = path + ":" + std::to_string(node.source().begin.line) + ": " + key;
    // One setting under two keys (proxy and proxies): an error naming both lines, never one
    // of them silently.
    if (const auto seen = out.find(std::string(spec->env)); seen != out.end()) {
      const std::string other = seen->second.origin.substr(path.size() + 1);  // "LINE: key"
      const std::size_t colon = other.find(": ");
      return unexpected(at(path, node.source(),
                           "'" + key + "' and '" + other.substr(colon + 2) + "' (line " +
                               other.substr(0, colon) + ") are both set: keep one ('" +
                               std::string(spec->list_key) + "' takes a list)"));
    }
    if (spec->kind == ValueKind::secret) {
      // The key names a file whose first line is the secret: the secret itself never sits in
      // the configuration file.
      std::string line;
      if (!slurp(value, line) || line.empty()) {
        return unexpected(at(path, node.source(), "cannot read " + key + " '" + value + "'"));
      }
      out[std::string(spec->env)] = Setting{line.substr(0, line.find_first_of("\r\n")), origin};
      continue;
    }
    out[std::string(spec->env)] = Setting{value, origin};
  }
  return out;
}

socks5::Result<Settings, ConfigError> load_settings(const EnvLookup& env,
                                                    const Settings& command_line) {
  Settings all;
  if (const auto path = find_config_file(env, command_line)) {
    auto r = read_config_file(*path);
    if (!r) return unexpected(r.error());
    all = std::move(*r);
  }
  overlay(all, from_environment(env));
  overlay(all, command_line);
  return all;
}

socks5::Result<Config, ConfigError> load_config(const EnvLookup& env,
                                                const Settings& command_line) {
  auto s = load_settings(env, command_line);
  if (!s) return unexpected(s.error());
  return parse_config(*s);
}

}  // namespace socksify::settings
