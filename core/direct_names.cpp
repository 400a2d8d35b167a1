#include "direct_names.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cstring>

namespace socksify::core {
namespace {

// Each slot holds a whole IPv4 address or a 64-bit digest of an IPv6 one, tagged by family in
// the top bits; 0 = empty. 4096 slots, overwritten round-robin when full.
constexpr std::size_t kSlots = 4096;
std::atomic<std::uint64_t> g_slots[kSlots];
std::atomic<std::uint32_t> g_next{0};

std::uint64_t key(int family, const std::uint8_t* ip) {
  if (family == AF_INET) {
    std::uint32_t v = 0;
    std::memcpy(&v, ip, 4);
    return (std::uint64_t{1} << 62) | v;
  }
  std::uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < 16; ++i) h = (h ^ ip[i]) * 1099511628211ULL;
  return (std::uint64_t{2} << 62) | (h >> 2);
}

}  // namespace

void remember_direct(int family, const std::uint8_t* ip) noexcept {
  if (is_direct_by_name(family, ip)) return;
  const std::uint32_t i = g_next.fetch_add(1, std::memory_order_relaxed);
  g_slots[i % kSlots].store(key(family, ip), std::memory_order_relaxed);
}

bool is_direct_by_name(int family, const std::uint8_t* ip) noexcept {
  if (g_next.load(std::memory_order_relaxed) == 0) return false;
  const std::uint64_t k = key(family, ip);
  for (const auto& s : g_slots) {
    if (s.load(std::memory_order_relaxed) == k) return true;
  }
  return false;
}

}  // namespace socksify::core
