// Real browsers through the library, in the lab: Debian's Chromium (headless) and Firefox ESR
// (headless) load pages by target.lab, a name only the proxy side resolves and a host only
// the proxy side reaches. Each case proves that the page crossed the proxy (the server sees
// the proxy side's address; the client namespace has no route to the target) and that the
// client-side DNS sink saw nothing, with the browser's own process model: Chromium's network
// service is a process of its own (started through its zygote), and its built-in DNS client
// sends UDP to the resolv.conf server itself; Firefox resolves on its own threads.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

const char* kMicrosocks = "socks5h://192.0.2.1:1082";

std::string chromium() {
  return require_program("chromium", "chromium");
}

// Runs a browser command line (COMMAND, without output redirections) in the client namespace
// with HOME at HOME; returns its stdout, with its stderr after a "--- stderr" line. The
// browser's output goes to files, and whatever it left running under that HOME (Chromium's
// crash handler outlives it and would hold a pipe) is ended afterwards.
std::string browse(const std::string& home, const std::string& command) {
  const std::string out = home + "/browser.out";
  const std::string err = home + "/browser.err";
  std::string ignored;
  lab().client(
      "export HOME=" + home + "; { " + command + "; } > " + out + " 2> " + err + " < /dev/null",
      &ignored);
  std::string ended;
  run_command("pkill -9 -f -- \"--database=" + home + "\"", &ended);
  return read_file(out) + "\n--- stderr\n" + read_file(err);
}

// A home for a browser: root's in the lab directory; the test user's in a directory of its
// own that it can reach.
std::string home_for(const std::string& name, bool test_user = false) {
  static TempDir shared;  // the lab directory is root's alone (0700)
  chmod(shared.path().c_str(), 0755);
  const std::string home = (test_user ? shared.path() : lab().dir()) + "/home-" + name;
  run_ok("mkdir -p " + home);
  if (test_user) run_ok(std::string("chown ") + kTestUser + ": " + home);
  return home;
}

std::string chromium_flags(const std::string& home) {
  return " --headless=new --disable-gpu --no-first-run --user-data-dir=" + home + "/profile";
}

// Datagrams of 1200 octets or more (QUIC Initial packets are padded to that) that the
// HTTPS server's UDP port got from danted's egress address.
int initial_packets(const std::string& log) {
  int n = 0;
  const std::string from = "quic 198.51.100.1 ";
  for (std::size_t at = log.find(from); at != std::string::npos; at = log.find(from, at + 1)) {
    if (std::stoi(log.substr(at + from.size())) >= 1200) ++n;
  }
  return n;
}

// The process id the browser's main process has: the shell's, since socksify and the
// chromium script exec it.
std::string main_pid(const std::string& home) {
  return home + "/main.pid";
}

}  // namespace

TEST_CASE(
    "Chromium as root (--no-sandbox) loads a page by a proxy-only name: its network "
    "service connects and its built-in DNS client is answered here, no query leaves",
    "[shim][lab][browser]") {
  const std::string exe = chromium();
  const std::string home = home_for("chromium-root");
  const std::size_t mark = lab().dns_log().size();
  // AsyncDns: Chromium's own DNS client, which reads resolv.conf and sends its queries over
  // UDP to 127.0.0.1:53 itself (the lab's sink, were it not answered by the library).
  const std::string out =
      browse(home, "echo $$ > " + main_pid(home) + "; exec " + lab().socksify() + " -vv -x " +
                       kDanted + " " + exe + chromium_flags(home) +
                       " --no-sandbox --enable-features=AsyncDns --dump-dom "
                       "http://target.lab:8080/?via=chromium-root");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  // It crossed the proxy: the server saw danted's egress address.
  CHECK_THAT(lab().server_log(), Catch::Contains("http 198.51.100.1 /?via=chromium-root"));
  // Chromium's own DNS client asked 127.0.0.1:53, and the library answered (no query left).
  CHECK_THAT(out, Catch::Contains("answered the local DNS stub's query for target.lab"));
  CHECK(leaks_since(mark).empty());
  // The connect came from a process other than the browser's main one: the network service.
  const std::string pid = read_file(main_pid(home));
  REQUIRE(!pid.empty());
  const std::string line_start = out.substr(0, out.find("connect target.lab:8080 via " + kDanted));
  REQUIRE(line_start.size() < out.size());
  const std::string who = line_start.substr(line_start.rfind("socksify["));
  CHECK(who.rfind("socksify[" + pid.substr(0, pid.find('\n')) + "]", 0) != 0);
}

