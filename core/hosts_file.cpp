#include "hosts_file.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace socksify::core {
namespace {

bool space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

bool same_name(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  if (!b.empty() && b.back() == '.') b.remove_suffix(1);
  if (a.size() != b.size() || a.empty()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The next field of `line` from `pos` (advanced past it); empty at the end.
std::string_view field(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && space(line[pos])) ++pos;
  const std::size_t start = pos;
  while (pos < line.size() && !space(line[pos])) ++pos;
  return line.substr(start, pos - start);
}

}  // namespace

bool hosts_lookup(std::string_view text, std::string_view name, HostsAnswer& out) noexcept {
  out = HostsAnswer{};
  if (name.empty() || name.size() > 255) return false;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::size_t pos = 0;
    const std::string_view addr = field(line, pos);
    if (addr.empty() || addr.size() >= 64) continue;
    bool listed = false;
    for (std::string_view n = field(line, pos); !n.empty(); n = field(line, pos)) {
      if (same_name(n, name)) {
        listed = true;
        break;
      }
    }
    if (!listed) continue;
    char buf[64];
    std::memcpy(buf, addr.data(), addr.size());
    buf[addr.size()] = '\0';
    std::uint8_t ip[16];
    if (inet_pton(AF_INET, buf, ip) == 1) {
      if (out.count4 < HostsAnswer::kMax) std::memcpy(out.v4[out.count4++].data(), ip, 4);
    } else if (inet_pton(AF_INET6, buf, ip) == 1) {
      if (out.count6 < HostsAnswer::kMax) std::memcpy(out.v6[out.count6++].data(), ip, 16);
    }
  }
  return !out.empty();
}

}  // namespace socksify::core
