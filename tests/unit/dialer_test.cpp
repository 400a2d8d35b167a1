// The dialer (socks5/dialer.hpp) against scripted servers on loopback: failover order and
// cool-down, each proxy at most once, strict chains, one deadline for everything (a proxy that
// drops SYNs included), the pipelining fallback inside that deadline, local errors.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <vector>

#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "support/peers.hpp"
#include "support/script_server.hpp"

using namespace socks5;
using testing::octets;
using testing::ScriptServer;
using testing::Step;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

ProxyUri at(std::uint16_t port) {
  return testing::loopback_proxy(port);
}

// A loopback port where nothing listens.
std::uint16_t closed_port() {
  return testing::free_port();
}

// A listener that drops SYNs: its accept queue is full (backlog 0, one connection already
// queued and never accepted), so the kernel ignores further SYNs and the client retries for
// minutes unless something else bounds it.
class Tarpit {
 public:
  Tarpit() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&in), sizeof in) == 0);
    REQUIRE(listen(fd_, 0) == 0);
    socklen_t len = sizeof in;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&in), &len);
    port_ = ntohs(in.sin_port);
    // Fill the queue (a connect completes once the SYN-ACK comes back).
    for (int i = 0; i < 2; ++i) {
      const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      connect(c, reinterpret_cast<sockaddr*>(&in), sizeof in);
      fillers_.push_back(c);
    }
    usleep(50000);  // setup only: the queue fills within a loopback round trip
  }
  ~Tarpit() {
    for (int c : fillers_) close(c);
    close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

struct Health final : ProxyHealth {
  std::vector<bool> cool;
  std::vector<int> failures;
  explicit Health(std::size_t n) : cool(n, false), failures(n, 0) {}
  bool cooling(std::size_t i) const noexcept override { return cool[i]; }
  void failed(std::size_t i) noexcept override { ++failures[i]; }
};

struct Events final : DialObserver {
  std::vector<std::size_t> failed;
  int fallbacks = 0;
  void proxy_failed(std::size_t i, DialStage, const std::error_code&, bool) noexcept override {
    failed.push_back(i);
  }
  void pipelining_fallback(std::size_t) noexcept override { ++fallbacks; }
  std::vector<PipeliningVerdict> learned;
  std::chrono::milliseconds stalled{0};
  void pipelining_learned(std::size_t, PipeliningVerdict v,
                          std::chrono::milliseconds waited) noexcept override {
    learned.push_back(v);
    stalled = waited;
  }
};

const Address kTarget = Address::ipv4({10, 9, 8, 7}, 80);
const Bytes kSel = octets({0x05, 0x00});
const Bytes kOk = octets({0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x30, 0x39});
constexpr std::size_t kGreet = 3, kReq = 10;

// Runs a dial on an own socket to the end.
Dial dial(const std::vector<ProxyUri>& proxies, ChainMode chain, std::chrono::milliseconds limit,
          ProxyHealth* health = nullptr, DialObserver* obs = nullptr, Pipelining p = Pipelining::on,
          std::chrono::milliseconds stall = 200ms) {
  DialPlan plan;
  plan.proxies = proxies;
  plan.chain = chain;
  plan.pipelining = p;
  plan.health = health;
  plan.observer = obs;
  plan.stall_timeout = stall;
  DialRequest req;
  req.target = kTarget;
  Dial d(plan, DialSocket{}, req, Deadline::after(limit));
  run_blocking(d);
  return d;
}

}  // namespace

