// decode_udp_header: a datagram from the relay; re-encoding gives back the header.
#include "fuzz_check.hpp"
#include "socks5/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto h = socks5::wire::decode_udp_header(socks5::ByteView(data, size));
  if (h) {
    FUZZ_CHECK(h->size <= size);
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_udp_header(h->value.frag, h->value.destination, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + h->size));
  }
  return 0;
}
