#include "state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace socksify::settings {
namespace {

constexpr time_t kFreshFor = 24 * 60 * 60;  // seconds an entry is believed

// The directory exists (or was just made), is a directory owned by us and private.
bool usable_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return false;
  return S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 077) == 0;
}

const char* verdict_word(socks5::PipeliningVerdict v) {
  return v == socks5::PipeliningVerdict::drops ? "drops" : "works";
}

}  // namespace

std::string state_dir(const EnvLookup& env) {
  if (const char* x = env("XDG_RUNTIME_DIR"); x != nullptr && *x == '/') {
    // Another user's runtime directory (sudo -u keeps the caller's variable) is not ours:
    // then the fallback, as without one.
    struct stat st {};
    if (stat(x, &st) != 0 || st.st_uid == getuid()) return std::string(x) + "/socksify";
  }
  return "/tmp/socksify-" + std::to_string(getuid());
}

std::string pipelining_file(const std::string& dir, const socks5::ProxyUri& proxy) {
  // Host names and addresses only hold [A-Za-z0-9.:-]; anything else becomes '_' so that the
  // name can never leave the directory.
  std::string name = "pipelining-";
  for (char c : proxy.host) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == ':';
    name.push_back(plain ? c : '_');
  }
  return dir + "/" + name + "-" + std::to_string(proxy.port);
}

socks5::PipeliningVerdict recall_pipelining(const std::string& dir,
                                            const socks5::ProxyUri& proxy) noexcept {
  if (dir.empty()) return socks5::PipeliningVerdict::unknown;
  const std::string path = pipelining_file(dir, proxy);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return socks5::PipeliningVerdict::unknown;
  struct stat st {};
  char buf[8] = {};
  const bool fresh = fstat(fd, &st) == 0 && st.st_uid == getuid() &&
                     st.st_mtime + kFreshFor > time(nullptr) && st.st_mtime <= time(nullptr) + 60;
  const ssize_t n = fresh ? read(fd, buf, 5) : 0;
  close(fd);
  if (n != 5) return socks5::PipeliningVerdict::unknown;
  const std::string word(buf, 5);
  if (word == "drops") return socks5::PipeliningVerdict::drops;
  if (word == "works") return socks5::PipeliningVerdict::works;
  return socks5::PipeliningVerdict::unknown;
}

bool record_pipelining(const std::string& dir, const socks5::ProxyUri& proxy,
                       socks5::PipeliningVerdict verdict) noexcept {
  if (dir.empty() || verdict == socks5::PipeliningVerdict::unknown || !usable_dir(dir))
    return false;
  static std::atomic<unsigned> counter{0};
  const std::string path = pipelining_file(dir, proxy);
  const std::string tmp = dir + "/.tmp-" + std::to_string(getpid()) + "-" +
                          std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  const std::string text = std::string(verdict_word(verdict)) + "\n# socksify: what proxy " +
                           proxy.host + ":" + std::to_string(proxy.port) +
                           " does with messages sent together with the greeting (pipelining).\n"
                           "# Believed for a day; delete this file to test the proxy again.\n";
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace socksify::settings
