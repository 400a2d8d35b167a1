// GSSAPI (RFC 1961) end to end, in the lab: an MIT Kerberos realm and a GSSAPI-enabled Dante
// on the proxy side (Lab::start_gssapi), the client side with only a ticket. Every level the
// server allows and the ones it refuses; the errors a user meets (no ticket, a wrong or
// unknown service principal, a server without GSSAPI); protected streams through the relay
// with every kind of I/O (curl and python downloading 100 MiB, an edge-triggered epoll client,
// fork after connect, stdio on the socket), all byte-identical; and Dante's own log as the
// proof: "gssapi/<level>%alice@SOCKS.TEST" for each session.
#include <dirent.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

const std::string kProxy = "socks5h://192.0.2.1:";

// Dante's line for a session as it starts.
std::string tcp_connect_tag(const std::string& tag) {
  return "tcp/connect -: " + tag;
}

// Dante's line for a session as it starts.
// The socksify wrapper with GSSAPI and the realm's environment (then `extra`), through port
// `port`.
std::string gss(int port, const std::string& level = "", const std::string& extra = "") {
  const std::string env = lab().start_gssapi();
  return "env " + env + " " + extra + " SOCKSIFY_AUTH=gssapi" +
         (level.empty() ? "" : " SOCKSIFY_GSSAPI_PROTECTION=" + level) + " " + lab().socksify() +
         " -x " + kProxy + std::to_string(port);
}

// A file of `size` pseudo-random octets in the lab's web root (made once); returns its FNV-1a
// hash as the probe prints it.
std::string www_file(const std::string& name, std::size_t size) {
  const std::string path = lab().dir() + "/www/" + name;
  std::uint64_t x = 0x9e3779b97f4a7c15ULL ^ size;
  std::uint64_t hash = 1469598103934665603ULL;
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = static_cast<char>(x >> 56);
    hash = (hash ^ static_cast<unsigned char>(data[i])) * 1099511628211ULL;
  }
  if (read_file(path).size() != size) {
    std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(size));
  }
  char text[40];
  std::snprintf(text, sizeof text, "body %zu fnv %016llx", size,
                static_cast<unsigned long long>(hash));
  return text;
}

// Waits (bounded) until Dante's log holds `n` sessions at `level` for alice.
void expect_sessions(const std::string& level, std::size_t n) {
  const std::string tag = "gssapi/" + level + "%alice@SOCKS.TEST";
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  std::string log;
  // Dante logs each session when it starts ("tcp/connect -:") and when it ends.
  while (count_of(log = lab().sockd_log(), tcp_connect_tag(tag)) < n &&
         std::chrono::steady_clock::now() < end) {
    wait_for_text([] { return lab().sockd_log(); }, "\n", std::chrono::milliseconds(100));
  }
  INFO(log);
  CHECK(count_of(log, tcp_connect_tag(tag)) >= n);
}

// Relay processes still alive (their command name).
int relays_alive() {
  int n = 0;
  DIR* d = opendir("/proc");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    const std::string comm = read_file(std::string("/proc/") + e->d_name + "/comm");
    if (comm.rfind("socksify-relay", 0) == 0) ++n;
  }
  closedir(d);
  return n;
}

void expect_no_relays() {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (relays_alive() > 0 && std::chrono::steady_clock::now() < end) {
    wait_for_text([] { return std::string(); }, "never", std::chrono::milliseconds(50));
  }
  CHECK(relays_alive() == 0);
}

}  // namespace

TEST_CASE("GSSAPI: each level a server policy allows works, the others are refused",
          "[shim][lab][probe][gssapi]") {
  struct Policy {
    int port;
    const char* allows;
  };
  // Dante never counter-offers: it accepts exactly the level asked for, or closes.
  const Policy policies[] = {{1190, "integrity confidentiality"},
                             {1191, "clear"},
                             {1192, "integrity"},
                             {1193, "confidentiality"},
                             {1194, "clear integrity confidentiality"}};
  for (const auto& p : policies) {
    for (const std::string level : {"clear", "integrity", "confidentiality"}) {
      const bool allowed = std::string(p.allows).find(level) != std::string::npos;
      INFO("port " << p.port << " level " << level);
      std::string out;
      const int rc = lab().client(gss(p.port, level) + " check target.lab:8080", &out);
      INFO(out);
      if (allowed) {
        CHECK(rc == 0);
        CHECK_THAT(out, Catch::Contains("service 'rcmd@192.0.2.1', protection " + level));
        CHECK_THAT(out, Catch::Contains("result:    OK"));
      } else {
        CHECK(rc != 0);
        CHECK_THAT(out, Catch::Contains("refused GSSAPI protection level '" + level + "'"));
      }
    }
  }
  expect_sessions("clear", 2);
  expect_sessions("integrity", 3);
  expect_sessions("confidentiality", 3);
}

