// Golden byte vectors for every message, written next to the RFC diagram they encode.
#include <catch2/catch.hpp>

#include "socks5/error.hpp"
#include "socks5/wire.hpp"

using namespace socks5;
using namespace socks5::wire;

namespace {

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

// Every strict prefix of a complete message must decode as "need more", never as an error.
template <class F>
void check_prefixes_need_more(const Bytes& msg, F decode) {
  for (std::size_t n = 0; n < msg.size(); ++n) {
    INFO("prefix of " << n << " octets");
    auto r = decode(ByteView(msg.data(), n));
    REQUIRE(r.has_value());
    REQUIRE_FALSE(r->has_value());
  }
}

}  // namespace

TEST_CASE("greeting: RFC 1928 section 3", "[wire]") {
  // +----+----------+----------+
  // |VER | NMETHODS | METHODS  |
  // +----+----------+----------+
  // | 05 |    02    |  00 02   |
  const Method m[] = {Method::none, Method::username_password};
  Bytes out;
  REQUIRE(encode_greeting(m, out));
  CHECK(out == bytes({0x05, 0x02, 0x00, 0x02}));
  auto d = decode_greeting(out);
  REQUIRE(d);
  REQUIRE(*d);
  CHECK((*d)->size == 4);
  CHECK((*d)->value == std::vector<Method>{Method::none, Method::username_password});
  check_prefixes_need_more(out, decode_greeting);

  Bytes empty;
  CHECK(encode_greeting({}, empty).error() == Errc::invalid_argument);
  std::vector<Method> many(256, Method::none);
  CHECK(encode_greeting(many, empty).error() == Errc::message_too_long);
}

TEST_CASE("method selection: RFC 1928 section 3", "[wire]") {
  // +----+--------+
  // |VER | METHOD |
  // | 05 |   02   |
  auto d = decode_method_selection(bytes({0x05, 0x02}));
  REQUIRE(d);
  REQUIRE(*d);
  CHECK((*d)->value == Method::username_password);
  CHECK((*d)->size == 2);
  CHECK(decode_method_selection(bytes({0x04, 0x00})).error() == Errc::bad_version);
  CHECK(decode_method_selection(bytes({0x04})).error() == Errc::bad_version);
  auto ff = decode_method_selection(bytes({0x05, 0xFF}));
  REQUIRE(ff);
  CHECK((*ff)->value == Method::no_acceptable);
  check_prefixes_need_more(bytes({0x05, 0x00}), decode_method_selection);
}

TEST_CASE("request: RFC 1928 section 4, every address type", "[wire]") {
  // +----+-----+-------+------+----------+----------+
  // |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
  // +----+-----+-------+------+----------+----------+
  SECTION("CONNECT 192.0.2.7:80") {
    Bytes out;
    REQUIRE(encode_request(Command::connect, Address::ipv4({192, 0, 2, 7}, 80), out));
    CHECK(out == bytes({0x05, 0x01, 0x00, 0x01, 192, 0, 2, 7, 0x00, 0x50}));
    auto d = decode_request(out);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->value.command == Command::connect);
    CHECK((*d)->value.destination == Address::ipv4({192, 0, 2, 7}, 80));
    check_prefixes_need_more(out, decode_request);
  }
  SECTION("BIND [::1]:8080") {
    std::array<std::uint8_t, 16> v6{};
    v6[15] = 1;
    Bytes out;
    REQUIRE(encode_request(Command::bind, Address::ipv6(v6, 8080), out));
    CHECK(out == bytes({0x05, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0,    0,
                        0,    0,    0,    0,    0, 0, 0, 0, 1, 0x1F, 0x90}));
    check_prefixes_need_more(out, decode_request);
  }
  SECTION("UDP ASSOCIATE example.org:53 (domain)") {
    Bytes out;
    REQUIRE(encode_request(Command::udp_associate, Address::domain("example.org", 53), out));
    CHECK(out == bytes({0x05, 0x03, 0x00, 0x03, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o',
                        'r', 'g', 0x00, 0x35}));
    auto d = decode_request(out);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->value.destination.host() == "example.org");
  }
  SECTION("domain lengths 1 and 255 are fine; 0 and 256 are not") {
    Bytes out;
    CHECK(encode_request(Command::connect, Address::domain("a", 1), out));
    out.clear();
    CHECK(encode_request(Command::connect, Address::domain(std::string(255, 'a'), 1), out));
    CHECK(out.size() == 4 + 1 + 255 + 2);
    out.clear();
    CHECK(encode_request(Command::connect, Address::domain("", 1), out).error() ==
          Errc::bad_domain_length);
    CHECK(out.empty());
    CHECK(
        encode_request(Command::connect, Address::domain(std::string(256, 'a'), 1), out).error() ==
        Errc::message_too_long);
    CHECK(out.empty());
  }
}

