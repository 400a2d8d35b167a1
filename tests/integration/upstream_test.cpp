// Upstream protocols other than SOCKS5, with real programs in the lab (lab.hpp): the client
// side reaches no target except through a proxy, and only the proxy side resolves the lab's
// names, so a success proves the traffic crossed the proxy (and the DNS sink, that no name
// leaked). tinyproxy speaks HTTP CONNECT, danted SOCKS4, ssh -D SOCKS4a; stunnel in front of
// tinyproxy makes an https proxy; the hostile proxy misbehaves in HTTP.
#include <catch2/catch.hpp>

#include "integration/lab.hpp"
#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

constexpr const char* kTinyproxy = "http://192.0.2.1:3128";

// A python3 client: connects to HOST PORT, prints "connected" or "error ERRNO-NAME", then
// (connected) what the server sent first.
std::string first_words_script() {
  const std::string path = lab().dir() + "/first_words.py";
  write_file(path,
             "import errno, socket, sys\n"
             "try:\n"
             "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 20)\n"
             "except OSError as e:\n"
             "    print('error', errno.errorcode.get(e.errno, e.errno), flush=True)\n"
             "    sys.exit(1)\n"
             "print('connected', flush=True)\n"
             "s.settimeout(10)\n"
             "print('first', s.recv(100))\n"
             "s.sendall(b'ping')\n"
             "print('echo', s.recv(100))\n");
  return path;
}

}  // namespace

TEST_CASE("HTTP CONNECT through tinyproxy: curl by name, no lookup leaks", "[shim][lab][http]") {
  lab().start_tinyproxy(3128, false);
  const std::size_t mark = lab().dns_log().size();
  const std::string out = run_ok(lab().socksify() + " -x " + kTinyproxy +
                                 " -v curl -sS -m 10 http://target.lab:8080/?via=tinyproxy");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("connect target.lab:8080 via http://192.0.2.1:3128"));
  CHECK_THAT(out, Catch::Contains("method none, 1 wait"));
  CHECK_THAT(server_log_with("/?via=tinyproxy"), Catch::Contains("/?via=tinyproxy"));
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT target.lab:8080"),
             Catch::Contains("CONNECT target.lab:8080"));
  CHECK(leaks_since(mark).empty());
  // An IPv6 literal goes in brackets.
  CHECK_THAT(run_ok(lab().socksify() + " -x " + kTinyproxy +
                    " curl -sS -m 10 -g http://[2001:db8::1]:8080/"),
             Catch::Contains("hello from the proxy side"));
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT [2001:db8::1]:8080"),
             Catch::Contains("CONNECT [2001:db8::1]:8080"));
}

