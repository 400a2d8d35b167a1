// The event-loop connect (async_connect.hpp), in the lab: a non-blocking connect() through
// the proxy returns EINPROGRESS at once; every wait API says "writable" only with the outcome;
// I/O while under way gets EAGAIN; a refusing proxy and a silent one; close() and fork()
// during the handshake; and real event loops (python asyncio, curl's multi interface, node)
// whose handshakes run in parallel, proven by a proxy that holds every connection until N
// are open at once ("gate open N"), behind which danted reaches the target.
#include <catch2/catch.hpp>
#include <string>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

// A proxy that waits 300 ms before relaying to danted: handshakes take long enough for the
// probe to look at them while they are under way.
const std::string kSlow = "socks5h://192.0.2.1:1095";

std::size_t count_in(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The hostile proxies' log once it holds `n` lines with `what` (bounded: 15 s).
std::string hostile_log_with(const std::string& what, std::size_t n) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  std::string log = lab().hostile_log();
  while (count_in(log, what) < n && std::chrono::steady_clock::now() < end) {
    wait_for_text([] { return lab().hostile_log(); }, "\n", std::chrono::milliseconds(50));
    log = lab().hostile_log();
  }
  return log;
}

void start_slow() {
  lab().start_hostile("slow", "192.0.2.1", 1095, {"300", "192.0.2.1", "1080"});
}

}  // namespace

TEST_CASE(
    "event-loop connect: EINPROGRESS at once, readiness only with the outcome, for every "
    "wait API",
    "[shim][lab][probe][eventloop]") {
  start_slow();
  // epoll: level-triggered, edge-triggered, one-shot; registered after connect() or before
  // it; waited for with epoll_wait, epoll_pwait and epoll_pwait2.
  for (const char* api :
       {"poll", "ppoll", "select", "pselect", "epoll", "epoll-before-pwait", "epoll-et",
        "epoll-et-before", "epoll-oneshot", "epoll-oneshot-before-pwait2", "epoll-pwait2"}) {
    INFO(api);
    const std::string out =
        run_ok(lab().socksify() + " -x " + kSlow + " " + probe() + " async target.lab 7000 " + api);
    CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
    CHECK_THAT(out, Catch::Contains("second connect: EALREADY"));
    CHECK_THAT(out, Catch::Contains("early send: EAGAIN"));
    CHECK_THAT(out, Catch::Contains("early recv: EAGAIN"));
    CHECK_THAT(out, Catch::Contains("ready at once: no"));
    CHECK_THAT(out, Catch::Contains("SO_ERROR while under way: 0"));
    CHECK_THAT(out, Catch::Contains("SO_ERROR: 0"));
    CHECK_THAT(out, Catch::Contains("connect after: EISCONN"));
    const std::string a = api;
    if (a.find("-et") != std::string::npos || a.find("oneshot") != std::string::npos) {
      CHECK_THAT(out, Catch::Contains("more events: 0"));
    }
    CHECK_THAT(out, Catch::Contains("async ok"));
  }
  // Through the proxy: the echo server saw danted's address.
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
}

TEST_CASE("event-loop connect: a refusing proxy is reported through SO_ERROR",
          "[shim][lab][probe][eventloop]") {
  const std::string out = run_fail(lab().socksify() + " -q -x socks5h://192.0.2.1:1 " + probe() +
                                   " async target.lab 7000 poll");
  CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
  // Reported once, as the kernel does, by whichever call comes first after the refusal (a
  // second connect() or an SO_ERROR read: a slow machine may have it before the probe looks).
  CHECK_THAT(out, Catch::Matches(
                      "(.|\n)*(second connect|SO_ERROR( while under way)?): ECONNREFUSED(.|\n)*"));
}

TEST_CASE("event-loop connect: close() during the handshake releases everything at once",
          "[shim][lab][probe][eventloop]") {
  lab().start_hostile("silent", "192.0.2.1", 1096);
  const std::string out = run_ok(lab().socksify() + " -q -x socks5h://192.0.2.1:1096 " + probe() +
                                 " asyncclose target.lab 7000");
  CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
  // The proxy saw the connection end: no descriptor of the library kept it open.
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "silent closed"),
             Catch::Contains("silent closed"));
}

