// The seccomp supervisor (tools/supervisor.hpp), in the lab: programs the preload cannot
// reach (a static C probe, Go programs built both ways) run under it in auto mode, and their
// connections cross danted (the echo server logs danted's egress address; the client side
// has no route to the target). Design: doc/supervisor.md.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

TEST_CASE("supervisor: a static C program, blocking and non-blocking connects through danted",
          "[shim][lab][probe][supervisor]") {
  for (const char* how : {"block", "poll", "epoll-before"}) {
    INFO(how);
    const std::string out = run_ok(lab().socksify() + " -x " + kDanted +
                                   " " SOCKSIFY_STATIC_PROBE " connect target.lab 7000 " + how);
    CHECK_THAT(out, !Catch::Contains("warning"));
    // getpeername() says what the program asked for, not the proxy.
    CHECK_THAT(out, Catch::Contains("peer 198.18."));
  }
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
}

TEST_CASE("supervisor: a pure Go program resolves through the proxy, no DNS query leaves",
          "[shim][lab][supervisor]") {
  const std::string dial = go_build("dial", false);
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + dial + " target.lab:7000");
  CHECK_THAT(out, Catch::Contains("echo hello from go"));
  CHECK_THAT(out, !Catch::Contains("warning"));
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("supervisor: the same Go program built with cgo", "[shim][lab][supervisor]") {
  const std::string dial = go_build("dial", true);
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kDanted + " " + dial + " target.lab:7000");
  CHECK_THAT(out, Catch::Contains("echo hello from go"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("supervisor: a shell script's static child, in auto and supervisor mode",
          "[shim][lab][supervisor]") {
  // auto: the shell has the preloaded library, which runs the static program under the
  // supervisor (socksify --mode supervisor PROGRAM) instead of warning.
  for (const char* mode : {"auto", "supervisor"}) {
    INFO(mode);
    const std::string out =
        run_ok(lab().socksify() + " -x " + kDanted + " --mode " + mode + " sh -c \"" +
               SOCKSIFY_STATIC_PROBE + " connect target.lab 7000 block\"");
    CHECK_THAT(out, Catch::Contains("peer 198.18."));
    CHECK_THAT(out, !Catch::Contains("warning"));
  }
  // A dynamically linked child has the preloaded library as well: its own connection to the
  // proxy is direct in the policy, so the supervisor only connects it (one handshake).
  require_program("curl", "curl");
  const std::size_t mark = lab().danted_log().size();
  const std::string page = run_ok(lab().socksify() + " -x " + kDanted +
                                  " --mode supervisor sh -c \"curl -sS -m 10 "
                                  "http://target.lab:8080/\"");
  CHECK_THAT(page, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(server_log_with("http 198.51.100.1 /"), Catch::Contains("http 198.51.100.1 /"));
  // danted saw one session for it, from the client side's address to the target, not a proxy
  // within a proxy (that would be two: the client to danted itself, then danted to the
  // target, logged in that order). The target's session is logged as it starts.
  const std::string log =
      wait_for_text([] { return lab().danted_log(); }, " 198.51.100.1.8080\n").substr(mark);
  INFO(log);
  REQUIRE(count_of(log, "tcp/connect [: ") == 1);
  // "tcp/connect [: CLIENT PROXY -> EGRESS TARGET": from the client side, to the web server.
  const auto at = log.find("tcp/connect [: ");
  const std::string session = log.substr(at, log.find('\n', at) - at);
  CHECK_THAT(session, Catch::StartsWith("tcp/connect [: 192.0.2.2."));
  CHECK_THAT(session, Catch::EndsWith(" 198.51.100.1.8080"));
}

TEST_CASE("supervisor: a Go program with 50 connections at once, handshakes in parallel",
          "[shim][lab][supervisor]") {
  const std::string many = go_build("dialmany", false);
  // A gate in front of danted: it relays only once 50 connections are open at once.
  lab().start_hostile("gate", "192.0.2.1", 1111, {"50", "192.0.2.1", "1080"});
  const std::string out =
      run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1111 " + many + " target.lab:7000 50");
  CHECK_THAT(out, Catch::Contains("echoed 50 of 50"));
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "gate open"),
             Catch::Contains("gate open 50"));
  // As on kernels before 5.19 (no WAIT_KILLABLE_RECV): Go's SIGURG restarts supervised
  // connects, and each restart gets its socket's dial (no second handshake on it).
  const std::string again = run_ok("env SOCKSIFY_TEST_NO_KILLABLE_WAIT=1 " + lab().socksify() +
                                   " -x " + kDanted + " " + many + " target.lab:7000 50");
  CHECK_THAT(again, Catch::Contains("echoed 50 of 50"));
}

TEST_CASE("supervisor: the program dies in the middle of a handshake", "[shim][lab][supervisor]") {
  // A proxy that never answers, and a dial deadline far away (30 s). The script kills the probe
  // only once the proxy has read its greeting: the probe is then inside a supervised connect
  // (its connect() waits for the supervisor's reply). The wrapper must end because of it: with
  // the probe's own status (128 + SIGKILL), at once, not at the dial's deadline.
  lab().start_hostile("silent", "192.0.2.1", 1096);
  const std::string script = lab().dir() + "/killed.sh";
  write_file(script,
             lab().socksify() + " --timeout 30000 -x socks5h://192.0.2.1:1096 --mode supervisor " +
                 SOCKSIFY_STATIC_PROBE +
                 " connect target.lab 7000 block &\n"
                 "wrapper=$!\n"
                 "i=0\n"
                 "until grep -q 'silent greeting' " +
                 lab().dir() +
                 "/hostile.log; do\n"
                 "  i=$((i+1)); [ $i -lt 1500 ] || { echo 'no greeting'; exit 99; }; sleep 0.02\n"
                 "done\n"
                 "probe=$(pgrep -P $wrapper)\n"
                 "[ -n \"$probe\" ] || { echo 'no probe'; exit 98; }\n"
                 "kill -9 $probe\n"
                 "start=$(date +%s%N)\n"
                 "wait $wrapper; rc=$?\n"
                 "echo \"wrapper exit $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms\"\n");
  std::string out;
  CHECK(lab().client("sh " + script, &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("wrapper exit 137 after"));
  // Well inside the 30 s deadline (a wide margin: this is a hang check, not a timing).
  const auto at = out.find(" after ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stol(out.substr(at + 7)) < 15000);
  // The supervisor's dial went with it: the proxy saw its connection close.
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "silent closed"),
             Catch::Contains("silent closed"));
}

TEST_CASE("supervisor: io_uring is refused, and a dead supervisor fails connects closed",
          "[shim][lab][supervisor]") {
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + " " SOCKSIFY_STATIC_PROBE " iouring"),
             Catch::Contains("io_uring_setup: EPERM"));
  // Without the supervisor the probe's io_uring works (the refusal is the supervisor's).
  CHECK_THAT(run_ok(SOCKSIFY_STATIC_PROBE " iouring"), Catch::Contains("io_uring_setup: ok"));
  // The shell kills the supervisor (its parent, the wrapper), then connects: the connect
  // fails (ENOSYS), nothing goes out directly.
  std::string out;
  lab().client(lab().socksify() + " -x " + kDanted +
                   " --mode supervisor sh -c \"kill -9 \\$PPID; " + SOCKSIFY_STATIC_PROBE +
                   " connect 198.51.100.1 7000 block\"",
               &out);
  CHECK_THAT(out, Catch::Contains("Function not implemented"));  // ENOSYS
}

