#pragma once
// The receive side of a UDP association, without I/O (udp.cpp does the reading): fragment
// reassembly as RFC 1928 section 7 describes it, and whether a datagram the relay reported
// comes from the peer a connected socket asked for. Pure, so that unit tests and a fuzzer
// (fuzz/udp_in_fuzzer.cpp) can feed it hostile sequences.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "socks5/address.hpp"
#include "socks5/wire.hpp"

namespace socksify::core {

/// The largest UDP payload (IPv6 without jumbograms; IPv4's is smaller): nothing reassembled
/// or received is larger.
inline constexpr std::size_t kMaxPayload = 65535;

/// Fragments being put together (RFC 1928 section 7). Only the next position continues a
/// sequence: anything else abandons it (position 1 starts a new one); all fragments of a
/// datagram come from one source; a sequence older than the reassembly timer (at least 5 s,
/// as section 7 asks) is abandoned; the whole is at most kMaxPayload octets.
class Reassembly {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kTimeout = std::chrono::seconds(5);

  /// What became of a fragment.
  enum class Outcome : std::uint8_t {
    pending,   ///< taken into the sequence
    dropped,   ///< not part of a sequence that can complete (the sequence, if any, abandoned)
    complete,  ///< it ended the sequence: the whole datagram is in `out`
  };

  /// Feeds fragment `frag` (FRAG, not 0) with `data` from `source`. On Outcome::complete the
  /// datagram is in `out` and its source in `out_source`; with `peek` the sequence is kept as
  /// it was (the same final fragment, read again, completes it again).
  Outcome feed(std::uint8_t frag, const socks5::Address& source, socks5::ByteView data, bool peek,
               Clock::time_point now, std::vector<std::uint8_t>& out, socks5::Address& out_source);

  /// Forgets the sequence under way.
  void abandon() noexcept;
  /// The position of the last fragment taken (0: no sequence under way).
  int last() const noexcept { return last_; }
  /// Octets held.
  std::size_t held() const noexcept { return data_.size(); }

 private:
  std::vector<std::uint8_t> data_;
  socks5::Address source_;
  int last_ = 0;
  Clock::time_point started_{};
};

/// The peer a connected socket asked for, as the datagram filter sees it: an address, or a
/// name (the one behind a fake address) whose address the first datagram from the relay
/// tells (a relay reports addresses; a name's is known only from it).
struct PeerFilter {
  bool active = false;  ///< connected through the proxy (else everything passes)
  int family = 0;       ///< AF_INET / AF_INET6 for an address peer
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;
  std::array<char, 256> name{};  ///< NUL-terminated; empty for an address peer
  bool learned = false;
  socks5::Address seen;
};

/// Is `source` (what the relay reported) the peer? Learns a named peer's address from the
/// first datagram that names its port.
bool from_peer(PeerFilter& peer, const socks5::Address& source) noexcept;

}  // namespace socksify::core