TEST_CASE("event-loop connect: fork during the handshake, the child sees the outcome",
          "[shim][lab][probe][eventloop]") {
  start_slow();
  const std::string out =
      run_ok(lab().socksify() + " -x " + kSlow + " " + probe() + " asyncfork target.lab 7000");
  CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
  CHECK_THAT(out, Catch::Contains("child SO_ERROR: 0"));
  CHECK_THAT(out, Catch::Contains("child echo ok"));
  CHECK_THAT(out, Catch::Contains("parent SO_ERROR: 0"));
}

TEST_CASE("event-loop connect: python asyncio, 50 connections with their handshakes in parallel",
          "[shim][lab][eventloop]") {
  lab().start_hostile("gate", "192.0.2.1", 1097, {"50", "192.0.2.1", "1080"});
  const std::string script = asyncio_script(50);
  const std::string out =
      run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1097 python3 " + script);
  CHECK_THAT(out, Catch::Contains("echoed 50"));
  // All 50 were open at the proxy at once: none waited for another's handshake.
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "gate open"),
             Catch::Contains("gate open 50"));
}

TEST_CASE("event-loop connect: curl --parallel and node, 20 requests at once",
          "[shim][lab][eventloop]") {
  require_program("curl", "curl");
  const std::string node = require_program("node", "nodejs");
  lab().start_hostile("gate", "192.0.2.1", 1098, {"20", "192.0.2.1", "1080"});
  const std::string urls = "'http://target.lab:8080/index.html?[1-20]'";
  const std::string out = run_ok(
      lab().socksify() + " -x socks5h://192.0.2.1:1098 curl -sS " +
      "--parallel --parallel-immediate --parallel-max 20 -o /dev/null -w '%{http_code}\\n' " +
      urls);
  std::size_t ok = 0;
  for (auto at = out.find("200"); at != std::string::npos; at = out.find("200", at + 1)) ++ok;
  CHECK(ok == 20);
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "gate open"),
             Catch::Contains("gate open 20"));
  // node: a second gate, the same 20 at once.
  lab().start_hostile("gate", "192.0.2.1", 1099, {"20", "192.0.2.1", "1080"});
  const std::string script = lab().dir() + "/node20.js";
  write_file(script,
             "const http = require('http');\n"
             "let done = 0, good = 0;\n"
             "for (let i = 0; i < 20; i++) {\n"
             "  http.get('http://target.lab:8080/index.html?' + i, (res) => {\n"
             "    res.resume();\n"
             "    res.on('end', () => { if (res.statusCode === 200) good++;\n"
             "      if (++done === 20) console.log('node ok', good); });\n"
             "  }).on('error', (e) => { console.log('error', e.message); process.exit(1); });\n"
             "}\n");
  const std::string nout =
      run_ok(lab().socksify() + " -x socks5h://192.0.2.1:1099 " + node + " " + script);
  CHECK_THAT(nout, Catch::Contains("node ok 20"));
  CHECK(count_in(hostile_log_with("gate open 20", 2), "gate open 20") == 2);
}

TEST_CASE("event-loop connect: the program's own timeout governs (curl --connect-timeout 1)",
          "[shim][lab][eventloop]") {
  require_program("curl", "curl");
  lab().start_hostile("silent", "192.0.2.1", 1096);
  std::string out;
  const int rc = lab().client(lab().socksify() + " -q -x socks5h://192.0.2.1:1096 curl -sS " +
                                  "--connect-timeout 1 http://target.lab:8080/",
                              &out);
  // curl's own clock: it gave up after its one second, not after our 10 s deadline.
  CHECK(rc == 28);
  CHECK_THAT(out, Catch::Matches("(.|\n)*after 1[0-9]{3} ms: Timeout was reached(.|\n)*"));
}