TEST_CASE("supervisor: datagrams through the proxy (UDP ASSOCIATE), and direct by a rule",
          "[shim][lab][probe][supervisor]") {
  // A UDP logger on the proxy host, which the client side CAN reach directly: datagrams that
  // cross danted come from its egress address 198.51.100.1, direct ones from 192.0.2.2.
  const std::string log = lab().start_udp_logger(false, "192.0.2.1", 7777);
  // Through the proxy by the policy: sendto, and connect + send. (The probe exits at once:
  // its association may end before danted relays them, so only "not direct" is asserted here;
  // round trips through the association are in failclosed_test.cpp.)
  CHECK_THAT(
      run_ok(lab().socksify() + " -x " + kDanted + " " SOCKSIFY_STATIC_PROBE " udp 192.0.2.1 7777"),
      Catch::Contains("udp sent"));
  CHECK(count_of(lab().synced_log(false, "192.0.2.1", 7777), "got 192.0.2.2") == 0);
  // A direct rule: the supervisor sends them itself, on the program's socket.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted +
                    " -r \"direct 192.0.2.1/32\" " SOCKSIFY_STATIC_PROBE " udp 192.0.2.1 7777"),
             Catch::Contains("udp sent"));
  CHECK(wait_for_count([log] { return read_file(log); }, "got 192.0.2.2 4", 2) == 2);
  CHECK(count_of(lab().synced_log(false, "192.0.2.1", 7777), "got 192.0.2.2") == 2);
}

TEST_CASE("supervisor: a pure Go program through an https proxy (TLS in a relay)",
          "[shim][lab][supervisor][tls]") {
  lab().start_tinyproxy(3128, false);
  lab().start_stunnel(3443, 3128);
  const std::string dial = go_build("dial", false);
  const std::size_t mark = lab().dns_log().size();
  const std::string out = run_ok(lab().socksify() + " -x https://192.0.2.1:3443 --proxy-cacert " +
                                 lab().test_ca() + " -v " + dial + " target.lab:7000");
  CHECK_THAT(out, Catch::Contains("echo hello from go"));
  CHECK_THAT(out, Catch::Contains("connect target.lab:7000 via https://192.0.2.1:3443"));
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT target.lab:7000"),
             Catch::Contains("CONNECT target.lab:7000"));
  CHECK_THAT(wait_for_text([] { return lab().stunnel_log(3443); }, "accepted connection from"),
             Catch::Contains("accepted connection from 192.0.2.2"));
  CHECK(leaks_since(mark).empty());
}
