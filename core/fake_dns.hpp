#pragma once
// Fake DNS for remote resolution: each name gets a fake address from the configured ranges;
// connect() to such an address sends the NAME to the proxy. The table lives in MAP_SHARED
// memory guarded by a robust process-shared mutex, so forked children agree with their
// parent.
//
// A fake address never changes meaning while the table lives (the process and its forked
// children): a program may cache an answer for as long as it likes. So nothing is recycled.
// Capacity: 2^21 (2,097,152) names, each with its own IPv6 fake address; the first names get
// an IPv4 one too, as many as the IPv4 range holds (2^(32-prefix) - 2: 131,070 for the
// default /15). After that, new names are IPv6 only: callers that accept IPv6 get the IPv6
// address, callers that insist on IPv4 get an error (and one log line says why).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"

namespace socksify::core {

using settings::Cidr;

/// A name's entry: its index (which defines its IPv6 address) and its IPv4 slot, if any.
struct FakeName {
  std::uint32_t index = 0;
  std::uint32_t v4 = 0;  ///< 1-based slot in the IPv4 range; 0 = no IPv4 address
  bool has_v4() const noexcept { return v4 != 0; }
};

class FakeDns {
 public:
  /// Maps the shared table (reserve only; pages are touched as names arrive). nullptr on error.
  static FakeDns* create(const Cidr& net4, const Cidr& net6) noexcept;

  /// The entry for `name` (lower-cased, trailing dot removed), created if new.
  std::optional<FakeName> lookup_or_add(std::string_view name) noexcept;
  /// The fake IPv4 (4 octets; only if n.has_v4()) / IPv6 (16 octets) address of an entry.
  void address4(FakeName n, std::uint8_t* out) const noexcept;
  void address6(FakeName n, std::uint8_t* out) const noexcept;
  /// The name behind a fake address, if that address was handed out and is still current.
  /// Copies it into `out` (max 255 octets + NUL). Returns false when not fake.
  bool name_of(int family, const std::uint8_t* ip, char* out, std::size_t out_len) const noexcept;
  /// True if the address lies in one of the fake ranges (handed out or not).
  bool in_range(int family, const std::uint8_t* ip) const noexcept;
  /// Number of names in the table.
  std::uint32_t size() const noexcept;
  /// How many names can have an IPv4 address (the IPv4 range's usable size).
  std::uint32_t capacity4() const noexcept { return span4_; }
  /// How many names the table holds at most.
  static std::uint32_t capacity() noexcept;

 private:
  FakeDns() = default;
  struct Header;
  Header* header_ = nullptr;
  Cidr net4_;
  Cidr net6_;
  std::uint32_t span4_ = 0;  // usable IPv4 addresses
};

}  // namespace socksify::core
