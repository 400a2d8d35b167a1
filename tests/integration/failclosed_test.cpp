// Fail closed against hostile inputs and racing programs (issue 18), in the lab. Each case
// runs a hostile probe (attack.cpp) preloaded and, where it applies, supervised (its static
// build), and proves where the traffic went: catchers on the client side's own loopback
// (reachable only directly) and on the proxy side (reachable only through the proxy) log
// every connection and datagram; the logs are read after a marker sent behind the probe's
// traffic has arrived.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

const std::string kAttack = SOCKSIFY_ATTACK;
const std::string kStaticAttack = SOCKSIFY_STATIC_ATTACK;

// Catchers on ADDR:PORT on both sides (started once per lab).
void catchers(const std::string& addr, int port) {
  static std::vector<std::string> started;
  const std::string key = addr + ":" + std::to_string(port);
  if (std::find(started.begin(), started.end(), key) != started.end()) return;
  started.push_back(key);
  lab().start_udp_logger(true, addr, port);
  lab().start_udp_logger(false, addr, port);
}

// The logs of the catchers on ADDR:PORT on both sides, once everything sent before is in
// them (Lab::synced_log).
struct Marks {
  std::size_t client = 0;
  std::size_t proxy = 0;
};

Marks mark(const std::string& addr, int port) {
  return {lab().synced_log(true, addr, port).size(), lab().synced_log(false, addr, port).size()};
}

// Connections and datagrams in a window of a catcher's log, the markers' own left out (each
// marker is one connection, logged "conn", and two "sync" lines).
std::size_t probe_traffic(const std::string& window) {
  return count_of(window, "got ") + count_of(window, "conn ") - count_of(window, "sync sync-") / 2;
}

// How many connections and datagrams reached ADDR:PORT since `m`: on the client side
// (directly) and on the proxy side (through the proxy).
struct Arrivals {
  std::size_t direct = 0;
  std::size_t proxied = 0;
};

Arrivals since(const Marks& m, const std::string& addr, int port) {
  Arrivals a;
  a.direct = probe_traffic(lab().synced_log(true, addr, port).substr(m.client));
  a.proxied = probe_traffic(lab().synced_log(false, addr, port).substr(m.proxy));
  return a;
}

}  // namespace

TEST_CASE("fail closed: addresses are read as the kernel reads them (odd lengths, AF_UNSPEC)",
          "[shim][lab][probe][failclosed]") {
  // A rule sends port 7100 through the proxy even on loopback: [::1]:7100 and 127.0.0.1:7100
  // on the client side are reachable only directly, those on the proxy side only through it.
  const int port = 7100;
  catchers("::1", port);
  catchers("127.0.0.1", port);
  const std::string via = " -x " + kDanted + " -r \"proxy port 7100\" ";
  struct Case {
    const char* addr;
    const char* args;
    const char* expect;  // the probe's line
    bool arrives;        // through the proxy (else refused before anything left)
  };
  const Case cases[] = {
      // sockaddr_in6 of 24 octets (no sin6_scope_id): accepted by the kernel.
      {"::1", "tcp 24", "connect: ok 0", true},
      {"::1", "udp 24", "sendto: ok 3", true},
      // sockaddr_in longer than 16 octets: accepted, its first 16 read.
      {"127.0.0.1", "tcp 20", "connect: ok 0", true},
      {"127.0.0.1", "udp 20", "sendto: ok 3", true},
      // AF_UNSPEC on an IPv4 UDP socket: read as AF_INET by udp_sendmsg.
      {"127.0.0.1", "udpunspec 16", "sendto: ok 3", true},
      // Shorter than the kernel accepts: its EINVAL, nothing sent anywhere.
      {"::1", "tcp 23", "connect: errno=EINVAL", false},
      {"::1", "udp 23", "sendto: errno=EINVAL", false},
      {"127.0.0.1", "tcp 15", "connect: errno=EINVAL", false},
  };
  for (const auto& c : cases) {
    INFO(c.addr << " " << c.args);
    const Marks m = mark(c.addr, port);
    const std::string out = run_ok(lab().socksify() + via + kAttack + " oddlen " + c.addr + " " +
                                   std::to_string(port) + " " + c.args);
    CHECK_THAT(out, Catch::Contains(c.expect));
    const Arrivals a = since(m, c.addr, port);
    CHECK(a.direct == 0);  // nothing reached the client side's own loopback
    CHECK(a.proxied == (c.arrives ? 1u : 0u));
  }
}

