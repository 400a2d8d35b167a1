// The blocking driver with injected syscalls: EINTR everywhere, EAGAIN, one-octet transfers.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <thread>

#include "socks5/client.hpp"
#include "socks5/error.hpp"
#include "socks5/negotiation.hpp"

using namespace socks5;
using namespace std::chrono_literals;

namespace {

// Fakes wrap the real calls; every other call fails with EINTR or EAGAIN, and transfers are
// cut to one octet, so every loop in the driver is exercised.
int g_eintr = 0;
int g_eagain = 0;
int g_send_calls = 0;
int g_recv_calls = 0;
int g_poll_calls = 0;

// Each function has its own counter, so no fixed interleaving can starve a call forever.
bool inject(int& counter, bool allow_eagain) {
  ++counter;
  if (counter % 2 == 0) {
    ++g_eintr;
    errno = EINTR;
    return true;
  }
  if (allow_eagain && counter % 3 == 0) {
    ++g_eagain;
    errno = EAGAIN;
    return true;
  }
  return false;
}

ssize_t fake_send(int fd, const void* buf, size_t len, int flags) {
  if (inject(g_send_calls, true)) return -1;
  return ::send(fd, buf, len > 0 ? 1 : 0, flags);
}

ssize_t fake_recv(int fd, void* buf, size_t len, int flags) {
  if (inject(g_recv_calls, true)) return -1;
  return ::recv(fd, buf, len > 0 ? 1 : 0, flags);
}

int fake_poll(pollfd* p, nfds_t n, int timeout) {
  if (inject(g_poll_calls, false)) return -1;
  return ::poll(p, n, timeout);
}

Syscalls fake_table() {
  Syscalls t = Syscalls::libc();
  t.send = fake_send;
  t.recv = fake_recv;
  t.poll = fake_poll;
  return t;
}

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

std::vector<std::unique_ptr<AuthMethod>> noauth() {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<NoAuth>());
  return m;
}

std::vector<std::unique_ptr<AuthMethod>> userpass() {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<UserPassAuth>("u", "pw"));
  return m;
}

}  // namespace

