// The hops other than SOCKS5, without sockets: golden requests, every split of the proxy's
// octets into reads, and hostile replies (SOCKS4/4a, HTTP CONNECT).
#include <catch2/catch.hpp>
#include <string>

#include "socks5/error.hpp"
#include "socks5/hop.hpp"
#include "socks5/http.hpp"
#include "socks5/socks4.hpp"

using namespace socks5;

namespace {

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

ProxyUri uri(const char* t) {
  auto u = parse_proxy_uri(t);
  REQUIRE(u);
  return *u;
}

struct Outcome {
  Bytes written;
  std::error_code error;
  bool done = false;
  std::size_t unread = 0;  // octets the hop left for the program
  std::string detail;
};

// Feeds `server` cut at `cuts` (as the Pump does: what the hop did not use stays pending).
Outcome run(Hop& h, const Bytes& server, std::vector<std::size_t> cuts) {
  Outcome o;
  auto s = h.start();
  if (!s) {
    o.error = s.error();
    return o;
  }
  o.written = h.output();
  h.clear_output();
  Bytes pending;
  std::size_t pos = 0;
  cuts.push_back(server.size());
  for (std::size_t end : cuts) {
    if (h.done() || end <= pos) continue;
    pending.insert(pending.end(), server.begin() + static_cast<std::ptrdiff_t>(pos),
                   server.begin() + static_cast<std::ptrdiff_t>(end));
    pos = end;
    // A machine that knows its message's size is handed at most that (Pump::run).
    const std::size_t need = h.exact_need();
    const std::size_t give = need != 0 ? std::min(need, pending.size()) : pending.size();
    auto used = h.receive(ByteView(pending.data(), give));
    if (!used) {
      o.error = used.error();
      o.detail = h.detail();
      return o;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  o.done = h.done();
  o.unread = pending.size() + (server.size() - pos);
  o.detail = h.detail();
  return o;
}

std::unique_ptr<Hop> hop(const ProxyUri& p, Address target) {
  HopRequest r;
  r.target = std::move(target);
  auto h = make_hop(p, std::move(r));
  REQUIRE(h);
  return std::move(*h);
}

// Every split into up to three reads, and one octet at a time.
void every_split(const ProxyUri& p, const Address& target, const Bytes& server,
                 const Bytes& expect_written, std::size_t expect_unread) {
  for (std::size_t i = 0; i <= server.size(); ++i) {
    for (std::size_t j = i; j <= server.size(); j += 3) {
      INFO("cuts at " << i << " and " << j);
      auto h = hop(p, target);
      auto o = run(*h, server, {i, j});
      REQUIRE_FALSE(o.error);
      REQUIRE(o.done);
      CHECK(o.written == expect_written);
      CHECK(o.unread == expect_unread);
    }
  }
  std::vector<std::size_t> cuts;
  for (std::size_t k = 1; k < server.size(); ++k) cuts.push_back(k);
  auto h = hop(p, target);
  auto o = run(*h, server, cuts);
  REQUIRE(o.done);
  CHECK(o.unread == expect_unread);
}

}  // namespace

TEST_CASE("SOCKS4: CONNECT to an IPv4 address with a user id", "[socks4]") {
  const Bytes request = {0x04, 0x01, 0x1F, 0x90, 10, 0, 0, 1, 'b', 'o', 'b', 0x00};
  const Bytes reply = {0x00, 90, 0x00, 0x00, 0, 0, 0, 0};
  every_split(uri("socks4://bob@p"), Address::ipv4({10, 0, 0, 1}, 8080), reply, request, 0);
  // Octets after the reply are the program's.
  Bytes more = reply;
  more.push_back('S');
  more.push_back('S');
  every_split(uri("socks4://bob@p"), Address::ipv4({10, 0, 0, 1}, 8080), more, request, 2);
}

TEST_CASE("SOCKS4a: a name goes to the proxy after 0.0.0.1", "[socks4]") {
  const Bytes request = {0x04, 0x01, 0x00, 0x50, 0,   0,   0,   1,   0x00,
                         'e',  'x',  '.',  't',  'e', 's', 't', 0x00};
  const Bytes reply = {0x00, 90, 0x00, 0x50, 192, 0, 2, 1};
  auto h = hop(uri("socks4a://p"), Address::domain("ex.test", 80));
  auto o = run(*h, reply, {});
  REQUIRE(o.done);
  CHECK(o.written == request);
  CHECK(h->bound().to_string() == "192.0.2.1:80");
}

TEST_CASE("SOCKS4: what it cannot carry, and the replies that fail", "[socks4]") {
  HopRequest name;
  name.target = Address::domain("ex.test", 80);
  auto n = can_carry(uri("socks4://p"), name);
  REQUIRE_FALSE(n);
  CHECK(n.error() == Errc::target_not_expressible);
  HopRequest v6;
  v6.target = Address::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 80);
  CHECK_FALSE(can_carry(uri("socks4a://p"), v6));
  HopRequest bind;
  bind.command = wire::Command::bind;
  bind.target = Address::ipv4({10, 0, 0, 1}, 80);
  auto b = can_carry(uri("socks4://p"), bind);
  REQUIRE_FALSE(b);
  CHECK(b.error() == Errc::command_not_offered);
  CHECK(to_errno(b.error()) == EOPNOTSUPP);

  struct Case {
    Bytes reply;
    Errc error;
  };
  const Case cases[] = {
      {{0x00, 91, 0, 0, 0, 0, 0, 0}, Errc::socks4_rejected},
      {{0x00, 92, 0, 0, 0, 0, 0, 0}, Errc::socks4_identd},
      {{0x00, 93, 0, 0, 0, 0, 0, 0}, Errc::socks4_identd},
      {{0x00, 0x00, 0, 0, 0, 0, 0, 0}, Errc::socks4_unassigned_reply},
      {{0x05, 0x00}, Errc::not_socks4},              // a SOCKS5 server's method selection
      {text("HTTP/1.1 400 Bad"), Errc::not_socks4},  // an HTTP server
  };
  for (const auto& c : cases) {
    auto h = hop(uri("socks4://p"), Address::ipv4({10, 0, 0, 1}, 80));
    auto o = run(*h, c.reply, {});
    CHECK(o.error == c.error);
    CHECK_FALSE(o.done);
  }
  // A short reply is not an answer yet.
  auto h = hop(uri("socks4://p"), Address::ipv4({10, 0, 0, 1}, 80));
  auto o = run(*h, {0x00, 90, 0}, {});
  CHECK_FALSE(o.error);
  CHECK_FALSE(o.done);
}

TEST_CASE("HTTP CONNECT: the request, and a 200 whose banner stays for the program", "[http]") {
  const Bytes request = text("CONNECT ex.test:22 HTTP/1.1\r\nHost: ex.test:22\r\n\r\n");
  const std::string banner = "SSH-2.0-OpenSSH_9.2\r\n";
  const Bytes reply = text("HTTP/1.1 200 Connection established\r\nVia: 1.1 p\r\n\r\n" + banner);
  every_split(uri("http://p:3128"), Address::domain("ex.test", 22), reply, request, banner.size());
  // HTTP/1.0 and bare LF line ends (tinyproxy answers 1.0).
  every_split(uri("http://p"), Address::domain("ex.test", 22), text("HTTP/1.0 200 OK\n\n"), request,
              0);
}

TEST_CASE("HTTP CONNECT: addresses, IPv6 in brackets, Basic with the first request", "[http]") {
  auto h = hop(uri("http://alice:s%3Acret@p"),
               Address::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443));
  auto o = run(*h, text("HTTP/1.1 200 OK\r\n\r\n"), {});
  REQUIRE(o.done);
  CHECK(std::string(o.written.begin(), o.written.end()) ==
        "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n"
        "Proxy-Authorization: Basic YWxpY2U6czpjcmV0\r\n\r\n");
  CHECK(std::string(h->method_text()) == "Basic");
  CHECK(http::base64(text("")) == "");
  CHECK(http::base64(text("f")) == "Zg==");
  CHECK(http::base64(text("fo")) == "Zm8=");
  CHECK(http::base64(text("foo")) == "Zm9v");
  CHECK(http::base64(text("foob")) == "Zm9vYg==");
}

