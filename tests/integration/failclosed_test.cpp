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

namespace {

// Odd address lengths and AF_UNSPEC, by `program` (the preloaded probe, or its static build
// under the supervisor). A rule sends port 7100 through the proxy even on loopback: [::1]:7100
// and 127.0.0.1:7100 on the client side are reachable only directly, those on the proxy side
// only through it.
void odd_addresses(const std::string& program, bool supervised) {
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
    const std::string out = run_ok(lab().socksify() + via + program + " oddlen " + c.addr + " " +
                                   std::to_string(port) + " " + c.args);
    CHECK_THAT(out, Catch::Contains(c.expect));
    if (supervised) CHECK_THAT(out, !Catch::Contains("warning"));  // the supervisor ran it
    const Arrivals a = since(m, c.addr, port);
    CHECK(a.direct == 0);  // nothing reached the client side's own loopback
    CHECK(a.proxied == (c.arrives ? 1u : 0u));
  }
}

}  // namespace

TEST_CASE("fail closed: addresses are read as the kernel reads them (odd lengths, AF_UNSPEC)",
          "[shim][lab][probe][failclosed]") {
  odd_addresses(kAttack, false);
}

TEST_CASE("fail closed, supervised: addresses are read as the kernel reads them",
          "[shim][lab][probe][failclosed][supervisor]") {
  odd_addresses(kStaticAttack, true);
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

namespace {

// A number from the probe's output: the integer after `key`, or -1.
long number_after(const std::string& out, const std::string& key) {
  const auto at = out.find(key);
  return at == std::string::npos ? -1 : std::stol(out.substr(at + key.size()));
}

}  // namespace

TEST_CASE(
    "fail closed, UDP: reassembly takes only the next position, and MSG_PEEK keeps the datagram",
    "[shim][lab][probe][failclosed]") {
  // FRAG 1 "AAAA", FRAG 3|end "CCCC": a gap, abandoned (RFC 1928 section 7); the whole
  // datagram that follows is delivered.
  lab().start_hostile("udp-gap", "192.0.2.1", 1120);
  const std::string gap = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1120 " + kAttack +
                                 " udpgap 198.51.100.1 7000");
  CHECK_THAT(gap, Catch::Contains("first: 'whole' from 198.51.100.1 7000"));
  CHECK_THAT(gap, !Catch::Contains("AAAA"));
  // A reassembled datagram peeked, then read: the same datagram, and nothing more.
  lab().start_hostile("udp-frag", "192.0.2.1", 1121);
  const std::string peek = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1121 " + kAttack +
                                  " udppeek 198.51.100.1 7000");
  CHECK_THAT(peek, Catch::Contains("peek: 'peek-me-peek-me' from 198.51.100.1 7000"));
  CHECK_THAT(peek, Catch::Contains("read: 'peek-me-peek-me' from 198.51.100.1 7000"));
  CHECK_THAT(peek, Catch::Contains("after: empty"));
}

TEST_CASE("fail closed, UDP: the program's timeouts bound the whole call",
          "[shim][lab][probe][failclosed]") {
  // A relay that answers once, then sends an incomplete fragment every 0.4 s: each one
  // wakes the socket and is dropped. recvmmsg's 1 s timeout ends its wait for more; recv's
  // SO_RCVTIMEO of 1 s ends the call. (Wide bounds: these are hang checks.)
  lab().start_hostile("udp-drip", "192.0.2.1", 1122);
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1122 " + kAttack +
                                 " udptimeout 198.51.100.1 7000");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("recvmmsg: 1 after"));
  const long mmsg = number_after(out, "recvmmsg: 1 after ");
  CHECK(mmsg >= 990);  // it waited for more until its timeout (no earlier)
  CHECK(mmsg < 5000);
  CHECK_THAT(out, Catch::Contains("recv: EAGAIN after"));
  const long recv = number_after(out, "recv: EAGAIN after ");
  CHECK(recv >= 990);
  CHECK(recv < 5000);
}

