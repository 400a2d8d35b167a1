// Sessions and the fd table (shim/session.hpp), without a preloaded process: sharing by dup,
// release on the last close, stale entries dropped by identity, fork, and threads hammering
// the same fds.
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "session.hpp"

using namespace socksify::shim;

namespace {

sockaddr_in peer(std::uint16_t port) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  inet_pton(AF_INET, "198.18.0.7", &in.sin_addr);
  return in;
}

SessionRef make(std::uint64_t cookie, std::uint16_t port = 443) {
  const sockaddr_in in = peer(port);
  return session_create(SessionKind::proxied, cookie, reinterpret_cast<const sockaddr*>(&in),
                        sizeof in);
}

std::atomic<int> g_released{0};
void count_release(PendingConnect*) noexcept {
  ++g_released;
}

}  // namespace

TEST_CASE("sessions: attach, share by dup, released by the last close", "[shim][session]") {
  const std::uint32_t live = sessions_live();
  {
    SessionRef s = make(11);
    REQUIRE(s);
    CHECK(s->refs.load() == 1);
    session_attach(5000, s.get());
    CHECK(s->refs.load() == 2);
    CHECK(sessions_in_use());
    session_copy(5000, 70000);  // dup: both fds share the one session
    CHECK(session_peek(70000).get() == s.get());
    CHECK(s->refs.load() == 3);
    const SessionRef p = session_peek(5000);
    REQUIRE(p);
    CHECK(p->peer_len == sizeof(sockaddr_in));
    const sockaddr_in in = peer(443);
    CHECK(std::memcmp(&p->peer, &in, sizeof in) == 0);
  }
  CHECK(sessions_live() == live + 1);  // the table still holds it
  session_detach(5000);
  CHECK(session_peek(70000));  // the other fd keeps it
  session_copy(5001, 70000);   // dup2 of an unknown fd over a known one forgets it
  CHECK_FALSE(session_peek(70000));
  CHECK(sessions_live() == live);  // the last reference went with it
  CHECK_FALSE(session_peek(-1));
  CHECK_FALSE(session_peek(1 << 30));
  session_detach(1 << 30);
}

TEST_CASE("sessions: ranges, and a stale entry is dropped by identity", "[shim][session]") {
  SessionRef a = make(21), b = make(22);
  session_attach(4500, a.get());
  session_attach(5002, b.get());
  session_detach_range(4000, 5001);
  CHECK_FALSE(session_peek(4500));
  CHECK(session_peek(5002));
  // The fd now holds another socket (closed and reused by a path no hook saw).
  CHECK_FALSE(session_verified(5002, [](int) noexcept -> std::uint64_t { return 999; }));
  CHECK_FALSE(session_peek(5002));
  session_attach(5002, b.get());
  CHECK(session_verified(5002, [](int) noexcept -> std::uint64_t { return 22; }));
  session_detach_range(0, ~0u);  // must terminate
  CHECK_FALSE(session_peek(5002));
}

TEST_CASE("sessions: what a session owns is released with it", "[shim][session]") {
  g_release_pending = count_release;
  g_released = 0;
  {
    SessionRef s = make(31);
    s->pending.store(reinterpret_cast<PendingConnect*>(&g_released));
    session_attach(6000, s.get());
    session_copy(6000, 6001);
  }
  session_detach(6000);
  CHECK(g_released == 0);
  session_detach(6001);
  CHECK(g_released == 1);
  g_release_pending = nullptr;
}

TEST_CASE("sessions: a forked child inherits the table, each side then goes its own way",
          "[shim][session]") {
  SessionRef s = make(41);
  session_attach(7000, s.get());
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const bool inherited = session_peek(7000).get() != nullptr;
    session_detach(7000);
    _exit(inherited && !session_peek(7000) ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(session_peek(7000).get() == s.get());  // the child's close is not the parent's
  session_detach(7000);
}

TEST_CASE("sessions: threads attaching, copying, peeking and closing the same fds",
          "[shim][session]") {
  const std::uint32_t live = sessions_live();
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr int kFds = 32;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &bad] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      for (int i = 0; i < kOps; ++i) {
        const int fd = 8000 + static_cast<int>(rng() % kFds);
        switch (rng() % 4) {
          case 0: {
            SessionRef s = make(static_cast<std::uint64_t>(fd), static_cast<std::uint16_t>(fd));
            if (s) session_attach(fd, s.get());
            break;
          }
          case 1: session_detach(fd); break;
          case 2: session_copy(fd, 8000 + static_cast<int>(rng() % kFds)); break;
          default: {
            // A live reference is never to a freed session, and its data is whole.
            SessionRef s = session_peek(fd);
            if (s && (s->refs.load() == 0 || s->peer_len != sizeof(sockaddr_in))) ++bad;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == 0);
  session_detach_range(8000, 8000 + kFds);
  CHECK(sessions_live() == live);  // nothing leaked, nothing freed twice
}
