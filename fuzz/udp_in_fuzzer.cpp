// The datagram receive path of a UDP association (shim/udp_in.hpp): a hostile relay's
// datagrams, each decoded (RFC 1928 section 7 header) and, when fragmented, fed to the
// reassembly; a connected socket's peer filter on every source. Checked against a model: a
// datagram completes only from fragments 1..n of one source, taken in order with nothing in
// between, and it is their data, concatenated; nothing held or delivered exceeds a datagram.
//
// Input: a sequence of records [len (1 octet)] [flags (1 octet): bit 0 peek, bits 1-3 a clock
// step] [len octets of datagram as the relay sent it].
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "socks5/wire.hpp"
#include "udp_in.hpp"

using socksify::core::from_peer;
using socksify::core::kMaxPayload;
using socksify::core::PeerFilter;
using socksify::core::Reassembly;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reassembly r;
  auto now = Reassembly::Clock::time_point{} + std::chrono::hours(1);
  // The model: the sequence the reassembly should be holding.
  std::vector<std::uint8_t> expect;
  socks5::Address expect_source;
  int expect_last = 0;
  auto model_start = now;
  // A peer filter for a name (learns the address) and one for an address.
  PeerFilter named;
  named.active = true;
  named.port = 7000;
  std::memcpy(named.name.data(), "peer.test", 10);
  PeerFilter address;
  address.active = true;
  address.family = AF_INET;
  address.ip[0] = 198;
  address.ip[1] = 51;
  address.ip[2] = 100;
  address.ip[3] = 1;
  address.port = 7000;
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::size_t len = data[at];
    const bool peek = (data[at + 1] & 1) != 0;
    now += std::chrono::seconds((data[at + 1] >> 1) & 7);
    at += 2;
    if (at + len > size) break;
    const socks5::ByteView dg(data + at, len);
    at += len;
    auto h = socks5::wire::decode_udp_header(dg);
    if (!h) continue;
    FUZZ_CHECK(h->size <= dg.size());
    const auto& src = h->value.destination;
    const bool from_named = from_peer(named, src);
    const bool from_address = from_peer(address, src);
    // An address peer takes only its own address and port; a named one only its port.
    if (from_address) FUZZ_CHECK(src.is_ip() && src.port() == 7000);
    if (from_named) FUZZ_CHECK(src.port() == 7000);
    if (h->value.frag == 0) continue;
    const socks5::ByteView payload = dg.subspan(h->size);
    // The model's step, before the library's.
    const int position = h->value.frag & 0x7F;
    const bool end = (h->value.frag & 0x80) != 0;
    if (expect_last > 0 && now - model_start > Reassembly::kTimeout) {
      expect.clear();
      expect_last = 0;
    }
    bool model_drop = false;
    if (position == 0 || position != expect_last + 1) {
      expect.clear();
      expect_last = 0;
      model_drop = position != 1;
    }
    if (!model_drop && position > 1 && !(src == expect_source)) {
      expect.clear();
      expect_last = 0;
      model_drop = true;
    }
    if (!model_drop && expect.size() + payload.size() > kMaxPayload) {
      expect.clear();
      expect_last = 0;
      model_drop = true;
    }
    if (!model_drop && position == 1) {
      expect_source = src;
      model_start = now;
    }
    std::vector<std::uint8_t> out;
    socks5::Address out_source;
    const auto outcome = r.feed(h->value.frag, src, payload, peek, now, out, out_source);
    if (model_drop) {
      FUZZ_CHECK(outcome == Reassembly::Outcome::dropped);
      FUZZ_CHECK(r.last() == 0 && r.held() == 0);
      continue;
    }
    if (!end) {
      FUZZ_CHECK(outcome == Reassembly::Outcome::pending);
      expect.insert(expect.end(), payload.begin(), payload.end());
      expect_last = position;
      FUZZ_CHECK(r.last() == expect_last);
      FUZZ_CHECK(r.held() == expect.size());
      continue;
    }
    FUZZ_CHECK(outcome == Reassembly::Outcome::complete);
    std::vector<std::uint8_t> whole = expect;
    whole.insert(whole.end(), payload.begin(), payload.end());
    FUZZ_CHECK(out == whole);
    FUZZ_CHECK(out.size() <= kMaxPayload);
    FUZZ_CHECK(out_source == expect_source);
    if (!peek) {
      expect.clear();
      expect_last = 0;
    }
    FUZZ_CHECK(r.last() == expect_last);
  }
  return 0;
}