TEST_CASE("HTTP CONNECT: hostile and failing replies", "[http]") {
  struct Case {
    std::string reply;
    Errc error;
    const char* detail;
  };
  const std::string big(http::kMaxHeader, 'a');
  const Case cases[] = {
      {"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"a, "
       "b\"\r\nProxy-Authenticate: Negotiate\r\nProxy-authenticate: NTLM, Digest realm=x, "
       "qop=\"auth\"\r\n\r\n",
       Errc::http_auth_required, "Basic, Negotiate, NTLM, Digest"},
      {"HTTP/1.1 407 No\r\n\r\n", Errc::http_auth_required, "no Proxy-Authenticate"},
      {"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!", Errc::http_refused,
       "403 Forbidden"},
      {"HTTP/1.1 502 Bad Gateway\r\n\r\n", Errc::http_refused, "502 Bad Gateway"},
      {"HTTP/1.1 504 Gateway Timeout\r\n\r\n", Errc::http_gateway_timeout, "504 Gateway Timeout"},
      {"\x05\x00", Errc::not_http, ""},
      {"SSH-2.0-x\r\n", Errc::not_http, ""},
      {"HTTP/2 200\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 20 OK\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 2000 OK\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 099 Low\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 200 OK\r\nName : space\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", Errc::http_bad_reply, ""},
      {"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", Errc::http_bad_reply, ""},
      {std::string("HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", 24), Errc::http_bad_reply, ""},
      {"HTTP/1.1 200 OK\r\nX: " + big + "\r\n\r\n", Errc::http_header_too_long, ""},
      {"HTTP/1.1 200 " + big, Errc::http_header_too_long, ""},
  };
  for (const auto& c : cases) {
    INFO(c.reply.substr(0, 60));
    auto h = hop(uri("http://p"), Address::domain("ex.test", 80));
    auto o = run(*h, text(c.reply), {});
    CHECK(o.error == c.error);
    CHECK_FALSE(o.done);
    CHECK(o.detail == c.detail);
  }
  // Endless header lines, each short: the field count and the total bound end it.
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 200; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  auto h = hop(uri("http://p"), Address::domain("ex.test", 80));
  CHECK(run(*h, text(many), {}).error == Errc::http_header_too_long);
  // An interim 100 Continue is skipped; a truncated header is not an answer.
  auto interim = hop(uri("http://p"), Address::domain("ex.test", 80));
  CHECK(run(*interim, text("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), {}).done);
  auto cut = hop(uri("http://p"), Address::domain("ex.test", 80));
  auto o = run(*cut, text("HTTP/1.1 200 OK\r\nVia: p"), {});
  CHECK_FALSE(o.error);
  CHECK_FALSE(o.done);
  CHECK(cut->silence_error() == Errc::timed_out);
  auto silent = hop(uri("http://p"), Address::domain("ex.test", 80));
  CHECK(silent->silence_error() == Errc::greeting_unanswered);
}

TEST_CASE("HTTP CONNECT: a name that would break the request line is refused", "[http]") {
  for (const char* name : {"a b", "a\r\nX: y", "a/b", "a@b", "a:1", ""}) {
    INFO(name);
    HopRequest r;
    r.target = Address::domain(name, 80);
    auto c = can_carry(uri("http://p"), r);
    REQUIRE_FALSE(c);
    CHECK(c.error() == Errc::target_not_expressible);
    Bytes out;
    CHECK_FALSE(http::encode_connect(r.target, "", out));
    CHECK(out.empty());
  }
  HopRequest udp;
  udp.command = wire::Command::udp_associate;
  udp.target = Address::ipv4({0, 0, 0, 0}, 0);
  CHECK(can_carry(uri("http://p"), udp).error() == Errc::command_not_offered);
  CHECK(can_carry(uri("socks5h://p"), udp));
}
