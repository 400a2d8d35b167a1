// The local-stub answers (shim/dns_answer.hpp): queries parsed, answers built byte by byte.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "dns_answer.hpp"

using socksify::core::build_answer;
using socksify::core::parse_question;
using socksify::core::StubAnswer;

namespace {

std::vector<std::uint8_t> query(const char* name, std::uint16_t type, std::uint8_t flags = 0x01) {
  std::vector<std::uint8_t> q{0xAB, 0xCD, flags, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::string n = name;
  std::size_t start = 0;
  while (start <= n.size()) {
    auto dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    q.push_back(static_cast<std::uint8_t>(dot - start));
    for (std::size_t i = start; i < dot; ++i) q.push_back(static_cast<std::uint8_t>(n[i]));
    start = dot + 1;
  }
  q.push_back(0);
  q.push_back(static_cast<std::uint8_t>(type >> 8));
  q.push_back(static_cast<std::uint8_t>(type & 0xFF));
  q.push_back(0);
  q.push_back(1);
  return q;
}

}  // namespace

TEST_CASE("local stub answers: A and AAAA from the fake table, REFUSED otherwise", "[shim][dns]") {
  char name[256];
  std::uint16_t type = 0, cls = 0;
  const auto a = query("Target.LAB", 1);
  REQUIRE(parse_question(a, name, type, cls));
  CHECK(std::string(name) == "target.lab");
  CHECK(type == 1);
  CHECK(cls == 1);
  const std::uint8_t v4[4] = {198, 18, 0, 7};
  const std::uint8_t v6[16] = {0xfd, 0x5f, 0x63, 0x6b, 0x73, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  std::uint8_t out[512];
  std::size_t n = build_answer(a, 1, StubAnswer{false, v4, v6}, out);
  REQUIRE(n == a.size() + 16);
  CHECK(out[0] == 0xAB);
  CHECK(out[1] == 0xCD);
  CHECK(out[2] == 0x81);  // QR, RD copied
  CHECK(out[3] == 0x80);  // RA, NOERROR
  CHECK(out[7] == 1);     // one answer
  CHECK(out[a.size()] == 0xC0);
  CHECK(out[a.size() + 1] == 0x0C);
  CHECK(out[n - 4] == 198);
  CHECK(out[n - 1] == 7);
  // AAAA.
  const auto aaaa = query("target.lab", 28);
  n = build_answer(aaaa, 28, StubAnswer{false, v4, v6}, out);
  CHECK(n == aaaa.size() + 28);
  CHECK(out[n - 16] == 0xfd);
  // A without an IPv4 fake address: NOERROR, no record.
  n = build_answer(a, 1, StubAnswer{false, nullptr, v6}, out);
  CHECK(n == a.size());
  CHECK(out[3] == 0x80);
  CHECK(out[7] == 0);
  // MX: REFUSED.
  const auto mx = query("target.lab", 15);
  n = build_answer(mx, 15, StubAnswer{true, nullptr, nullptr}, out);
  CHECK(n == mx.size());
  CHECK((out[3] & 0x0F) == 5);
  // Not queries: a response, two questions, a truncated question, compression.
  CHECK_FALSE(parse_question(query("x.lab", 1, 0x81), name, type, cls));
  auto two = a;
  two[5] = 2;
  CHECK_FALSE(parse_question(two, name, type, cls));
  auto cut = a;
  cut.resize(cut.size() - 3);
  CHECK_FALSE(parse_question(cut, name, type, cls));
  auto ptr = a;
  ptr[12] = 0xC0;
  CHECK_FALSE(parse_question(ptr, name, type, cls));
  // Too small an output buffer: nothing.
  std::uint8_t tiny[8];
  CHECK(build_answer(a, 1, StubAnswer{false, v4, v6}, tiny) == 0);
}