TEST_CASE("HTTP CONNECT with Basic: the password from SOCKSIFY_PASSWORD, a 407 says what it wants",
          "[shim][lab][http]") {
  lab().start_tinyproxy(3129, true);
  const std::string user = std::string("http://") + kTestUser + "@192.0.2.1:3129";
  const std::string ok =
      run_ok("SOCKSIFY_PASSWORD=" + std::string(kTestPassword) + " " + lab().socksify() + " -x " +
             user + " -v curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(ok, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(ok, Catch::Contains("method Basic, 1 wait"));
  CHECK(ok.find(kTestPassword) == std::string::npos);
  const std::string none = run_fail(
      lab().socksify() + " -x http://192.0.2.1:3129 curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(none, Catch::Contains("proxy http://192.0.2.1:3129 requires authentication (it asked "
                                   "for Basic)"));
  const std::string wrong = run_fail("SOCKSIFY_PASSWORD=wrong " + lab().socksify() + " -x " + user +
                                     " curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(wrong, Catch::Contains("rejected user '" + std::string(kTestUser) + "'"));
}

TEST_CASE("SOCKS4 through danted takes addresses, SOCKS4a through ssh -D takes names",
          "[shim][lab][socks4]") {
  const std::string v4 = run_ok(lab().socksify() +
                                " -x socks4://someone@192.0.2.1:1080 -v curl -sS -m 10 "
                                "http://198.51.100.1:8080/?via=socks4");
  CHECK_THAT(v4, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(v4, Catch::Contains("via socks4://someone@192.0.2.1:1080"));
  CHECK_THAT(server_log_with("/?via=socks4"), Catch::Contains("http 198.51.100.1 /?via=socks4"));
  // A name behind a fake address cannot go to a SOCKS4 proxy: one line says what to use.
  const std::string name = run_fail(lab().socksify() +
                                    " -x socks4://192.0.2.1:1080 --dns remote curl -sS -m 10 "
                                    "http://target.lab:8080/");
  CHECK_THAT(name,
             Catch::Contains("takes addresses only, and target.lab is a name: use socks4a://"));
  // SOCKS4a: OpenSSH's dynamic forwarding resolves the name.
  const std::size_t mark = lab().dns_log().size();
  const std::string key = start_sshd(2224);
  lab().start_on_proxy_side(
      {"/bin/sh", "-c",
       require_program("ssh", "openssh-client") + " -N -D 192.0.2.1:1087 -i " + key + kSshOptions +
           " -o ExitOnForwardFailure=yes -p 2224 root@198.51.100.1"},
      "ssh-D-4a.log");
  REQUIRE(lab().wait_on_proxy_side("192.0.2.1", 1087));
  const std::string v4a = run_ok(lab().socksify() +
                                 " -x socks4a://192.0.2.1:1087 -v curl -sS -m 10 "
                                 "http://target.lab:8080/?via=socks4a");
  CHECK_THAT(v4a, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(server_log_with("/?via=socks4a"), Catch::Contains("/?via=socks4a"));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("UDP through an HTTP proxy is refused with one line, failover takes a SOCKS5 one",
          "[shim][lab][http]") {
  lab().start_tinyproxy(3128, false);
  const std::string refused =
      run_fail(lab().socksify() + " -x " + kTinyproxy + " " + probe() + " udp 198.51.100.1 7000");
  CHECK_THAT(refused, Catch::Contains("sendto: errno=EOPNOTSUPP"));
  CHECK_THAT(refused, Catch::Contains("speaks HTTP CONNECT, which has no UDP ASSOCIATE"));
  // Failover: the HTTP proxy first for TCP, danted for what only SOCKS5 carries.
  const std::string both = run_ok(lab().socksify() + " -x " + kTinyproxy + " -x " + kDanted + " " +
                                  probe() + " udpecho 198.51.100.1 7000 4 100");
  CHECK_THAT(both, Catch::Contains("udp echo ok"));
  // A listening socket through an HTTP proxy: refused too (BIND is SOCKS5's).
  const std::string bind = run_fail(lab().socksify() + " -x " + kTinyproxy + " " + probe() +
                                    " bind 198.51.100.1 7000 block");
  CHECK_THAT(bind, Catch::Contains("which has no BIND"));
}

TEST_CASE("mixed strict chains: HTTP CONNECT to danted then SOCKS5, and HTTP then an https hop",
          "[shim][lab][http]") {
  lab().start_tinyproxy(3128, false);
  const std::string out = run_ok(lab().socksify() + " --chain strict -x " + kTinyproxy + " -x " +
                                 kDanted + " -v curl -sS -m 10 http://target.lab:8080/?via=chain");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(server_log_with("/?via=chain"), Catch::Contains("/?via=chain"));
  // tinyproxy was asked for danted, and danted for the target.
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT 192.0.2.1:1080"),
             Catch::Contains("CONNECT 192.0.2.1:1080"));
  // An https hop second: tinyproxy is asked for stunnel, TLS runs inside that tunnel, and
  // tinyproxy (behind stunnel) is asked for the target.
  lab().start_stunnel(3443, 3128);
  const std::size_t before = count_of(lab().tinyproxy_log(3128), "CONNECT 192.0.2.1:3443");
  const std::string tls = run_ok(lab().socksify() + " --chain strict -x " + kTinyproxy +
                                 " -x https://192.0.2.1:3443 --proxy-cacert " + lab().test_ca() +
                                 " curl -sS -m 10 http://target.lab:8080/?via=tlschain");
  CHECK_THAT(tls, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(server_log_with("/?via=tlschain"), Catch::Contains("/?via=tlschain"));
  CHECK(wait_for_count([] { return lab().tinyproxy_log(3128); }, "CONNECT 192.0.2.1:3443",
                       before + 1) == before + 1);
}

TEST_CASE("a hostile HTTP proxy: a banner with the 200, bad status, endless header, 407, close",
          "[shim][lab][http]") {
  const std::string script = first_words_script();
  // The server speaks first, and the proxy sends its 200 and the banner in one write: the
  // banner is the program's.
  lab().start_hostile("http-banner", "192.0.2.1", 3140);
  const std::string banner =
      run_ok(lab().socksify() + " -x http://192.0.2.1:3140 python3 " + script + " target.lab 22");
  CHECK_THAT(banner, Catch::Contains("first b'SSH-2.0-hostile-banner\\r\\n'"));
  CHECK_THAT(banner, Catch::Contains("echo b'ping'"));
  CHECK_THAT(lab().hostile_log(), Catch::Contains("http request CONNECT target.lab:22 HTTP/1.1"));

  struct Case {
    const char* mode;
    int port;
    const char* error;
    const char* line;
  };
  const Case cases[] = {
      {"http-badstatus", 3141, "EPROTO", "sent a malformed HTTP reply: 'HTTP/1.1 2x0 OK'"},
      {"http-endless", 3142, "EPROTO", "HTTP reply header too long"},
      {"http-407", 3143, "EACCES", "requires authentication (it asked for Negotiate, Basic)"},
      {"http-midclose", 3144, "ECONNRESET", "closed the connection during the handshake"},
  };
  for (const auto& c : cases) {
    INFO(c.mode);
    lab().start_hostile(c.mode, "192.0.2.1", c.port);
    const std::string out =
        run_fail(lab().socksify() + " -x http://192.0.2.1:" + std::to_string(c.port) + " python3 " +
                 script + " target.lab 22");
    CHECK_THAT(out, Catch::Contains(std::string("error ") + c.error));
    CHECK_THAT(out, Catch::Contains(c.line));
  }
  // The endless header was cut at the bound, not run to the deadline.
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "http-endless closed after"),
             Catch::Contains("http-endless closed after"));
}

TEST_CASE("supervisor: a static program through an HTTP proxy", "[shim][lab][http][supervisor]") {
  lab().start_tinyproxy(3128, false);
  const std::string out = run_ok(lab().socksify() + " -x " + kTinyproxy + " -v " +
                                 SOCKSIFY_STATIC_PROBE " connect target.lab 7000 block");
  CHECK_THAT(out, Catch::Contains("connect target.lab:7000 via http://192.0.2.1:3128"));
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT target.lab:7000"),
             Catch::Contains("CONNECT target.lab:7000"));
}

TEST_CASE("a SOCKS5 proxy on a Unix socket (Tor's SocksPort unix:), preloaded and supervised",
          "[shim][lab][unix]") {
  // socat listens on a Unix socket in the lab's directory and passes each connection to
  // danted: the client side's programs reach the proxy only through that socket.
  const std::string sock = lab().dir() + "/tor.sock";
  lab().start_on_proxy_side({require_program("socat", "socat"), "-d", "-d",
                             "UNIX-LISTEN:" + sock + ",fork,mode=666", "TCP:192.0.2.1:1080"},
                            "socat.log");
  REQUIRE_THAT(wait_for_text([] { return read_file(lab().dir() + "/socat.log"); }, "listening on"),
               Catch::Contains("listening on"));
  const std::string uri = "socks5h://localhost" + sock;
  const std::size_t mark = lab().dns_log().size();
  const std::string out = run_ok(lab().socksify() + " -x " + uri +
                                 " -v curl -sS -m 10 http://target.lab:8080/?via=unix");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("via " + uri));
  CHECK_THAT(server_log_with("/?via=unix"), Catch::Contains("http 198.51.100.1 /?via=unix"));
  CHECK(leaks_since(mark).empty());
  // socat accepted the connections on its Unix socket.
  CHECK_THAT(read_file(lab().dir() + "/socat.log"), Catch::Contains("accepting connection"));
  // An event loop: 20 non-blocking connects at once through the relay (more than socat's
  // listen backlog of 5: a full backlog is waited out, not taken for a connection).
  CHECK_THAT(run_ok(lab().socksify() + " -x " + uri + " python3 " + asyncio_script(20)),
             Catch::Contains("echoed 20"));
  // The probe: the program's socket is still an internet socket, its peer the destination.
  const std::string probe_out =
      run_ok(lab().socksify() + " -x " + uri + " " + probe() + " connect target.lab 7000 block");
  CHECK_THAT(probe_out, Catch::Contains("peer 198.18."));
  // check reaches the socket and the target.
  const std::string check = run_ok(lab().socksify() + " -x " + uri + " check target.lab:7000");
  CHECK_THAT(check, Catch::Contains("tcp:       connected to " + sock));
  CHECK_THAT(check, Catch::Contains("result:    OK"));
  // The supervisor (a static program): its dial runs on a socket of the supervisor's own, and
  // a relay carries the program's socket, blocking and non-blocking.
  for (const char* how : {" block", ""}) {
    const std::string sv = run_ok(lab().socksify() + " -x " + uri +
                                  " -v " SOCKSIFY_STATIC_PROBE " connect target.lab 7000" + how);
    CHECK_THAT(sv, Catch::Contains("peer 198.18."));
    CHECK_THAT(sv, Catch::Contains("echo ok"));
    CHECK_THAT(sv, Catch::Contains("connect target.lab:7000 via " + uri));
  }
}