TEST_CASE("fail closed, supervised: addresses are read as the kernel reads them",
          "[shim][lab][probe][failclosed][supervisor]") {
  const int port = 7100;
  catchers("::1", port);
  catchers("127.0.0.1", port);
  const std::string via = " -x " + kDanted + " -r \"proxy port 7100\" ";
  struct Case {
    const char* addr;
    const char* args;
    const char* expect;
    bool arrives;
  };
  // (UDP through the proxy for supervised programs comes with UDP ASSOCIATE in the
  // supervisor; until then such datagrams fail closed.)
  const Case cases[] = {
      {"::1", "tcp 24", "connect: ok 0", true},
      {"::1", "udp 24", "sendto: errno=ENETUNREACH", false},
      {"127.0.0.1", "tcp 20", "connect: ok 0", true},
      {"127.0.0.1", "udp 20", "sendto: errno=ENETUNREACH", false},
      {"127.0.0.1", "udpunspec 16", "sendto: errno=ENETUNREACH", false},
      {"::1", "tcp 23", "connect: errno=EINVAL", false},
      {"::1", "udp 23", "sendto: errno=EINVAL", false},
      {"127.0.0.1", "tcp 15", "connect: errno=EINVAL", false},
  };
  for (const auto& c : cases) {
    INFO(c.addr << " " << c.args);
    const Marks m = mark(c.addr, port);
    const std::string out = run_ok(lab().socksify() + via + kStaticAttack + " oddlen " + c.addr +
                                   " " + std::to_string(port) + " " + c.args);
    CHECK_THAT(out, Catch::Contains(c.expect));
    CHECK_THAT(out, !Catch::Contains("warning"));  // it ran under the supervisor
    const Arrivals a = since(m, c.addr, port);
    CHECK(a.direct == 0);
    CHECK(a.proxied == (c.arrives ? 1u : 0u));
  }
}

TEST_CASE("fail closed: the DNS stub socket is on loopback and hears only the stub",
          "[shim][lab][probe][failclosed]") {
  // Remote-DNS mode, a program's own query to the local stub (the lab's 127.0.0.1:53): the
  // library answers it. A datagram to the socket's port from the machine's other address
  // (192.0.2.2) is not delivered, as it is not without the library (the socket connected to
  // the stub); and the socket is on loopback.
  const std::size_t mark = lab().dns_log().size();
  for (const char* how : {"connect", "sendto"}) {
    INFO(how);
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + kAttack +
                                   " stubinject 127.0.0.1 192.0.2.2 " + how);
    CHECK_THAT(out, Catch::Contains("first answer ok"));
    CHECK_THAT(out, Catch::Contains("second answer ok"));
    CHECK_THAT(out, Catch::Contains("bound 127.0.0.1"));
    CHECK_THAT(out, Catch::Contains("injected not delivered"));
  }
  // The names were answered by the library: nothing reached the stub.
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("fail closed: a name a direct rule keeps local is asked of the stub itself",
          "[shim][lab][failclosed]") {
  // The program's socket hears only the library's helper; the query goes to the stub from a
  // socket of the library's, and its answer (the sink's SERVFAIL) reaches the program.
  const std::size_t mark = lab().dns_log().size();
  const std::string dig = require_program("dig", "bind9-dnsutils");
  const std::string local =
      run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct .local.test\" " + dig +
             " +tries=1 +time=5 @127.0.0.1 name.local.test A");
  CHECK_THAT(local, Catch::Contains("status: SERVFAIL"));
  CHECK_THAT(dns_since(mark, "query name.local.test"), Catch::Contains("query name.local.test"));
}