TEST_CASE("drive survives EINTR, EAGAIN and one-octet transfers", "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  // The whole server side is queued up front, with application data after the reply.
  const Bytes server =
      bytes({0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 5, 'd', 'a', 't', 'a'});
  REQUIRE(::write(sv[1], server.data(), server.size()) == static_cast<ssize_t>(server.size()));
  const Syscalls table = fake_table();
  g_eintr = g_eagain = g_send_calls = g_recv_calls = g_poll_calls = 0;
  Stream s(sv[0], table);
  Negotiation n(userpass(), wire::Command::connect, Address::domain("example.org", 443), true);
  REQUIRE(n.start());
  DriveStats stats;
  auto r = drive(s, n, Deadline::after(5s), &stats);
  REQUIRE(r);
  CHECK(n.done());
  CHECK(stats.waits == 1);
  CHECK(n.reply().bound.to_string() == "1.2.3.4:5");
  CHECK(g_eintr > 5);
  CHECK(g_eagain > 0);
  // The client's bytes arrived whole and in order.
  Bytes got(64);
  const ssize_t k = ::read(sv[1], got.data(), got.size());
  got.resize(static_cast<std::size_t>(k));
  CHECK(got == bytes({0x05, 0x01, 0x02, 0x01, 0x01, 'u', 0x02, 'p', 'w', 0x05, 0x01, 0x00, 0x03, 11,
                      'e',  'x',  'a',  'm',  'p',  'l', 'e',  '.', 'o', 'r',  'g',  0x01, 0xBB}));
  // Application data is still in the socket.
  char app[8] = {};
  CHECK(::read(sv[0], app, sizeof app) == 4);
  CHECK(std::string(app) == "data");
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("drive: EOF before the reply is connection_closed", "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  const Bytes server = bytes({0x05, 0x00, 0x05});
  REQUIRE(::write(sv[1], server.data(), server.size()) == 3);
  ::shutdown(sv[1], SHUT_WR);
  Stream s(sv[0], Syscalls::libc());
  Negotiation n(noauth(), wire::Command::connect, Address::ipv4({1, 1, 1, 1}, 1), false);
  REQUIRE(n.start());
  auto r = drive(s, n, Deadline::after(5s));
  REQUIRE_FALSE(r);
  CHECK(r.error() == Errc::connection_closed);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("drive: silence until the deadline is timed_out", "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  Stream s(sv[0], Syscalls::libc());
  Negotiation n(noauth(), wire::Command::connect, Address::ipv4({1, 1, 1, 1}, 1), false);
  REQUIRE(n.start());
  auto r = drive(s, n, Deadline::after(100ms));
  REQUIRE_FALSE(r);
  CHECK(r.error() == Errc::timed_out);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("drive: a peer that is gone gives EPIPE, not SIGPIPE", "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  ::close(sv[1]);
  Stream s(sv[0], Syscalls::libc());
  const Bytes data(16, 0x05);
  auto r = s.write_all(data, Deadline::after(1s));
  REQUIRE_FALSE(r);
  CHECK(to_errno(r.error()) == EPIPE);
  ::close(sv[0]);
}

TEST_CASE("deadline arithmetic", "[stream]") {
  CHECK(Deadline::after(0ms).poll_ms() == 0);
  const int ms = Deadline::after(250ms).poll_ms();
  CHECK(ms > 0);
  CHECK(ms <= 250);
  CHECK(Deadline::after(-5ms).expired());
}

namespace {

// Counting wrappers around the real calls (no faults): how the driver reads.
int g_plain_recvs = 0;
int g_peeks = 0;
int g_polls = 0;
std::size_t g_largest_plain_recv = 0;

ssize_t counting_recv(int fd, void* buf, size_t len, int flags) {
  if ((flags & MSG_PEEK) != 0) {
    ++g_peeks;
  } else {
    ++g_plain_recvs;
    if (len > g_largest_plain_recv) g_largest_plain_recv = len;
  }
  return ::recv(fd, buf, len, flags);
}

int counting_poll(pollfd* p, nfds_t n, int timeout) {
  ++g_polls;
  return ::poll(p, n, timeout);
}

}  // namespace

TEST_CASE(
    "drive: the fixed-size method selection is read without a peek, and a peeked reply "
    "is taken without a second poll",
    "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  // Method selection, reply, then application data, all queued at once.
  const Bytes server = bytes({0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 5, 'h', 'i'});
  REQUIRE(::write(sv[1], server.data(), server.size()) == static_cast<ssize_t>(server.size()));
  Syscalls table = Syscalls::libc();
  table.recv = counting_recv;
  table.poll = counting_poll;
  g_plain_recvs = g_peeks = g_polls = 0;
  g_largest_plain_recv = 0;
  Stream s(sv[0], table);
  Negotiation n(noauth(), wire::Command::connect, Address::ipv4({9, 9, 9, 9}, 80), true);
  REQUIRE(n.start());
  REQUIRE(drive(s, n, Deadline::after(5s)));
  CHECK(n.reply().bound.to_string() == "1.2.3.4:5");
  // recv(2) for the method selection; peek + recv(10) for the reply; one poll before each.
  CHECK(g_plain_recvs == 2);
  CHECK(g_peeks == 1);
  CHECK(g_polls == 2);
  CHECK(g_largest_plain_recv == 10);
  char app[4] = {};
  CHECK(::read(sv[0], app, sizeof app) == 2);
  CHECK(std::string(app, 2) == "hi");
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("drive: a server that trickles one octet at a time still meets the deadline",
          "[stream]") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  Stream s(sv[0], Syscalls::libc());
  Negotiation n(noauth(), wire::Command::connect, Address::ipv4({1, 1, 1, 1}, 1), false);
  REQUIRE(n.start());
  // A domain reply that announces 255 octets of name and never ends: 5 octets, then one per
  // 20 ms from a writer thread, far slower than the deadline allows.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    const Bytes head = bytes({0x05, 0x00, 0x05, 0x00, 0x00, 0x03, 0xFF});
    (void)!::write(sv[1], head.data(), head.size());
    for (int i = 0; i < 100 && !stop; ++i) {
      std::this_thread::sleep_for(20ms);
      (void)!::write(sv[1], "x", 1);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = drive(s, n, Deadline::after(300ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  stop = true;
  writer.join();
  REQUIRE_FALSE(r);
  CHECK(r.error() == Errc::timed_out);
  CHECK(took < 1500ms);  // bounded by the deadline, not by the trickle (a loose bound)
  ::close(sv[0]);
  ::close(sv[1]);
}