TEST_CASE("GSSAPI: Kerberos is loaded only when GSSAPI is chosen", "[shim][lab][probe][gssapi]") {
  const std::string mapped = " " + probe() + " mapped target.lab 7000 libgssapi_krb5";
  // The lab's plain danted, no GSSAPI: a proxied connect maps no Kerberos library.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kDanted + mapped),
             Catch::Contains("libgssapi_krb5 not mapped"));
  // With GSSAPI it is loaded on the first handshake.
  CHECK_THAT(run_ok(gss(1192) + mapped), Catch::Contains("libgssapi_krb5 mapped"));
}

TEST_CASE("GSSAPI: a missing ticket, a wrong or unknown service, a server without GSSAPI",
          "[shim][lab][probe][gssapi]") {
  const std::string connect = " " + probe() + " connect target.lab 7000";
  // No ticket at all: the one line says what to do; the program gets EACCES.
  std::string out =
      run_fail(gss(1192, "", "KRB5CCNAME=FILE:" + lab().dir() + "/no-ticket") + connect);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("no Kerberos credentials for GSSAPI: run kinit"));
  CHECK_THAT(out, Catch::Contains("errno=EACCES"));
  // ... but a client keytab is enough (KRB5_CLIENT_KTNAME), without kinit.
  out = run_ok(gss(1192, "",
                   "KRB5CCNAME=FILE:" + lab().dir() + "/keytab-ccache KRB5_CLIENT_KTNAME=FILE:" +
                       lab().krb_dir() + "/alice.keytab") +
               connect);
  CHECK_THAT(out, Catch::Contains("echo ok"));
  // A principal the KDC knows but the proxy has no key for: the proxy closes.
  out = run_fail(gss(1192, "", "SOCKSIFY_GSSAPI_SERVICE=notinkeytab/localhost") + connect);
  CHECK_THAT(out, Catch::Contains("rejected GSSAPI authentication for 'notinkeytab/localhost'"));
  // A service the KDC does not know.
  out = run_fail(gss(1192, "", "SOCKSIFY_GSSAPI_SERVICE=nokey") + connect);
  CHECK_THAT(out, Catch::Contains("the KDC does not know the service 'nokey@192.0.2.1'"));
  // The lab's plain danted offers none and username only.
  out = run_fail("env " + lab().start_gssapi() + " SOCKSIFY_AUTH=gssapi " + lab().socksify() +
                 " -x socks5h://192.0.2.1:1080" + connect);
  CHECK_THAT(out, Catch::Contains("does not offer GSSAPI authentication"));
  // A level the server refuses, through the library.
  out = run_fail(gss(1193, "integrity") + connect);
  CHECK_THAT(out, Catch::Contains("refused GSSAPI protection level 'integrity'"));
  // GSSAPI settings without the method chosen would protect nothing: refused up front.
  out = run_fail(lab().socksify() + " --gssapi-protection confidentiality -x " + kProxy + "1193" +
                 connect);
  CHECK_THAT(out, Catch::Contains("but SOCKSIFY_AUTH is not gssapi"));
}

TEST_CASE("GSSAPI: a clock two hours off is named as clock skew", "[shim][lab][gssapi]") {
  require_program("faketime", "faketime");
  // A ticket-granting ticket of its own (so the service ticket must be asked for now), then
  // the same program with its clock two hours ahead: the KDC refuses the request.
  const std::string ccache = "KRB5CCNAME=FILE:" + lab().dir() + "/skew.ccache";
  run_ok("env " + lab().start_gssapi() + " " + ccache + " kinit -k -t " + lab().krb_dir() +
         "/alice.keytab alice@SOCKS.TEST");
  const std::string out = run_fail("faketime -f +2h " + gss(1192, "", ccache) + " " + probe() +
                                   " connect target.lab 7000");
  CHECK_THAT(out, Catch::Contains("clock skew too great for Kerberos"));
  CHECK_THAT(out, Catch::Contains("errno=EACCES"));
}

