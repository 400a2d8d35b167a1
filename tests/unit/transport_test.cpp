// The dial's transport step (socks5/transport.hpp) with a stand-in for TLS: a layer that
// reports on the plaintext socket as the relay does, then carries octets as they are between
// that socket and the proxy stream, so the scripted proxy behind it sees exactly what the hop
// sent. The report is read exactly, a failure names the layer's words and fails over, silence
// ends at the deadline, and a strict chain puts the layer on the tunnel through the hop before.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/hop.hpp"
#include "socks5/transport.hpp"
#include "support/script_server.hpp"

using namespace socks5;
using testing::ScriptServer;
using testing::Step;
using namespace std::chrono_literals;

namespace {

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

ProxyUri uri(const std::string& t) {
  auto u = parse_proxy_uri(t);
  REQUIRE(u);
  return *u;
}

// Copies between two stream sockets until either ends (the stand-in's relay).
void pass(int a, int b) {
  char buf[4096];
  for (;;) {
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (poll(p, 2, 10000) <= 0) return;
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      if (send(p[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }
}

// The stand-in: reports `status` (one octet at a time, to test exact reads), then passes
// octets through. `silent`: never reports.
class PassThrough final : public Transport {
 public:
  TransportStatus status = TransportStatus::up;
  std::string words;
  bool silent = false;
  std::vector<std::string> hosts;  // the proxies it was started for

  ~PassThrough() {
    for (auto& t : threads_) t.join();
  }
  Result<TransportStart> start(int stream, const ProxyUri& proxy, Deadline) noexcept override {
    hosts.push_back(proxy.host + ":" + std::to_string(proxy.port));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      close(stream);
      return fail(Errc::tls_unavailable);
    }
    int control[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control);
    // What this layer does is fixed now: the test changes the settings for later dials while
    // this thread may still run.
    const Bytes report = encode_transport_status(status, words);
    threads_.emplace_back([stream, layer = sv[0], peer = control[1], report,
                           up = status == TransportStatus::up, mute = silent] {
      if (!mute) {
        for (std::uint8_t o : report) {
          send(layer, &o, 1, MSG_NOSIGNAL);
          std::this_thread::sleep_for(1ms);
        }
        if (up) pass(layer, stream);
      } else {
        pollfd p{layer, POLLIN, 0};
        poll(&p, 1, 10000);  // until the dial closes its end
      }
      close(layer);
      close(stream);
      close(peer);
    });
    return TransportStart{sv[1], control[0]};
  }

 private:
  std::vector<std::thread> threads_;
};

const Address kTarget = Address::ipv4({10, 9, 8, 7}, 80);

// The CONNECT the HTTP hop sends for `target` (its size is what the script expects).
Bytes connect_request(const ProxyUri& p, const Address& target) {
  HopRequest r;
  r.target = target;
  auto h = make_hop(p, std::move(r));
  REQUIRE(h);
  REQUIRE((*h)->start());
  return (*h)->output();
}

Dial dial(const std::vector<ProxyUri>& proxies, Transport* t, ChainMode chain,
          std::chrono::milliseconds limit) {
  DialPlan plan;
  plan.proxies = proxies;
  plan.chain = chain;
  plan.transport = t;
  DialRequest req;
  req.target = kTarget;
  Dial d(plan, DialSocket{}, req, Deadline::after(limit));
  run_blocking(d);
  return d;
}

}  // namespace

TEST_CASE("transport: an https proxy's hop runs inside the layer, after its report",
          "[transport]") {
  const Bytes ok = text("HTTP/1.1 200 Connection established\r\n\r\n");
  const ProxyUri p = uri("https://127.0.0.1:1");  // for the request's size only
  ScriptServer server({Step::expect(connect_request(p, kTarget).size()), Step::send(ok)});
  const ProxyUri https = uri("https://127.0.0.1:" + std::to_string(server.port()));
  PassThrough tls;
  Dial d = dial({https}, &tls, ChainMode::failover, 5s);
  INFO(d.error().message() << " " << d.detail());
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(tls.hosts == std::vector<std::string>{"127.0.0.1:" + std::to_string(server.port())});
  const int control = d.release_transport_control();
  CHECK(control >= 0);
  close(control);
  // The proxy got the CONNECT and nothing of the report.
  const Bytes got = server.received();
  CHECK(std::string(got.begin(), got.end()).rfind("CONNECT 10.9.8.7:80 HTTP/1.1\r\n", 0) == 0);
}

TEST_CASE("transport: a certificate the layer rejects fails over, naming its words",
          "[transport]") {
  const Bytes ok = text("HTTP/1.1 200 OK\r\n\r\n");
  ScriptServer bad({Step::expect(0), Step::sleep(2s)});
  const ProxyUri plain = uri("http://127.0.0.1:1");  // for the request's size only
  ScriptServer good({Step::expect(connect_request(plain, kTarget).size()), Step::send(ok)});
  PassThrough tls;
  tls.status = TransportStatus::certificate;
  tls.words = "certificate verify failed: unable to get local issuer certificate";
  const ProxyUri first = uri("https://127.0.0.1:" + std::to_string(bad.port()));
  // Alone: it fails at the transport stage, with the layer's words and EACCES.
  Dial alone = dial({first}, &tls, ChainMode::failover, 5s);
  REQUIRE(alone.step().next == Dial::Next::failed);
  CHECK(alone.error() == Errc::tls_certificate_rejected);
  CHECK(alone.failed_stage() == DialStage::transport);
  CHECK(alone.detail() == tls.words);
  CHECK(to_errno(alone.error()) == EACCES);
  // With another proxy after it: the dial goes on there.
  ScriptServer bad2({Step::expect(0), Step::sleep(2s)});
  const ProxyUri again = uri("https://127.0.0.1:" + std::to_string(bad2.port()));
  const ProxyUri next = uri("http://127.0.0.1:" + std::to_string(good.port()));
  Dial d = dial({again, next}, &tls, ChainMode::failover, 5s);
  INFO(d.error().message());
  CHECK(d.step().next == Dial::Next::done);
  CHECK(d.proxy() == 1);
  // A handshake failure maps to its own code.
  tls.status = TransportStatus::handshake;
  tls.words = "wrong version number";
  ScriptServer bad3({Step::expect(0), Step::sleep(2s)});
  Dial h = dial({uri("https://127.0.0.1:" + std::to_string(bad3.port()))}, &tls,
                ChainMode::failover, 5s);
  CHECK(h.error() == Errc::tls_handshake_failed);
  CHECK(to_errno(h.error()) == ECONNREFUSED);
}

TEST_CASE("transport: none given, or a layer that never reports, within the deadline",
          "[transport]") {
  ScriptServer s({Step::expect(0), Step::sleep(3s)});
  const ProxyUri https = uri("https://127.0.0.1:" + std::to_string(s.port()));
  Dial none = dial({https}, nullptr, ChainMode::failover, 5s);
  REQUIRE(none.step().next == Dial::Next::failed);
  CHECK(none.error() == Errc::tls_unavailable);
  CHECK(none.failed_stage() == DialStage::transport);
  ScriptServer s2({Step::expect(0), Step::sleep(3s)});
  PassThrough mute;
  mute.silent = true;
  const auto t0 = std::chrono::steady_clock::now();
  Dial d = dial({uri("https://127.0.0.1:" + std::to_string(s2.port()))}, &mute, ChainMode::failover,
                300ms);
  REQUIRE(d.step().next == Dial::Next::failed);
  CHECK(d.error() == Errc::timed_out);
  CHECK(d.failed_stage() == DialStage::transport);
  CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);  // a hang check, not a timing test
}

TEST_CASE("transport: in a strict chain the layer runs on the tunnel through the hop before",
          "[transport]") {
  // http://A, then https://B: A is asked to CONNECT to B; TLS (here: the stand-in) starts on
  // that tunnel; B's CONNECT to the target travels inside it, to the same scripted server.
  const Bytes ok = text("HTTP/1.1 200 OK\r\n\r\n");
  const ProxyUri b = uri("https://127.0.0.1:4443");
  const ProxyUri probe_a = uri("http://127.0.0.1:1");
  const std::size_t to_b = connect_request(probe_a, Address::ipv4({127, 0, 0, 1}, 4443)).size();
  const std::size_t to_target = connect_request(b, kTarget).size();
  ScriptServer a({Step::expect(to_b), Step::send(ok), Step::expect(to_target), Step::send(ok)});
  PassThrough tls;
  Dial d =
      dial({uri("http://127.0.0.1:" + std::to_string(a.port())), b}, &tls, ChainMode::strict, 5s);
  INFO(d.error().message());
  REQUIRE(d.step().next == Dial::Next::done);
  CHECK(tls.hosts == std::vector<std::string>{"127.0.0.1:4443"});
  const Bytes got = a.received();
  const std::string all(got.begin(), got.end());
  CHECK(all.rfind("CONNECT 127.0.0.1:4443 HTTP/1.1\r\n", 0) == 0);
  CHECK(all.find("CONNECT 10.9.8.7:80 HTTP/1.1\r\n") == to_b);
}
