// The handshake state machine, without sockets: every split of the server's octets into reads.
#include <catch2/catch.hpp>

#include "socks5/error.hpp"
#include "socks5/negotiation.hpp"

using namespace socks5;

namespace {

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kGreetNone = bytes({0x05, 0x01, 0x00});
const Bytes kGreetUser = bytes({0x05, 0x01, 0x02});
const Bytes kAuth = bytes({0x01, 0x01, 'u', 0x02, 'p', 'w'});
const Bytes kRequest = bytes({0x05, 0x01, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50});
const Bytes kSelNone = bytes({0x05, 0x00});
const Bytes kSelUser = bytes({0x05, 0x02});
const Bytes kStatusOk = bytes({0x01, 0x00});
const Bytes kReply = bytes({0x05, 0x00, 0x00, 0x03, 3, 'p', 'x', 'y', 0x1F, 0x90});

std::vector<std::unique_ptr<AuthMethod>> none() {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<NoAuth>());
  return m;
}
std::vector<std::unique_ptr<AuthMethod>> userpass() {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<UserPassAuth>("u", "pw"));
  return m;
}

Negotiation make(std::vector<std::unique_ptr<AuthMethod>> m, bool pipelining) {
  return Negotiation(std::move(m), wire::Command::connect, Address::ipv4({10, 0, 0, 1}, 80),
                     pipelining);
}

struct Outcome {
  Bytes written;  // everything the client wrote
  std::error_code error;
  bool done = false;
  std::size_t unread = 0;  // server octets the machine did not take
};

// Feeds `server` in the given chunks, with the same buffering contract as drive().
Outcome run(Negotiation n, const Bytes& server, const std::vector<std::size_t>& cuts) {
  Outcome o;
  auto s = n.start();
  REQUIRE(s);
  Bytes pending;
  std::size_t pos = 0;
  auto take_output = [&] {
    o.written.insert(o.written.end(), n.output().begin(), n.output().end());
    n.clear_output();
  };
  take_output();
  std::vector<std::size_t> ends = cuts;
  ends.push_back(server.size());
  for (std::size_t end : ends) {
    if (n.done() || end <= pos) continue;
    pending.insert(pending.end(), server.begin() + static_cast<std::ptrdiff_t>(pos),
                   server.begin() + static_cast<std::ptrdiff_t>(end));
    pos = end;
    auto used = n.receive(pending);
    if (!used) {
      o.error = used.error();
      return o;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
    take_output();
  }
  o.done = n.done();
  o.unread = pending.size() + (server.size() - pos);
  if (o.done) CHECK(n.reply().bound.to_string() == "pxy:8080");
  return o;
}

// Every split of `server` into up to three reads gives the same result.
void every_split(bool pipelining, bool with_user, const Bytes& server, const Bytes& expect_written,
                 std::size_t expect_unread = 0) {
  for (std::size_t i = 0; i <= server.size(); ++i) {
    for (std::size_t j = i; j <= server.size(); ++j) {
      INFO("cuts at " << i << " and " << j);
      auto o = run(make(with_user ? userpass() : none(), pipelining), server, {i, j});
      REQUIRE_FALSE(o.error);
      REQUIRE(o.done);
      CHECK(o.written == expect_written);
      CHECK(o.unread == expect_unread);
    }
  }
  // And one octet at a time.
  std::vector<std::size_t> cuts;
  for (std::size_t k = 1; k < server.size(); ++k) cuts.push_back(k);
  auto o = run(make(with_user ? userpass() : none(), pipelining), server, cuts);
  REQUIRE(o.done);
  CHECK(o.written == expect_written);
}

}  // namespace

TEST_CASE("method none, one message per round trip", "[negotiation]") {
  every_split(false, false, cat({kSelNone, kReply}), cat({kGreetNone, kRequest}));
}

