// decode_gss_frame (RFC 1961): the token view stays inside the input; frames re-encode.
#include "fuzz_check.hpp"
#include "socks5/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto f = socks5::wire::decode_gss_frame(socks5::ByteView(data, size));
  if (f && *f) {
    const auto& v = (*f)->value;
    FUZZ_CHECK((*f)->size <= size);
    FUZZ_CHECK(v.token.empty() ||
               (v.token.data() >= data && v.token.data() + v.token.size() <= data + size));
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_gss_frame(v.type, v.token, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + (*f)->size));
  }
  return 0;
}