TEST_CASE("fail closed, UDP: a connected socket hears only its peer",
          "[shim][lab][probe][failclosed]") {
  lab().start_hostile("udp-spoof", "192.0.2.1", 1123);
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1123 " + kAttack +
                                 " udpconnected 198.51.100.1 7000");
  CHECK_THAT(out, Catch::Contains("first: 'real' from 198.51.100.1 7000"));
  CHECK_THAT(out, !Catch::Contains("spoof"));
}

TEST_CASE("fail closed, UDP: one socket, two routes, each datagram where its own route says",
          "[shim][lab][probe][failclosed]") {
  // A: the proxy side's UDP echo (through danted). B: a catcher on the client side's loopback
  // (direct), which echoes.
  const std::string b_log = lab().start_udp_logger(true, "127.0.0.1", 7101);
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + kAttack +
                                 " udproutes 198.51.100.1 7000 127.0.0.1 7101");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("reply A: 'to-A' from 198.51.100.1 7000"));
  // B got the program's 4 octets as they are (no SOCKS header), and its reply came back.
  // (From the client side's address: the first connect fixed the socket's source address,
  // as the kernel does.)
  CHECK_THAT(out, Catch::Contains("reply B: 'to-B' from 127.0.0.1 7101"));
  const std::string b = lab().synced_log(true, "127.0.0.1", 7101);
  CHECK(count_of(b, "got ") == 1);
  CHECK(count_of(b, " 4\n") == 1);
  // sendto(A) after connect(B) still goes through the proxy.
  CHECK_THAT(out, Catch::Contains("sendto A: ok 7"));
  CHECK_THAT(out, Catch::Contains("A synced"));
  CHECK(wait_for_count([] { return lab().server_log(); }, "udp 198.51.100.1 7", 1) == 1);
  CHECK_THAT(lab().server_log(), Catch::Contains("udp 198.51.100.1 4"));
}

TEST_CASE("fail closed, UDP: a reused descriptor, a huge buffer, a non-blocking first datagram",
          "[shim][lab][probe][failclosed]") {
  // Closed behind the library's back, the number reused by accept(): the TCP data, intact.
  const std::string stale =
      run_ok(lab().socksify() + " -x " + kDanted + " " + kAttack + " udpstale 198.51.100.1 7000");
  CHECK_THAT(stale, Catch::Contains("reused: yes"));
  CHECK_THAT(stale, Catch::Contains("recv 40: the TCP data"));
  // A buffer that claims 1 GiB, with 256 MiB of address space to spare: the datagram, no
  // allocation of the buffer's size.
  const std::string big =
      run_ok(lab().socksify() + " -x " + kDanted + " " + kAttack + " udpbig 198.51.100.1 7000");
  CHECK_THAT(big, Catch::Contains("recv 1 GiB: ok 3"));
  // A proxy that never answers: a non-blocking socket's first datagram does not wait for the
  // association (the dial's deadline is 10 s; a wide bound).
  lab().start_hostile("silent", "192.0.2.1", 1124);
  const std::string nb = run_ok(lab().socksify() + " --timeout 10000 -x socks5h://192.0.2.1:1124 " +
                                kAttack + " udpnonblock 198.51.100.1 7000");
  INFO(nb);
  const long took = number_after(nb, "sendto took ");
  CHECK(took >= 0);
  CHECK(took < 2000);
  // Through danted: the datagram waits for the association made in the background, then
  // leaves; its echo comes back.
  const std::string live = run_ok(lab().socksify() + " -x " + kDanted + " " + kAttack +
                                  " udpnonblock 198.51.100.1 7000 wait");
  CHECK_THAT(live, Catch::Contains("sendto: ok 11"));
  CHECK_THAT(live, Catch::Contains("reply ok"));
  CHECK(wait_for_count([] { return lab().server_log(); }, "udp 198.51.100.1 11", 1) == 1);
}