TEST_CASE("method none, pipelined: greeting and request in the first write", "[negotiation]") {
  auto n = make(none(), true);
  REQUIRE(n.start());
  CHECK(n.pipelined());
  CHECK(n.output() == cat({kGreetNone, kRequest}));
  every_split(true, false, cat({kSelNone, kReply}), cat({kGreetNone, kRequest}));
}

TEST_CASE("username/password, one message per round trip", "[negotiation]") {
  every_split(false, true, cat({kSelUser, kStatusOk, kReply}), cat({kGreetUser, kAuth, kRequest}));
}

TEST_CASE("username/password, pipelined: one write", "[negotiation]") {
  auto n = make(userpass(), true);
  REQUIRE(n.start());
  CHECK(n.output() == cat({kGreetUser, kAuth, kRequest}));
  every_split(true, true, cat({kSelUser, kStatusOk, kReply}), cat({kGreetUser, kAuth, kRequest}));
}

TEST_CASE("octets after the reply are left for the application", "[negotiation]") {
  const Bytes server = cat({kSelNone, kReply, bytes({'H', 'T', 'T', 'P'})});
  every_split(true, false, server, cat({kGreetNone, kRequest}), 4);
}

TEST_CASE("two methods offered: never pipelined", "[negotiation]") {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<NoAuth>());
  m.push_back(std::make_unique<UserPassAuth>("u", "pw"));
  Negotiation n(std::move(m), wire::Command::connect, Address::ipv4({10, 0, 0, 1}, 80), true);
  REQUIRE(n.start());
  CHECK_FALSE(n.pipelined());
  CHECK(n.output() == bytes({0x05, 0x02, 0x00, 0x02}));
  n.clear_output();
  auto used = n.receive(kSelUser);
  REQUIRE(used);
  CHECK(n.method() == wire::Method::username_password);
  CHECK(n.output() == kAuth);
}

TEST_CASE("server refusals and violations", "[negotiation][fault]") {
  auto fails = [](bool user, const Bytes& server) {
    auto o = run(make(user ? userpass() : none(), false), server, {});
    return o.error;
  };
  CHECK(fails(false, bytes({0x05, 0xFF})) == Errc::no_acceptable_method);
  CHECK(fails(false, bytes({0x05, 0x02})) == Errc::unexpected_method);
  CHECK(fails(false, bytes({0x04, 0x00})) == Errc::not_socks5);
  CHECK(fails(true, cat({kSelUser, bytes({0x01, 0x01})})) == Errc::auth_rejected);
  CHECK(fails(true, cat({kSelUser, bytes({0x05, 0x00})})) == Errc::bad_version);
  for (int rep = 1; rep <= 0xFF; ++rep) {
    Bytes reply = kReply;
    reply[1] = static_cast<std::uint8_t>(rep);
    const auto ec = fails(false, cat({kSelNone, reply}));
    CHECK(ec == reply_error(static_cast<std::uint8_t>(rep)));
  }
  CHECK(fails(false, cat({kSelNone, bytes({0x05, 0x00, 0x01, 0x01})})) == Errc::bad_reserved);
  CHECK(fails(false, cat({kSelNone, bytes({0x05, 0x00, 0x00, 0x05})})) == Errc::bad_address_type);
  CHECK(fails(false, cat({kSelNone, bytes({0x05, 0x00, 0x00, 0x03, 0x00})})) ==
        Errc::bad_domain_length);
}

TEST_CASE("truncation at every octet: never done, never an error", "[negotiation][fault]") {
  const Bytes server = cat({kSelUser, kStatusOk, kReply});
  for (std::size_t n = 0; n < server.size(); ++n) {
    auto o = run(make(userpass(), true),
                 Bytes(server.begin(), server.begin() + static_cast<std::ptrdiff_t>(n)), {});
    CHECK_FALSE(o.error);
    CHECK_FALSE(o.done);
  }
}

TEST_CASE("probe without a request ends after authentication", "[negotiation]") {
  Negotiation n(userpass(), std::nullopt, Address{}, true);
  REQUIRE(n.start());
  CHECK(n.output() == cat({kGreetUser, kAuth}));
  auto used = n.receive(cat({kSelUser, kStatusOk}));
  REQUIRE(used);
  CHECK(*used == 4);
  CHECK(n.done());
}