TEST_CASE("reply: RFC 1928 section 6, sized from its own ATYP", "[wire]") {
  // +----+-----+-------+------+----------+----------+
  // |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
  // +----+-----+-------+------+----------+----------+
  const Bytes v4 = bytes({0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x04, 0x38});
  const Bytes v6 = bytes({0x05, 0x00, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0,    0,
                          0,    0,    0,    0,    0,    0,    0,    0,    9, 0x00, 0x16});
  const Bytes dn = bytes({0x05, 0x00, 0x00, 0x03, 4, 'h', 'o', 's', 't', 0x01, 0xBB});
  for (const Bytes* msg : {&v4, &v6, &dn}) {
    check_prefixes_need_more(*msg, decode_reply);
    Bytes with_tail = *msg;
    with_tail.push_back(0xAA);  // application data after the reply is not consumed
    auto d = decode_reply(with_tail);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->size == msg->size());
    CHECK((*d)->value.rep == 0);
  }
  CHECK((*decode_reply(v4))->value.bound.to_string() == "127.0.0.1:1080");
  CHECK((*decode_reply(v6))->value.bound.to_string() == "[2001:db8::9]:22");
  CHECK((*decode_reply(dn))->value.bound.to_string() == "host:443");
  Bytes enc;
  REQUIRE(encode_reply(0x00, Address::ipv4({127, 0, 0, 1}, 1080), enc));
  CHECK(enc == v4);
}

TEST_CASE("reply: bad input gives a precise error", "[wire][fault]") {
  CHECK(decode_reply(bytes({0x04})).error() == Errc::bad_version);
  CHECK(decode_reply(bytes({0x00, 0x5A})).error() == Errc::bad_version);
  CHECK(decode_reply(bytes({0x05, 0x00, 0x01})).error() == Errc::bad_reserved);
  CHECK(decode_reply(bytes({0x05, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0})).error() ==
        Errc::bad_address_type);
  CHECK(decode_reply(bytes({0x05, 0x00, 0x00, 0x07})).error() == Errc::bad_address_type);
  CHECK(decode_reply(bytes({0x05, 0x00, 0x00, 0x03, 0x00, 0, 0})).error() ==
        Errc::bad_domain_length);
}

TEST_CASE("every REP code decodes and maps to its error", "[wire]") {
  for (int rep = 0; rep <= 0xFF; ++rep) {
    Bytes msg = bytes({0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0});
    auto d = decode_reply(msg);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->value.rep == rep);
    const auto ec = reply_error(static_cast<std::uint8_t>(rep));
    if (rep == 0) {
      CHECK_FALSE(ec);
    } else if (rep <= 8) {
      CHECK(ec.value() == rep);  // Errc values 1..8 mirror REP 0x01..0x08
    } else {
      CHECK(ec == Errc::unassigned_reply);
    }
  }
}

TEST_CASE("UDP request header: RFC 1928 section 7", "[wire]") {
  // +----+------+------+----------+----------+----------+
  // |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
  // +----+------+------+----------+----------+----------+
  Bytes out;
  REQUIRE(encode_udp_header(0, Address::ipv4({10, 1, 2, 3}, 53), out));
  CHECK(out == bytes({0x00, 0x00, 0x00, 0x01, 10, 1, 2, 3, 0x00, 0x35}));
  out.push_back('h');
  out.push_back('i');
  auto d = decode_udp_header(out);
  REQUIRE(d);
  CHECK(d->size == 10);
  CHECK(d->value.frag == 0);
  CHECK(d->value.destination.to_string() == "10.1.2.3:53");
  Bytes dn;
  REQUIRE(encode_udp_header(1, Address::domain("dns.example", 53), dn));
  CHECK(dn == bytes({0x00, 0x00, 0x01, 0x03, 11, 'd', 'n', 's', '.', 'e', 'x', 'a', 'm', 'p', 'l',
                     'e', 0x00, 0x35}));
  // Truncated datagrams and bad fields are errors (a datagram never "needs more").
  for (std::size_t n = 0; n < 10; ++n) {
    CHECK_FALSE(decode_udp_header(ByteView(out.data(), n)));
  }
  CHECK(decode_udp_header(bytes({0x00, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0, 1})).error() ==
        Errc::bad_reserved);
  CHECK(decode_udp_header(bytes({0x00, 0x00, 0x00, 0x09, 1, 2, 3, 4, 0, 1})).error() ==
        Errc::bad_address_type);
}