TEST_CASE("fail closed: every data call waits while an event-loop connect is under way",
          "[shim][lab][probe][failclosed]") {
  // A proxy that relays to danted after 400 ms: the calls below all happen during the
  // handshake, and none may reach the proxy or take its reply.
  lab().start_hostile("slow", "192.0.2.1", 1125, {"400", "192.0.2.1", "1080"});
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1125 " + kAttack +
                                 " asyncdata 198.51.100.1 7000");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("connect: errno=EINPROGRESS"));
  for (const char* call : {"sendto NULL", "sendto addr", "sendmmsg", "recvmmsg", "sendfile",
                           "splice in", "splice out"}) {
    CHECK_THAT(out, Catch::Contains(std::string(call) + ": errno=EAGAIN"));
  }
  CHECK_THAT(out, Catch::Contains("poll: ok 1"));
  CHECK_THAT(out, Catch::Contains("SO_ERROR 0"));
  CHECK_THAT(out, Catch::Contains("echo ok"));
}

TEST_CASE("fail closed: a forked child cannot send into a handshake its parent gave up",
          "[shim][lab][probe][failclosed]") {
  lab().start_hostile("silent", "192.0.2.1", 1126);
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1126 " + kAttack +
                                 " asyncforkclose 198.51.100.1 7000");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("connect: errno=EINPROGRESS"));
  CHECK_THAT(out, Catch::Contains("child SO_ERROR ECONNABORTED"));
  // The half-made proxy connection was dissolved (reset): the send fails, nothing leaves.
  CHECK_THAT(out, Catch::Contains("child send: errno=ECONNRESET") ||
                      Catch::Contains("child send: errno=EPIPE"));
  CHECK_THAT(out, Catch::Contains("child exited 0"));
  // The proxy read the greeting and nothing after it, and saw the connection end.
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "silent closed"),
             Catch::Contains("silent closed"));
  CHECK_THAT(lab().hostile_log(), !Catch::Contains("silent more"));
}

TEST_CASE("fail closed, BIND: a listener through the proxy is a listener for every round",
          "[shim][lab][probe][failclosed]") {
  // --listen proxy: a listener on the client side's own address goes through danted (BIND).
  // Each round's peer connects to where getsockname() says (through danted: its BIND address
  // is on the proxy side).
  const std::string out = run_ok(lab().socksify() + " --listen proxy -x " + kDanted + " " +
                                 kAttack + " bindloop 192.0.2.2 3");
  INFO(out);
  for (int round = 1; round <= 3; ++round) {
    const std::string r = "round " + std::to_string(round);
    CHECK_THAT(out, Catch::Contains(r + " listening at 198.51.100.1 "));
    CHECK_THAT(out, Catch::Contains(r + " readable yes"));
    CHECK_THAT(out, Catch::Contains(r + " accepted, data ok"));
    CHECK_THAT(out, Catch::Contains(r + " accept again: EAGAIN after"));
    CHECK(number_after(out, r + " accept again: EAGAIN after ") < 1000);  // never the 10 s BIND
    CHECK_THAT(out, Catch::Contains(r + " readable after: no"));
  }
}

TEST_CASE("fail closed, BIND: a BIND that ends early is an error, not a spin",
          "[shim][lab][probe][failclosed]") {
  lab().start_hostile("bind-eof", "192.0.2.1", 1127);
  const std::string out = run_ok(lab().socksify() + " --listen proxy -x socks5h://192.0.2.1:1127 " +
                                 kAttack + " bindfail 192.0.2.2");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("first accept error: errno=ECONNABORTED"));
  CHECK(number_after(out, " accepted ") == 0);
  // 3 s of waiting cost well under a second of CPU (a spin costs nearly all of it), and the
  // failures came one at a time, not in a loop.
  CHECK(number_after(out, " cpu ") < 500);
  CHECK(number_after(out, " errors ") <= 6);
}