TEST_CASE(
    "GSSAPI: epoll, fork after connect, stdio, sendfile and splice, vectors, select, "
    "pselect and ppoll on a protected socket",
    "[shim][lab][probe][gssapi]") {
  const std::string expected = www_file("mid.bin", 3 * 1024 * 1024 + 17);
  for (const std::string level : {"integrity", "confidentiality"}) {
    for (const std::string mode : {"epollget", "forkget", "stdioget", "spliceget", "vecget"}) {
      INFO(level << " " << mode);
      const std::string out =
          run_ok(gss(1194, level) + " " + probe() + " " + mode + " target.lab 8080 /mid.bin");
      CHECK_THAT(out, Catch::Contains("200 OK"));
      CHECK_THAT(out, Catch::Contains(expected));
    }
  }
  expect_sessions("integrity", 5);
  expect_sessions("confidentiality", 5);
  // At clear there is nothing to wrap: no relay, the same program works.
  const std::string out =
      run_ok(gss(1191, "clear") + " " + probe() + " epollget target.lab 8080 /mid.bin");
  CHECK_THAT(out, Catch::Contains(expected));
  expect_sessions("clear", 1);
  // Every relay ends with its connection.
  expect_no_relays();
}

TEST_CASE(
    "GSSAPI: curl and python download 100 MiB byte-identical at integrity and "
    "confidentiality",
    "[shim][lab][gssapi]") {
  require_program("curl", "curl");
  www_file("big.bin", 100 * 1024 * 1024);
  const std::string original = lab().dir() + "/www/big.bin";
  const std::string got = lab().dir() + "/got.bin";
  const std::string script = lab().dir() + "/download.py";
  write_file(script,
             "import shutil, sys, urllib.request\n"
             "with urllib.request.urlopen(sys.argv[1]) as r, open(sys.argv[2], 'wb') as f:\n"
             "    shutil.copyfileobj(r, f, 1 << 20)\n");
  for (const std::string level : {"integrity", "confidentiality"}) {
    INFO(level);
    std::remove(got.c_str());
    run_ok(gss(1194, level) + " curl -sS -o " + got + " http://target.lab:8080/big.bin");
    run_ok("cmp " + original + " " + got);
    std::remove(got.c_str());
    run_ok(gss(1194, level) + " python3 " + script + " http://target.lab:8080/big.bin " + got);
    run_ok("cmp " + original + " " + got);
    std::remove(got.c_str());
    expect_sessions(level, 2);
  }
  expect_no_relays();
}

TEST_CASE("GSSAPI: UDP datagrams through the association at each level",
          "[shim][lab][probe][gssapi]") {
  for (const std::string level : {"clear", "integrity", "confidentiality"}) {
    for (const char* size : {"100", "8000"}) {
      INFO(level << " " << size);
      const std::string out =
          run_ok(gss(1194, level) + " " + probe() + " udpecho 198.51.100.1 7000 4 " + size);
      CHECK_THAT(out, Catch::Contains("udp echo ok"));
      CHECK_THAT(out, Catch::Contains("recvfrom " + std::string(size) + " from 198.51.100.1 7000"));
    }
    // Dante made the association for alice at this level.
    const std::string tag = "udp/udpassociate -: gssapi/" + level + "%alice@SOCKS.TEST";
    CHECK_THAT(wait_for_text([] { return lab().sockd_log(); }, tag), Catch::Contains(tag));
  }
  // The echo server saw the proxy's egress address: the only way there from the client side.
  CHECK_THAT(server_log_with("udp 198.51.100.1 8000"), Catch::Contains("udp 198.51.100.1 8000"));
}

TEST_CASE("GSSAPI: the library on its own (examples/gssapi) at each level",
          "[shim][lab][probe][gssapi]") {
  www_file("mid.bin", 3 * 1024 * 1024 + 17);
  for (const std::string level : {"integrity", "confidentiality"}) {
    INFO(level);
    const std::string out = run_ok("env " + lab().start_gssapi() +
                                   " " SOCKSIFY_GSSAPI_EXAMPLE
                                   " socks5h://192.0.2.1:1194 target.lab 8080 /index.html " +
                                   level);
    CHECK_THAT(out, Catch::Contains("200 OK"));
    CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
    expect_sessions(level, 1);
  }
  // Its errors carry the library's own words.
  const std::string out =
      run_fail("env " + lab().start_gssapi() + " KRB5CCNAME=FILE:" + lab().dir() +
               "/none " SOCKSIFY_GSSAPI_EXAMPLE " socks5h://192.0.2.1:1194 target.lab 8080 /");
  CHECK_THAT(out, Catch::Contains("no Kerberos credentials (run kinit)"));
  CHECK_THAT(out, Catch::Contains("No Kerberos credentials available"));
}

