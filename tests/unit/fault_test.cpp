// Hostile and broken servers, over real loopback sockets, through the public Client API.
// Each case must end in a precise error: no crash, no hang, no read past a buffer.
#include <poll.h>
#include <sys/socket.h>
#include <catch2/catch.hpp>

#include <cerrno>

#include "socks5/client.hpp"
#include "socks5/error.hpp"
#include "support/script_server.hpp"

using namespace socks5;
using testing::octets;
using testing::ScriptServer;
using testing::Step;
using namespace std::chrono_literals;

namespace {

ProxyUri proxy_at(std::uint16_t port) {
  return testing::loopback_proxy(port);
}

ClientOptions quick(Pipelining p = Pipelining::off, std::chrono::milliseconds t = 1500ms) {
  ClientOptions o;
  o.timeout = t;
  o.pipelining = p;
  return o;
}

const Address kDst = Address::ipv4({10, 9, 8, 7}, 80);
const Bytes kSel = octets({0x05, 0x00});
const Bytes kReply = octets({0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x30, 0x39});
// greeting (3) + request for kDst (10)
constexpr std::size_t kGreet = 3;
constexpr std::size_t kReq = 10;

std::error_code connect_error(std::vector<Step> script, ClientOptions o = quick()) {
  ScriptServer s(std::move(script));
  auto c = Client::open(proxy_at(s.port()), o);
  REQUIRE(c);
  auto r = c->connect(kDst);
  REQUIRE_FALSE(r);
  return r.error();
}

Bytes cat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

TEST_CASE("a good scripted server: CONNECT succeeds and the wire is exact", "[fault]") {
  ScriptServer s({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq), Step::send(kReply)});
  auto c = Client::open(proxy_at(s.port()), quick());
  REQUIRE(c);
  auto r = c->connect(kDst);
  REQUIRE(r);
  CHECK(r->to_string() == "127.0.0.1:12345");
  CHECK(c->stats().waits == 2);
  CHECK(s.received() == octets({0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 10, 9, 8, 7, 0, 80}));
}

TEST_CASE("wrong versions, refused methods, bad fields", "[fault]") {
  CHECK(connect_error({Step::expect(kGreet), Step::send(octets({0x04, 0x00}))}) ==
        Errc::not_socks5);
  CHECK(connect_error({Step::expect(kGreet), Step::send(octets({0x05, 0xFF}))}) ==
        Errc::no_acceptable_method);
  CHECK(connect_error({Step::expect(kGreet), Step::send(octets({0x05, 0x02}))}) ==
        Errc::unexpected_method);
  CHECK(connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                       Step::send(octets({0x05, 0x00, 0x01, 0x01, 1, 2, 3, 4, 0, 1}))}) ==
        Errc::bad_reserved);
  CHECK(connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                       Step::send(octets({0x05, 0x00, 0x00, 0x02, 1, 2, 3, 4, 0, 1}))}) ==
        Errc::bad_address_type);
  CHECK(connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                       Step::send(octets({0x05, 0x00, 0x00, 0x03, 0x00, 0, 1}))}) ==
        Errc::bad_domain_length);
  CHECK(connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                       Step::send(octets({0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))}) ==
        Errc::not_allowed);
  CHECK(connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                       Step::send(octets({0x05, 0x09, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))}) ==
        Errc::unassigned_reply);
}

TEST_CASE("truncation at every octet, then close", "[fault]") {
  const Bytes all = cat(kSel, kReply);
  for (std::size_t n = 0; n < all.size(); ++n) {
    INFO("server sends " << n << " octets then closes");
    std::vector<Step> script{Step::expect(kGreet + kReq)};
    script.push_back(Step::send(Bytes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n))));
    script.push_back(Step::sleep(20ms));
    script.push_back(Step::close());
    const auto ec = connect_error(script, quick(Pipelining::on));
    CHECK(ec == Errc::connection_closed);
    CHECK(to_errno(ec) == ECONNRESET);
  }
}

TEST_CASE("a reset in the middle of the reply", "[fault]") {
  const auto ec =
      connect_error({Step::expect(kGreet), Step::send(kSel), Step::expect(kReq),
                     Step::send(octets({0x05, 0x00, 0x00})), Step::sleep(20ms), Step::reset()});
  CHECK((ec == std::errc::connection_reset || ec == Errc::connection_closed));
  CHECK(to_errno(ec) == ECONNRESET);
}