TEST_CASE("BIND: a pre-forking server accepts in its children", "[shim][lab][probe][failclosed]") {
  // Defined behaviour: children forked after listen() share the listener through the proxy
  // and each accept() takes one peer; the process that listened keeps the BINDs going.
  const std::string out = run_ok(lab().socksify() + " --listen proxy -x " + kDanted + " " +
                                 kAttack + " bindprefork 192.0.2.2 3");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("prefork: 3 of 3 peers greeted, 3 children accepted"));
}

// --- The supervisor: races against its checks, UNIX sockets, signals, its DNS, its lines ---

TEST_CASE("fail closed, supervised: sendmmsg, a racing msg_name, a descriptor swapped by dup2",
          "[shim][lab][probe][failclosed][supervisor]") {
  // 7201: direct (loopback). 7202: through the proxy by a rule; the client side's catcher on
  // 7202 is reachable only directly, so anything it gets leaked around the proxy.
  catchers("127.0.0.1", 7201);
  catchers("127.0.0.1", 7202);
  const std::string via = lab().socksify() + " -x " + kDanted + " -r \"proxy port 7202\" ";
  const Marks m2 = mark("127.0.0.1", 7202);
  const Marks m1 = mark("127.0.0.1", 7201);
  // 100 datagrams in one sendmmsg (an earlier supervisor read only the first 64): all through
  // the proxy.
  const Marks p2 = mark("127.0.0.1", 7202);
  const std::string mm = run_ok(via + kStaticAttack + " sendmmsg100 127.0.0.1 7202");
  CHECK_THAT(mm, Catch::Contains("sendmmsg: ok 100"));
  CHECK(number_after(mm, "echoes ") > 0);  // they went through danted and came back
  const Arrivals sent = since(p2, "127.0.0.1", 7202);
  CHECK(sent.direct == 0);
  CHECK(sent.proxied >= static_cast<std::size_t>(number_after(mm, "echoes ")));
  // sendmsg on a socket connected to 7201 while another thread points msg_name at 7202.
  const std::string rn = run_ok(via + kStaticAttack + " racename 127.0.0.1 7201 127.0.0.1 7202");
  CHECK_THAT(rn, Catch::Contains("racename: "));
  // sendto(7202) on a descriptor switched between TCP (to 7201) and UDP.
  const std::string rd = run_ok(via + kStaticAttack + " racedup 127.0.0.1 7201 127.0.0.1 7202");
  CHECK_THAT(rd, Catch::Contains("racedup: "));
  const Arrivals leaked = since(m2, "127.0.0.1", 7202);
  CHECK(leaked.direct == 0);
  // The races ran: the probes sent, and the direct destination got datagrams meant for it
  // (a count, not a share: a busy catcher's receive buffer drops most of 200,000 datagrams).
  CHECK(number_after(rn, "racename: ") > 100);  // calls made
  CHECK(number_after(rn, "calls, ") > 0);       // of which sent
  CHECK(number_after(rd, "racedup: ") > 100);
  CHECK(since(m1, "127.0.0.1", 7201).direct > 0);
}

TEST_CASE("fail closed, preloaded: an address another thread changes is read once",
          "[shim][lab][probe][failclosed]") {
  // The library reads a call's address once and hands the kernel that copy: a thread that
  // flips msg_name (sendmsg, sendmmsg) or the connect address between a direct and a proxied
  // destination cannot make the kernel send to the proxied one directly. (A descriptor
  // swapped by dup2 during the call is beyond a preloaded library: doc/design.md, "races".)
  catchers("127.0.0.1", 7211);
  catchers("127.0.0.1", 7212);
  const std::string via = lab().socksify() + " -x " + kDanted + " -r \"proxy port 7212\" ";
  for (const std::string how : {"sendmsg", "mmsg", "connect"}) {
    INFO(how);
    const Marks m2 = mark("127.0.0.1", 7212);
    const Marks m1 = mark("127.0.0.1", 7211);
    const std::string out =
        run_ok(via + kAttack + " racename 127.0.0.1 7211 127.0.0.1 7212 " + how);
    CHECK_THAT(out, Catch::Contains("racename: "));
    CHECK(since(m2, "127.0.0.1", 7212).direct == 0);
    // The race ran: the probe's calls went out, and the direct destination got some of them
    // (not a share: under load its catcher's receive buffer drops most datagrams).
    CHECK(number_after(out, "racename: ") > 100);  // calls made
    CHECK(number_after(out, "calls, ") > 0);       // of which sent
    CHECK(since(m1, "127.0.0.1", 7211).direct > 0);
  }
}