TEST_CASE("username/password: RFC 1929 section 2", "[wire]") {
  // +----+------+----------+------+----------+
  // |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
  // +----+------+----------+------+----------+
  Bytes out;
  REQUIRE(encode_userpass("bob", "pw", out));
  CHECK(out == bytes({0x01, 3, 'b', 'o', 'b', 2, 'p', 'w'}));
  auto d = decode_userpass(out);
  REQUIRE(d);
  REQUIRE(*d);
  CHECK((*d)->value.user == "bob");
  CHECK((*d)->value.password == "pw");
  check_prefixes_need_more(out, decode_userpass);
  Bytes e;
  CHECK(encode_userpass("", "pw", e).error() == Errc::invalid_argument);
  CHECK(encode_userpass(std::string(256, 'u'), "pw", e).error() == Errc::message_too_long);
  CHECK(encode_userpass("u", std::string(256, 'p'), e).error() == Errc::message_too_long);
  CHECK(encode_userpass(std::string(255, 'u'), std::string(255, 'p'), e));
  CHECK(e.size() == 3 + 255 + 255);

  // +----+--------+
  // |VER | STATUS |
  // | 01 |   00   |
  auto ok = decode_userpass_status(bytes({0x01, 0x00}));
  REQUIRE(ok);
  CHECK((*ok)->value == 0);
  CHECK((*decode_userpass_status(bytes({0x01, 0x01})))->value == 1);
  CHECK(decode_userpass_status(bytes({0x05, 0x00})).error() == Errc::bad_version);
  check_prefixes_need_more(bytes({0x01, 0x00}), decode_userpass_status);
}

TEST_CASE("GSS-API framing: RFC 1961 sections 3.4, 3.8, 4.3, 5", "[wire]") {
  // +------+------+------+.......................+
  // + ver  | mtyp | len  |       token           |
  // + 0x01 | 0x01 | 0x02 | up to 2^16 - 1 octets |
  const Bytes token = bytes({0xDE, 0xAD, 0xBE});
  for (auto type :
       {GssMessageType::token, GssMessageType::protection, GssMessageType::encapsulated}) {
    Bytes out;
    REQUIRE(encode_gss_frame(type, token, out));
    CHECK(out == bytes({0x01, static_cast<int>(type), 0x00, 0x03, 0xDE, 0xAD, 0xBE}));
    check_prefixes_need_more(out, decode_gss_frame);
    auto d = decode_gss_frame(out);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->value.type == type);
    CHECK(Bytes((*d)->value.token.begin(), (*d)->value.token.end()) == token);
  }
  // + ver  | mtyp |   abort
  // + 0x01 | 0xff |
  Bytes abort;
  REQUIRE(encode_gss_frame(GssMessageType::abort, {}, abort));
  CHECK(abort == bytes({0x01, 0xFF}));
  auto a = decode_gss_frame(abort);
  REQUIRE(a);
  CHECK((*a)->value.type == GssMessageType::abort);
  // Maximum length, and one past it.
  Bytes big(0xFFFF, 0x42);
  Bytes out;
  REQUIRE(encode_gss_frame(GssMessageType::encapsulated, big, out));
  CHECK(out.size() == 4 + 0xFFFF);
  CHECK(out[2] == 0xFF);
  CHECK(out[3] == 0xFF);
  Bytes too_big(0x10000, 0x42);
  CHECK(encode_gss_frame(GssMessageType::token, too_big, out).error() == Errc::message_too_long);
  CHECK(decode_gss_frame(bytes({0x02, 0x01})).error() == Errc::bad_version);
  CHECK(decode_gss_frame(bytes({0x01, 0x04, 0, 0})).error() == Errc::bad_message_type);
}

TEST_CASE("method names", "[wire]") {
  CHECK(method_name(Method::none) == "none");
  CHECK(method_name(Method::username_password) == "username/password");
  CHECK(method_name(Method::gssapi) == "gssapi");
  CHECK(method_name(static_cast<Method>(0x80)) == "0x80");
}
