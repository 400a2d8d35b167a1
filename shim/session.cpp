#include "session.hpp"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace socksify::shim {

void (*g_release_pending)(PendingConnect*) noexcept = nullptr;
void (*g_release_association)(Association*) noexcept = nullptr;
void (*g_release_binding)(Binding*) noexcept = nullptr;

// LeakSanitizer scans the heap, stacks and globals, not our own mappings: sessions own heap
// objects (an interrupted connect's dial), so a sanitized build shows it the pools. Weak: in
// other builds the function does not exist and this does nothing.
extern "C" void __lsan_register_root_region(const void* begin, std::size_t size)
    __attribute__((weak));

namespace {

// --- Session pools: type-stable memory, indexed from 1 (0 = none) ---

constexpr std::uint32_t kPoolBits = 8;
constexpr std::uint32_t kPool = 1u << kPoolBits;  // sessions per pool
constexpr std::uint32_t kPools = 1u << 16;        // up to 16M sessions

std::atomic<Session*> g_pools[kPools];  // zero-initialised: no constructor runs
std::atomic<std::uint32_t> g_pool_count{0};
// Free list: (tag << 32) | index. The tag changes on every pop, so a stale head never wins a
// compare-exchange (ABA). Lock-free, so close() from a signal handler cannot deadlock here.
std::atomic<std::uint64_t> g_free{0};
std::atomic<std::uint32_t> g_live{0};

Session* at(std::uint32_t index) noexcept {
  return &g_pools[(index - 1) >> kPoolBits].load(
      std::memory_order_acquire)[(index - 1) & (kPool - 1)];
}

std::uint32_t index_of(const Session* s) noexcept {
  return s->index;
}

void push_free(std::uint32_t index) noexcept {
  Session* s = at(index);
  std::uint64_t head = g_free.load(std::memory_order_relaxed);
  do {
    s->next_free.store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
  } while (!g_free.compare_exchange_weak(head, ((head >> 32) << 32) | index,
                                         std::memory_order_release, std::memory_order_relaxed));
}

bool grow() noexcept {
  const std::uint32_t p = g_pool_count.load(std::memory_order_acquire);
  if (p >= kPools) return false;
  void* mem = mmap(nullptr, sizeof(Session) * kPool, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  // Zero pages are valid free sessions (refs 0); each learns its index once the pool has a
  // slot.
  Session* expected = nullptr;
  std::uint32_t slot = p;
  // Another thread may be growing too: take the first empty pool slot.
  while (slot < kPools && !g_pools[slot].compare_exchange_strong(
                              expected, static_cast<Session*>(mem), std::memory_order_acq_rel)) {
    expected = nullptr;
    ++slot;
  }
  if (slot >= kPools) {
    munmap(mem, sizeof(Session) * kPool);
    return false;
  }
  std::uint32_t count = g_pool_count.load(std::memory_order_relaxed);
  while (count < slot + 1 &&
         !g_pool_count.compare_exchange_weak(count, slot + 1, std::memory_order_acq_rel)) {
  }
  if (__lsan_register_root_region != nullptr) {
    __lsan_register_root_region(mem, sizeof(Session) * kPool);
  }
  auto* pool = static_cast<Session*>(mem);
  for (std::uint32_t i = 0; i < kPool; ++i) pool[i].index = slot * kPool + i + 1;
  for (std::uint32_t i = kPool; i > 0; --i) push_free(slot * kPool + i);
  return true;
}

Session* pop_free() noexcept {
  for (;;) {
    std::uint64_t head = g_free.load(std::memory_order_acquire);
    const auto index = static_cast<std::uint32_t>(head);
    if (index == 0) {
      if (!grow()) return nullptr;
      continue;
    }
    Session* s = at(index);
    const std::uint64_t next = s->next_free.load(std::memory_order_relaxed);
    const std::uint64_t tag = (head >> 32) + 1;
    if (g_free.compare_exchange_weak(head, (tag << 32) | next, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      return s;
    }
  }
}

void unref(Session* s) noexcept {
  if (s->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (PendingConnect* p = s->pending.exchange(nullptr, std::memory_order_acq_rel)) {
    if (g_release_pending != nullptr) g_release_pending(p);
  }
  if (Association* a = s->udp.exchange(nullptr, std::memory_order_acq_rel)) {
    if (g_release_association != nullptr) g_release_association(a);
  }
  if (Binding* b = s->binding.exchange(nullptr, std::memory_order_acq_rel)) {
    if (g_release_binding != nullptr) g_release_binding(b);
  }
  g_live.fetch_sub(1, std::memory_order_relaxed);
  push_free(index_of(s));
}

// Takes a reference if the session is still live (refs > 0).
bool try_ref(Session* s) noexcept {
  std::uint32_t r = s->refs.load(std::memory_order_acquire);
  while (r != 0) {
    if (s->refs.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

// --- The fd table: fd -> session index, in lazily mapped chunks ---

constexpr int kChunkBits = 10;
constexpr int kChunk = 1 << kChunkBits;  // fds per chunk
constexpr int kChunks = 1 << 11;         // up to 2M fds

std::atomic<std::atomic<std::uint32_t>*> g_chunks[kChunks];
std::atomic<bool> g_used{false};

std::atomic<std::uint32_t>* slot(int fd, bool create) noexcept {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  auto& chunk = g_chunks[fd >> kChunkBits];
  std::atomic<std::uint32_t>* c = chunk.load(std::memory_order_acquire);
  if (c == nullptr) {
    if (!create) return nullptr;
    void* mem = mmap(nullptr, sizeof(std::atomic<std::uint32_t>) * kChunk, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    auto* fresh = static_cast<std::atomic<std::uint32_t>*>(mem);  // zero = no session
    if (!chunk.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
      munmap(mem, sizeof(std::atomic<std::uint32_t>) * kChunk);  // another thread won
    } else {
      c = fresh;
    }
  }
  return &c[fd & (kChunk - 1)];
}

}  // namespace

SessionRef& SessionRef::operator=(SessionRef&& o) noexcept {
  if (this != &o) {
    if (s_ != nullptr) unref(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

SessionRef::~SessionRef() {
  if (s_ != nullptr) unref(s_);
}

SessionRef session_create(SessionKind kind, std::uint64_t cookie, const sockaddr* peer,
                          socklen_t peer_len) noexcept {
  Session* s = pop_free();
  if (s == nullptr) return SessionRef{};
  s->kind.store(kind, std::memory_order_relaxed);
  s->cookie = cookie;
  if (peer_len > static_cast<socklen_t>(sizeof s->peer) || peer == nullptr) {
    peer_len = peer == nullptr ? 0 : sizeof s->peer;
  }
  if (peer_len > 0) std::memcpy(&s->peer, peer, peer_len);
  std::memset(reinterpret_cast<char*>(&s->peer) + peer_len, 0, sizeof s->peer - peer_len);
  s->peer_len = peer_len;
  s->local_len = 0;
  s->pending.store(nullptr, std::memory_order_relaxed);
  s->udp.store(nullptr, std::memory_order_relaxed);
  s->binding.store(nullptr, std::memory_order_relaxed);
  g_live.fetch_add(1, std::memory_order_relaxed);
  // Publishes the fields above to whoever takes a reference after this.
  s->refs.fetch_add(1, std::memory_order_release);
  return SessionRef{s};
}

SessionRef session_peek(int fd) noexcept {
  if (!g_used.load(std::memory_order_relaxed)) return SessionRef{};
  std::atomic<std::uint32_t>* sl = slot(fd, false);
  if (sl == nullptr) return SessionRef{};
  for (;;) {
    const std::uint32_t index = sl->load(std::memory_order_acquire);
    if (index == 0) return SessionRef{};
    Session* s = at(index);
    if (!try_ref(s)) continue;  // released meanwhile: the slot has changed, look again
    // Still what fd points to? Then the reference is to fd's session (a recycled session
    // that was attached to this same fd again is this fd's session too).
    if (sl->load(std::memory_order_acquire) == index) return SessionRef{s};
    unref(s);
  }
}

bool session_kind_hint(int fd, SessionKind& kind) noexcept {
  if (!g_used.load(std::memory_order_relaxed)) return false;
  std::atomic<std::uint32_t>* sl = slot(fd, false);
  if (sl == nullptr) return false;
  const std::uint32_t index = sl->load(std::memory_order_acquire);
  if (index == 0) return false;
  // Sessions are never unmapped: reading a released one's kind is safe, merely stale.
  kind = at(index)->kind.load(std::memory_order_relaxed);
  return true;
}

SessionRef session_verified(int fd, std::uint64_t (*cookie_of)(int) noexcept) noexcept {
  SessionRef s = session_peek(fd);
  if (!s || s->cookie == cookie_of(fd)) return s;
  // The socket behind fd is not the one the session was made for (closed by a path no hook
  // sees, and the number reused): forget it.
  session_detach(fd);
  return SessionRef{};
}

void session_attach(int fd, Session* s) noexcept {
  std::atomic<std::uint32_t>* sl = slot(fd, true);
  const std::uint32_t index = index_of(s);
  if (sl == nullptr || index == 0) return;
  s->refs.fetch_add(1, std::memory_order_relaxed);
  g_used.store(true, std::memory_order_relaxed);
  const std::uint32_t old = sl->exchange(index, std::memory_order_acq_rel);
  if (old != 0) unref(at(old));
}

void session_detach(int fd) noexcept {
  if (!g_used.load(std::memory_order_relaxed)) return;
  std::atomic<std::uint32_t>* sl = slot(fd, false);
  if (sl == nullptr || sl->load(std::memory_order_relaxed) == 0) return;
  const std::uint32_t old = sl->exchange(0, std::memory_order_acq_rel);
  if (old != 0) unref(at(old));
}

void session_detach_range(unsigned first, unsigned last) noexcept {
  if (!g_used.load(std::memory_order_relaxed)) return;
  const unsigned limit = static_cast<unsigned>(kChunk) * kChunks - 1;
  if (last > limit) last = limit;
  for (unsigned fd = first; fd <= last && fd >= first; ++fd) {
    // Skip whole chunks that were never created.
    if ((fd & (kChunk - 1)) == 0 && g_chunks[fd >> kChunkBits].load() == nullptr) {
      if (fd > limit - (kChunk - 1)) break;
      fd += kChunk - 1;
      continue;
    }
    session_detach(static_cast<int>(fd));
  }
}

void session_copy(int from, int to) noexcept {
  if (from == to) return;
  SessionRef s = session_peek(from);
  if (!s) {
    session_detach(to);
    return;
  }
  session_attach(to, s.get());
}

bool sessions_in_use() noexcept {
  return g_used.load(std::memory_order_relaxed);
}

std::uint32_t sessions_live() noexcept {
  return g_live.load(std::memory_order_relaxed);
}

void for_each_session(void (*f)(int fd, Session& s, void* ctx), void* ctx) noexcept {
  if (!g_used.load(std::memory_order_relaxed)) return;
  for (int c = 0; c < kChunks; ++c) {
    if (g_chunks[c].load(std::memory_order_acquire) == nullptr) continue;
    for (int i = 0; i < kChunk; ++i) {
      const int fd = c * kChunk + i;
      SessionRef s = session_peek(fd);
      if (s) f(fd, *s.get(), ctx);
    }
  }
}

}  // namespace socksify::shim