TEST_CASE("supervised: a UNIX socket connected by a relative path, as without socksify",
          "[shim][lab][probe][failclosed][supervisor]") {
  const std::string cd = "cd " + lab().dir() + " && ";
  // Single-threaded: the program connects itself (its directory, its credentials).
  const std::string one =
      run_ok(cd + lab().socksify() + " -x " + kDanted + " " + kStaticAttack + " unixcwd sub1");
  CHECK_THAT(one, Catch::Contains("connect: ok 0"));
  CHECK_THAT(one, Catch::Contains("reached real; peer pid is mine"));
  CHECK_THAT(one, !Catch::Contains("decoy"));
  // Multi-threaded: the supervisor connects its duplicate, with the path resolved in the
  // program's directory (the peer's SO_PEERCRED then names the supervisor: documented).
  const std::string many = run_ok(cd + lab().socksify() + " -x " + kDanted + " " + kStaticAttack +
                                  " unixcwd sub2 threads");
  CHECK_THAT(many, Catch::Contains("connect: ok 0"));
  CHECK_THAT(many, Catch::Contains("reached real"));
  CHECK_THAT(many, !Catch::Contains("decoy"));
}

TEST_CASE("supervised: a signal interrupts a direct connect as it interrupts the kernel's",
          "[shim][lab][probe][failclosed][supervisor]") {
  // A tarpit the client side reaches directly (a rule): the connect never completes; alarm(1)
  // without SA_RESTART must end it with EINTR after about a second (wide bound: a hang check).
  lab().start_hostile("tarpit", "192.0.2.1", 1128);
  for (const std::string& program : {kStaticAttack, kAttack}) {
    INFO(program);
    const std::string out =
        run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct 192.0.2.1/32\" " + program +
               " alarmconnect 192.0.2.1 1128");
    CHECK_THAT(out, Catch::Contains("connect: EINTR after"));
    CHECK(number_after(out, "EINTR after ") < 5000);
  }
}

TEST_CASE("supervised: blocking connects to a silent host do not hold up the others",
          "[shim][lab][probe][failclosed][supervisor]") {
  // Twelve threads in blocking direct connects to a tarpit (each waits as the kernel's would,
  // on a worker of the supervisor's); a thirteenth connect to a live destination must not
  // queue behind them (a fixed pool of 8 workers made it wait for the tarpit's 20 s).
  lab().start_hostile("tarpit", "192.0.2.1", 1129);
  catchers("127.0.0.1", 7221);
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct 192.0.2.1/32\" " + kStaticAttack +
             " stuckmany 192.0.2.1 1129 127.0.0.1 7221 12");
  CHECK_THAT(out, Catch::Contains("inside connect: 12 of 12"));
  CHECK_THAT(out, Catch::Contains("good connect: ok after"));
  CHECK(number_after(out, "good connect: ok after ") < 10000);  // a hang check, not a timing
}

