// The DNS answers the library gives in remote-DNS mode (shim/dns_answer.hpp): any octets a
// program sends its local stub, parsed and answered. The answer fits the buffer, keeps the
// query's ID and question, and a name is answered with the same fake address every time.
#include <cstdint>
#include <cstring>
#include <span>

#include "config.hpp"
#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "fuzz_check.hpp"

using namespace socksify;

namespace {

const settings::Config& config() {
  static const settings::Config c = [] {
    auto parsed = settings::parse_config([](const char* name) -> const char* {
      if (std::strcmp(name, "SOCKSIFY_PROXY") == 0) return "socks5h://127.0.0.1:1080";
      if (std::strcmp(name, "SOCKSIFY_RULES") == 0) return "direct .local.test; reject .ads.test";
      return nullptr;
    });
    FUZZ_CHECK(parsed);
    return *parsed;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static core::FakeDns* dns = core::FakeDns::create(config().fake4, config().fake6);
  FUZZ_CHECK(dns != nullptr);
  const std::span<const std::uint8_t> query(data, size);
  std::uint8_t out[512 + 64];
  const core::StubReply r = core::answer_stub_query(config(), dns, query, out);
  char name[256];
  std::uint16_t qtype = 0, qclass = 0;
  const bool question = core::parse_question(query, name, qtype, qclass);
  if (r.kind == core::StubReply::Kind::not_query) return 0;
  FUZZ_CHECK(question);
  FUZZ_CHECK(std::strlen(r.name) < 256);
  if (r.kind == core::StubReply::Kind::pass_on) return 0;
  FUZZ_CHECK(r.length <= sizeof out);
  if (r.length == 0) return 0;
  FUZZ_CHECK(r.length >= 12);
  FUZZ_CHECK(out[0] == data[0] && out[1] == data[1]);  // the query's ID
  FUZZ_CHECK((out[2] & 0x80) != 0);                    // a response
  // The same query again: the same answer (the name keeps its fake address).
  std::uint8_t again[sizeof out];
  const core::StubReply r2 = core::answer_stub_query(config(), dns, query, again);
  FUZZ_CHECK(r2.length == r.length);
  FUZZ_CHECK(std::memcmp(out, again, r.length) == 0);
  return 0;
}