TEST_CASE("GSSAPI: BIND through the protected proxy, accepted connections relayed too",
          "[shim][lab][probe][gssapi]") {
  for (const std::string level : {"integrity", "confidentiality"}) {
    for (const char* how : {"block", "epoll"}) {
      INFO(level << " " << how);
      const std::string out =
          run_ok(gss(1194, level) + " " + probe() + " bind 198.51.100.1 7000 " + how);
      CHECK_THAT(out, Catch::Contains("listening at 198.51.100.1 "));
      CHECK_THAT(out, Catch::Contains("accepted from 198.51.100.1 "));
      CHECK_THAT(out, Catch::Contains("accepted peer 198.51.100.1 "));
      CHECK_THAT(out, Catch::Contains("listening again at 198.51.100.1 "));
      CHECK_THAT(out, Catch::Contains("bind ok"));
    }
    // Dante logs the BIND session for alice at this level.
    const std::string tag = "tcp/bind [: gssapi/" + level + "%alice@SOCKS.TEST";
    CHECK_THAT(wait_for_text([] { return lab().sockd_log(); }, tag), Catch::Contains(tag));
  }
  expect_no_relays();
}

TEST_CASE(
    "GSSAPI: event-loop connect at integrity and confidentiality: EINPROGRESS at once, "
    "readiness with the outcome, close and fork during the handshake",
    "[shim][lab][probe][gssapi][eventloop]") {
  for (const std::string level : {"integrity", "confidentiality"}) {
    for (const std::string api : {"poll", "select", "epoll-et-before", "epoll-oneshot"}) {
      INFO(level << " " << api);
      const std::string out =
          run_ok(gss(1194, level) + " " + probe() + " async target.lab 7000 " + api);
      CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
      CHECK_THAT(out, Catch::Contains("early send: EAGAIN"));
      CHECK_THAT(out, Catch::Contains("early recv: EAGAIN"));
      CHECK_THAT(out, Catch::Contains("SO_ERROR: 0"));
      CHECK_THAT(out, Catch::Contains("connect after: EISCONN"));
      if (api != "poll" && api != "select") CHECK_THAT(out, Catch::Contains("more events: 0"));
      CHECK_THAT(out, Catch::Contains("async ok"));
    }
    // Starting a relay gives the program no SIGCHLD (blocking and event-loop connects).
    CHECK_THAT(run_ok(gss(1194, level) + " " + probe() + " nosigchld target.lab 7000"),
               Catch::Contains("SIGCHLD: 0"));
    // fork while the handshake (and the relay's start) is under way.
    const std::string out = run_ok(gss(1194, level) + " " + probe() + " asyncfork target.lab 7000");
    CHECK_THAT(out, Catch::Contains("child echo ok"));
    CHECK_THAT(out, Catch::Contains("parent SO_ERROR: 0"));
    expect_sessions(level, 5);
  }
  // close() during the handshake: the proxy sees the connection end, and no socket of the
  // library's (its own proxy connection, the parking listener) is left.
  lab().start_hostile("silent", "192.0.2.1", 1096);
  const std::string out =
      run_ok("env " + lab().start_gssapi() + " SOCKSIFY_AUTH=gssapi " + lab().socksify() +
             " -q -x socks5h://192.0.2.1:1096 " + probe() + " asyncclose target.lab 7000");
  CHECK_THAT(out, Catch::Contains("connect: EINPROGRESS"));
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "silent closed"),
             Catch::Contains("silent closed"));
  expect_no_relays();
}

TEST_CASE("GSSAPI: event-loop connect, python asyncio with 10 protected connections in parallel",
          "[shim][lab][gssapi][eventloop]") {
  // A gate in front of the GSSAPI sockd: it relays only once 10 connections are open at once.
  lab().start_hostile("gate", "192.0.2.1", 1110, {"10", "192.0.2.1", "1194"});
  const std::string script = asyncio_script(10);
  const std::string out =
      run_ok("env " + lab().start_gssapi() +
             " SOCKSIFY_AUTH=gssapi SOCKSIFY_GSSAPI_PROTECTION=confidentiality " +
             lab().socksify() + " -x socks5h://192.0.2.1:1110 python3 " + script);
  CHECK_THAT(out, Catch::Contains("echoed 10"));
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "gate open"),
             Catch::Contains("gate open 10"));
  expect_sessions("confidentiality", 10);
  expect_no_relays();
}
