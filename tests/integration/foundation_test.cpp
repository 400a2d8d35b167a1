// The shim's foundation in the lab: strict chains through three real servers, and each defect
// found by probing the shim with hostile proxies (tests/integration/hostile_proxy.py) and
// unusual but legal programs (probe.cpp), with the proof that nothing went around the proxy.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A slow but working proxy on the proxy side: 192.0.2.1:1091 waits 1.5 s after accepting,
// then relays to danted.
const std::string kSlow = "socks5h://192.0.2.1:1091";

void start_slow() {
  lab().start_hostile("slow", "192.0.2.1", 1091, {"1500", "192.0.2.1", "1080"});
}

}  // namespace

TEST_CASE("strict chain: danted, then microsocks, then ssh -D, each hop through the last",
          "[shim][lab][chain]") {
  // The second and third proxies listen on addresses the client side cannot reach: only a
  // CONNECT through the hop before can get there.
  lab().proxy_side("ip addr add 198.51.100.2/32 dev lo && ip addr add 198.51.100.3/32 dev lo");
  lab().start_on_proxy_side(
      {require_program("microsocks", "microsocks"), "-i", "198.51.100.2", "-p", "1084"},
      "microsocks-chain.out");
  REQUIRE(lab().wait_on_proxy_side("198.51.100.2", 1084));
  const std::string key = start_sshd(2222);
  lab().start_on_proxy_side(
      {"/bin/sh", "-c",
       require_program("ssh", "openssh-client") + " -N -D 198.51.100.3:1085 -i " + key +
           kSshOptions + " -o ExitOnForwardFailure=yes -p 2222 root@198.51.100.1"},
      "ssh-D-chain.log");
  REQUIRE(lab().wait_on_proxy_side("198.51.100.3", 1085));
  run_fail("curl -sS -m 3 --socks5-hostname 198.51.100.3:1085 http://target.lab:8080/");
  const std::string chain =
      " --chain strict -x socks5://192.0.2.1:1080 -x socks5://198.51.100.2:1084"
      " -x socks5h://198.51.100.3:1085 ";
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + chain + "-v curl -sS -m 20 http://target.lab:8080/?via=chain");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("via socks5://192.0.2.1:1080 -> socks5://198.51.100.2:1084 -> "
                                  "socks5h://198.51.100.3:1085"));
  CHECK_THAT(server_log_with("/?via=chain"), Catch::Contains("/?via=chain"));
  // danted carried the first hop to microsocks; the name went to the last hop (remote DNS).
  CHECK_THAT(wait_for_text([] { return lab().danted_log(); }, "198.51.100.2.1084"),
             Catch::Contains("198.51.100.2.1084"));
  CHECK(leaks_since(mark).empty());
  // The environment variable and a dead hop: the chain fails, it never skips a hop.
  std::string dead;
  CHECK(lab().client("SOCKSIFY_CHAIN=strict " + lab().socksify() +
                         " -x socks5://192.0.2.1:1080 -x socks5://198.51.100.2:1 "
                         "-x socks5h://198.51.100.3:1085 -v curl -sS -m 20 "
                         "http://target.lab:8080/",
                     &dead) != 0);
  CHECK_THAT(dead, Catch::Contains("connection refused"));
  // socksify check walks the same chain.
  const std::string checked = run_ok(lab().socksify() + chain + "check target.lab:8080");
  CHECK_THAT(checked, Catch::Contains("chain:     socks5://192.0.2.1:1080 -> "));
  CHECK_THAT(checked, Catch::Contains("result:    OK"));
}

TEST_CASE("socksify check uses the same configuration as a socksified program", "[shim][lab]") {
  // -x before the subcommand, and a configuration file with two proxies: each is checked.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " check target.lab:8080"),
             Catch::Contains("result:    OK"));
  const std::string conf = lab().dir() + "/check.conf";
  write_file(conf, "proxies = [\"" + kDanted + "\", \"socks5h://192.0.2.1:1082\"]\n");
  chmod(conf.c_str(), 0644);
  const std::string out = run_ok(lab().socksify() + " -c " + conf + " check target.lab:7000");
  CHECK(count(out, "result:    OK") == 2);
  CHECK_THAT(out, Catch::Contains("proxy:     socks5h://192.0.2.1:1082"));
  const std::string bad = run_fail("SOCKSIFY_CONF=" + conf + " " + lab().socksify() +
                                   " -x socks5h://192.0.2.1:1 check target.lab:7000");
  CHECK_THAT(bad, Catch::Contains("unreachable"));  // -x wins over the file
}