TEST_CASE("supervised: the DNS responder answers a name a direct rule keeps local at once",
          "[shim][lab][probe][failclosed][supervisor]") {
  // The lab's name server (the client side's sink, 127.0.0.1:53) is asked for the direct
  // name, and its answer (SERVFAIL) reaches the program; a remote name is answered by the
  // supervisor itself with a fake address, and never reaches the sink.
  const std::size_t mark0 = lab().dns_log().size();
  const std::string local =
      run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct .local.test\" " + kStaticAttack +
             " dnsask 127.0.0.1 name.local.test");
  CHECK_THAT(local, Catch::Contains("answer rcode 2 after"));
  CHECK(number_after(local, "answer rcode 2 after ") < 3000);
  CHECK_THAT(dns_since(mark0, "query name.local.test"), Catch::Contains("query name.local.test"));
  const std::size_t mark1 = lab().dns_log().size();
  const std::string remote = run_ok(lab().socksify() + " -x " + kDanted + " " + kStaticAttack +
                                    " dnsask 127.0.0.1 remote.lab");
  CHECK_THAT(remote, Catch::Contains("answer rcode 0 after"));
  CHECK(leaks_since(mark1).empty());
}

TEST_CASE("supervised: the same lines as the preloaded library",
          "[shim][lab][probe][failclosed][supervisor]") {
  // A dead proxy: the failure line, by default. Then -v: a failover line and the success
  // line. The static probe runs under the supervisor, the dynamic one with the preload.
  for (const std::string& probe_path :
       {std::string(SOCKSIFY_STATIC_PROBE), std::string(SOCKSIFY_PROBE)}) {
    INFO(probe_path);
    const std::string dead = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1 " + probe_path +
                                      " connect target.lab 7000 block");
    CHECK(count_of(dead,
                   "connect to target.lab:7000 failed: proxy socks5h://192.0.2.1:1 "
                   "unreachable: Connection refused") == 1);
    const std::string verbose =
        run_ok(lab().socksify() + " -v -x socks5h://192.0.2.1:1 -x " + kDanted + " " + probe_path +
               " connect target.lab 7000 block");
    CHECK_THAT(verbose, Catch::Contains("proxy socks5h://192.0.2.1:1 unreachable: Connection "
                                        "refused; trying the next one"));
    CHECK_THAT(verbose, Catch::Contains("connect target.lab:7000 via " + kDanted + " (default)"));
    CHECK_THAT(verbose, Catch::Contains("echo ok"));
  }
}

TEST_CASE("supervised: UDP through the proxy with the library's UDP ASSOCIATE",
          "[shim][lab][probe][failclosed][supervisor]") {
  // The proxy side's UDP echo through danted: by address, and by a name only the proxy side
  // knows (sent as a name, the source reported as its fake address). Every read with a source
  // is unwrapped by the supervisor; a connected socket reads plain datagrams with recv and
  // read (the supervisor relays them).
  for (const char* host : {"198.51.100.1", "target.lab"}) {
    INFO(host);
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + kStaticAttack +
                                   " udpround " + host + " 7000");
    CHECK_THAT(out, !Catch::Contains("warning"));
    CHECK_THAT(out, Catch::Contains("recvfrom: 'one' from "));
    CHECK_THAT(out, Catch::Contains("recvmsg: 'two!' from "));
    CHECK_THAT(out, Catch::Contains("recvmmsg: 'three'"));
    CHECK_THAT(out, Catch::Contains("recv: 'four'"));
    CHECK_THAT(out, Catch::Contains("read: 'five!'"));
    CHECK_THAT(out, !Catch::Contains("WRONG"));
    // The source is what the relay reports (danted: the address it resolved the name to);
    // the connected socket's peer is what the program asked for (a fake address for a name).
    CHECK_THAT(out, Catch::Contains("recvfrom: 'one' from 198.51.100.1 7000"));
    CHECK_THAT(out, Catch::Contains(std::string(host) == "target.lab" ? "peer 198.18."
                                                                      : "peer 198.51.100.1 7000"));
  }
  // They crossed danted: the echo server saw its egress address, never the client side's.
  CHECK(wait_for_count([] { return lab().server_log(); }, "udp 198.51.100.1 ", 10) >= 10);
  CHECK_THAT(lab().server_log(), !Catch::Contains("udp 192.0.2.2"));
}
