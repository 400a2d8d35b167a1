// Real programs through libsocksify.so in the lab (see lab.hpp): the client namespace has no
// route to any target, and only the proxy side can resolve the lab's names, so a success
// proves the traffic crossed the proxy, and the client-side DNS sink proves nothing leaked.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "integration/lab.hpp"
#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

TEST_CASE("lab sanity: without the shim the client reaches nothing", "[shim][lab]") {
  auto out = run_fail("curl -sS -m 3 http://198.51.100.1:8080/");
  CHECK_THAT(out, Catch::Contains("curl"));
  out = run_fail("curl -sS -m 3 http://target.lab:8080/");
  // The lookup reached the client-side DNS sink: it does record leaks.
  CHECK_THAT(dns_since(0, "query target.lab"), Catch::Contains("query target.lab"));
}

TEST_CASE("curl through danted with remote DNS: no lookup leaks", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " -v curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("connect target.lab:8080 via socks5h://192.0.2.1:1080"));
  CHECK_THAT(server_log_with("http 198.51.100.1 /"),
             Catch::Contains("http 198.51.100.1 /"));  // danted's egress
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("curl, IPv4 and IPv6 literal destinations", "[shim][lab]") {
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " curl -sS -m 10 http://198.51.100.1:8080/"),
      Catch::Contains("hello from the proxy side"));
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " curl -sS -m 10 -g http://[2001:db8::1]:8080/"),
      Catch::Contains("hello from the proxy side"));
}

TEST_CASE("username/password from the environment, never in the log", "[shim][lab]") {
  // ensure_test_user() runs inside Danted's fixture; the lab's danted shares the host's passwd.
  Danted unused(true);
  const std::string out = run_ok("SOCKSIFY_PASSWORD=" + std::string(kTestPassword) + " " +
                                 lab().socksify() + " -x socks5h://" + kTestUser +
                                 "@192.0.2.1:1080 -vv curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("method username/password, 1 wait"));
  CHECK(out.find(kTestPassword) == std::string::npos);
}

TEST_CASE(
    "a password file: the children get the file's path, never the password, and env never "
    "prints it",
    "[shim][lab]") {
  Danted unused(true);
  const std::string pw = lab().dir() + "/pw";
  write_file(pw, std::string(kTestPassword) + "\n");
  const std::string via = lab().socksify() + " --password-file " + pw + " -x socks5h://" +
                          kTestUser + "@192.0.2.1:1080 ";
  // The program's environment: the path only.
  const std::string env = run_ok(via + "-- env");
  CHECK_THAT(env, Catch::Contains("SOCKSIFY_PASSWORD_FILE=" + pw));
  CHECK(env.find(kTestPassword) == std::string::npos);
  CHECK_THAT(env, !Catch::Contains("SOCKSIFY_PASSWORD="));
  // ... and the library reads the file: username/password through danted.
  const std::string out = run_ok(via + "-v curl -sS -m 10 http://target.lab:8080/?via=pwfile");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("method username/password"));
  CHECK(out.find(kTestPassword) == std::string::npos);
  // `socksify env` prints the path, not the password.
  const std::string shell = run_ok(via + "env");
  CHECK_THAT(shell, Catch::Contains("export SOCKSIFY_PASSWORD_FILE='" + pw + "'"));
  CHECK(shell.find(kTestPassword) == std::string::npos);
}

TEST_CASE("microsocks: pipelining stall detected, then one message per round trip", "[shim][lab]") {
  const std::string out = run_ok(lab().socksify() +
                                 " -x socks5h://192.0.2.1:1082 -v curl -sS -m 20 "
                                 "http://target.lab:8080/ http://target.lab:8080/");
  CHECK(count_of(out, "hello from the proxy side") == 2);
  // The first connection stalled on the pipelined greeting and fell back (the -v line says
  // so and where it is remembered); the second went straight to one message per round trip:
  // the line is not repeated, and both connections crossed microsocks.
  CHECK(count_of(out, "drops messages sent together with the greeting") == 1);
  CHECK_THAT(out, Catch::Contains("remembered for a day in"));
  CHECK(count_of(out, "via socks5h://192.0.2.1:1082") == 2);
  CHECK(wait_for_count([] { return lab().server_log(); }, "http 198.51.100.1 /", 2) >= 2);
}

TEST_CASE("python3: urllib and an asyncio client (non-blocking connect)", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted +
             " python3 -c \"import urllib.request as u; "
             "print(u.urlopen(\\\"http://target.lab:8080/\\\", timeout=10).read().decode())\""),
      Catch::Contains("hello from the proxy side"));
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted +
                    " python3 -c \"import asyncio\n"
                    "async def main():\n"
                    "    r, w = await asyncio.open_connection(\\\"target.lab\\\", 7000)\n"
                    "    w.write(b\\\"async ok\\\\n\\\"); await w.drain()\n"
                    "    print((await r.readline()).decode().strip()); w.close()\n"
                    "asyncio.run(main())\""),
             Catch::Contains("async ok"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("C probes: blocking, poll, select, epoll edge-triggered before and after connect",
          "[shim][lab][probe]") {
  for (const char* how : {"block", "poll", "select", "epoll-et", "epoll-before"}) {
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                                   " connect target.lab 7000 " + how);
    CHECK_THAT(out, Catch::Contains("echo ok"));
    CHECK_THAT(out, Catch::Contains("peer 198.18."));  // getpeername: the fake address asked for
  }
}

