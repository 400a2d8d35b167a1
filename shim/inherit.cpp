#include "inherit.hpp"

#include <fcntl.h>
#include <pthread.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "real_libc.hpp"

namespace socksify::shim {
namespace {

constexpr char kName[] = "SOCKSIFY_INHERIT=";

struct Record {
  std::uint64_t cookie;
  sockaddr_storage peer;
  socklen_t peer_len;
};

// What this process inherited (parsed once, then read-only).
Record g_records[kInheritRecords];
std::size_t g_count = 0;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses "COOKIE:SOCKADDR" records; a malformed one ends the list.
void parse() {
  const char* v = std::getenv("SOCKSIFY_INHERIT");
  while (v != nullptr && *v != '\0' && g_count < kInheritRecords) {
    Record r{};
    std::uint64_t cookie = 0;
    int digits = 0;
    for (; hex_value(*v) >= 0 && digits < 16; ++v, ++digits) {
      cookie = (cookie << 4) | static_cast<std::uint64_t>(hex_value(*v));
    }
    if (digits == 0 || *v != ':') return;
    ++v;
    auto* bytes = reinterpret_cast<unsigned char*>(&r.peer);
    std::size_t n = 0;
    while (hex_value(v[0]) >= 0 && hex_value(v[1]) >= 0 && n < sizeof r.peer) {
      bytes[n++] = static_cast<unsigned char>(hex_value(v[0]) * 16 + hex_value(v[1]));
      v += 2;
    }
    if (n < sizeof(sa_family_t)) return;
    r.cookie = cookie;
    r.peer_len = static_cast<socklen_t>(n);
    g_records[g_count++] = r;
    if (*v == ',') ++v;
  }
}

struct Writer {
  char* out;
  std::size_t cap;
  std::size_t len = 0;
  bool ok = true;
  void put(char c) {
    if (len + 1 < cap) {
      out[len++] = c;
    } else {
      ok = false;
    }
  }
  void hex(std::uint64_t v, int digits) {
    static const char kHex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) put(kHex[(v >> (4 * i)) & 0xF]);
  }
  void record(std::uint64_t cookie, const void* peer, socklen_t peer_len) {
    if (len > sizeof kName - 1) put(',');
    hex(cookie, 16);
    put(':');
    const auto* b = static_cast<const unsigned char*>(peer);
    for (socklen_t i = 0; i < peer_len; ++i) hex(b[i], 2);
  }
};

struct Collect {
  Writer* w;
  std::uint64_t seen[kInheritRecords];
  std::size_t count = 0;
};

bool seen(const Collect& c, std::uint64_t cookie) {
  for (std::size_t i = 0; i < c.count; ++i) {
    if (c.seen[i] == cookie) return true;
  }
  return false;
}

void collect(int fd, Session& s, void* ctx) {
  auto& c = *static_cast<Collect*>(ctx);
  if (c.count >= kInheritRecords || s.cookie == 0 || seen(c, s.cookie)) return;
  if (s.kind.load(std::memory_order_acquire) != SessionKind::proxied) return;
  const int flags = real().fcntl(fd, F_GETFD);
  if (flags < 0 || (flags & FD_CLOEXEC) != 0) return;  // gone at exec
  c.seen[c.count++] = s.cookie;
  c.w->record(s.cookie, &s.peer, s.peer_len);
}

}  // namespace

bool inherit_variable(char* out, std::size_t cap) noexcept {
  pthread_once(&g_once, parse);
  if (!sessions_in_use() && g_count == 0) return false;
  Writer w{out, cap};
  for (const char* p = kName; *p != '\0'; ++p) w.put(*p);
  Collect c{&w, {}, 0};
  for_each_session(collect, &c);
  // What this process inherited and has not adopted goes on too (its sockets may still be
  // open here); adopted ones were just written from their sessions.
  for (std::size_t i = 0; i < g_count && c.count < kInheritRecords; ++i) {
    if (seen(c, g_records[i].cookie)) continue;
    c.seen[c.count++] = g_records[i].cookie;
    w.record(g_records[i].cookie, &g_records[i].peer, g_records[i].peer_len);
  }
  if (c.count == 0 || !w.ok) return false;
  out[w.len] = '\0';
  return true;
}

SessionRef adopt_inherited(int fd) noexcept {
  pthread_once(&g_once, parse);
  if (g_count == 0) return SessionRef{};
  const std::uint64_t cookie = socket_cookie(fd);
  if (cookie == 0) return SessionRef{};
  for (std::size_t i = 0; i < g_count; ++i) {
    if (g_records[i].cookie != cookie) continue;
    SessionRef s = session_create(SessionKind::proxied, cookie,
                                  reinterpret_cast<const sockaddr*>(&g_records[i].peer),
                                  g_records[i].peer_len);
    if (s) session_attach(fd, s.get());
    return s;
  }
  return SessionRef{};
}

}  // namespace socksify::shim
