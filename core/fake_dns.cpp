#include "fake_dns.hpp"

#include "mutex_lock.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

namespace socksify::core {

namespace {
constexpr std::uint32_t kCapacity = 1u << 21;           // names
constexpr std::uint32_t kBuckets = 1u << 22;            // hash buckets (load factor <= 0.5)
constexpr std::size_t kArena = std::size_t{160} << 20;  // name bytes (avg. 80 at capacity)
constexpr char kMagic[8] = {'S', 'F', 'Y', 'F', 'D', 'N', 'S', '1'};
constexpr std::uint32_t kVersion = 1;

// An entry never changes once it is published (the count and its bucket's head).
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

using Slot = std::atomic<std::uint32_t>;
static_assert(sizeof(Slot) == 4 && Slot::is_always_lock_free);

}  // namespace

struct FakeDns::Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t v4_span;
  std::uint8_t net4[16];
  std::uint8_t net6[16];
  std::uint8_t prefix4;
  std::uint8_t prefix6;
  pthread_mutex_t mu;        // inserts
  Slot count;                // published entries (readers acquire)
  std::uint64_t arena_used;  // under mu
  std::uint32_t v4_used;     // under mu: IPv4 slots handed out (never given back)
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
  off += sizeof(Slot) * kBuckets;
  l.entries = off;
  off += sizeof(Entry) * kCapacity;
  l.v4_owner = off;
  off += sizeof(Slot) * span4;
  l.arena = off;
  off += kArena;
  l.total = off;
  return l;
}

template <class T>
T* at(void* base, std::size_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

// Makes a zeroed mapping a table for these ranges.
void init_header(void* mem, const Cidr& net4, const Cidr& net6, std::uint32_t span) {
  static_assert(sizeof(FakeDns::Header) <= 256);
  auto* h = static_cast<FakeDns::Header*>(mem);
  std::memcpy(h->magic, kMagic, sizeof kMagic);
  h->version = kVersion;
  h->v4_span = span;
  std::memcpy(h->net4, net4.bytes.data(), 16);
  std::memcpy(h->net6, net6.bytes.data(), 16);
  h->prefix4 = static_cast<std::uint8_t>(net4.prefix);
  h->prefix6 = static_cast<std::uint8_t>(net6.prefix);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->mu, &a);
  pthread_mutexattr_destroy(&a);
}

bool same_ranges(const FakeDns::Header* h, const Cidr& net4, const Cidr& net6, std::uint32_t span) {
  return std::memcmp(h->magic, kMagic, sizeof kMagic) == 0 && h->version == kVersion &&
         h->v4_span == span && std::memcmp(h->net4, net4.bytes.data(), 16) == 0 &&
         std::memcmp(h->net6, net6.bytes.data(), 16) == 0 && h->prefix4 == net4.prefix &&
         h->prefix6 == net6.prefix;
}

}  // namespace

FakeDns* FakeDns::create(const Cidr& net4, const Cidr& net6, std::string_view dir,
                         const FileCalls* calls) noexcept {
  auto* self = new (std::nothrow) FakeDns();
  if (self == nullptr) return nullptr;
  self->net4_ = net4;
  self->net6_ = net6;
  self->span4_ = (1u << (32 - net4.prefix)) - 2;  // no network/broadcast address
  self->calls_ = calls;
  if (!dir.empty() && calls != nullptr) {
    // One file per pair of ranges (tables for other ranges give other addresses).
    char v6[40];
    std::snprintf(v6, sizeof v6, "%02x%02x%02x%02x%02x%02x%02x%02x", net6.bytes[0], net6.bytes[1],
                  net6.bytes[2], net6.bytes[3], net6.bytes[4], net6.bytes[5], net6.bytes[6],
                  net6.bytes[7]);
    const int n =
        std::snprintf(self->path_, sizeof self->path_, "%.*s/fakedns-v%u-%u.%u.%u.%u_%u-%s_%u",
                      static_cast<int>(dir.size()), dir.data(), kVersion, net4.bytes[0],
                      net4.bytes[1], net4.bytes[2], net4.bytes[3], net4.prefix, v6, net6.prefix);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof self->path_) self->path_[0] = '\0';
  }
  return self;
}

