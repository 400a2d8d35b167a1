#include "fake_dns.hpp"

#include "mutex_lock.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace socksify::core {

namespace {
constexpr std::uint32_t kCapacity = 1u << 21;           // names
constexpr std::uint32_t kBuckets = 1u << 22;            // hash buckets (load factor <= 0.5)
constexpr std::size_t kArena = std::size_t{160} << 20;  // name bytes (avg. 80 at capacity)

struct Entry {
  std::uint32_t next;      // next entry index + 1 in the bucket chain, 0 = end
  std::uint32_t name_off;  // into the arena
  std::uint16_t name_len;
  std::uint32_t v4;  // 1-based IPv4 slot, 0 = none (the range was full)
};

std::uint32_t hash(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
  return h;
}

}  // namespace

struct FakeDns::Header {
  pthread_mutex_t mu;
  std::uint32_t count;
  std::uint64_t arena_used;
  std::uint32_t v4_span;
  std::uint32_t v4_used;  // IPv4 slots handed out (never given back)
  // followed by: buckets[kBuckets], entries[kCapacity], v4_owner[v4 span], arena[kArena]
};

namespace {

struct Layout {
  std::size_t buckets, entries, v4_owner, arena, total;
};

Layout layout(std::uint32_t span4) {
  Layout l{};
  std::size_t off = 256;  // header
  l.buckets = off;
  off += sizeof(std::uint32_t) * kBuckets;
  l.entries = off;
  off += sizeof(Entry) * kCapacity;
  l.v4_owner = off;
  off += sizeof(std::uint32_t) * span4;
  l.arena = off;
  off += kArena;
  l.total = off;
  return l;
}

template <class T>
T* at(void* base, std::size_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

}  // namespace

FakeDns* FakeDns::create(const Cidr& net4, const Cidr& net6) noexcept {
  const std::uint32_t span = (1u << (32 - net4.prefix)) - 2;  // no network/broadcast address
  const Layout l = layout(span);
  void* mem = mmap(nullptr, l.total, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  static_assert(sizeof(FakeDns::Header) <= 256);
  auto* h = static_cast<Header*>(mem);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->mu, &a);
  pthread_mutexattr_destroy(&a);
  h->v4_span = span;
  auto* self = new (std::nothrow) FakeDns();
  if (self == nullptr) {
    munmap(mem, l.total);
    return nullptr;
  }
  self->header_ = h;
  self->net4_ = net4;
  self->net6_ = net6;
  self->span4_ = span;
  return self;
}

std::optional<FakeName> FakeDns::lookup_or_add(std::string_view name) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 255) return std::nullopt;
  char low[256];
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    low[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view key(low, name.size());
  const Layout l = layout(span4_);
  auto* buckets = at<std::uint32_t>(header_, l.buckets);
  auto* entries = at<Entry>(header_, l.entries);
  auto* owner = at<std::uint32_t>(header_, l.v4_owner);
  char* arena = at<char>(header_, l.arena);
  const std::uint32_t b = hash(key) & (kBuckets - 1);
  MutexLock lock(&header_->mu);
  for (std::uint32_t e = buckets[b]; e != 0; e = entries[e - 1].next) {
    const Entry& en = entries[e - 1];
    if (en.name_len == key.size() &&
        std::memcmp(arena + en.name_off, key.data(), key.size()) == 0) {
      return FakeName{e - 1, en.v4};
    }
  }
  if (header_->count >= kCapacity || header_->arena_used + key.size() > kArena) return std::nullopt;
  const std::uint32_t idx = header_->count;
  Entry& en = entries[idx];
  en.name_off = static_cast<std::uint32_t>(header_->arena_used);
  en.name_len = static_cast<std::uint16_t>(key.size());
  en.v4 = 0;
  if (header_->v4_used < span4_) {
    en.v4 = ++header_->v4_used;
    owner[en.v4 - 1] = idx + 1;
  }
  std::memcpy(arena + en.name_off, key.data(), key.size());
  header_->arena_used += key.size();
  en.next = buckets[b];
  buckets[b] = idx + 1;
  header_->count = idx + 1;
  return FakeName{idx, en.v4};
}

void FakeDns::address4(FakeName n, std::uint8_t* out) const noexcept {
  std::uint32_t base = (std::uint32_t{net4_.bytes[0]} << 24) |
                       (std::uint32_t{net4_.bytes[1]} << 16) |
                       (std::uint32_t{net4_.bytes[2]} << 8) | net4_.bytes[3];
  base &= net4_.prefix == 0 ? 0u : ~((1u << (32 - net4_.prefix)) - 1);
  const std::uint32_t a = base + n.v4;  // slot 1 is the first address after the network
  out[0] = static_cast<std::uint8_t>(a >> 24);
  out[1] = static_cast<std::uint8_t>(a >> 16);
  out[2] = static_cast<std::uint8_t>(a >> 8);
  out[3] = static_cast<std::uint8_t>(a);
}

void FakeDns::address6(FakeName n, std::uint8_t* out) const noexcept {
  std::memcpy(out, net6_.bytes.data(), 16);
  std::memset(out + 8, 0, 8);  // prefixes are at most /64
  const std::uint64_t v = std::uint64_t{n.index} + 1;
  for (int i = 0; i < 8; ++i) out[15 - i] = static_cast<std::uint8_t>(v >> (8 * i));
}

bool FakeDns::in_range(int family, const std::uint8_t* ip) const noexcept {
  return (family == AF_INET && net4_.contains(AF_INET, ip)) ||
         (family == AF_INET6 && net6_.contains(AF_INET6, ip));
}

bool FakeDns::name_of(int family, const std::uint8_t* ip, char* out,
                      std::size_t out_len) const noexcept {
  if (!in_range(family, ip)) return false;
  const Layout l = layout(span4_);
  const auto* entries = at<Entry>(header_, l.entries);
  const auto* owner = at<std::uint32_t>(header_, l.v4_owner);
  const char* arena = at<char>(header_, l.arena);
  MutexLock lock(&header_->mu);
  std::uint32_t idx = 0;
  if (family == AF_INET) {
    std::uint8_t base[4];
    address4(FakeName{0, 1}, base);  // the first usable address
    const std::uint32_t first = (std::uint32_t{base[0]} << 24) | (std::uint32_t{base[1]} << 16) |
                                (std::uint32_t{base[2]} << 8) | base[3];
    const std::uint32_t a = (std::uint32_t{ip[0]} << 24) | (std::uint32_t{ip[1]} << 16) |
                            (std::uint32_t{ip[2]} << 8) | ip[3];
    if (a < first || a - first >= span4_) return false;
    const std::uint32_t o = owner[a - first];
    if (o == 0) return false;
    idx = o - 1;
  } else {
    for (int i = 8; i < 12; ++i) {
      if (ip[i] != 0) return false;
    }
    const std::uint32_t v = (std::uint32_t{ip[12]} << 24) | (std::uint32_t{ip[13]} << 16) |
                            (std::uint32_t{ip[14]} << 8) | ip[15];
    if (v == 0 || v > header_->count) return false;
    idx = v - 1;
  }
  if (idx >= header_->count) return false;
  const Entry& en = entries[idx];
  if (out_len <= en.name_len) return false;
  std::memcpy(out, arena + en.name_off, en.name_len);
  out[en.name_len] = '\0';
  return true;
}

std::uint32_t FakeDns::capacity() noexcept {
  return kCapacity;
}

std::uint32_t FakeDns::size() const noexcept {
  MutexLock lock(&header_->mu);
  return header_->count;
}

}  // namespace socksify::core