TEST_CASE("TCP Fast Open follows the policy: through the proxy, or refused by a rule",
          "[shim][lab][probe]") {
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " fastopen target.lab 7000"),
      Catch::Contains("fastopen echo ok"));
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
  CHECK_THAT(run_fail(lab().socksify() + " -x " + kDanted + " -r \"reject port 7000\" " + probe() +
                      " fastopen 192.0.2.1 7000"),
             Catch::Contains("sendto MSG_FASTOPEN: errno=EACCES"));
  // A direct destination is the kernel's own TCP Fast Open.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct 192.0.2.0/24\" " + probe() +
                    " fastopen 192.0.2.1 7000"),
             Catch::Contains("fastopen echo ok"));
  CHECK_THAT(server_log_with("echo 192.0.2.2"), Catch::Contains("echo 192.0.2.2"));
}

TEST_CASE("fake addresses never change meaning, and running out of IPv4 ones is said once",
          "[shim][lab][probe]") {
  // A /24 holds 254 names. The first name's address, kept by the program, must still reach
  // the first name after 300 more lookups: the echo works only if the proxy got target.lab.
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " --fake-net4 198.18.0.0/24 " + probe() +
             " fakes target.lab 300 7000");
  CHECK_THAT(out, Catch::Contains("first 198.18.0.1 7000"));
  CHECK_THAT(out, Catch::Contains("names v4=253 v6=47 failed=0"));
  CHECK_THAT(out, Catch::Contains("AF_INET after the range: Non-recoverable failure"));
  CHECK_THAT(out, Catch::Contains("all 254 IPv4 fake addresses are in use"));
  CHECK(count(out, "fake addresses are in use") == 1);
  CHECK_THAT(out, Catch::Contains("echo ok"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("one deadline per connect: a proxy that drops SYNs, a proxy that never answers",
          "[shim][lab][probe]") {
  lab().start_hostile("tarpit", "192.0.2.1", 1090);
  for (const char* proxy : {"socks5h://192.0.2.1:1090", "socks5h://192.0.2.1:1093"}) {
    if (std::string(proxy).find("1093") != std::string::npos) {
      lab().start_hostile("silent", "192.0.2.1", 1093);
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = run_fail(lab().socksify() + " -x " + proxy + " --timeout 1000 " +
                                     probe() + " connect target.lab 7000");
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(proxy);
    CHECK_THAT(out, Catch::Contains("errno=ETIMEDOUT"));
    // The kernel alone retries SYNs for minutes; a loose bound that a busy machine meets.
    CHECK(took < std::chrono::seconds(15));
  }
}

TEST_CASE("signals: EINTR without SA_RESTART (then connect() again finishes), none with it",
          "[shim][lab][probe]") {
  start_slow();
  const std::string plain = run_ok(lab().socksify() + " -x " + kSlow + " " + probe() +
                                   " sigconnect target.lab 7000 norestart");
  CHECK_THAT(plain, Catch::Contains("first connect EINTR (alarms 1)"));
  CHECK_THAT(plain, Catch::Contains("second connect ok"));
  CHECK_THAT(plain, Catch::Contains("echo ok"));
  const std::string restarted = run_ok(lab().socksify() + " -x " + kSlow + " " + probe() +
                                       " sigconnect target.lab 7000 restart");
  CHECK_THAT(restarted, Catch::Contains("first connect ok (alarms 1)"));
  CHECK_THAT(restarted, Catch::Contains("echo ok"));
}

TEST_CASE("SO_SNDTIMEO bounds a blocking connect, and SO_ERROR then tells how it ended",
          "[shim][lab][probe]") {
  start_slow();
  const std::string slow =
      run_ok(lab().socksify() + " -x " + kSlow + " " + probe() + " sndtimeo target.lab 7000 300");
  CHECK_THAT(slow, Catch::Contains("connect EINPROGRESS"));
  CHECK_THAT(slow, Catch::Contains("SO_ERROR 0"));
  CHECK_THAT(slow, Catch::Contains("echo ok"));
  lab().start_hostile("silent", "192.0.2.1", 1093);
  const std::string silent =
      run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1093 --timeout 1500 " + probe() +
               " sndtimeo target.lab 7000 300");
  CHECK_THAT(silent, Catch::Contains("connect EINPROGRESS"));
  CHECK_THAT(silent, Catch::Contains("SO_ERROR ETIMEDOUT"));
}

TEST_CASE("one proxy, one attempt: a wrong password is sent once", "[shim][lab][probe]") {
  lab().start_hostile("reject-auth", "192.0.2.1", 1092);
  const std::string out =
      run_fail("SOCKSIFY_PASSWORD=wrong " + lab().socksify() +
               " -x socks5h://alice@192.0.2.1:1092 -v " + probe() + " connect target.lab 7000");
  CHECK_THAT(out, Catch::Contains("errno=EACCES"));
  CHECK(count(out, "rejected user 'alice': wrong user name or password") == 1);
  // The probe had the server's answer before it exited, and the server logs before answering.
  const std::string log = lab().hostile_log();
  CHECK(count(log, "reject-auth accept") == 1);
  CHECK(count(log, "auth attempt") == 1);
}

TEST_CASE("state follows the socket: a proxied fd closed behind the library's back",
          "[shim][lab][probe]") {
  for (const char* how : {"fclose", "closefrom", "closerange", "syscall", "unspec"}) {
    INFO(how);
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                                   " stale target.lab 7000 " + how);
    CHECK_THAT(out, Catch::Contains("getpeername ENOTCONN"));
    CHECK_THAT(out, Catch::Contains("fresh echo ok"));
  }
}

TEST_CASE("a connect() from a signal handler inside the library never goes direct",
          "[shim][lab][probe]") {
  // 192.0.2.1:7000 is reachable without the proxy, but the policy says proxy: the handler's
  // connect, made while the main thread is inside a (slow) proxied connect, is refused.
  start_slow();
  const std::string out = run_ok(lab().socksify() + " -x " + kSlow + " " + probe() +
                                 " handler target.lab 7000 192.0.2.1 7000");
  CHECK_THAT(out, Catch::Contains("handler connect ENETUNREACH"));
  CHECK_THAT(out, Catch::Contains("main connect ok"));
  // Control: a direct connection from the client side is logged as such...
  run_ok(lab().socksify() + " -x " + kDanted + " -r \"direct 192.0.2.0/24\" " + probe() +
         " connect 192.0.2.1 7000");
  // ...and it is the only one: the handler's never reached the server.
  CHECK(count(server_log_with("echo 192.0.2.2"), "echo 192.0.2.2") == 1);
}

TEST_CASE("log lines never land in the program's data (fd 2 is its own socket)",
          "[shim][lab][probe]") {
  const std::string out = run_ok(lab().socksify() + " -x " + kDanted + " -vv " + probe() +
                                 " stderrsock target.lab 7000");
  CHECK_THAT(out, Catch::Contains("echoed 10 octets: only this"));
}

TEST_CASE("smaller ones: SO_ERROR after a failure, the program's own EINVAL, localhost",
          "[shim][lab][probe]") {
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " soerror target.lab 7001"),
      Catch::Contains("SO_ERROR 0"));
  // The program's mistake is its own: EINVAL as from the kernel, no proxy blamed or cooled
  // (a cooled first proxy would send the next connect to the dead second one first).
  const std::string mismatch =
      run_ok(lab().socksify() + " -x " + kDanted + " -x socks5h://192.0.2.1:1 -v " + probe() +
             " mismatch target.lab 7000");
  CHECK_THAT(mismatch, Catch::Contains("IPv4 address on an IPv6 socket: EINVAL"));
  CHECK_THAT(mismatch, Catch::Contains("echo ok"));
  CHECK_THAT(mismatch, !Catch::Contains("192.0.2.1:1 ") && !Catch::Contains("unreachable"));
  // RFC 6761: localhost names are loopback, answered without asking any DNS server.
  const std::size_t mark = lab().dns_log().size();
  for (const char* name : {"app.localhost", "localhost.", "x.y.localhost."}) {
    INFO(name);
    const std::string out =
        run_ok(lab().socksify() + " -x " + kDanted + " " + probe() + " resolve " + name);
    CHECK_THAT(out, Catch::Contains("AF_UNSPEC 127.0.0.1 80"));
    CHECK_THAT(out, Catch::Contains("AF_INET6 ::1 80"));
    CHECK_THAT(out, Catch::Contains("gethostbyname 127.0.0.1"));
  }
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("exec: an inherited proxied socket still names its destination", "[shim][lab][probe]") {
  for (const char* how : {"inherit", "spawn", "dup2"}) {
    INFO(how);
    CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " + probe() +
                      " execpeer target.lab 7000 " + how),
               Catch::Contains("peer 198.18.0."));
  }
  CHECK_THAT(run_fail(lab().socksify() + " -x " + kDanted + " " + probe() +
                      " execpeer target.lab 7000 cloexec"),
             Catch::Contains("getpeername: errno=EBADF"));
}
