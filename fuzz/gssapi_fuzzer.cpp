// The GSSAPI client (RFC 1961) fed hostile server octets, against the scripted GSS-API
// library (tests/support/fake_gss.cpp): the context and level sub-negotiation in any split,
// the protection layer's unwrap (stream and datagram), and the relay's setup message. Every
// input ends in progress, completion or a clean error; nothing is read outside the input.
#include "fuzz_check.hpp"
#include "relay.hpp"
#include "socks5/gssapi.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool loaded = [] {
    socks5::gssapi_use_library(SOCKSIFY_FAKE_GSS);
    return socks5::gssapi_available();
  }();
  FUZZ_CHECK(loaded);
  const socks5::ByteView in(data, size);
  // The first octet picks the level and where the input is split.
  const auto level = static_cast<socks5::GssLevel>(size > 0 ? data[0] % 3 : 1);
  const std::size_t cut = size > 1 ? data[1] % size : 0;
  {
    socks5::GssapiAuth m(socks5::GssapiOptions{"ok", level, nullptr}, "proxy.test");
    socks5::Bytes out;
    FUZZ_CHECK(m.begin(out));
    std::size_t used = 0;
    bool failed = false;
    for (const auto part : {in.first(cut), in}) {
      while (!failed && used < part.size()) {
        auto p = m.on_input(part.subspan(used), out);
        if (!p) {
          failed = true;
          break;
        }
        FUZZ_CHECK(p->consumed <= part.size() - used);
        used += p->consumed;
        if (p->done || p->consumed == 0) break;
      }
    }
    (void)m.take_protection();
  }
  for (const bool datagram : {false, true}) {
    auto prot = socks5::import_gss_protection(
        socks5::ByteView(reinterpret_cast<const std::uint8_t*>("CTX"), 3),
        level == socks5::GssLevel::clear ? socks5::GssLevel::integrity : level);
    FUZZ_CHECK(prot);
    (*prot)->set_datagram(datagram);
    socks5::Bytes plain;
    std::size_t off = 0;
    while (off < size) {
      auto n = (*prot)->unwrap(in.subspan(off), plain);
      if (!n || *n == 0) break;
      FUZZ_CHECK(*n <= size - off);
      off += *n;
    }
    FUZZ_CHECK(plain.size() <= size);
  }
  socksify::relay::Setup setup;
  auto s = socksify::relay::decode_setup(in, setup);
  if (s && *s > 0) {
    FUZZ_CHECK(*s <= size);
    FUZZ_CHECK(socksify::relay::encode_setup(setup) == socks5::Bytes(data, data + *s));
  }
  return 0;
}
