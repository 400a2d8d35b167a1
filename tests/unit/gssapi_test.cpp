// GSSAPI (RFC 1961) as the client runs it, against the scripted library tests/support/
// fake_gss.cpp (tokens "AP-REQ"/"AP-REP", wrap = 'W' conf_state message): the frames on the
// wire byte by byte, partial input, the level check, aborts and closes at each step, the
// protection layer's checks, and the relay that carries protected streams for the shim.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>

#include "relay.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/negotiation.hpp"

using socks5::Bytes;
using socks5::ByteView;
using socks5::Errc;
using socks5::GssLevel;

namespace {

void use_fake() {
  socks5::gssapi_use_library(SOCKSIFY_FAKE_GSS);
  REQUIRE(socks5::gssapi_available());
}

Bytes bytes(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}

Bytes text(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ver 1, mtyp, length, token (RFC 1961 §3.3, §4.3, §5)
Bytes frame(int mtyp, const Bytes& token) {
  return cat(
      bytes({1, mtyp, static_cast<int>(token.size() >> 8), static_cast<int>(token.size() & 0xFF)}),
      token);
}

// The fake library's wrap token: 'W', conf_state, message.
Bytes wrapped(int conf, const Bytes& msg) {
  return cat(bytes({'W', conf}), msg);
}

socks5::GssapiAuth method(const std::string& service, GssLevel level) {
  socks5::GssapiOptions o;
  o.service = service;
  o.level = level;
  return socks5::GssapiAuth(o, "proxy.test");
}

}  // namespace

TEST_CASE("GSSAPI target names: rcmd@proxy by default, services, principals", "[gssapi]") {
  socks5::GssapiOptions o;
  CHECK(socks5::gssapi_target(o, "proxy.test") == "rcmd@proxy.test");
  o.service = "socks";
  CHECK(socks5::gssapi_target(o, "proxy.test") == "socks@proxy.test");
  o.service = "socks@other.test";
  CHECK(socks5::gssapi_target(o, "proxy.test") == "socks@other.test");
  o.service = "rcmd/proxy.test@REALM";
  CHECK(socks5::gssapi_target(o, "proxy.test") == "rcmd/proxy.test@REALM");
}

TEST_CASE("GSSAPI: context, level and protection, frame by frame", "[gssapi]") {
  use_fake();
  for (GssLevel level : {GssLevel::integrity, GssLevel::confidentiality}) {
    const int lv = static_cast<int>(level);
    auto m = method("ok", level);
    Bytes out;
    REQUIRE(m.begin(out).value() == false);
    // mtyp 1: the initial context token.
    CHECK(out == frame(1, text("AP-REQ")));
    out.clear();
    // The server's token, in every split: nothing is used until a frame is whole.
    const Bytes reply = frame(1, text("AP-REP"));
    for (std::size_t cut = 0; cut < reply.size(); ++cut) {
      auto fresh = method("ok", level);
      Bytes o;
      REQUIRE(fresh.begin(o));
      o.clear();
      auto p = fresh.on_input(ByteView(reply).first(cut), o);
      REQUIRE(p);
      CHECK(p->consumed == 0);
      CHECK(o.empty());
    }
    auto p = m.on_input(reply, out);
    REQUIRE(p);
    CHECK(p->consumed == reply.size());
    CHECK_FALSE(p->done);
    // mtyp 2: the level, wrapped with conf_req = 0 whatever the level (RFC 1961 §4.3).
    CHECK(out == frame(2, wrapped(0, bytes({lv}))));
    CHECK(m.closed_error() == Errc::gssapi_level_refused);
    out.clear();
    // The server agrees.
    p = m.on_input(frame(2, wrapped(0, bytes({lv}))), out);
    REQUIRE(p);
    CHECK(p->done);
    CHECK(out.empty());
    auto prot = m.take_protection();
    REQUIRE(prot);
    auto* gss = dynamic_cast<socks5::GssProtection*>(prot.get());
    REQUIRE(gss != nullptr);
    CHECK(gss->level() == level);
    // mtyp 3: every later message, sealed at confidentiality.
    Bytes w;
    REQUIRE(prot->wrap(text("hello"), w));
    CHECK(w == frame(3, wrapped(level == GssLevel::confidentiality ? 1 : 0, text("hello"))));
    Bytes plain;
    CHECK(prot->unwrap(ByteView(w).first(w.size() - 1), plain).value() == 0);
    CHECK(prot->unwrap(w, plain).value() == w.size());
    CHECK(plain == text("hello"));
  }
}

TEST_CASE("GSSAPI: what the server answers is checked", "[gssapi]") {
  use_fake();
  auto established = [](GssLevel level) {
    auto m = std::make_unique<socks5::GssapiAuth>(socks5::GssapiOptions{"ok", level, nullptr},
                                                  "proxy.test");
    Bytes out;
    REQUIRE(m->begin(out));
    REQUIRE(m->on_input(frame(1, text("AP-REP")), out));
    return m;
  };
  Bytes out;
  SECTION("another level than the one asked for is refused") {
    auto m = established(GssLevel::integrity);
    CHECK(m->on_input(frame(2, wrapped(0, bytes({2}))), out).error() == Errc::gssapi_level_refused);
    m = established(GssLevel::integrity);
    CHECK(m->on_input(frame(2, wrapped(0, bytes({1, 1}))), out).error() ==
          Errc::gssapi_level_refused);
    CHECK_THAT(socks5::gssapi_last_status(), Catch::Contains("not one octet"));
  }
  SECTION("an unwrapped (NEC-style) level octet fails verification") {
    auto m = established(GssLevel::integrity);
    CHECK(m->on_input(frame(2, bytes({1})), out).error() == Errc::gssapi_bad_token);
  }
  SECTION("an empty context token after completion is skipped") {
    auto m = established(GssLevel::integrity);
    auto p = m->on_input(cat(frame(1, {}), frame(2, wrapped(0, bytes({1})))), out);
    REQUIRE(p);
    CHECK(p->done);
  }
  SECTION("abort frames and closes: rejected during the context, refused at the level") {
    auto m = method("ok", GssLevel::integrity);
    REQUIRE(m.begin(out));
    CHECK(m.closed_error() == Errc::gssapi_rejected);
    CHECK(m.on_input(bytes({1, 0xff}), out).error() == Errc::gssapi_rejected);
    auto n = established(GssLevel::integrity);
    CHECK(n->on_input(bytes({1, 0xff}), out).error() == Errc::gssapi_level_refused);
  }
  SECTION("wrong versions and message types") {
    auto m = method("ok", GssLevel::integrity);
    REQUIRE(m.begin(out));
    CHECK(m.on_input(bytes({5, 1, 0, 0}), out).error() == Errc::bad_version);
    auto n = method("ok", GssLevel::integrity);
    REQUIRE(n.begin(out));
    CHECK(n.on_input(frame(3, text("x")), out).error() == Errc::bad_message_type);
    auto k = method("ok", GssLevel::integrity);
    REQUIRE(k.begin(out));
    CHECK(k.on_input(frame(1, text("junk")), out).error() == Errc::gssapi_failed);
  }
  SECTION("a mechanism done in one step goes straight to the level") {
    auto m = method("onestep", GssLevel::confidentiality);
    out.clear();
    REQUIRE(m.begin(out));
    CHECK(out == cat(frame(1, text("AP-REQ")), frame(2, wrapped(0, bytes({2})))));
  }
  SECTION("clear: no protection layer after the level exchange") {
    auto m = established(GssLevel::clear);
    auto p = m->on_input(frame(2, wrapped(0, bytes({0}))), out);
    REQUIRE(p);
    CHECK(p->done);
    CHECK(m->take_protection() == nullptr);
  }
}

TEST_CASE("GSSAPI: local failures get their own codes", "[gssapi]") {
  use_fake();
  Bytes out;
  auto nocreds = method("nocreds", GssLevel::integrity);
  CHECK(nocreds.begin(out).error() == Errc::gssapi_no_credentials);
  CHECK_THAT(socks5::gssapi_last_status(), Catch::Contains("fake major status"));
  auto unknown = method("unknown", GssLevel::integrity);
  CHECK(unknown.begin(out).error() == Errc::gssapi_unknown_service);
  auto skew = method("skew", GssLevel::integrity);
  CHECK(skew.begin(out).error() == Errc::gssapi_clock_skew);
}

TEST_CASE("GSSAPI protection: confidentiality refuses unsealed tokens, large messages split",
          "[gssapi]") {
  use_fake();
  auto prot = socks5::import_gss_protection(text("CTX"), GssLevel::confidentiality);
  REQUIRE(prot);
  Bytes plain;
  // An integrity-only token where sealing was agreed: a downgrade.
  CHECK((*prot)->unwrap(frame(3, wrapped(0, text("x"))), plain).error() == Errc::gssapi_bad_token);
  CHECK((*prot)->unwrap(frame(2, wrapped(1, text("x"))), plain).error() == Errc::bad_message_type);
  CHECK((*prot)->unwrap(bytes({1, 0xff}), plain).error() == Errc::auth_rejected);
  CHECK((*prot)->unwrap(frame(3, text("garbage")), plain).error() == Errc::gssapi_bad_token);
  // Large messages become several tokens of at most max_plain() octets.
  Bytes big(200000, 0x5a);
  Bytes w;
  REQUIRE((*prot)->wrap(big, w));
  Bytes back;
  std::size_t off = 0;
  int tokens = 0;
  while (off < w.size()) {
    auto n = (*prot)->unwrap(ByteView(w).subspan(off), back);
    REQUIRE(n);
    REQUIRE(*n > 0);
    off += *n;
    ++tokens;
  }
  CHECK(back == big);
  CHECK(tokens == 4);  // 65533 plaintext octets per token with the fake library
  // A context that cannot be imported.
  CHECK(socks5::import_gss_protection(text("NOPE"), GssLevel::integrity).error() ==
        Errc::gssapi_failed);
}

TEST_CASE("GSSAPI in a whole negotiation: the request and the reply are one token each",
          "[gssapi]") {
  use_fake();
  std::vector<std::unique_ptr<socks5::AuthMethod>> methods;
  methods.push_back(std::make_unique<socks5::GssapiAuth>(
      socks5::GssapiOptions{"ok", GssLevel::integrity, nullptr}, "proxy.test"));
  socks5::Negotiation n(std::move(methods), socks5::wire::Command::connect,
                        socks5::Address::domain("example.org", 80), true);
  REQUIRE(n.start());
  CHECK(n.output() == bytes({5, 1, 1}));  // GSSAPI is never pipelined
  n.clear_output();
  REQUIRE(n.receive(bytes({5, 1})).value() == 2);
  CHECK(n.output() == frame(1, text("AP-REQ")));
  n.clear_output();
  REQUIRE(n.receive(frame(1, text("AP-REP"))));
  n.clear_output();
  // A close now means the level was refused.
  CHECK(n.closed_error() == Errc::gssapi_level_refused);
  REQUIRE(n.receive(frame(2, wrapped(0, bytes({1})))));
  const Bytes request = cat(bytes({5, 1, 0, 3, 11}), cat(text("example.org"), bytes({0, 80})));
  CHECK(n.output() == frame(3, wrapped(0, request)));
  // The reply and the first application octets in one token, then another token: the reply
  // is taken, the octets after it are handed over, the next token stays unread.
  const Bytes reply = bytes({5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90});
  const Bytes first = frame(3, wrapped(0, cat(reply, text("HTTP"))));
  const Bytes second = frame(3, wrapped(0, text("/1.0")));
  auto used = n.receive(cat(first, second));
  REQUIRE(used);
  CHECK(*used == first.size());
  CHECK(n.done());
  CHECK(n.reader().take_rest() == text("HTTP"));
}

// The relay (relay/relay.hpp) with a protection layer that frames without GSS-API.
namespace {

class Framing final : public socks5::Protection {
 public:
  socks5::Result<void> wrap(ByteView plain, Bytes& out) override {
    for (std::size_t off = 0; off < plain.size(); off += 1000) {
      const std::size_t n = std::min<std::size_t>(1000, plain.size() - off);
      auto r = socks5::wire::encode_gss_frame(socks5::wire::GssMessageType::encapsulated,
                                              plain.subspan(off, n), out);
      if (!r) return r;
    }
    return {};
  }
  socks5::Result<std::size_t> unwrap(ByteView in, Bytes& plain) override {
    auto f = socks5::wire::decode_gss_frame(in);
    if (!f) return socks5::fail(f.error());
    if (!*f) return std::size_t{0};
    if ((*f)->value.token.size() > 0 && (*f)->value.token[0] == '!') {
      return socks5::fail(Errc::gssapi_bad_token);
    }
    plain.insert(plain.end(), (*f)->value.token.begin(), (*f)->value.token.end());
    return (*f)->size;
  }
};

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    close(a);
    close(b);
  }
};

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return s + "<timeout>";
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return s;
    if (n < 0) return s + "<error>";
    s.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

