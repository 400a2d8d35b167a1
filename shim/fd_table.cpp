#include "fd_table.hpp"

#include <sys/mman.h>

#include <cstring>

namespace socksify::shim {
namespace {

constexpr int kChunkBits = 10;
constexpr int kChunk = 1 << kChunkBits;  // fds per chunk
constexpr int kChunks = 1 << 11;         // up to 2M fds

struct Slot {
  // Writers fill `peer` and then publish `kind` with release; readers acquire `kind` first.
  std::atomic<std::uint32_t> kind;
  socklen_t peer_len;
  sockaddr_storage peer;
};

std::atomic<Slot*> g_chunks[kChunks];  // zero-initialised: no constructor runs
std::atomic<bool> g_any{false};

Slot* slot(int fd, bool create) noexcept {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  auto& chunk = g_chunks[fd >> kChunkBits];
  Slot* c = chunk.load(std::memory_order_acquire);
  if (c == nullptr) {
    if (!create) return nullptr;
    void* mem = mmap(nullptr, sizeof(Slot) * kChunk, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    Slot* fresh = static_cast<Slot*>(mem);  // zero pages are valid empty slots
    if (!chunk.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
      munmap(mem, sizeof(Slot) * kChunk);  // another thread won; c holds its chunk
    } else {
      c = fresh;
    }
  }
  return &c[fd & (kChunk - 1)];
}

}  // namespace

void fd_set_proxied(int fd, const sockaddr* peer, socklen_t len) noexcept {
  Slot* s = slot(fd, true);
  if (s == nullptr) return;
  s->kind.store(0, std::memory_order_relaxed);
  if (len > static_cast<socklen_t>(sizeof s->peer)) len = sizeof s->peer;
  std::memcpy(&s->peer, peer, len);
  s->peer_len = len;
  s->kind.store(static_cast<std::uint32_t>(FdKind::proxied), std::memory_order_release);
  g_any.store(true, std::memory_order_relaxed);
}

FdInfo fd_get(int fd) noexcept {
  FdInfo info;
  Slot* s = slot(fd, false);
  if (s == nullptr) return info;
  info.kind = static_cast<FdKind>(s->kind.load(std::memory_order_acquire));
  if (info.kind != FdKind::none) {
    info.peer = s->peer;
    info.peer_len = s->peer_len;
  }
  return info;
}

void fd_clear(int fd) noexcept {
  if (!g_any.load(std::memory_order_relaxed)) return;
  if (Slot* s = slot(fd, false)) s->kind.store(0, std::memory_order_release);
}

void fd_clear_range(unsigned first, unsigned last) noexcept {
  if (!g_any.load(std::memory_order_relaxed)) return;
  const unsigned limit = static_cast<unsigned>(kChunk) * kChunks - 1;
  if (last > limit) last = limit;
  for (unsigned fd = first; fd <= last && fd >= first; ++fd) {
    // Skip whole chunks that were never created.
    if ((fd & (kChunk - 1)) == 0 && g_chunks[fd >> kChunkBits].load() == nullptr) {
      fd += kChunk - 1;
      continue;
    }
    fd_clear(static_cast<int>(fd));
  }
}

void fd_copy(int from, int to) noexcept {
  const FdInfo info = fd_get(from);
  if (info.kind == FdKind::none) {
    fd_clear(to);
    return;
  }
  fd_set_proxied(to, reinterpret_cast<const sockaddr*>(&info.peer), info.peer_len);
}

}  // namespace socksify::shim
