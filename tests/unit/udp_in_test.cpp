// The receive side of a UDP association without I/O (shim/udp_in.hpp): reassembly and the
// connected socket's peer filter, on the sequences a hostile relay sends.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "udp_in.hpp"

using namespace socksify::core;

namespace {

socks5::Address from(std::uint8_t last, std::uint16_t port = 7000) {
  return socks5::Address::ipv4({198, 51, 100, last}, port);
}

socks5::ByteView view(const char* text) {
  return socks5::ByteView(reinterpret_cast<const std::uint8_t*>(text), std::strlen(text));
}

std::string text(const std::vector<std::uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

}  // namespace

TEST_CASE("reassembly: the next position only, and a gap, a second source or a stale start drop",
          "[shim][udp]") {
  using O = Reassembly::Outcome;
  Reassembly r;
  auto now = Reassembly::Clock::now();
  std::vector<std::uint8_t> out;
  socks5::Address src;
  // 1, 2, 3|end: one datagram.
  CHECK(r.feed(1, from(1), view("aa"), false, now, out, src) == O::pending);
  CHECK(r.feed(2, from(1), view("bb"), false, now, out, src) == O::pending);
  CHECK(r.feed(0x83, from(1), view("cc"), false, now, out, src) == O::complete);
  CHECK(text(out) == "aabbcc");
  CHECK(src == from(1));
  CHECK(r.last() == 0);
  // 1, then 3|end: a gap abandons the sequence; 3 is dropped.
  CHECK(r.feed(1, from(1), view("AAAA"), false, now, out, src) == O::pending);
  CHECK(r.feed(0x83, from(1), view("CCCC"), false, now, out, src) == O::dropped);
  CHECK(r.held() == 0);
  // A lower 1 starts over.
  CHECK(r.feed(1, from(1), view("j"), false, now, out, src) == O::pending);
  CHECK(r.feed(1, from(1), view("x"), false, now, out, src) == O::pending);
  CHECK(r.feed(0x82, from(1), view("y"), false, now, out, src) == O::complete);
  CHECK(text(out) == "xy");
  // Fragments of one datagram come from one source.
  CHECK(r.feed(1, from(1), view("x"), false, now, out, src) == O::pending);
  CHECK(r.feed(0x82, from(9), view("y"), false, now, out, src) == O::dropped);
  // An end bit at position 0 is no fragment.
  CHECK(r.feed(0x80, from(1), view("z"), false, now, out, src) == O::dropped);
  // Older than the timer: abandoned.
  CHECK(r.feed(1, from(1), view("old"), false, now, out, src) == O::pending);
  CHECK(r.feed(0x82, from(1), view("late"), false, now + std::chrono::seconds(6), out, src) ==
        O::dropped);
  // Never more than a datagram holds.
  const std::vector<std::uint8_t> big(40000, 'b');
  CHECK(r.feed(1, from(1), big, false, now, out, src) == O::pending);
  CHECK(r.feed(0x82, from(1), big, false, now, out, src) == O::dropped);
  CHECK(r.held() == 0);
}

TEST_CASE("reassembly: a peeked final fragment completes the datagram again when read",
          "[shim][udp]") {
  using O = Reassembly::Outcome;
  Reassembly r;
  const auto now = Reassembly::Clock::now();
  std::vector<std::uint8_t> out;
  socks5::Address src;
  CHECK(r.feed(1, from(1), view("peek-"), true, now, out, src) == O::pending);
  CHECK(r.feed(0x82, from(1), view("me"), true, now, out, src) == O::complete);
  CHECK(text(out) == "peek-me");
  CHECK(r.last() == 1);  // kept: the final fragment is still queued
  CHECK(r.feed(0x82, from(1), view("me"), false, now, out, src) == O::complete);
  CHECK(text(out) == "peek-me");
  CHECK(r.last() == 0);
}

TEST_CASE("peer filter: an address peer, a named peer learned from the relay", "[shim][udp]") {
  PeerFilter off;
  CHECK(from_peer(off, from(9, 1)));  // not connected through the proxy: everything
  PeerFilter address;
  address.active = true;
  address.family = AF_INET;
  address.ip = {198, 51, 100, 1};
  address.port = 7000;
  CHECK(from_peer(address, from(1)));
  CHECK_FALSE(from_peer(address, from(1, 7001)));
  CHECK_FALSE(from_peer(address, socks5::Address::ipv4({203, 0, 113, 9}, 7000)));
  std::array<std::uint8_t, 16> mapped{};
  mapped[10] = mapped[11] = 0xFF;
  mapped[12] = 198;
  mapped[13] = 51;
  mapped[14] = 100;
  mapped[15] = 1;
  CHECK(from_peer(address, socks5::Address::ipv6(mapped, 7000)));  // v4-mapped is IPv4
  CHECK_FALSE(from_peer(address, socks5::Address::domain("target.lab", 7000)));
  PeerFilter named;
  named.active = true;
  named.port = 7000;
  std::memcpy(named.name.data(), "target.lab", 11);
  CHECK(from_peer(named, socks5::Address::domain("Target.Lab.", 7000)));
  CHECK_FALSE(from_peer(named, socks5::Address::domain("other.lab", 7000)));
  CHECK_FALSE(from_peer(named, from(1, 7001)));
  CHECK(from_peer(named, from(1)));  // learned
  CHECK(from_peer(named, from(1)));
  CHECK_FALSE(from_peer(named, from(2)));
}