TEST_CASE("C probes: IPv6 and v4-mapped destinations", "[shim][lab][probe]") {
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " connect 2001:db8::1 7000 poll 6"),
             Catch::Contains("peer 2001:db8::1 7000"));
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " connect 198.51.100.1 7000 block mapped"),
             Catch::Contains("peer ::ffff:198.51.100.1 7000"));
  // A name asked for as AF_INET6 only gets an IPv6 fake address, and works.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " connect target.lab 7000 block 6"),
             Catch::Contains("peer fd5f:636b:7366::"));
}

TEST_CASE("C probes: 8 threads x 200 connects", "[shim][lab][probe]") {
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " threads target.lab 7000 8 200"),
             Catch::Contains("ok 1600 failed 0"));
}

TEST_CASE("C probes: dup, fcntl(F_DUPFD), dup3 and close keep getpeername right",
          "[shim][lab][probe]") {
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " dup target.lab 7000"),
             Catch::Contains("dup ok"));
  CHECK_THAT(
      run_fail(lab().socksify() + " -x " + kDanted + " " + probe() + " twice target.lab 7000"),
      Catch::Contains("errno=EISCONN"));
}

TEST_CASE("errors: refused port, unreachable proxy, reject rule", "[shim][lab][probe]") {
  CHECK_THAT(
      run_fail(lab().socksify() + " -x " + kDanted + " " + probe() + " connect target.lab 7001"),
      Catch::Contains("errno=ECONNREFUSED"));
  const std::string down = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1 -v " + probe() +
                                    " connect target.lab 7000");
  CHECK_THAT(down, Catch::Contains("errno=ECONNREFUSED"));
  CHECK_THAT(down, Catch::Contains("proxy socks5h://192.0.2.1:1 unreachable"));
  CHECK_THAT(run_fail(lab().socksify() + " -x " + kDanted + " -r \"reject port 7000\" " + probe() +
                      " connect target.lab 7000"),
             Catch::Contains("errno=EACCES"));
  CHECK_THAT(run_fail(lab().socksify() + " -x " + kDanted + " -r \"reject .lab\" " + probe() +
                      " connect target.lab 7000"),
             Catch::Contains("errno=EACCES"));
}

TEST_CASE("failover: a dead proxy is skipped for the next one", "[shim][lab]") {
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1 -x " + kDanted +
                                 " -v curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("unreachable"));
}

