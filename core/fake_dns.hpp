#pragma once
// Fake DNS for remote resolution: each name gets a fake address from the configured ranges;
// connect() to such an address sends the NAME to the proxy.
//
// One view for all of a user's socksified processes with the same ranges: the table is a file
// in the user's private state directory (settings/state.hpp), mapped MAP_SHARED, so a name
// resolved in one process is known in any other (a resolver helper, a script that passes an
// address on, the supervisor's DNS responder). Without a usable directory it is this process
// tree's own (anonymous shared memory, inherited across fork).
//
// - Nothing is mapped before the first call that needs the table (create() is cheap).
// - Lookups take no lock: an entry is complete before it is published (release stores of the
//   count and then of its bucket's head; readers acquire). Inserts are serialised by a robust
//   process-shared mutex; a process killed at any instant leaves at most an unreachable entry,
//   never a torn one, and no lock held.
// - The file must be a regular file of this user's, mode 0600, not a link; anything else is
//   refused (with one line by the caller) and the private table is used.
// - A fake address never changes meaning while the table lives: nothing is recycled.
//   Capacity 2^21 (2,097,152) names, each with its own IPv6 fake address; the first names get
//   an IPv4 one too, as many as the IPv4 range holds (131,070 for the default /15). The file
//   is sparse: pages are paid for as names arrive.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"

struct stat;

namespace socksify::core {

using settings::Cidr;

/// The calls the shared file needs that the preloaded library reaches only through its own
/// table (elsewhere: the C library's, libc_file_calls()).
struct FileCalls {
  int (*open)(const char*, int, ...);
  int (*close)(int);
  int (*fstat)(int, struct stat*);
};

/// A name's entry: its index (which defines its IPv6 address) and its IPv4 slot, if any.
struct FakeName {
  std::uint32_t index = 0;
  std::uint32_t v4 = 0;  ///< 1-based slot in the IPv4 range; 0 = no IPv4 address
  bool has_v4() const noexcept { return v4 != 0; }
};

class FakeDns {
 public:
  struct Header;  ///< the table's first page (fake_dns.cpp)
  /// Where the table lives (what map() found).
  enum class Where : std::uint8_t {
    unmapped,  ///< nothing mapped yet
    shared,    ///< the user's file, shared with every process of the same ranges
    private_,  ///< this process tree's own (no usable directory, or a file refused)
    none,      ///< nothing could be mapped: lookups fail
  };

  /// Unmaps the table (this process's mapping; a shared file stays). The library keeps its
  /// table for the life of the process; tests and tools that make several delete them.
  ~FakeDns();
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  /// A table for these ranges; `dir` is the state directory for the shared file (empty: the
  /// private table), reached with `calls`. Maps nothing. nullptr on allocation failure.
  static FakeDns* create(const Cidr& net4, const Cidr& net6, std::string_view dir = {},
                         const FileCalls* calls = nullptr) noexcept;

  /// The entry for `name` (lower-cased, trailing dot removed), created if new.
  std::optional<FakeName> lookup_or_add(std::string_view name) noexcept;
  /// The entry for `name` if it exists (never adds).
  std::optional<FakeName> lookup(std::string_view name) const noexcept;
  /// The fake IPv4 (4 octets; only if n.has_v4()) / IPv6 (16 octets) address of an entry.
  void address4(FakeName n, std::uint8_t* out) const noexcept;
  void address6(FakeName n, std::uint8_t* out) const noexcept;
  /// The name behind a fake address, if that address was handed out and is still current.
  /// Copies it into `out` (max 255 octets + NUL). Returns false when not fake.
  bool name_of(int family, const std::uint8_t* ip, char* out, std::size_t out_len) const noexcept;
  /// True if the address lies in one of the fake ranges (handed out or not). Maps nothing.
  bool in_range(int family, const std::uint8_t* ip) const noexcept;
  /// Number of names in the table.
  std::uint32_t size() const noexcept;
  /// How many names can have an IPv4 address (the IPv4 range's usable size).
  std::uint32_t capacity4() const noexcept { return span4_; }
  /// How many names the table holds at most.
  static std::uint32_t capacity() noexcept;
  /// Before a fork: a table that can only be private is mapped now, so that parent and child
  /// share it (a shared file is shared anyway, whenever either maps it).
  void before_fork() const noexcept {
    if (path_[0] == '\0') (void)table();
  }
  /// Where the table is (after the first call that needed it).
  Where where() const noexcept { return where_.load(std::memory_order_acquire); }
  /// Why the shared file was not used, when where() is private_ ("" otherwise).
  const char* why_private() const noexcept { return why_; }
  /// The shared file's path ("" without a directory).
  const char* path() const noexcept { return path_; }

 private:
  FakeDns() = default;
  Header* table() const noexcept;  // maps on first use
  Header* map() const noexcept;
  bool private_dir(const char* dir) const noexcept;
  mutable std::atomic<Header*> header_{nullptr};
  mutable std::atomic<Where> where_{Where::unmapped};
  mutable const char* why_ = "";
  const FileCalls* calls_ = nullptr;
  Cidr net4_;
  Cidr net6_;
  std::uint32_t span4_ = 0;  // usable IPv4 addresses
  char path_[512] = {};
};

}  // namespace socksify::core