FakeDns::Header* FakeDns::table() const noexcept {
  Header* h = header_.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  if (where_.load(std::memory_order_acquire) == Where::none) return nullptr;
  h = map();
  Header* expected = nullptr;
  if (h != nullptr && !header_.compare_exchange_strong(expected, h, std::memory_order_acq_rel)) {
    // Another thread mapped it first: use that one (this mapping is of the same table or
    // a private one nobody saw).
    munmap(h, layout(span4_).total);
    return expected;
  }
  return h;
}

FakeDns::~FakeDns() {
  if (Header* h = header_.load(std::memory_order_acquire); h != nullptr) {
    munmap(h, layout(span4_).total);
  }
}

bool FakeDns::private_dir(const char* dir) const noexcept {
  const int d = calls_->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (d < 0) return false;
  struct stat st {};
  const bool ok = calls_->fstat(d, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
                  (st.st_mode & 077) == 0;
  calls_->close(d);
  return ok;
}

FakeDns::Header* FakeDns::map() const noexcept {
  const Layout l = layout(span4_);
  if (path_[0] != '\0') {
    // The state directory may not exist yet (nothing else was remembered): made private.
    // One that another user could write to (made by them in /tmp, say) is not used: they
    // could swap the file under this process.
    char dir[sizeof path_];
    std::memcpy(dir, path_, sizeof dir);
    if (char* slash = std::strrchr(dir, '/'); slash != nullptr && slash != dir) *slash = '\0';
    (void)mkdir(dir, 0700);
    int fd = -1;
    bool missing = false;
    if (!private_dir(dir)) {
      errno = EPERM;
    } else {
      fd = calls_->open(path_, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
      missing = fd < 0 && errno == ENOENT;
    }
    if (missing) {
      // Made whole under a temporary name, then linked into place: no process ever maps a
      // half-made table. Losing the race to another process is fine: its table is used.
      char tmp[sizeof path_ + 32];
      std::snprintf(tmp, sizeof tmp, "%s.%d.tmp", path_, static_cast<int>(getpid()));
      const int t = calls_->open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (t >= 0) {
        void* m = MAP_FAILED;
        if (fchmod(t, 0600) == 0 && ftruncate(t, static_cast<off_t>(l.total)) == 0) {
          m = mmap(nullptr, l.total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, t, 0);
        }
        if (m != MAP_FAILED) {
          init_header(m, net4_, net6_, span4_);
          munmap(m, l.total);
          (void)link(tmp, path_);
        }
        unlink(tmp);
        calls_->close(t);
      }
      fd = calls_->open(path_, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    }
    struct stat st {};
    if (fd < 0 && errno == EPERM) {
      why_ = "the state directory is not private (this user's, mode 0700)";
    } else if (fd < 0) {
      why_ = "cannot open or make the shared table";
    } else if (calls_->fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      why_ = "the shared table is not a regular file";
    } else if (st.st_uid != geteuid()) {
      why_ = "the shared table belongs to another user";
    } else if ((st.st_mode & 07777) != 0600) {
      why_ = "the shared table's mode is not 0600";
    } else if (static_cast<std::size_t>(st.st_size) != l.total) {
      why_ = "the shared table has the wrong size";
    } else {
      void* m = mmap(nullptr, l.total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
      if (m != MAP_FAILED && same_ranges(static_cast<Header*>(m), net4_, net6_, span4_)) {
        calls_->close(fd);
        where_.store(Where::shared, std::memory_order_release);
        return static_cast<Header*>(m);
      }
      if (m != MAP_FAILED) munmap(m, l.total);
      why_ = "the shared table was made for other ranges or another version";
    }
    if (fd >= 0) calls_->close(fd);
  } else {
    why_ = "no private runtime directory";
  }
  void* mem = mmap(nullptr, l.total, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    where_.store(Where::none, std::memory_order_release);
    return nullptr;
  }
  init_header(mem, net4_, net6_, span4_);
  where_.store(Where::private_, std::memory_order_release);
  return static_cast<Header*>(mem);
}

namespace {

// The lower-case key of `name` in `low` (trailing dot removed); empty if unusable.
std::string_view key_of(std::string_view name, char (&low)[256]) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 255) return {};
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    low[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {low, name.size()};
}

// The published entry for `key` in bucket `b`, without a lock.
std::optional<FakeName> find(const Slot* buckets, const Entry* entries, const char* arena,
                             std::uint32_t b, std::string_view key) {
  for (std::uint32_t e = buckets[b].load(std::memory_order_acquire); e != 0;
       e = entries[e - 1].next) {
    const Entry& en = entries[e - 1];
    if (en.name_len == key.size() &&
        std::memcmp(arena + en.name_off, key.data(), key.size()) == 0) {
      return FakeName{e - 1, en.v4};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<FakeName> FakeDns::lookup(std::string_view name) const noexcept {
  char low[256];
  const std::string_view key = key_of(name, low);
  Header* h = table();
  if (key.empty() || h == nullptr) return std::nullopt;
  const Layout l = layout(span4_);
  return find(at<Slot>(h, l.buckets), at<Entry>(h, l.entries), at<char>(h, l.arena),
              hash(key) & (kBuckets - 1), key);
}

std::optional<FakeName> FakeDns::lookup_or_add(std::string_view name) noexcept {
  char low[256];
  const std::string_view key = key_of(name, low);
  Header* h = table();
  if (key.empty() || h == nullptr) return std::nullopt;
  const Layout l = layout(span4_);
  auto* buckets = at<Slot>(h, l.buckets);
  auto* entries = at<Entry>(h, l.entries);
  auto* owner = at<Slot>(h, l.v4_owner);
  char* arena = at<char>(h, l.arena);
  const std::uint32_t b = hash(key) & (kBuckets - 1);
  if (auto found = find(buckets, entries, arena, b, key)) return found;  // the usual case
  MutexLock lock(&h->mu);
  if (auto found = find(buckets, entries, arena, b, key)) return found;  // added meanwhile
  const std::uint32_t idx = h->count.load(std::memory_order_relaxed);
  if (idx >= kCapacity || h->arena_used + key.size() > kArena) return std::nullopt;
  // Everything the entry needs first; then the count (the entry exists), then the bucket's
  // head (it can be found). A process killed before the count leaves nothing; killed
  // after it, an entry nobody can reach by name (and whose addresses nobody was given).
  Entry& en = entries[idx];
  en.name_off = static_cast<std::uint32_t>(h->arena_used);
  en.name_len = static_cast<std::uint16_t>(key.size());
  std::memcpy(arena + en.name_off, key.data(), key.size());
  h->arena_used += key.size();
  en.v4 = 0;
  if (h->v4_used < span4_) {
    en.v4 = ++h->v4_used;
    owner[en.v4 - 1].store(idx + 1, std::memory_order_release);
  }
  en.next = buckets[b].load(std::memory_order_relaxed);
  h->count.store(idx + 1, std::memory_order_release);
  buckets[b].store(idx + 1, std::memory_order_release);
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
  Header* h = table();
  if (h == nullptr) return false;
  const Layout l = layout(span4_);
  const auto* entries = at<Entry>(h, l.entries);
  const auto* owner = at<Slot>(h, l.v4_owner);
  const char* arena = at<char>(h, l.arena);
  const std::uint32_t count = h->count.load(std::memory_order_acquire);
  std::uint32_t idx = 0;
  if (family == AF_INET) {
    std::uint8_t base[4];
    address4(FakeName{0, 1}, base);  // the first usable address
    const std::uint32_t first = (std::uint32_t{base[0]} << 24) | (std::uint32_t{base[1]} << 16) |
                                (std::uint32_t{base[2]} << 8) | base[3];
    const std::uint32_t a = (std::uint32_t{ip[0]} << 24) | (std::uint32_t{ip[1]} << 16) |
                            (std::uint32_t{ip[2]} << 8) | ip[3];
    if (a < first || a - first >= span4_) return false;
    const std::uint32_t o = owner[a - first].load(std::memory_order_acquire);
    if (o == 0) return false;
    idx = o - 1;
  } else {
    for (int i = 8; i < 12; ++i) {
      if (ip[i] != 0) return false;
    }
    const std::uint32_t v = (std::uint32_t{ip[12]} << 24) | (std::uint32_t{ip[13]} << 16) |
                            (std::uint32_t{ip[14]} << 8) | ip[15];
    if (v == 0 || v > count) return false;
    idx = v - 1;
  }
  // (An owner slot is stored before the count: an entry whose inserter died between the two
  // is not handed out.)
  if (idx >= count) return false;
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
  Header* h = table();
  return h == nullptr ? 0 : h->count.load(std::memory_order_acquire);
}

}  // namespace socksify::core