TEST_CASE("fork then exec: sh -c with two curls", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted +
                                 " /bin/sh -c \"curl -sS -m 10 http://target.lab:8080/ && "
                                 "curl -sS -m 10 http://target.lab:8080/index.html\"");
  CHECK(out.find("hello from the proxy side") != out.rfind("hello from the proxy side"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("fork before any network use: parent and child share the fake DNS table",
          "[shim][lab][probe]") {
  // The library initialises lazily; its fork handler creates the shared table in the parent
  // first, so a name the child resolves is known to the parent too.
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " forked target.lab 7000");
  CHECK_THAT(out, Catch::Contains("child resolved 198.18."));
  CHECK_THAT(out, Catch::Contains("echo ok"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("resolver hooks: fake addresses, reverse lookups, AF_INET6 only", "[shim][lab][probe]") {
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " resolve target.lab");
  CHECK_THAT(out, Catch::Contains("AF_UNSPEC 198.18."));
  CHECK_THAT(out, Catch::Contains("name=target.lab"));
  CHECK_THAT(out, Catch::Contains("AF_INET6 fd5f:636b:7366::"));
  CHECK_THAT(out, Catch::Contains("gethostbyaddr target.lab"));
  CHECK_THAT(out, Catch::Contains("gethostbyname2_r fd5f:636b:7366::"));
  // Numeric hosts in inet_aton's short forms stay numeric, as getaddrinfo itself reads them.
  // (Its AF_INET6 lookup fails, exactly as it does without the shim.)
  std::string shorthand;
  lab().client(lab().socksify() + " -x " + kDanted + " " + probe() + " resolve 127.1", &shorthand);
  CHECK_THAT(shorthand, Catch::Contains("AF_UNSPEC 127.0.0.1 80"));
  CHECK_THAT(shorthand, Catch::Contains("gethostbyname 127.0.0.1"));
  // A name too long for SOCKS (over 255 octets) fails in every call, and none of them falls
  // back to the local resolver.
  const std::string long_name = std::string(250, 'a') + ".lab.example";
  const std::string too_long =
      run_fail(lab().socksify() + " -x " + kDanted + " " + probe() + " resolve " + long_name);
  CHECK_THAT(too_long, Catch::Contains("getaddrinfo AF_UNSPEC: Name or service not known"));
  CHECK_THAT(too_long, Catch::Contains("gethostbyname: Unknown host"));
  CHECK_THAT(too_long, Catch::Contains("gethostbyname2_r: Unknown host"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("resolver-library queries (res_query and relatives) never leak in remote-DNS mode",
          "[shim][lab][probe]") {
  // libc sends these with its own internal socket calls, past our sendto/connect hooks.
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " -v " + probe() + " resquery target.lab");
  for (const char* fn : {"res_query", "res_search", "res_querydomain", "res_send", "__res_query"}) {
    CHECK_THAT(out, Catch::Contains(std::string(fn) + " -1 h_errno=3"));  // NO_RECOVERY
  }
  CHECK_THAT(out, Catch::Contains("res_nquery -1 res_h_errno=3"));
  CHECK_THAT(out, Catch::Contains("refused res_query for target.lab"));
  CHECK(leaks_since(mark).empty());
  // A direct domain rule lets them through to the local resolver, and so does local-DNS mode
  // (the sink answers SERVFAIL, but it sees the queries).
  std::string unused;
  lab().client(lab().socksify() + " -x " + kDanted + " -r \"direct .lab\" " + probe() +
                   " resquery target.lab",
               &unused);
  CHECK_THAT(dns_since(mark, "query _xmpp._tcp.target.lab"),
             Catch::Contains("query _xmpp._tcp.target.lab"));
  const std::size_t mark2 = lab().dns_log().size();
  lab().client(lab().socksify() + " -x socks5://192.0.2.1:1080 " + probe() + " resquery target.lab",
               &unused);
  CHECK_THAT(dns_since(mark2, "query target.lab"), Catch::Contains("query target.lab"));
}

TEST_CASE("getaddrinfo_a answers with fake addresses too", "[shim][lab][probe]") {
  // glibc's own threads behind getaddrinfo_a call its internal getaddrinfo, past our hook.
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " gaia target.lab");
  CHECK_THAT(out, Catch::Contains("GAI_WAIT 0 198.18."));
  // Completed requests: gai_suspend and gai_cancel say EAI_ALLDONE, as glibc does for its own.
  CHECK_THAT(out, Catch::Contains("GAI_NOWAIT 0 notified=1 suspend=-103 cancel=alldone 198.18."));
  CHECK(leaks_since(mark).empty());
  // Control: in local-DNS mode glibc's asynchronous lookup asks the local resolver, and the
  // sink sees it. (Under ThreadSanitizer, glibc's getaddrinfo_a threads crash the
  // instrumented probe even without the library: the uninstrumented static probe, which the
  // library cannot reach, shows the same lookup there.)
  std::string unused;
#ifdef SOCKSIFY_TSAN
  lab().client(SOCKSIFY_STATIC_PROBE " gaia target.lab", &unused);
#else
  lab().client(lab().socksify() + " -x socks5://192.0.2.1:1080 " + probe() + " gaia target.lab",
               &unused);
#endif
  CHECK_THAT(dns_since(mark, "query target.lab"), Catch::Contains("query target.lab"));
}

TEST_CASE("reverse lookups of proxied addresses never ask the local resolver",
          "[shim][lab][probe]") {
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " reverse 198.51.100.1");
  CHECK_THAT(out, Catch::Contains("getnameinfo 0 198.51.100.1"));  // the numeric form
  CHECK_THAT(out, Catch::Contains("getnameinfo NI_NAMEREQD Name or service not known"));
  CHECK_THAT(out, Catch::Contains("gethostbyaddr Unknown host"));
  CHECK_THAT(out, Catch::Contains("gethostbyaddr_r 0 Unknown host"));
  CHECK(leaks_since(mark).empty());
  // Addresses routed direct (loopback here) are looked up as usual: /etc/hosts names 127.0.0.1.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " reverse 127.0.0.1"),
             Catch::Contains("gethostbyaddr localhost"));
  // Control: in local-DNS mode the same lookup reaches the local resolver.
  std::string unused;
  lab().client(
      lab().socksify() + " -x socks5://192.0.2.1:1080 " + probe() + " reverse 198.51.100.1",
      &unused);
  CHECK_THAT(dns_since(mark, "1.100.51.198.in-addr.arpa"),
             Catch::Contains("1.100.51.198.in-addr.arpa"));
}

TEST_CASE("raw DNS to a local stub is answered by the library in remote-DNS mode", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  // Every way to send a query to the stub (127.0.0.1:53 here, a sink that logs what reaches
  // it): answered with the name's fake address, as if from the stub; nothing reaches it.
  const std::string udp =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " udp53 127.0.0.1");
  CHECK_THAT(udp, Catch::Contains("sent"));
  CHECK_THAT(udp, Catch::Contains("answers 5"));
  CHECK_THAT(udp, Catch::Contains("answer rcode 0 A 198.1"));
  CHECK_THAT(udp, Catch::Contains("from 127.0.0.1 53"));
  CHECK(leaks_since(mark).empty());
  // dig (libuv, a connected socket): an A answer from the fake range; other types REFUSED.
  const std::string dig = require_program("dig", "bind9-dnsutils");
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + dig +
                    " +short +tries=1 +time=3 @127.0.0.1 target.lab A"),
             Catch::Contains("198.1"));
  std::string mx;
  lab().client(lab().socksify() + " -x " + kDanted + " " + dig +
                   " +tries=1 +time=3 @127.0.0.1 target.lab MX",
               &mx);
  CHECK_THAT(mx, Catch::Contains("status: REFUSED"));
  CHECK(leaks_since(mark).empty());
  // Local DNS mode (socks5://) leaves the resolver alone, raw DNS included: the sink sees the
  // lookups.
  CHECK_THAT(
      run_ok(lab().socksify() + " -x socks5://192.0.2.1:1080 " + probe() + " udp53 127.0.0.1"),
      Catch::Contains("sent"));
  CHECK_THAT(dns_since(mark, "query leak.test"), Catch::Contains("query leak.test"));
  run_fail(lab().socksify() + " -x socks5://192.0.2.1:1080 curl -sS -m 5 http://target.lab:8080/");
  CHECK_THAT(dns_since(mark, "query target.lab"), Catch::Contains("query target.lab"));
}

