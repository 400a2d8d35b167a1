// The HTTP CONNECT reply parser (and the SOCKS4 reply): whatever the proxy sends, in whatever
// pieces, the parser ends with the same outcome, never consumes past the header's blank line,
// never past its bounds, and what it keeps for lines is bounded and printable.
#include "fuzz_check.hpp"
#include "socks5/http.hpp"
#include "socks5/socks4.hpp"

namespace {

struct Outcome {
  bool ok = true;
  std::error_code error;
  std::size_t used = 0;
  bool complete = false;
};

// Feeds `in` in pieces of `step` octets (0: all at once), as the Pump would: what was not
// used is offered again with more.
Outcome feed(socks5::ByteView in, std::size_t step) {
  socks5::http::ReplyParser p;
  Outcome o;
  std::size_t offered = 0;
  while (!p.complete() && o.used < in.size()) {
    offered = step == 0 ? in.size() : std::min(in.size(), offered + step);
    auto n = p.receive(in.subspan(o.used, offered - o.used));
    if (!n) {
      o.ok = false;
      o.error = n.error();
      break;
    }
    FUZZ_CHECK(*n <= offered - o.used);
    o.used += *n;
    if (offered == in.size() && *n == 0) break;
  }
  o.complete = p.complete();
  if (o.complete) {
    const auto& r = p.reply();
    FUZZ_CHECK(r.status >= 200 && r.status <= 599);
    FUZZ_CHECK(r.status_line.size() <= 80);
    for (char c : r.status_line) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    FUZZ_CHECK(r.auth_schemes.size() <= 300);
    FUZZ_CHECK(o.used >= 2 && in[o.used - 1] == '\n');
  }
  FUZZ_CHECK(o.used <= socks5::http::kMaxHeader);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first octet picks how the rest is cut into reads.
  const std::size_t step = data[0] % 7;
  const socks5::ByteView in(data + 1, size - 1);
  const Outcome whole = feed(in, 0);
  const Outcome cut = feed(in, step == 0 ? 1 : step);
  FUZZ_CHECK(whole.ok == cut.ok);
  FUZZ_CHECK(whole.error == cut.error);
  FUZZ_CHECK(whole.complete == cut.complete);
  if (whole.complete) FUZZ_CHECK(whole.used == cut.used);
  // The SOCKS4 reply: exactly 8 octets when it decodes.
  auto r = socks5::socks4::decode_reply(in);
  if (r && *r) FUZZ_CHECK((*r)->size == socks5::socks4::kReplySize && in.size() >= 8);
  return 0;
}