TEST_CASE(
    "Chromium with its sandbox, as an unprivileged user, loads a page by a proxy-only "
    "name through the proxy, no query leaves",
    "[shim][lab][browser]") {
  const std::string exe = chromium();
  ensure_test_user();
  const std::string home = home_for("chromium-user", true);
  const std::size_t mark = lab().dns_log().size();
  const std::string out =
      browse(home, "setpriv --reuid=" + std::string(kTestUser) + " --regid=" + kTestUser +
                       " --clear-groups --reset-env env HOME=" + home + " " + lab().socksify() +
                       " -v -x " + kDanted + " " + exe + chromium_flags(home) +
                       " --dump-dom http://target.lab:8080/?via=chromium-sandboxed");
  INFO(out);
  // The sandbox is on (no --no-sandbox, and Chromium says nothing about running without one).
  CHECK_THAT(out, !Catch::Contains("--no-sandbox"));
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("connect target.lab:8080 via " + kDanted));
  CHECK_THAT(lab().server_log(), Catch::Contains("http 198.51.100.1 /?via=chromium-sandboxed"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE(
    "Chromium's QUIC goes through UDP ASSOCIATE, and without UDP at the proxy it is "
    "refused with one line and the page comes over TCP",
    "[shim][lab][browser]") {
  const std::string exe = chromium();
  const std::string openssl = require_program("openssl", "openssl");
  // target.lab:443: HTTPS whose answers offer HTTP/3 on UDP 443, where the same server logs
  // datagrams (no QUIC server: the browser's QUIC attempt fails and it goes on over TCP).
  const std::string tls = lab().dir() + "/browser-tls";
  run_ok("mkdir -p " + tls + " && cd " + tls + " && " + openssl +
         " req -x509 -newkey rsa:2048 -nodes -days 2 -keyout t.key -out t.pem -subj /CN=target.lab"
         " -addext subjectAltName=DNS:target.lab 2>/dev/null");
  // The certificate is trusted by its key's hash (Chromium's test switch), so that the
  // Alt-Svc counts (it is ignored on a connection with certificate errors).
  const std::string spki =
      run_ok(openssl + " x509 -in " + tls + "/t.pem -pubkey -noout | " + openssl +
             " pkey -pubin -outform der | " + openssl + " dgst -sha256 -binary | base64");
  const std::string log = lab().dir() + "/https.log";
  lab().start_on_proxy_side({"python3", SOCKSIFY_SOURCE_DIR "/tests/integration/lab_servers.py",
                             "--https-altsvc", log, "198.51.100.1", tls + "/t.pem", tls + "/t.key"},
                            "https.out");
  REQUIRE(lab().wait_on_proxy_side("198.51.100.1", 443));
  const std::size_t mark = lab().dns_log().size();
  int serial = 0;
  for (const std::string& proxy : {kDanted, std::string(kMicrosocks)}) {
    INFO(proxy);
    const std::string home = home_for(proxy == kDanted ? "quic-danted" : "quic-microsocks");
    const std::size_t log_mark = read_file(log).size();
    const std::string out =
        browse(home, lab().socksify() + " -x " + proxy + " " + exe + chromium_flags(home) +
                         " --no-sandbox --ignore-certificate-errors-spki-list=" +
                         spki.substr(0, spki.find('\n')) + " --dump-dom https://target.lab/");
    INFO(out);
    // The second request came (over TCP, through the proxy) whatever QUIC did.
    CHECK_THAT(out, Catch::Contains("second loaded"));
    // Everything sent to UDP 443 before now is logged once this marker is.
    const std::string marker = "sync-" + std::to_string(++serial);
    lab().proxy_side(
        "python3 -c \"import socket; socket.socket(socket.AF_INET, "
        "socket.SOCK_DGRAM).sendto(b\\\"" +
        marker + "\\\", (\\\"198.51.100.1\\\", 443))\"");
    const std::string all = wait_for_text([&] { return read_file(log); }, "sync " + marker);
    REQUIRE_THAT(all, Catch::Contains("sync " + marker));
    const std::string seen = all.substr(log_mark);
    INFO(seen);
    CHECK_THAT(seen, Catch::Contains("https 198.51.100.1 /second.js"));
    if (proxy == kDanted) {
      // QUIC's first flight (Initial packets, padded to at least 1200 octets) arrived from
      // danted's egress address: it crossed the proxy by UDP ASSOCIATE.
      CHECK(initial_packets(seen) >= 1);
      CHECK_THAT(out, !Catch::Contains("UDP ASSOCIATE failed"));
    } else {
      // microsocks has no UDP: one line for the whole browser, and no datagram anywhere.
      CHECK(count_of(out, "UDP ASSOCIATE failed: proxy " + proxy) == 1);
      CHECK(count_of(seen, "quic ") == 0);
    }
  }
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("Chromium's WebRTC: its STUN requests cross the proxy, none leaves directly",
          "[shim][lab][browser]") {
  const std::string exe = chromium();
  // A STUN server the client could reach directly: on the client side, at the client's own
  // veth address. What reaches it through the proxy comes from danted's egress address; a
  // request sent around the proxy would come from 192.0.2.2 itself.
  const std::string stun = lab().start_udp_logger(true, "192.0.2.2", 3478);
  write_file(lab().dir() + "/www/webrtc.html",
             "<html><body>gathering<script>\n"
             "const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:192.0.2.2:3478'}]});\n"
             "const seen = [];\n"
             "pc.onicecandidate = e => { if (e.candidate) seen.push(e.candidate.candidate); };\n"
             "pc.createDataChannel('x');\n"
             "pc.createOffer().then(o => pc.setLocalDescription(o));\n"
             "setTimeout(() => fetch('/report?' + encodeURIComponent(seen.join(' | '))), 3000);\n"
             "</script></body></html>\n");
  chmod((lab().dir() + "/www/webrtc.html").c_str(), 0644);
  const std::string home = home_for("webrtc");
  // The page reports after 3 s; the browser is then stopped (bounded: 20 s at most).
  const std::string out = browse(
      home, "timeout 20 " + lab().socksify() + " -v -x " + kDanted + " " + exe +
                chromium_flags(home) + " --no-sandbox http://target.lab:8080/webrtc.html & " +
                "b=$!; for i in $(seq 200); do grep -q /report " + lab().dir() +
                "/servers.log && break; sleep 0.1; done; kill $b; wait");
  INFO(out);
  const std::string report =
      wait_for_text([] { return lab().server_log(); }, "http 198.51.100.1 /report?");
  CHECK_THAT(report, Catch::Contains("http 198.51.100.1 /report?"));
  // The candidates the page saw never name the client's own address (192.0.2.2): Chromium
  // hides host addresses behind mDNS names, and the server-reflexive address STUN reports
  // is the proxy side's.
  const std::string candidates = report.substr(report.find("/report?"));
  CHECK_THAT(candidates, !Catch::Contains("192.0.2.2"));
  const std::string got = lab().synced_log(true, "192.0.2.2", 3478);
  INFO(got);
  // STUN binding requests (20 octets) arrived, each from the proxy side.
  CHECK(count_of(got, "got 198.51.100.1 20\n") >= 1);
  CHECK(count_of(got, "got 192.0.2.2 ") == 0);
  CHECK(count_of(got, "got 127.") == 0);
  CHECK_THAT(out, Catch::Contains("UDP associated via " + kDanted));
}

TEST_CASE(
    "Firefox ESR (headless) loads a page by a proxy-only name through the proxy, no "
    "query leaves",
    "[shim][lab][browser]") {
  const std::string exe = require_program("firefox-esr", "firefox-esr");
  const std::string home = home_for("firefox");
  // A profile that keeps Firefox's own DNS-over-HTTPS off (the names go to getaddrinfo, as a
  // user's would without it) and its first-run chores quiet.
  run_ok("mkdir -p " + home + "/profile");
  write_file(home + "/profile/user.js",
             "user_pref(\"network.trr.mode\", 5);\n"
             "user_pref(\"network.captive-portal-service.enabled\", false);\n"
             "user_pref(\"network.connectivity-service.enabled\", false);\n"
             "user_pref(\"app.update.enabled\", false);\n"
             "user_pref(\"browser.shell.checkDefaultBrowser\", false);\n"
             "user_pref(\"datareporting.policy.dataSubmissionEnabled\", false);\n");
  const std::size_t mark = lab().dns_log().size();
  const std::string out = browse(
      home, lab().socksify() + " -v -x " + kDanted + " " + exe + " --headless --profile " + home +
                "/profile --screenshot " + home + "/shot.png http://target.lab:8080/?via=firefox");
  INFO(out);
  CHECK_THAT(out, Catch::Contains("connect target.lab:8080 via " + kDanted));
  CHECK_THAT(lab().server_log(), Catch::Contains("http 198.51.100.1 /?via=firefox"));
  struct stat st {};
  CHECK(stat((home + "/shot.png").c_str(), &st) == 0);
  CHECK(leaks_since(mark).empty());
}