TEST_CASE(
    "UDP follows the policy: through the proxy where TCP would be, direct where it goes "
    "direct, refused by a reject rule",
    "[shim][lab][probe]") {
  // The datagrams leave through danted (UDP ASSOCIATE). (To the echo port: a port with no
  // listener would draw an ICMP error that makes danted end the association.)
  std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " -v " + probe() + " udp 198.51.100.1 7000");
  CHECK_THAT(out, Catch::Contains("udp sent"));
  CHECK_THAT(out, Catch::Contains("UDP associated via " + kDanted));
  // A reject rule gives EACCES.
  CHECK_THAT(run_fail(lab().socksify() + " -x " + kDanted + " -r \"reject port 9999\" " + probe() +
                      " udp 192.0.2.1 9999"),
             Catch::Contains("sendto: errno=EACCES"));
  // ICMP on a raw socket: SOCKS carries only UDP; refused, never sent direct.
  const std::string raw =
      run_fail(lab().socksify() + " -v -x " + kDanted + " " + probe() + " rawicmp 198.51.100.1");
  CHECK_THAT(raw, Catch::Contains("raw sendto: errno=ENETUNREACH"));
  CHECK_THAT(raw, Catch::Contains("only UDP datagrams go through the proxy"));
  // Direct destinations work: loopback by default, others by a rule. Each is proven by where
  // the datagrams arrived: a logger on the CLIENT side's own loopback (through the proxy they
  // would reach the proxy side's), and one on the proxy host that logs the client's address
  // 192.0.2.2 as the source (through danted they would come from 198.51.100.1). The probe
  // sends two: sendto, then connect + send.
  const std::string lo = lab().start_udp_logger(true, "127.0.0.1", 9999);
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " udp 127.0.0.1 9999"),
             Catch::Contains("udp sent"));
  CHECK(wait_for_count([lo] { return read_file(lo); }, "got 127.0.0.1 4", 2) == 2);
  const std::string far = lab().start_udp_logger(false, "192.0.2.1", 9999);
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct 192.0.2.0/24\" " + probe() +
                    " udp 192.0.2.1 9999"),
             Catch::Contains("udp sent"));
  CHECK(wait_for_count([far] { return read_file(far); }, "got 192.0.2.2 4", 2) == 2);
  CHECK(count_of(read_file(far), "got ") == 2);
}

TEST_CASE("UDP ASSOCIATE through danted: every call family, IPv4 and IPv6, 8000 and 60000 octets",
          "[shim][lab][probe]") {
  for (const char* size : {"100", "8000", "60000"}) {
    INFO(size);
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                                   " udpecho 198.51.100.1 7000 4 " + size);
    CHECK_THAT(out, Catch::Contains("udp echo ok"));
    // The program sees the real remote address as the source, never the relay.
    CHECK_THAT(out, Catch::Contains("recvfrom " + std::string(size) + " from 198.51.100.1 7000"));
    CHECK_THAT(out, Catch::Contains("peer 198.51.100.1 7000"));
    CHECK_THAT(out, Catch::Contains("disconnected: EDESTADDRREQ"));
  }
  // The echo server saw danted's egress address: the datagrams crossed the proxy (the client
  // side has no route to 198.51.100.1 at all).
  CHECK_THAT(server_log_with("udp 198.51.100.1 60000"), Catch::Contains("udp 198.51.100.1 60000"));
  // IPv6, and a name behind a fake address (the name goes in the datagram header).
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " udpecho 2001:db8::1 7000 6 1200"),
             Catch::Contains("udp echo ok"));
  CHECK_THAT(server_log_with("udp 2001:db8::1 1200"), Catch::Contains("udp 2001:db8::1 1200"));
  const std::string named = run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                                   " udpecho target.lab 7000 4 300");
  CHECK_THAT(named, Catch::Contains("udp echo ok"));
}