namespace {

// A stand-in for GSSAPI: two token round trips, then every message is framed (RFC 1961 §5)
// and XOR-"protected". It proves the interface carries multi-step methods with a wrap layer.
class XorProtection final : public Protection {
 public:
  Result<void> wrap(ByteView plain, Bytes& out) override {
    Bytes x(plain.begin(), plain.end());
    for (auto& b : x) b ^= 0x5A;
    return wire::encode_gss_frame(wire::GssMessageType::encapsulated, x, out);
  }
  Result<std::size_t> unwrap(ByteView in, Bytes& plain) override {
    auto f = wire::decode_gss_frame(in);
    if (!f) return fail(f.error());
    if (!*f) return std::size_t{0};
    for (auto b : (*f)->value.token) plain.push_back(static_cast<std::uint8_t>(b ^ 0x5A));
    return (*f)->size;
  }
};

class TwoStepAuth final : public AuthMethod {
 public:
  wire::Method id() const noexcept override { return wire::Method::gssapi; }
  bool pipelinable() const noexcept override { return false; }
  Result<bool> begin(Bytes& out) override {
    const std::uint8_t t[] = {'T', '1'};
    auto r = wire::encode_gss_frame(wire::GssMessageType::token, t, out);
    if (!r) return fail(r.error());
    return false;
  }
  Result<AuthProgress> on_input(ByteView in, Bytes& out) override {
    auto f = wire::decode_gss_frame(in);
    if (!f) return fail(f.error());
    if (!*f) return AuthProgress{0, false};
    if ((*f)->value.type == wire::GssMessageType::abort) return fail(Errc::auth_rejected);
    ++rounds_;
    if (rounds_ == 1) {
      const std::uint8_t t[] = {'T', '2'};
      auto r = wire::encode_gss_frame(wire::GssMessageType::token, t, out);
      if (!r) return fail(r.error());
      return AuthProgress{(*f)->size, false};
    }
    return AuthProgress{(*f)->size, true};
  }
  std::unique_ptr<Protection> take_protection() override {
    return std::make_unique<XorProtection>();
  }

 private:
  int rounds_ = 0;
};

}  // namespace

TEST_CASE("a multi-round method with a protection layer fits the interface", "[negotiation]") {
  std::vector<std::unique_ptr<AuthMethod>> m;
  m.push_back(std::make_unique<TwoStepAuth>());
  Negotiation n(std::move(m), wire::Command::connect, Address::ipv4({10, 0, 0, 1}, 80), true);
  REQUIRE(n.start());
  CHECK_FALSE(n.pipelined());  // not pipelinable: several round trips
  n.clear_output();
  XorProtection p;
  Bytes server = kSelNone;
  server[1] = 0x01;  // gssapi
  const Bytes s1 = bytes({0x01, 0x01, 0x00, 0x01, 'S'});
  const Bytes s2 = bytes({0x01, 0x01, 0x00, 0x01, 'S'});
  Bytes wrapped_reply;
  REQUIRE(p.wrap(kReply, wrapped_reply));
  server = cat({server, s1, s2, wrapped_reply});
  // Every octet separately.
  Bytes written;
  Bytes pending;
  for (auto b : server) {
    pending.push_back(b);
    auto used = n.receive(pending);
    REQUIRE(used);
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
    written.insert(written.end(), n.output().begin(), n.output().end());
    n.clear_output();
  }
  REQUIRE(n.done());
  CHECK(n.reply().bound.to_string() == "pxy:8080");
  Bytes wrapped_request;
  REQUIRE(p.wrap(kRequest, wrapped_request));
  CHECK(written == cat({bytes({0x01, 0x01, 0x00, 0x02, 'T', '1'}),
                        bytes({0x01, 0x01, 0x00, 0x02, 'T', '2'}), wrapped_request}));
}