TEST_CASE("relay: both directions, half-closes passed on, early plaintext first", "[gssapi]") {
  Pair program, proxy;  // program.a: the program's socket; proxy.b: the proxy's
  Framing f;
  socksify::relay::End end{};
  std::thread t([&] { end = socksify::relay::run_relay(program.b, proxy.a, f, text("early ")); });
  // The program sends 5000 octets and half-closes: the proxy gets five tokens, then EOF.
  const std::string up(5000, 'u');
  REQUIRE(send(program.a, up.data(), up.size(), 0) == 5000);
  shutdown(program.a, SHUT_WR);
  Bytes wire;
  const std::string got = read_all(proxy.b);
  wire.assign(got.begin(), got.end());
  Bytes plain;
  std::size_t off = 0, tokens = 0;
  while (off < wire.size()) {
    auto n = f.unwrap(ByteView(wire).subspan(off), plain);
    REQUIRE(n);
    REQUIRE(*n > 0);
    off += *n;
    ++tokens;
  }
  CHECK(tokens == 5);
  CHECK(plain == Bytes(up.begin(), up.end()));
  // The proxy answers in tokens split anywhere, then closes.
  Bytes down;
  REQUIRE(f.wrap(text("response data"), down));
  REQUIRE(send(proxy.b, down.data(), 3, 0) == 3);
  REQUIRE(send(proxy.b, down.data() + 3, down.size() - 3, 0) ==
          static_cast<ssize_t>(down.size() - 3));
  shutdown(proxy.b, SHUT_WR);
  CHECK(read_all(program.a) == "early response data");
  t.join();
  CHECK(end == socksify::relay::End::done);
}