TEST_CASE("UDP ASSOCIATE: a forked child shares the association", "[shim][lab][probe]") {
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " udpfork 198.51.100.1 7000"),
      Catch::Contains("udp fork ok"));
  // One association, made by the parent (danted logs it when it is made).
  CHECK(count_of(wait_for_text([] { return lab().danted_log(); }, "udpassociate"),
                 "udpassociate") == 1);
}

TEST_CASE("UDP ASSOCIATE: eight threads share one socket", "[shim][lab][probe]") {
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                    " udpthreads 198.51.100.1 7000 8 50"),
             Catch::Contains("udp threads ok=400 bad=0"));
}

TEST_CASE("UDP fragments are reassembled, and a proxy that closes the association fails the socket",
          "[shim][lab][probe]") {
  lab().start_hostile("udp-frag", "192.0.2.1", 1095);
  CHECK_THAT(run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1095 " + probe() +
                    " udpfrag 198.51.100.1 7000 3000"),
             Catch::Contains("reassembled 3000"));
  lab().start_hostile("udp-close", "192.0.2.1", 1096);
  const std::string out = run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1096 " + probe() +
                                 " udpclose 198.51.100.1 7000");
  CHECK_THAT(out, Catch::Contains("first echoed"));
  CHECK_THAT(out, Catch::Contains("later send: errno=ECONNRESET"));
  CHECK(count_of(out, "the proxy closed its control connection") == 1);
}

TEST_CASE("UDP through a proxy without UDP ASSOCIATE (microsocks, ssh -D) fails closed",
          "[shim][lab]") {
  // microsocks answers "command not supported".
  std::string out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1082 " + probe() +
                             " udp 198.51.100.1 9999");
  CHECK_THAT(out, Catch::Contains("sendto: errno=EOPNOTSUPP"));
  CHECK_THAT(out, Catch::Contains("UDP ASSOCIATE failed: proxy socks5h://192.0.2.1:1082 does "
                                  "not support UDP (it answered \"command not supported\" to "
                                  "UDP ASSOCIATE)"));
  // Fifteen UDP sockets (as a browser opens for one page), blocking and non-blocking: each
  // fails, and the line comes once for the proxy.
  const std::string many = lab().dir() + "/udp_many.py";
  write_file(many,
             "import socket, time\n"
             "failed = 0\n"
             "for i in range(15):\n"
             "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "    s.setblocking(i % 2 == 0)\n"
             "    # A non-blocking socket's first datagram waits for the association; a later\n"
             "    # send reports its failure (bounded: 10 s).\n"
             "    end = time.monotonic() + 10\n"
             "    while time.monotonic() < end:\n"
             "        try:\n"
             "            s.sendto(b'x', ('198.51.100.1', 9999))\n"
             "        except OSError:\n"
             "            failed += 1\n"
             "            break\n"
             "        time.sleep(0.05)\n"
             "print('failed', failed, flush=True)\n");
  const std::string lines =
      run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1082 python3 " + many + " 2>&1");
  CHECK_THAT(lines, Catch::Contains("failed 15"));
  CHECK(count_of(lines, "UDP ASSOCIATE failed") == 1);
  // OpenSSH's dynamic forwarding: no UDP either. The socket fails, nothing goes direct.
  const std::string key = start_sshd(2223);
  lab().start_on_proxy_side(
      {"/bin/sh", "-c",
       require_program("ssh", "openssh-client") + " -N -D 192.0.2.1:1086 -i " + key + kSshOptions +
           " -o ExitOnForwardFailure=yes -p 2223 root@198.51.100.1"},
      "ssh-D-udp.log");
  REQUIRE(lab().wait_on_proxy_side("192.0.2.1", 1086));
  out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1086 " + probe() +
                 " udp 198.51.100.1 7000");
  CHECK_THAT(out, Catch::Contains("sendto: errno="));
  CHECK_THAT(out, Catch::Contains("UDP ASSOCIATE failed"));
}