TEST_CASE("HTTP CONNECT with Negotiate: squid checks the Kerberos ticket sent with the request",
          "[shim][lab][http][gssapi]") {
  const std::string env = lab().start_gssapi();
  lab().start_squid_negotiate(3130);
  const std::string gss = "env " + env + " SOCKSIFY_AUTH=gssapi " + lab().socksify();
  const std::size_t mark = lab().dns_log().size();
  std::string out;
  const int rc = lab().client(gss +
                                  " -x http://192.0.2.1:3130 -v curl -sS -m 10 "
                                  "http://target.lab:8080/?via=negotiate",
                              &out);
  INFO(out << "\nsquid's cache.log:\n" << read_file(lab().dir() + "/squid/cache.log"));
  REQUIRE(rc == 0);
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  // One wait: the token left with the CONNECT (curl --proxy-negotiate waits for a 407 first).
  CHECK_THAT(out, Catch::Contains("method Negotiate, 1 wait"));
  CHECK_THAT(server_log_with("/?via=negotiate"), Catch::Contains("/?via=negotiate"));
  // squid authenticated alice: its access log names her for the CONNECT.
  CHECK_THAT(wait_for_text([] { return lab().squid_log(); }, "alice@SOCKS.TEST"),
             Catch::Contains("CONNECT target.lab:8080 alice@SOCKS.TEST"));
  CHECK(leaks_since(mark).empty());
  // Without Negotiate squid asks for it: the line says so.
  const std::string none = run_fail(
      lab().socksify() + " -x http://192.0.2.1:3130 curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(none, Catch::Contains("requires authentication (it asked for Negotiate)"));
  // A service the KDC does not know: the line names it.
  const std::string unknown = run_fail(gss + " --gssapi-service nosuch -x http://192.0.2.1:3130" +
                                       " curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(unknown, Catch::Contains("the KDC does not know the service 'nosuch@192.0.2.1'"));
  // No ticket: run kinit, says the line.
  const std::string noticket = run_fail("env " + env + " KRB5CCNAME=FILE:/nonexistent/cc " +
                                        "SOCKSIFY_AUTH=gssapi " + lab().socksify() +
                                        " -x http://192.0.2.1:3130 curl -sS -m 10 "
                                        "http://target.lab:8080/");
  CHECK_THAT(noticket, Catch::Contains("no Kerberos credentials for GSSAPI: run kinit"));
}

TEST_CASE("an https proxy: stunnel in front of tinyproxy, verified with the lab's CA",
          "[shim][lab][http][tls]") {
  lab().start_tinyproxy(3128, false);
  lab().start_stunnel(3443, 3128);
  const std::string ca = lab().test_ca();
  const std::string https = " -x https://192.0.2.1:3443 ";
  const std::size_t mark = lab().dns_log().size();
  // curl (a non-blocking connect) by name: TLS to stunnel, the CONNECT inside it.
  const std::string out = run_ok(lab().socksify() + https + "--proxy-cacert " + ca +
                                 " -v curl -sS -m 10 http://target.lab:8080/?via=https");
  CHECK_THAT(out, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(out, Catch::Contains("connect target.lab:8080 via https://192.0.2.1:3443"));
  CHECK_THAT(server_log_with("/?via=https"), Catch::Contains("/?via=https"));
  CHECK_THAT(wait_for_text([] { return lab().tinyproxy_log(3128); }, "CONNECT target.lab:8080"),
             Catch::Contains("CONNECT target.lab:8080"));
  CHECK_THAT(wait_for_text([] { return lab().stunnel_log(3443); }, "accepted connection from"),
             Catch::Contains("accepted connection from 192.0.2.2"));
  CHECK(leaks_since(mark).empty());
  // 4 MiB, whole: the program's octets after the hand-over from the dial to the relay.
  lab().proxy_side("head -c 4194304 /dev/urandom > " + lab().dir() + "/www/big.bin && chmod 0644 " +
                   lab().dir() + "/www/big.bin");
  const std::string sums = run_ok(
      "cd " + lab().dir() + " && SOCKSIFY_PROXY_CACERT=" + ca + " " + lab().socksify() + https +
      "curl -sS -m 30 -o got.bin http://target.lab:8080/big.bin && sha256sum www/big.bin got.bin "
      "| cut -c1-64 | uniq | wc -l");
  CHECK_THAT(sums, Catch::Contains("1"));
  CHECK_THAT(sums, !Catch::Contains("2"));
  // The key proxy_cacert in a configuration file, and a blocking connect (the probe).
  const std::string conf = lab().dir() + "/https.conf";
  write_file(conf, "proxy = \"https://192.0.2.1:3443\"\nproxy_cacert = \"" + ca + "\"\n");
  const std::string probe_out =
      run_ok(lab().socksify() + " -c " + conf + " " + probe() + " connect target.lab 7000 block");
  CHECK_THAT(probe_out, Catch::Contains("peer 198.18."));
  CHECK_THAT(probe_out, Catch::Contains("echo ok"));
  // An event loop: 20 connects at once, each its own TLS relay.
  CHECK_THAT(run_ok(lab().socksify() + " -c " + conf + " python3 " + asyncio_script(20)),
             Catch::Contains("echoed 20"));
  // The supervisor (a static program), blocking and non-blocking: TLS in a relay of its own.
  for (const char* how : {" block", ""}) {
    const std::size_t before = count_of(lab().tinyproxy_log(3128), "CONNECT target.lab:7000");
    const std::string sv = run_ok(lab().socksify() + " -c " + conf +
                                  " -v " SOCKSIFY_STATIC_PROBE " connect target.lab 7000" + how);
    CHECK_THAT(sv, Catch::Contains("peer 198.18."));
    CHECK_THAT(sv, Catch::Contains("echo ok"));
    CHECK_THAT(sv, Catch::Contains("connect target.lab:7000 via https://192.0.2.1:3443"));
    CHECK(wait_for_count([] { return lab().tinyproxy_log(3128); }, "CONNECT target.lab:7000",
                         before + 1) == before + 1);
  }
  // check does the TLS handshake, and the CONNECT.
  const std::string check = run_ok(lab().socksify() + " -c " + conf + " check target.lab:7000");
  CHECK_THAT(check, Catch::Contains("protocol:  HTTPS CONNECT"));
  CHECK_THAT(check, Catch::Contains("result:    OK"));
}

TEST_CASE("an https proxy that cannot be trusted is not used: unknown CA, wrong name, not TLS",
          "[shim][lab][http][tls]") {
  lab().start_tinyproxy(3128, false);
  lab().start_stunnel(3443, 3128);
  lab().start_stunnel(3444, 3128, "elsewhere");
  const std::string curl = " curl -sS -m 10 http://target.lab:8080/";
  const std::size_t before = count_of(lab().tinyproxy_log(3128), "CONNECT target.lab");
  // The system store does not know the lab's CA, nor does another CA.
  for (const std::string& extra : {std::string(), " --proxy-cacert " + lab().other_ca()}) {
    const std::string no_ca =
        run_fail(lab().socksify() + " -x https://192.0.2.1:3443" + extra + curl);
    CHECK_THAT(no_ca, Catch::Contains("proxy https://192.0.2.1:3443: its TLS certificate was not "
                                      "accepted (certificate verify failed: unable to get local "
                                      "issuer certificate)"));
    CHECK_THAT(no_ca, Catch::Contains("--proxy-cacert FILE"));
  }
  // Signed by the trusted CA, but for another name.
  const std::string wrong = run_fail(
      lab().socksify() + " -x https://192.0.2.1:3444 --proxy-cacert " + lab().test_ca() + curl);
  CHECK_THAT(wrong, Catch::Contains("certificate verify failed: IP address mismatch"));
  // Not TLS at all: danted, which closes on the ClientHello, and tinyproxy, which waits for
  // the end of a request line that never comes.
  const std::string plain = run_fail(lab().socksify() + " -x https://192.0.2.1:1080" + curl);
  CHECK_THAT(plain, Catch::Contains("proxy https://192.0.2.1:1080: the TLS handshake failed ("));
  CHECK_THAT(plain, Catch::Contains("is it an https proxy?"));
  const std::string mute =
      run_fail(lab().socksify() + " --timeout 2000 -x https://192.0.2.1:3128" + curl);
  CHECK_THAT(mute,
             Catch::Contains("proxy https://192.0.2.1:3128: no TLS handshake within 2000 ms"));
  // None of them carried a CONNECT: nothing left unverified.
  CHECK(count_of(lab().tinyproxy_log(3128), "CONNECT target.lab") == before);
  // The supervisor refuses an unknown CA with the same line.
  const std::string sv = run_fail(lab().socksify() + " -x https://192.0.2.1:3443 " +
                                  SOCKSIFY_STATIC_PROBE " connect target.lab 7000 block");
  CHECK_THAT(sv, Catch::Contains("its TLS certificate was not accepted (certificate verify "
                                 "failed: unable to get local issuer certificate)"));
  // A CA file that cannot be read is a failure too, never "the system store only".
  const std::string missing = run_fail(
      lab().socksify() + " -x https://192.0.2.1:3443 --proxy-cacert /nonexistent/ca.pem" + curl);
  CHECK_THAT(missing, Catch::Contains("cannot read the CA file /nonexistent/ca.pem"));
}

TEST_CASE("an https proxy that sends the server's first words with its 200",
          "[shim][lab][http][tls]") {
  // stunnel in front of the hostile proxy's http-banner mode: the banner comes in the same
  // TLS record as the 200, and is the program's (the relay hands what the dial did not read
  // to the program first).
  lab().start_hostile("http-banner", "192.0.2.1", 3140);
  lab().start_stunnel(3445, 3140);
  const std::string banner =
      run_ok(lab().socksify() + " -x https://192.0.2.1:3445 --proxy-cacert " + lab().test_ca() +
             " python3 " + first_words_script() + " target.lab 22");
  CHECK_THAT(banner, Catch::Contains("first b'SSH-2.0-hostile-banner\\r\\n'"));
  CHECK_THAT(banner, Catch::Contains("echo b'ping'"));
}

TEST_CASE("an https proxy that ends without close_notify: every octet it sent, then the end",
          "[shim][lab][http][tls]") {
  // 8 MiB after the 200, then the TCP connection closes with no close_notify (as many proxies
  // do): the program reads all of it, slowly (the relay holds at most 1 MiB and waits), then
  // an end of stream, never a reset that would make its kernel drop what it had not read.
  const std::string tls = lab().dir() + "/tls/";
  lab().test_ca();
  lab().start_hostile("https-flood", "192.0.2.1", 3446, {tls + "good.pem", tls + "good.key"});
  const std::string reader = lab().dir() + "/slow_reader.py";
  write_file(reader,
             "import socket, sys, time\n"
             "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 20)\n"
             "time.sleep(1)\n"
             "n = 0\n"
             "try:\n"
             "    while True:\n"
             "        d = s.recv(65536)\n"
             "        if not d:\n"
             "            break\n"
             "        n += len(d)\n"
             "    print('got', n, 'then the end', flush=True)\n"
             "except OSError as e:\n"
             "    print('got', n, 'then', e, flush=True)\n");
  const std::string out = run_ok(lab().socksify() + " -x https://192.0.2.1:3446 --proxy-cacert " +
                                 lab().test_ca() + " python3 " + reader + " target.lab 80");
  CHECK_THAT(out, Catch::Contains("got 8388608 then the end"));
  CHECK_THAT(wait_for_text([] { return lab().hostile_log(); }, "https-flood sent"),
             Catch::Contains("https-flood sent 8388608"));
}