TEST_CASE("a server that drips one octet per second past the deadline", "[fault]") {
  const auto start = std::chrono::steady_clock::now();
  const auto ec = connect_error({Step::expect(kGreet), Step::drip(cat(kSel, kReply), 1000ms)},
                                quick(Pipelining::off, 1500ms));
  CHECK(ec == Errc::timed_out);
  CHECK(to_errno(ec) == ETIMEDOUT);
  // It must stop at the deadline, not at the end of the drip (12 s): a hang check, not a
  // performance figure.
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("a server that never answers", "[fault]") {
  const auto ec =
      connect_error({Step::expect(kGreet), Step::sleep(3000ms)}, quick(Pipelining::off, 300ms));
  CHECK(ec == Errc::greeting_unanswered);
  CHECK(to_errno(ec) == ETIMEDOUT);
  // Silence after the method selection is a plain timeout.
  CHECK(connect_error(
            {Step::expect(kGreet), Step::send(kSel), Step::expect(kReq), Step::sleep(3000ms)},
            quick(Pipelining::off, 300ms)) == Errc::timed_out);
}

TEST_CASE("garbage instead of a handshake", "[fault]") {
  std::uint32_t seed = 12345;
  for (int round = 0; round < 50; ++round) {
    Bytes junk;
    for (int i = 0; i < 64; ++i) {
      seed = seed * 1664525u + 1013904223u;
      junk.push_back(static_cast<std::uint8_t>(seed >> 24));
    }
    if (junk[0] == 0x05) junk[0] = 0x47;  // make sure the very first octet is wrong
    const auto ec = connect_error({Step::expect(kGreet), Step::send(junk)});
    CHECK(ec == Errc::not_socks5);
  }
  // HTTP server on a SOCKS port: a common misconfiguration.
  const std::string http = "HTTP/1.1 400 Bad Request\r\n\r\n";
  CHECK(connect_error({Step::expect(kGreet), Step::send(Bytes(http.begin(), http.end()))}) ==
        Errc::not_socks5);
}

TEST_CASE("early application data after the reply stays in the socket", "[fault]") {
  ScriptServer s({Step::expect(kGreet + kReq),
                  Step::send(cat(cat(kSel, kReply), octets({'h', 'e', 'l', 'l', 'o'})))});
  auto c = Client::open(proxy_at(s.port()), quick(Pipelining::on));
  REQUIRE(c);
  REQUIRE(c->connect(kDst));
  CHECK(c->stats().waits == 1);
  char buf[16] = {};
  pollfd p{c->fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 2000) == 1);
  CHECK(recv(c->fd(), buf, sizeof buf, 0) == 5);
  CHECK(std::string(buf) == "hello");
}

TEST_CASE("a server that drops pipelined octets is detected", "[fault]") {
  // Like microsocks: reads greeting+request in one recv, answers the greeting, then waits.
  ScriptServer s({Step::expect(kGreet + kReq), Step::send(kSel), Step::sleep(5000ms)});
  auto c = Client::open(proxy_at(s.port()), quick(Pipelining::automatic, 3000ms));
  REQUIRE(c);
  // An adopted stream cannot be reopened: the stall is reported, never a silent hang.
  auto adopted = Client::adopt(c->release(), proxy_at(s.port()), [] {
    ClientOptions o = quick(Pipelining::automatic, 3000ms);
    o.stall_timeout = 200ms;
    return o;
  }());
  auto r = adopted.connect(kDst);
  REQUIRE_FALSE(r);
  CHECK(r.error() == Errc::pipelining_stalled);
  reset_pipelining_memory();
}

TEST_CASE("proxy unreachable: the connect errno comes through", "[fault]") {
  ProxyUri u = proxy_at(1);  // port 1 on loopback: nothing listens
  auto c = Client::open(u, quick());
  REQUIRE_FALSE(c);
  CHECK(c.error() == std::errc::connection_refused);
  CHECK(to_errno(c.error()) == ECONNREFUSED);
  ProxyUri bad;
  bad.host = "no-such-host.invalid";
  auto d = Client::open(bad, quick());
  REQUIRE_FALSE(d);
  CHECK(d.error() == Errc::name_resolution_failed);
}

TEST_CASE("username/password rejected, and a wrong RFC 1929 version", "[fault]") {
  ProxyUri u;
  u.host = "127.0.0.1";
  u.user = "alice";
  u.password = "secret";
  {
    ScriptServer s(
        {Step::expect(kGreet + 14 + kReq), Step::send(octets({0x05, 0x02, 0x01, 0x01}))});
    u.port = s.port();
    auto c = Client::open(u, quick(Pipelining::on));
    REQUIRE(c);
    auto r = c->connect(kDst);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Errc::auth_rejected);
    CHECK(to_errno(r.error()) == EACCES);
    const Bytes got = s.received();
    REQUIRE(got.size() == kGreet + 14 + kReq);  // one write: greeting, credentials, request
    CHECK(Bytes(got.begin() + 3, got.begin() + 17) ==
          octets({0x01, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c', 'r', 'e', 't'}));
  }
  {
    ScriptServer s({Step::expect(kGreet), Step::send(octets({0x05, 0x02})), Step::expect(14),
                    Step::send(octets({0x05, 0x00}))});
    u.port = s.port();
    auto c = Client::open(u, quick());
    REQUIRE(c);
    auto r = c->connect(kDst);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Errc::bad_version);
  }
}