TEST_CASE("a python3 UDP client and dig through the proxy", "[shim][lab]") {
  const std::string script = lab().dir() + "/udp_client.py";
  write_file(script,
             "import socket\n"
             "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "s.settimeout(2)\n"
             "for attempt in range(4):  # UDP: a datagram may be lost on a busy machine\n"
             "    s.sendto(b\"hello from python\", (\"198.51.100.1\", 7000))\n"
             "    try:\n"
             "        data, peer = s.recvfrom(100)\n"
             "        break\n"
             "    except socket.timeout:\n"
             "        pass\n"
             "print(data.decode(), peer[0], peer[1])\n");
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " python3 " + script),
             Catch::Contains("hello from python 198.51.100.1 7000"));
  // dig speaks DNS itself, to a server only the proxy side can reach: relayed, answered.
  const std::string dig = require_program("dig", "bind9-dnsutils");
  const std::size_t mark = lab().dns_log().size();
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + dig +
                                 " +short +tries=4 +time=2 @198.51.100.1 target.lab A");
  CHECK_THAT(out, Catch::Contains("198.51.100.1"));
  CHECK_THAT(server_log_with("dns 198.51.100.1 target.lab"),
             Catch::Contains("dns 198.51.100.1 target.lab"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("bad configuration: one clear line, the program does not run", "[shim][lab]") {
  std::string out;
  CHECK(lab().client(lab().socksify() + " -x socks5h://192.0.2.1:1080 -r \"allow all\" /bin/true",
                     &out) == 2);
  CHECK_THAT(out, Catch::Contains("expected direct, proxy, reject or default first"));
  // Preloaded by hand, the library reads its configuration lazily: a program that never uses
  // the network is left alone, and one that does stops at its first network call (exit 2,
  // one line) before any byte leaves.
  CHECK(lab().client("SOCKSIFY_PROXY=nope LD_PRELOAD=" SOCKSIFY_SHIM " /bin/true", &out) == 0);
  CHECK(out.empty());
  const std::size_t mark = lab().dns_log().size();
  CHECK(lab().client("SOCKSIFY_PROXY=nope LD_PRELOAD=" SOCKSIFY_SHIM " " + probe() +
                         " connect target.lab 7000",
                     &out) == 2);
  CHECK_THAT(out, Catch::Contains("configuration error: SOCKSIFY_PROXY"));
  CHECK_THAT(out, !Catch::Contains("echo ok"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("wget and git clone over HTTP", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  require_program("wget", "wget");
  const std::string git = require_program("git", "git");
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " wget -q -O - http://target.lab:8080/"),
             Catch::Contains("hello from the proxy side"));
  // A bare repository served by the proxy side's plain HTTP server ("dumb" protocol).
  const std::string work = lab().dir() + "/gitwork";
  const std::string repo = lab().dir() + "/www/repo.git";
  std::string out;
  REQUIRE(run_command("set -e; mkdir -p " + work + " && cd " + work + " && " + git +
                          " init -q -b main . && echo socksified > README && " + git +
                          " add README && " + git +
                          " -c user.name=t -c user.email=t@t commit -qm init && " + git +
                          " clone -q --bare . " + repo + " && cd " + repo + " && " + git +
                          " update-server-info && chmod -R a+rX " + lab().dir() + "/www",
                      &out) == 0);
  run_ok(lab().socksify() + " -x " + kDanted + " " + git +
         " clone -q http://target.lab:8080/repo.git " + lab().dir() + "/clone");
  CHECK(read_file(lab().dir() + "/clone/README") == "socksified\n");
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("the OpenSSH client to an sshd on the proxy side", "[shim][lab]") {
  const std::string key = start_sshd(22);
  const std::string result = run_ok(lab().socksify() + " -x " + kDanted + " ssh -i " + key +
                                    kSshOptions + " root@target.lab echo ssh-through-socksify");
  CHECK_THAT(result, Catch::Contains("ssh-through-socksify"));
}

TEST_CASE("ssh -D as the proxy: curl through it with remote DNS", "[shim][lab]") {
  const std::size_t mark = lab().dns_log().size();
  const std::string key = start_sshd(2222);
  const std::string ssh = require_program("ssh", "openssh-client");
  lab().start_on_proxy_side({"/bin/sh", "-c",
                             ssh + " -N -D 192.0.2.1:1083 -i " + key + kSshOptions +
                                 " -o ExitOnForwardFailure=yes -p 2222 root@198.51.100.1"},
                            "ssh-D.log");
  REQUIRE(lab().wait_on_proxy_side("192.0.2.1", 1083));
  const std::string out = run_ok(lab().socksify() +
                                 " -x socks5h://192.0.2.1:1083 -v curl -sS -m 10 "
                                 "http://target.lab:8080/?via=ssh-d");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("method none, 1 wait"));
  CHECK_THAT(server_log_with("/?via=ssh-d"), Catch::Contains("/?via=ssh-d"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("a direct domain rule resolves locally and connects direct", "[shim][lab]") {
  // direct.lab is in the client side's /etc/hosts (192.0.2.1, reachable without the proxy).
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted +
                                 " -r \"direct .direct.lab\" -r \"proxy *\" -vv curl -sS -m 10 "
                                 "http://direct.lab:8080/direct-check");
  CHECK_THAT(server_log_with("http 192.0.2.2 /direct-check"),
             Catch::Contains("http 192.0.2.2 /direct-check"));
  CHECK_THAT(out, Catch::Contains("a direct domain rule"));
}

TEST_CASE("configuration file: -c, and a bad file names its line", "[shim][lab]") {
  const std::string conf = lab().dir() + "/lab.conf";
  write_file(conf, "proxies = [\"socks5h://192.0.2.1:1\", \"" + kDanted +
                       "\"]\nrules = [\"reject port 7001\"]\nlog = \"info\"\n");
  chmod(conf.c_str(), 0644);
  const std::string out =
      run_ok(lab().socksify() + " -c " + conf + " curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("via socks5h://192.0.2.1:1080"));  // failover, from the file
  CHECK_THAT(run_fail("SOCKSIFY_CONF=" + conf + " LD_PRELOAD=" SOCKSIFY_SHIM " " + probe() +
                      " connect target.lab 7001"),
             Catch::Contains("errno=EACCES"));
  write_file(conf, "proxies = [\"" + kDanted + "\"]\ntimeout_ms = \"soon\"\n");
  std::string bad;
  CHECK(lab().client(lab().socksify() + " -c " + conf + " /bin/true", &bad) == 2);
  CHECK_THAT(bad, Catch::Contains(conf + ":2:14: 'timeout_ms' must be an integer"));
}

TEST_CASE("the wrapper warns about programs the shim cannot reach, --strict refuses them",
          "[shim][lab]") {
  // With --mode preload a static program is out of reach (auto runs it under the
  // supervisor: supervisor_test.cpp).
  std::string out;
  lab().client(lab().socksify() + " -x " + kDanted +
                   " --mode preload " SOCKSIFY_STATIC_PROBE " resolve x.lab",
               &out);
  CHECK_THAT(out, Catch::Contains("is statically linked"));
  CHECK(lab().client(lab().socksify() + " -x " + kDanted +
                         " --mode preload --strict " SOCKSIFY_STATIC_PROBE " resolve x.lab",
                     &out) == 126);
  CHECK_THAT(out, Catch::Contains("refusing to run"));
  // A setuid program owned by someone else: the loader would ignore LD_PRELOAD.
  const std::string suid = lab().dir() + "/suid-true";
  REQUIRE(run_command("cp /bin/true " + suid + " && chown nobody " + suid + " && chmod 4755 " +
                      suid) == 0);
  CHECK(lab().client(lab().socksify() + " -x " + kDanted + " " + suid, &out) == 0);
  CHECK_THAT(out, Catch::Contains("is setuid"));
  // File capabilities put the loader in secure-execution mode too.
  require_program("setcap", "libcap2-bin");
  const std::string cap = lab().dir() + "/cap-true";
  REQUIRE(run_command("cp /bin/true " + cap + " && setcap cap_net_raw+ep " + cap) == 0);
  CHECK(lab().client(lab().socksify() + " -x " + kDanted + " " + cap, &out) == 0);
  CHECK_THAT(out, Catch::Contains("has file capabilities (setcap)"));
  CHECK(lab().client(lab().socksify() + " -x " + kDanted + " --strict " + cap, &out) == 126);
  CHECK_THAT(out, Catch::Contains("refusing to run"));
}

TEST_CASE("Go programs under --mode preload: the wrapper warns, dynamically linked ones too",
          "[shim][lab]") {
  // Go's runtime makes its socket system calls itself, even when it is linked against the C
  // library (cgo), so the preloaded library never sees them. The wrapper recognises Go's
  // build-ID note and says so instead of letting the program run unproxied in silence.
  const std::string go = require_program("go", "golang-go");
  const std::string src = SOCKSIFY_SOURCE_DIR "/tests/integration/go/dial.go";
  const std::string dyn = lab().dir() + "/go-dial-dynamic";
  const std::string stat = lab().dir() + "/go-dial-static";
  const std::string env = "HOME=" + lab().dir() + " GOCACHE=" + lab().dir() +
                          "/go-cache GO111MODULE=off GOPATH=" + lab().dir() + "/gopath";
  REQUIRE(run_command("cd " + lab().dir() + " && env " + env + " CGO_ENABLED=1 " + go +
                      " build -o " + dyn + " " + src) == 0);
  REQUIRE(run_command("cd " + lab().dir() + " && env " + env + " CGO_ENABLED=0 " + go +
                      " build -o " + stat + " " + src) == 0);
  // The cgo build really is dynamically linked (it has an interpreter).
  REQUIRE(run_command("readelf -lW " + dyn + " | grep -q 'Requesting program interpreter'") == 0);
  std::string out;
  const int rc = lab().client(
      lab().socksify() + " -x " + kDanted + " --mode preload " + dyn + " target.lab:7000", &out);
  CHECK_THAT(out, Catch::Contains("is a Go program"));
  // And it is right: the connection did not go through the proxy (the client namespace has
  // no route to the fake address the C resolver handed out, so nothing leaves either).
  CHECK(rc != 0);
  CHECK_THAT(out, !Catch::Contains("echo hello from go"));
  CHECK(lab().client(lab().socksify() + " -x " + kDanted + " --mode preload --strict " + dyn +
                         " target.lab:7000",
                     &out) == 126);
  CHECK_THAT(out, Catch::Contains("refusing to run"));
  lab().client(lab().socksify() + " -x " + kDanted + " --mode preload " + stat + " target.lab:7000",
               &out);
  CHECK_THAT(out, Catch::Contains("is statically linked"));
  // A C program with the same headers, for contrast, is not flagged.
  CHECK(
      lab().client(lab().socksify() + " -x " + kDanted + " " + probe() + " connect target.lab 7000",
                   &out) == 0);
  CHECK_THAT(out, !Catch::Contains("warning"));
}

TEST_CASE("verbose logging with --log-file writes the connection lines to the file",
          "[shim][lab]") {
  const std::string log = lab().dir() + "/client.log";
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " -v --log-file " + log +
                                 " curl -sS -m 10 http://target.lab:8080/");
  CHECK(out.find("socksify[") == std::string::npos);  // nothing on stderr
  CHECK_THAT(read_file(log),
             Catch::Contains("connect target.lab:8080 via socks5h://192.0.2.1:1080"));
}

TEST_CASE("BIND: a socket listening beside a proxied connection listens at the proxy",
          "[shim][lab][probe]") {
  // Blocking accept, then a non-blocking one driven by epoll. The peer connects to the
  // address the proxy announced (only reachable through the proxy from here).
  for (const char* how : {"block", "epoll"}) {
    INFO(how);
    const std::string out = run_ok(lab().socksify() + " -v -x " + kDanted + " " + probe() +
                                   " bind 198.51.100.1 7000 " + how);
    CHECK_THAT(out, Catch::Contains("listening at 198.51.100.1 "));
    CHECK_THAT(out, Catch::Contains("(bound beside a proxied connection)"));
    CHECK_THAT(out, Catch::Contains("accepted from 198.51.100.1 "));
    CHECK_THAT(out, Catch::Contains("accepted peer 198.51.100.1 "));
    // A BIND takes one connection: the socket listens on through a new one.
    CHECK_THAT(out, Catch::Contains("listening again at 198.51.100.1 "));
    CHECK_THAT(out, Catch::Contains("bind ok"));
  }
  CHECK_THAT(lab().danted_log(), Catch::Contains("tcp/bind"));
  // IPv6: the control connection's address (getsockname) is danted's IPv6 one.
  const std::string v6 = run_ok(lab().socksify() + " -v -x " + kDanted + " " + probe() +
                                " bind 2001:db8::1 7000 block 6");
  CHECK_THAT(v6, Catch::Contains("control connection's address 2001:db8::1 "));
  CHECK_THAT(v6, Catch::Contains("listening at 2001:db8::1 "));
  CHECK_THAT(v6, Catch::Contains("accepted peer 2001:db8::1 "));
  CHECK_THAT(v6, Catch::Contains("bind ok"));
}

TEST_CASE("closing an associated UDP socket or a listener through the proxy leaves no fd behind",
          "[shim][lab][probe]") {
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " fds 198.51.100.1 7000");
  CHECK_THAT(out, Catch::Contains("fds: before"));
}

TEST_CASE("BIND refused by the proxy: listen fails, nothing listens locally",
          "[shim][lab][probe]") {
  // microsocks has no BIND ("command not supported").
  const std::string out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1082 " + probe() +
                                   " bind 198.51.100.1 7000 block");
  // The BIND is sent when the socket is bound beside the proxied connection: bind() fails.
  CHECK_THAT(out, Catch::Contains("bind: errno=EOPNOTSUPP"));
  CHECK_THAT(out, Catch::Contains("BIND failed"));
}

TEST_CASE("active-mode FTP: curl --ftp-port - through the proxy to pyftpdlib", "[shim][lab]") {
  const std::string python = require_program("/usr/bin/python3", "python3");
  // Debian's python3 with python3-pyftpdlib (not another python3 earlier in PATH).
  INFO("apt-get install -y python3-pyftpdlib (scripts/install-deps.sh installs it)");
  REQUIRE(run_command(python + " -c \"import pyftpdlib\"") == 0);
  const std::string root = lab().dir() + "/ftp";
  REQUIRE(run_command("mkdir -p " + root) == 0);
  write_file(root + "/hello.txt", "hello over active FTP\n");
  lab().start_on_proxy_side(
      {python, "-m", "pyftpdlib", "-i", "198.51.100.1", "-p", "2121", "-d", root}, "ftp.out");
  REQUIRE(lab().wait_on_proxy_side("198.51.100.1", 2121));
  const std::string out = run_ok(lab().socksify() + " -v -x " + kDanted +
                                 " curl -sS -m 20 --ftp-port - ftp://198.51.100.1:2121/hello.txt");
  CHECK_THAT(out, Catch::Contains("hello over active FTP"));
  // The data connection came in through danted's BIND.
  CHECK_THAT(out, Catch::Contains("listen via " + kDanted));
  CHECK_THAT(out, Catch::Contains("accepted 198.51.100.1:"));
  CHECK_THAT(lab().danted_log(), Catch::Contains("tcp/bind"));
}