TEST_CASE("relay: a stream cut inside a token, or a bad token, resets the program's side",
          "[gssapi]") {
  for (const bool bad : {false, true}) {
    Pair program, proxy;
    Framing f;
    socksify::relay::End end{};
    std::thread t([&] { end = socksify::relay::run_relay(program.b, proxy.a, f, {}); });
    Bytes down;
    REQUIRE(f.wrap(text(bad ? "!forged" : "truncated"), down));
    const std::size_t n = bad ? down.size() : down.size() - 2;
    REQUIRE(send(proxy.b, down.data(), n, 0) == static_cast<ssize_t>(n));
    shutdown(proxy.b, SHUT_WR);
    t.join();
    CHECK(end == (bad ? socksify::relay::End::bad_token : socksify::relay::End::proxy_reset));
    // Nothing of it reached the program: never a partial message taken for a whole one.
    char c;
    CHECK(recv(program.a, &c, 1, MSG_DONTWAIT) <= 0);
  }
}

TEST_CASE("relay setup message: round trip and hostile input", "[gssapi]") {
  socksify::relay::Setup s;
  s.level = GssLevel::confidentiality;
  s.peer_port = 40000;
  s.context = text("context");
  s.rest = text("rest");
  const Bytes enc = socksify::relay::encode_setup(s);
  for (std::size_t cut = 0; cut < enc.size(); ++cut) {
    socksify::relay::Setup d;
    CHECK(socksify::relay::decode_setup(ByteView(enc).first(cut), d).value() == 0);
  }
  socksify::relay::Setup d;
  REQUIRE(socksify::relay::decode_setup(enc, d).value() == enc.size());
  CHECK(d.level == GssLevel::confidentiality);
  CHECK(d.peer_port == 40000);
  CHECK(d.context == s.context);
  CHECK(d.rest == s.rest);
  Bytes bad = enc;
  bad[0] = 'X';
  CHECK_FALSE(socksify::relay::decode_setup(bad, d));
  bad = enc;
  bad[4] = 9;  // no such level
  CHECK_FALSE(socksify::relay::decode_setup(bad, d));
  bad = enc;
  bad[15] = 7;  // no such kind
  CHECK_FALSE(socksify::relay::decode_setup(bad, d));
  s.kind = socksify::relay::Kind::plain;
  const Bytes plain = socksify::relay::encode_setup(s);
  REQUIRE(socksify::relay::decode_setup(plain, d).value() == plain.size());
  CHECK(d.kind == socksify::relay::Kind::plain);
  bad = enc;
  bad[7] = 0x7f;  // a context of 2 GiB
  CHECK(socksify::relay::decode_setup(bad, d).error() == Errc::message_too_long);
}