TEST_CASE("dialer, failover: a dead proxy is skipped, marked, and tried last next time",
          "[dialer]") {
  ScriptServer good({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  const std::vector<ProxyUri> proxies{at(closed_port()), at(good.port())};
  Health health(2);
  Events events;
  Dial d = dial(proxies, ChainMode::failover, 5s, &health, &events);
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(d.proxy() == 1);
  CHECK(health.failures == std::vector<int>{1, 0});
  CHECK(events.failed == std::vector<std::size_t>{0});
  CHECK(d.bound().to_string() == "127.0.0.1:12345");
  CHECK(d.stats().waits == 1);
  // Cooling proxies come last: with proxy 0 cooling, proxy 1 is asked first.
  ScriptServer again({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  const std::vector<ProxyUri> second{at(closed_port()), at(again.port())};
  health.cool[0] = true;
  Dial e = dial(second, ChainMode::failover, 5s, &health);
  REQUIRE(e.step().next == Dial::Next::done);
  CHECK(health.failures[0] == 1);  // never tried this time
}

TEST_CASE("dialer: each proxy at most once per dial, even when all are cooling", "[dialer]") {
  // One proxy that rejects the password: one connection, one password sent, one report.
  ProxyUri u = at(0);
  u.user = "alice";
  u.password = "wrong";
  ScriptServer s({Step::expect(kGreet + 13 + kReq), Step::send(octets({0x05, 0x02, 0x01, 0x01}))});
  u.port = s.port();
  Health health(1);
  health.cool[0] = true;
  Events events;
  Dial d = dial({u}, ChainMode::failover, 3s, &health, &events);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::auth_rejected);
  CHECK(s.accepted() == 1);
  CHECK(events.failed.size() == 1);
  // Two dead proxies: two attempts in all, the last error reported.
  const std::vector<ProxyUri> dead{at(closed_port()), at(closed_port())};
  Events both;
  Dial e = dial(dead, ChainMode::failover, 3s, nullptr, &both);
  REQUIRE(e.step().next == Dial::Next::failed);
  CHECK(e.error() == std::errc::connection_refused);
  CHECK(both.failed == std::vector<std::size_t>{0, 1});
}

TEST_CASE("dialer: no limit on the number of proxies", "[dialer]") {
  // Twenty dead proxies, then a good one: the 21st is tried (no silent cap at 16).
  ScriptServer good({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  std::vector<ProxyUri> proxies;
  for (int i = 0; i < 20; ++i) proxies.push_back(at(closed_port()));
  proxies.push_back(at(good.port()));
  Health health(proxies.size());
  Events events;
  Dial d = dial(proxies, ChainMode::failover, 10s, &health, &events);
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(d.proxy() == 20);
  CHECK(events.failed.size() == 20);
}

TEST_CASE("dialer: the proxy answered, so the destination failed: no failover", "[dialer]") {
  ScriptServer refusing({Step::expect(kGreet + kReq), Step::send(kSel),
                         Step::send(octets({0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))});
  ScriptServer spare({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  Health health(2);
  Dial d = dial({at(refusing.port()), at(spare.port())}, ChainMode::failover, 3s, &health);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::connection_refused);
  CHECK(spare.accepted() == 0);
  CHECK(health.failures == std::vector<int>{0, 0});
}

TEST_CASE("dialer, strict chain: each hop a CONNECT through the previous one", "[dialer]") {
  // One scripted server plays all three hops: the stream is the same bytes either way.
  const ProxyUri b = at(1082), c = at(1083);
  ScriptServer s({
      Step::expect(kGreet + kReq),
      Step::send(kSel),
      Step::send(kOk),  // A: CONNECT to B
      Step::expect(kGreet + kReq),
      Step::send(kSel),
      Step::send(kOk),  // B: CONNECT to C
      Step::expect(kGreet + kReq),
      Step::send(kSel),  // C: CONNECT to target
      Step::send(octets({0x05, 0x00, 0x00, 0x01, 10, 1, 1, 1, 0, 7})),
  });
  const std::vector<ProxyUri> chain{at(s.port()), b, c};
  Dial d = dial(chain, ChainMode::strict, 5s);
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(d.bound().to_string() == "10.1.1.1:7");
  CHECK(d.stats().waits == 3);  // one per hop, pipelined
  const Bytes got = s.received();
  const Bytes to_b = octets({0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x04, 0x3A});
  const Bytes to_c = octets({0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x04, 0x3B});
  const Bytes to_t = octets({0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 10, 9, 8, 7, 0, 80});
  Bytes want = to_b;
  want.insert(want.end(), to_c.begin(), to_c.end());
  want.insert(want.end(), to_t.begin(), to_t.end());
  CHECK(got == want);
}

TEST_CASE("dialer, strict chain: a hop that fails fails the chain, naming the hop", "[dialer]") {
  ScriptServer s({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk),
                  Step::expect(kGreet + kReq), Step::send(kSel),
                  Step::send(octets({0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))});
  ScriptServer never_used(std::vector<Step>{});
  Dial d = dial({at(s.port()), at(1082), at(never_used.port())}, ChainMode::strict, 5s);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::host_unreachable);
  CHECK(d.proxy() == 1);  // hop B could not reach C
  CHECK(never_used.accepted() == 0);
}

TEST_CASE("dialer: one deadline, even for a proxy that drops SYNs", "[dialer]") {
  Tarpit pit;
  const auto t0 = Clock::now();
  Dial d = dial({at(pit.port())}, ChainMode::failover, 400ms);
  const auto took = Clock::now() - t0;
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::timed_out);
  CHECK(to_errno(d.error()) == ETIMEDOUT);
  CHECK(took < 5s);  // a loose bound: the kernel alone would retry SYNs for minutes
  // With a second proxy, the first gets only its share of the deadline.
  ScriptServer good({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  Dial e = dial({at(pit.port()), at(good.port())}, ChainMode::failover, 3s);
  REQUIRE(e.step().next == Dial::Next::done);
  CHECK(e.proxy() == 1);
}

TEST_CASE("dialer: a pipelining stall falls back inside the same deadline", "[dialer]") {
  reset_pipelining_memory();
  // First connection: answers the greeting, drops the pipelined request (as microsocks does).
  // Second: one message per round trip.
  ScriptServer s(std::vector<std::vector<Step>>{
      {Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(10s)},
      {Step::expect(kGreet), Step::send(kSel), Step::expect(kReq), Step::send(kOk)}});
  Events events;
  Dial d = dial({at(s.port())}, ChainMode::failover, 5s, nullptr, &events, Pipelining::automatic);
  INFO(d.error().message());
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(events.fallbacks == 1);
  CHECK(d.stats().fell_back);
  CHECK(pipelining_known_bad(at(s.port())));
  // A stall with no time left for a fallback ends the dial at its deadline.
  reset_pipelining_memory();
  ScriptServer slow(std::vector<std::vector<Step>>{
      {Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(10s)}});
  const auto t0 = Clock::now();
  Dial e =
      dial({at(slow.port())}, ChainMode::failover, 150ms, nullptr, nullptr, Pipelining::automatic);
  REQUIRE(e.step().next == Dial::Next::failed);
  CHECK(e.error() == Errc::timed_out);
  CHECK(Clock::now() - t0 < 5s);
  reset_pipelining_memory();
}

TEST_CASE("dialer: a first stall is short, and believed only when the retry is faster",
          "[dialer]") {
  reset_pipelining_memory();
  // A dropping proxy not seen before: the stall counts after probe_stall (200 ms), not after
  // stall_timeout (5 s here); the retry answers at once, so the drop is believed.
  ScriptServer dropper(std::vector<std::vector<Step>>{
      {Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(10s)},
      {Step::expect(kGreet), Step::send(kSel), Step::expect(kReq), Step::send(kOk)}});
  Events events;
  Dial d = dial({at(dropper.port())}, ChainMode::failover, 8s, nullptr, &events,
                Pipelining::automatic, 5s);
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(events.fallbacks == 1);
  CHECK(events.learned == std::vector<PipeliningVerdict>{PipeliningVerdict::drops});
  CHECK(events.stalled >= 200ms);
  CHECK(events.stalled < 5s);
  CHECK(pipelining_verdict(at(dropper.port())) == PipeliningVerdict::drops);

  // A proxy that is slow to reach the destination (its reply takes 600 ms both times): the
  // short stall falls back, but the retry is no faster, so pipelining is remembered as working.
  ScriptServer slow(std::vector<std::vector<Step>>{
      {Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(600ms), Step::send(kOk)},
      {Step::expect(kGreet), Step::send(kSel), Step::expect(kReq), Step::sleep(600ms),
       Step::send(kOk)}});
  Events slow_events;
  Dial e = dial({at(slow.port())}, ChainMode::failover, 8s, nullptr, &slow_events,
                Pipelining::automatic, 5s);
  REQUIRE(e.step().next == Dial::Next::done);
  CHECK(slow_events.fallbacks == 1);
  CHECK(slow_events.learned == std::vector<PipeliningVerdict>{PipeliningVerdict::works});
  CHECK(pipelining_verdict(at(slow.port())) == PipeliningVerdict::works);

  // Known to work: the same slowness is waited out (stall_timeout), with no fallback.
  ScriptServer known(
      {Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(600ms), Step::send(kOk)});
  Events known_events;
  ProxyUri moved = at(known.port());
  remember_pipelining(moved, PipeliningVerdict::works);
  Dial f =
      dial({moved}, ChainMode::failover, 8s, nullptr, &known_events, Pipelining::automatic, 5s);
  REQUIRE(f.step().next == Dial::Next::done);
  CHECK(known_events.fallbacks == 0);
  CHECK(f.stats().waits == 1);

  // An answer to the pipelined credentials proves it at once.
  ScriptServer auth({Step::expect(kGreet + 5 + kReq), Step::send(octets({0x05, 0x02})),
                     Step::send(octets({0x01, 0x00})), Step::send(kOk)});
  ProxyUri user = at(auth.port());
  user.user = "u";
  user.password = "p";
  Events auth_events;
  Dial g = dial({user}, ChainMode::failover, 8s, nullptr, &auth_events, Pipelining::automatic);
  REQUIRE(g.step().next == Dial::Next::done);
  CHECK(auth_events.learned == std::vector<PipeliningVerdict>{PipeliningVerdict::works});
  reset_pipelining_memory();
}

TEST_CASE("dialer: a server that is not SOCKS5 is named, with what it sent", "[dialer]") {
  const std::string http = "HTTP/1.1 400 Bad Request\r\nServer: test\r\n\r\n";
  ScriptServer s({Step::expect(kGreet), Step::send(Bytes(http.begin(), http.end()))});
  Dial d = dial({at(s.port())}, ChainMode::failover, 5s, nullptr, nullptr, Pipelining::off);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::not_socks5);
  CHECK(d.failed_stage() == DialStage::handshake);
  CHECK(d.peer_octets().rfind("HTTP/1.1 400 Bad Request", 0) == 0);
  // Silence after the greeting: "no answer to the greeting", not a plain timeout.
  ScriptServer mute({Step::expect(kGreet), Step::sleep(5s)});
  Dial e = dial({at(mute.port())}, ChainMode::failover, 300ms, nullptr, nullptr, Pipelining::off);
  REQUIRE(e.step().next == Dial::Next::failed);
  CHECK(e.error() == Errc::greeting_unanswered);
  CHECK(to_errno(e.error()) == ETIMEDOUT);
}

TEST_CASE("dialer: the caller's own errors are not a proxy's fault", "[dialer]") {
  ScriptServer s({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  int pipefd[2];
  REQUIRE(pipe2(pipefd, O_CLOEXEC) == 0);
  const std::vector<ProxyUri> proxies{at(s.port()), at(s.port())};
  Health health(2);
  DialPlan plan;
  plan.proxies = proxies;
  plan.health = &health;
  DialSocket sock;
  sock.fd = pipefd[0];  // not a socket
  sock.family = AF_INET;
  DialRequest req;
  req.target = kTarget;
  Dial d(plan, sock, req, Deadline::after(2s));
  run_blocking(d);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == std::errc::not_a_socket);
  CHECK(health.failures == std::vector<int>{0, 0});
  close(pipefd[0]);
  close(pipefd[1]);
}

TEST_CASE("dialer on the caller's blocking socket: the send timeout is put back", "[dialer]") {
  ScriptServer s({Step::expect(kGreet + kReq), Step::send(kSel), Step::send(kOk)});
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval mine{7, 0};
  REQUIRE(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &mine, sizeof mine) == 0);
  const std::vector<ProxyUri> proxies{at(s.port())};
  DialPlan plan;
  plan.proxies = proxies;
  DialSocket sock;
  sock.fd = fd;
  sock.family = AF_INET;
  DialRequest req;
  req.target = kTarget;
  Dial d(plan, sock, req, Deadline::after(3s));
  BlockingOptions o;
  o.blocking_socket = true;
  CHECK(run_blocking(d, o) == DriveOutcome::finished);
  REQUIRE(d.step().next == Dial::Next::done);
  timeval now{};
  socklen_t len = sizeof now;
  getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &now, &len);
  CHECK(now.tv_sec == 7);
  CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);  // never touched
  close(fd);
}
